"""Quix Streams 3 with one stateful counter per deal: RocksDB state with its changelog (Quix's
default durable state), across the four topics; run with the benchmark's virtualenv.

Tansu needs two settings: no idempotent producer (Quix forces one for its changelog), and a
``retention.ms`` for the input topics (Tansu describes only configs set at creation; Quix derives
the changelog's config from it). Malformed JSON becomes None and is skipped: raising would stop
the app, and suppressing the error leaves the offset unstored, so the group never commits to the end.
"""

import sys

from quixstreams import Application
from quixstreams.models.serializers import JSONDeserializer, SerializationError

TOPICS = ("crm.deal-stages", "crm.calls", "crm.emails", "crm.meetings")  # bench.consumers.DEAL_TOPICS
COMMIT_SECONDS = 1.0  # bench.consumers.COMMIT_SECONDS (this runs without LeadPulse installed)


class JSONOrNone(JSONDeserializer):
    """Quix's JSON deserializer (orjson); malformed JSON becomes None (see above)."""

    def __call__(self, value, ctx):
        try:
            return super().__call__(value, ctx)
        except SerializationError:
            return None


def count(value, state):
    state.set("count", state.get("count", 0) + 1)


def main() -> None:
    bootstrap, group, datadir = sys.argv[1:4]
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=COMMIT_SECONDS,
        state_dir=datadir,
        producer_extra_config={"enable.idempotence": False},  # Tansu: InitProducerId fails
        consumer_extra_config={"session.timeout.ms": 6000},  # Tansu's first join waits half of it
        loglevel="WARNING",
    )
    topics = [app.topic(name, value_deserializer=JSONOrNone(), key_deserializer="bytes") for name in TOPICS]
    for topic in topics:  # see above: a no-op on Kafka
        topic.broker_config.extra_config.setdefault("retention.ms", "-1")
    sdf = app.dataframe(topics[0])
    for topic in topics[1:]:
        sdf = sdf.concat(app.dataframe(topic))  # one store for all four topics: one counter per key
    sdf = sdf.filter(lambda value: value is not None)
    sdf.update(count, stateful=True)
    app.run()  # Quix handles SIGTERM/SIGINT: stops, commits the last checkpoint, closes


if __name__ == "__main__":
    main()
