"""The agents: thin loops that hand batches of raw messages to the processor.

Messages are consumed as raw bytes (bad input must reach the dead-letter topic intact) in
``take_events`` batches. Faust acks a batch's events when the loop asks for the next batch, so
the processor first awaits every changelog write of the batch: offsets are committed only for
events whose effects are durable.

An unexpected error (a bug, not bad input) is logged with topic, partition and offset and the
worker exits at once *without committing*: raising instead would let Faust restart the agent
after ``take_events`` had acked the failed batch, and a graceful stop commits acked offsets,
so the batch would be lost. Kafka redelivers it to the next worker; the offset watermarks in
the state make that redelivery harmless.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence

import faust
from faust.types import EventT

from schemas.events import DEAL_TOPICS
from streams.config import Settings
from streams.deadletter import InputMessage

log = logging.getLogger(__name__)

EXIT_UNEXPECTED_ERROR = 70
Handler = Callable[[Sequence[InputMessage]], Awaitable[None]]


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def to_input_message(event: EventT) -> InputMessage:
    message = event.message
    return InputMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )


async def run_batch(events: Sequence[EventT], handler: Handler) -> None:
    messages = [to_input_message(event) for event in events]
    try:
        await handler(messages)
    except Exception:
        span = sorted({(m.topic, m.partition) for m in messages})
        offsets = {where: [m.offset for m in messages if (m.topic, m.partition) == where] for where in span}
        where = ", ".join(f"{topic}[{partition}]@{min(o)}..{max(o)}" for (topic, partition), o in offsets.items())
        log.critical(
            "unexpected error processing %d messages (%s); exiting without committing",
            len(messages),
            where,
            exc_info=True,
        )
        logging.shutdown()
        os._exit(EXIT_UNEXPECTED_ERROR)


def register_agents(app: faust.App, settings: Settings, deal_handler: Handler, rep_handler: Handler) -> None:
    deal_topics = raw_topic(app, *(settings.topics.input_name(topic) for topic in DEAL_TOPICS))
    rep_topic = raw_topic(app, settings.topics.reps)
    size, within = settings.batch_max_events, settings.batch_max_seconds

    @app.agent(deal_topics, name="fold_deal_events")
    async def fold_deal_events(stream: faust.StreamT) -> None:
        async for events in stream.take_events(size, within=within):
            await run_batch(events, deal_handler)

    @app.agent(rep_topic, name="apply_rep_profiles")
    async def apply_rep_profiles(stream: faust.StreamT) -> None:
        async for events in stream.take_events(size, within=within):
            await run_batch(events, rep_handler)
