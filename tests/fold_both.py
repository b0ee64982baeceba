"""Folds a deal history through the batch processor and says everything it made, as JSON: the same
code under whichever build of the core imports (tests/test_compiled_build.py runs it in-process on the
compiled core and, as a script fed one history per line, on the plain sources of another directory).

A case is ``{"business_hours": bool, "batches": [{"now": float, "messages": [[topic, partition,
offset, key, value, timestamp_ms], ...]}, ...], "due_at": float}``; ``value`` is the message's text or
None (a tombstone). The result holds the four tables' records, every aggregate cell with the
partition's deal count, record bytes and awaiting leads, the output records the plans sent (in order),
the timer's outputs at ``due_at``, and the dead letters.

    PYTHONPATH=<sources without .so> python tests/fold_both.py < cases.jsonl > results.jsonl
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import sys
from collections.abc import Awaitable
from typing import Any

import orjson

from streams.build import current
from streams.config import load_settings
from streams.fold.periods import Calendar
from streams.ingest.deadletter import InputMessage
from streams.outputs.emitter import Record
from streams.state.rollups import Rollups
from streams.worker.in_memory import in_memory_worker


def canonical(value: Any) -> Any:
    """JSON-able, the same for the compiled and the plain build (enums as values, tuples as lists,
    dataclasses as dicts, mappings as sorted pairs)."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return sorted(([canonical(k), canonical(v)] for k, v in value.items()), key=orjson.dumps)
    if isinstance(value, list | tuple | set | frozenset):
        items = [canonical(item) for item in value]
        return sorted(items, key=orjson.dumps) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def rollup_cells(rollups: Rollups) -> list:
    out = []
    for partition in rollups.partitions():
        rollup = rollups.partition(partition)
        assert rollup is not None
        cells = [
            [canonical(scope), canonical(family), canonical(labels), count, total]
            for scope, families in rollup.sums.items()
            for family, by_labels in families.items()
            for labels, (count, total) in by_labels.items()
        ]
        out.append(
            {
                "partition": partition,
                "cells": sorted(cells, key=orjson.dumps),
                "deals": rollup.deals,
                "record_bytes": rollup.record_bytes,
                "awaiting": canonical(rollup.awaiting),
            }
        )
    return out


async def fold(case: dict) -> dict:
    settings = load_settings(sla_business_hours=bool(case.get("business_hours")))
    now = 0.0
    sent: list[Record] = []
    dead_letters: list[str] = []

    async def send(records: list[Record]) -> list[Awaitable[object]]:
        sent.extend(records)
        return []

    async def publish(record: Any, key: bytes | None) -> None:
        dead_letters.append(record.model_dump_json())

    worker = in_memory_worker(
        settings, clock=lambda: now, calendar=Calendar("Europe/Berlin"), send_records=send, publish_dead_letter=publish
    )
    deals, intake, profiles, rep_intake = worker.deals, worker.intake, worker.rep_profiles, worker.rep_intake
    rollups, sync, processor, outputs = worker.rollups, worker.sync, worker.processor, worker.outputs
    assert outputs is not None
    for batch in case["batches"]:
        now = batch["now"]
        messages = [
            InputMessage(topic, partition, offset, key.encode(), None if value is None else value.encode(), stamp)
            for topic, partition, offset, key, value, stamp in batch["messages"]
        ]
        await processor.take(messages)
        await processor.flush()
    sync()
    planned = len(sent)
    processor.defer(await outputs.emit_due(deals, set(rollups.partitions()), case["due_at"]))
    await processor.flush()
    return {
        "deals": canonical(dict(deals)),
        "intake": canonical(dict(intake)),
        "profiles": canonical(dict(profiles)),
        "rep_intake": canonical(dict(rep_intake)),
        "rollups": rollup_cells(rollups),
        "planned": canonical(sent[:planned]),
        "due": canonical(sent[planned:]),
        "dead_letters": dead_letters,
    }


def run(case: dict) -> dict:
    return orjson.loads(orjson.dumps(asyncio.run(fold(case))))


def main() -> None:
    """One case per line in, one result per line out; the first line out says which build runs."""
    print(orjson.dumps({"build": current().label}).decode(), flush=True)
    for line in sys.stdin:
        try:
            result = {"result": run(orjson.loads(line))}
        except Exception as error:  # the test shows it, with the case
            result = {"error": f"{type(error).__name__}: {error}"}
        print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
