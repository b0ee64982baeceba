"""Sending an export file to the input topics, at full speed, with a progress bar (tqdm).

Lines are read one at a time (a year of history does not fit in memory twice), handed to the
aiokafka producer without waiting for each acknowledgement (its accumulator batches them), and
acknowledged in windows, so the import runs at the producer's speed. Records keep their
order per topic and key, as Kafka's partitioner keeps one key in one partition.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tqdm import tqdm

from schemas.events import InputTopic
from streams.config import Settings
from streams.importer.lines import ExportRecord, Unreadable, parse_line
from streams.kafka.topics import client_options

IN_FLIGHT = 20_000  # records handed to the producer before waiting for their acknowledgements
SHOWN_UNREADABLE = 50


@dataclass
class ImportReport:
    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    unreadable: list[Unreadable] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    def print(self, out: TextIO) -> None:
        rate = self.total_sent / self.seconds if self.seconds > 0 else 0.0
        print(f"sent {self.total_sent:,} messages in {self.seconds:.1f}s ({rate:,.0f} messages/s)", file=out)
        for topic in sorted(set(self.sent) | set(self.failed)):
            failed = f", {self.failed[topic]:,} failed" if self.failed[topic] else ""
            print(f"  {topic}: {self.sent[topic]:,} sent{failed}", file=out)
        if self.unreadable:
            print(f"{len(self.unreadable):,} unreadable line(s), not sent:", file=out)
            for item in self.unreadable[:SHOWN_UNREADABLE]:
                print(f"  line {item.line}: {item.reason}", file=out)
            if len(self.unreadable) > SHOWN_UNREADABLE:
                print(f"  ... and {len(self.unreadable) - SHOWN_UNREADABLE:,} more", file=out)


async def send_file(settings: Settings, path: Path, progress: bool = True) -> ImportReport:
    topics = {settings.topics.input_name(topic) for topic in InputTopic}
    report = ImportReport()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.broker,
        acks="all",
        linger_ms=20,
        max_batch_size=1 << 20,
        max_request_size=2 << 20,
        **client_options(settings),
    )
    await producer.start()
    started = time.perf_counter()
    pending: list[tuple[str, asyncio.Future]] = []

    async def settle() -> None:
        for topic, delivery in pending:
            try:
                await delivery
                report.sent[topic] += 1
            except KafkaError:
                report.failed[topic] += 1
        pending.clear()

    try:
        with (
            path.open("rb") as lines,
            tqdm(
                total=path.stat().st_size,
                unit="B",
                unit_scale=True,
                desc=path.name,
                disable=not progress,
                file=sys.stderr,
            ) as bar,
        ):
            for number, raw in enumerate(lines, start=1):
                bar.update(len(raw))
                record = parse_line(number, raw, topics)
                if isinstance(record, Unreadable):
                    report.unreadable.append(record)
                elif isinstance(record, ExportRecord):
                    try:
                        pending.append((record.topic, await producer.send(record.topic, record.value, key=record.key)))
                    except KafkaError:  # e.g. a message over the broker's size limit
                        report.failed[record.topic] += 1
                    if len(pending) >= IN_FLIGHT:
                        await settle()
            await settle()
    finally:
        await producer.stop()
    report.seconds = time.perf_counter() - started
    return report


def run_import(settings: Settings, path: Path, progress: bool = True) -> int:
    """Exit status: 0 when anything was sent, 1 when nothing could be."""
    report = asyncio.run(send_file(settings, path, progress))
    report.print(sys.stdout)
    return 0 if report.total_sent else 1
