"""One line of an export file: ``{"topic": ..., "key": ..., "value": ...}``, or why it is unreadable.

Pure: no I/O. ``value`` is the raw message text, sent as it is (a malformed event inside a
readable line is the engine's to dead-letter, exactly as if it had arrived live); a JSON object
or array as ``value`` is accepted too and sent as compact JSON. ``key`` is a string or null.
A line is *unreadable* when it is not a JSON object of that shape, or names a topic LeadPulse
does not read: it is reported with its number and reason, and the import goes on.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class ExportRecord:
    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Unreadable:
    line: int
    reason: str


def parse_line(number: int, raw: bytes, topics: Collection[str]) -> ExportRecord | Unreadable | None:
    """The record on line ``number`` (1-based); None for a blank line."""
    if not raw.strip():
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Unreadable(number, f"not JSON ({str(exc).split(':')[0]})")
    if not isinstance(data, dict):
        return Unreadable(number, f"a JSON {type(data).__name__}, not an object with topic, key and value")
    topic, key, value = data.get("topic"), data.get("key"), data.get("value", ...)
    if not isinstance(topic, str):
        return Unreadable(number, "topic is missing or not a string")
    if topic not in topics:
        return Unreadable(number, f"topic {topic[:80]!r} is not one LeadPulse reads ({', '.join(sorted(topics))})")
    if key is not None and not isinstance(key, str):
        return Unreadable(number, "key must be a string or null")
    if value is ... or value is None:
        return Unreadable(number, "value is missing (the raw message text)")
    if isinstance(value, str):
        payload = value.encode()
    elif isinstance(value, dict | list):
        payload = orjson.dumps(value)
    else:
        return Unreadable(number, "value must be the message text (a string) or a JSON object")
    return ExportRecord(topic, None if key is None else key.encode(), payload)
