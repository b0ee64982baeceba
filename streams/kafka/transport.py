"""Faust's aiokafka transport, with end offsets cross-checked against the fetch high watermark.

Faust recovers a table by reading its changelog up to the end offsets that ListOffsets
reports. Tansu 0.6 reports the base offset of the newest record *batch* plus one, so when
that batch holds several records the reported end is short, and Faust silently restores a
partial table (seen: 1498 of 1500 records). The high watermark in a fetch response is right,
so before recovery we fetch once from just below each reported end and take the fetched one
(see :func:`fetched_highwaters` for an end that was too long). On Kafka both agree and this
costs one fetch per recovery.

Registered as the ``leadpulse://`` broker scheme through Faust's ``faust.transports`` entry
point (see pyproject.toml); :func:`streams.worker.app.build_app` uses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from faust.transport.consumer import ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.kafka.intake import FetchedBatches

PROBE_TIMEOUT_SECONDS = 20.0  # below Faust's broker_request_timeout (30 s at least), which bounds recovery's wait
PROBE_FETCH_WAIT_MS = 10
FETCH_MAX_WAIT_MS = 100  # streams.config.Settings.fetch_max_wait_ms; build_app sets the app's
log = logging.getLogger(__name__)


async def fetched_log_ends(probe: aiokafka.AIOKafkaConsumer, below: Mapping[TP, int]) -> dict[TP, int]:
    """The high watermark (log end) of each partition, from one fetch just below ``below[tp]``;
    only the partitions that answered within ``PROBE_TIMEOUT_SECONDS``."""
    answered: dict[TP, int] = {}
    partitions = {TopicPartition(tp.topic, tp.partition): tp for tp in below}
    if not partitions:
        return answered
    await probe.start()
    try:
        probe.assign(list(partitions))
        for partition, tp in partitions.items():
            probe.seek(partition, max(below[tp] - 1, 0))
        pending = set(partitions)
        deadline = asyncio.get_running_loop().time() + PROBE_TIMEOUT_SECONDS
        while pending and asyncio.get_running_loop().time() < deadline:
            await probe.getmany(*pending, timeout_ms=200)
            for partition in list(pending):
                highwater = probe.highwater(partition)
                if highwater is not None:
                    answered[partitions[partition]] = highwater
                    pending.discard(partition)
        return answered
    finally:
        await probe.stop()


async def fetched_highwaters(probe: aiokafka.AIOKafkaConsumer, reported: Mapping[TP, int]) -> dict[TP, int]:
    """``reported`` replaced by the high watermark of one fetch per partition, where one answered.

    Usually that raises a short end. It can also lower one: a Tansu partition written to just as the
    broker came back empty was seen to report an end of 1 to ListOffsets while fetches answered a
    high watermark of 0 and no record, and Faust's recovery then waited forever for that record."""
    answered = await fetched_log_ends(probe, reported)
    pending = set(reported) - set(answered)
    if pending:  # recovery will trust the reported ends, which may be short on Tansu
        log.warning(
            "no fetch answered for %s within %.0fs: recovering up to the reported end offsets",
            sorted(f"{tp.topic}[{tp.partition}]" for tp in pending),
            PROBE_TIMEOUT_SECONDS,
        )
    return {tp: answered.get(tp, end) for tp, end in reported.items()}


class HighwaterCheckedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        """Faust's consumer, with a shorter wait for records: Faust passes 1500 ms, and Tansu holds
        a fetch that long even when records arrive meanwhile (1.4 s of latency at 2,000 events/s).
        Kafka answers as soon as records arrive: there the wait costs only idle requests."""
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", FETCH_MAX_WAIT_MS)  # read at start()
        return consumer

    async def _highwaters(self, partitions: Iterable[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(list(partitions))
        if self.consumer.in_transaction:
            return reported
        return await fetched_highwaters(self._probe_consumer(), reported)

    def _probe_consumer(self) -> aiokafka.AIOKafkaConsumer:
        conf = self.app.conf
        transport: Any = self.transport
        return aiokafka.AIOKafkaConsumer(
            bootstrap_servers=faust_aiokafka.server_list(transport.url, transport.default_port),
            enable_auto_commit=False,
            # The broker answers a fetch at once when it has records, else after this wait: an empty
            # changelog (every first start) held each probe for aiokafka's default 500 ms.
            fetch_max_wait_ms=PROBE_FETCH_WAIT_MS,
            request_timeout_ms=int(conf.broker_request_timeout * 1000.0),
            **faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
        )


class Consumer(FetchedBatches, faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return HighwaterCheckedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def log_ends(self, below: Mapping[TP, int]) -> dict[TP, int]:
        """Each partition's log end, fetched (never ListOffsets, short on Tansu) from just below
        ``below[tp]``; the partitions whose fetch did not answer are left out."""
        thread: Any = self._thread
        return await fetched_log_ends(thread._probe_consumer(), below)

    _read_from_start: frozenset[str] = frozenset()  # topics whose partitions the next seek reads from the start

    def read_from_start_at_next_seek(self, topics: Iterable[str]) -> None:
        """This worker deleted the state behind ``topics`` (a start over): whatever the group committed,
        the next seek reads their assigned partitions from the start."""
        self._read_from_start = frozenset(topics)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        """Commit only while the app allows it (``app.commits_held()`` names why not, or is None).

        A worker must not commit to a broker before checking that it still holds this worker's data
        (a rebalance is under way, or the broker was silent): a broker back empty would keep offsets
        of the log it lost, and whoever reads the partition next would skip every record below them
        in the new log. Offsets not committed are read again by the next owner, a no-op (the offset
        watermarks). Faust marks them committed in memory all the same; :meth:`perform_seek` asks
        the broker again."""
        commits_held = getattr(self.app, "commits_held", None)
        why = None if commits_held is None else commits_held()
        if why is not None:
            log.debug("offsets not committed (%s): %s", why, offsets)
            return False
        return await super()._commit(offsets)  # type: ignore[misc]

    async def perform_seek(self) -> None:
        """Faust's seek to the group's committed offsets, except where those cannot be trusted:

        - an offset past the end of its partition's log belongs to data the broker lost. aiokafka
          would reset the position to the log's start, but Faust keeps the offset as read and
          silently drops every record below it;
        - after this worker deleted its state (:meth:`read_from_start_at_next_seek`), no committed
          offset of its input says what it holds.

        Those partitions are read from their start, as Kafka's ``auto.offset.reset`` means. Only the
        offsets the broker answers now are used, never Faust's memory of them (see :meth:`_commit`)."""
        committed = {ensure_TP(tp): offset for tp, offset in (await self.seek_to_committed()).items()}  # type: ignore[misc]
        again = set(await self._committed_past_log_end(committed))
        if self._read_from_start:
            started_over = {tp for tp in self.assignment() if tp.topic in self._read_from_start}
            self._read_from_start = frozenset()
            if started_over:
                log.warning(
                    "this worker's state was deleted: reading its %d input partitions from the start", len(started_over)
                )
            again |= started_over
        read_offset: Any = self._read_offset
        committed_offset: Any = self._committed_offset  # type: ignore[attr-defined]
        for tp, offset in committed.items():  # Faust's bookkeeping, as in its perform_seek
            read_offset[tp] = offset if offset is not None and offset >= 0 else None
            if offset is not None:
                committed_offset[tp] = offset or None
        for tp in again:  # then forgotten where the partition is read from its start
            read_offset[tp] = committed_offset[tp] = None
            await self.seek(tp, 0)  # type: ignore[attr-defined]

    async def _committed_past_log_end(self, committed: Mapping[TP, int | None]) -> dict[TP, int]:
        """The partitions whose committed offset is past the end of their log, with those ends. The
        engine starts over first if its tables hold any of that data (``app.before_reading_again``)."""
        suspect = {tp: offset for tp, offset in committed.items() if offset and tp in self.assignment()}
        if not suspect:
            return {}
        past = {tp: end for tp, end in (await self.log_ends(suspect)).items() if suspect[tp] > end}
        before_reading_again = getattr(self.app, "before_reading_again", None)
        if past and before_reading_again is not None:
            await before_reading_again(set(past))  # the engine starts over if its tables hold that data
        for tp, end in past.items():
            log.warning(
                "the group's committed offset on %s[%d] is %d, past the end of its log (%d): the broker lost"
                " data; reading the partition from its start",
                tp.topic,
                tp.partition,
                suspect[tp],
                end,
            )
        return past

    def broker_silence_seconds(self, now_ms: float) -> float | None:
        """Seconds since the broker last answered a fetch for any assigned partition; None when
        nothing is assigned or fetched yet. aiokafka stamps a partition at every fetch response,
        records or not, and fetches all the time (Tansu answers an idle fetch after
        ``fetch_max_wait_ms``), so a silence of seconds means the broker is gone or frozen."""
        consumer = getattr(self._thread, "_consumer", None)
        if consumer is None:
            return None
        stamps = []
        for partition in list(consumer.assignment()):
            try:
                stamp = consumer.last_poll_timestamp(partition)
            except AssertionError:  # unassigned meanwhile (a rebalance)
                continue
            if stamp is not None:
                stamps.append(stamp)
        return (now_ms - max(stamps)) / 1000 if stamps else None


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
