"""Hostile input messages (hypothesis strategies), each built to break one rule of SPEC §1, with
the dead-letter reasons that rule allows. Shared by the decoder's property test and the broker's
fuzz test (tests/test_fuzz.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

from schemas.outputs import DeadLetterReason as Reason

CALLS = "crm.calls"
STAGES = "crm.deal-stages"
REPS = "crm.reps"
DEALS = tuple(f"fz-{number}" for number in range(8))


@dataclass(frozen=True)
class Hostile:
    topic: str
    key: bytes | None
    value: bytes | None
    reasons: frozenset[Reason]  # what the dead letter may say
    kind: str  # which rule it breaks (for failure messages)


def call(deal: str, event_id: str, **fields: object) -> dict:
    return {
        "event_id": event_id,
        "occurred_at": "2024-03-05T12:00:00Z",
        "deal_id": deal,
        "rep_id": "fz-rep",
        "call_id": event_id,
        "direction": "outbound",
        "outcome": "connected",
        "talk_seconds": 30,
        **fields,
    }


def encoded(value: dict) -> bytes:
    return json.dumps(value).encode()


def allowed(*reasons: Reason) -> frozenset[Reason]:
    return frozenset(reasons)


# Every rule-breaking kind, weighted: a 1 MiB message is rare (it is costly to produce, not to reject).
KINDS = [
    *[
        kind
        for kind in (
            "truncated", "not_an_object", "wrong_type", "missing", "huge_string", "deep_nesting", "nan",
            "invalid_utf8", "naive_timestamp", "timestamp_out_of_range", "enormous_number", "null_key",
            "other_key", "tombstone", "bad_enum", "future",
        )
        for _ in range(12)
    ],
    "megabyte",
]  # fmt: skip


@st.composite
def hostile(draw: st.DrawFn) -> Hostile:
    """One message that must be dead-lettered."""
    deal = draw(st.sampled_from(DEALS))
    key = deal.encode()
    event_id = f"bad-{draw(st.integers(0, 10**9))}"
    valid = call(deal, event_id)
    kind = draw(st.sampled_from(KINDS))
    if kind == "truncated":  # any proper prefix of an object is not JSON
        text = encoded(valid)
        return Hostile(CALLS, key, text[: draw(st.integers(0, len(text) - 1))], allowed(Reason.INVALID_JSON), kind)
    if kind == "not_an_object":
        value = draw(st.one_of(st.lists(st.integers(), max_size=5), st.integers(), st.text(max_size=20), st.none()))
        return Hostile(CALLS, key, json.dumps(value).encode(), allowed(Reason.NOT_AN_OBJECT), kind)
    if kind == "wrong_type":  # a number is not a timestamp: that one may say bad_timestamp
        field, bad = draw(
            st.sampled_from([("talk_seconds", "10"), ("rep_id", 12345), ("occurred_at", 1709640000), ("call_id", True)])
        )
        reasons = allowed(Reason.WRONG_TYPE, *([Reason.BAD_TIMESTAMP] if field == "occurred_at" else []))
        return Hostile(CALLS, key, encoded({**valid, field: bad}), reasons, kind)
    if kind == "missing":
        field = draw(st.sampled_from(["event_id", "occurred_at", "rep_id", "call_id", "direction", "outcome"]))
        value = {name: item for name, item in valid.items() if name != field}
        return Hostile(CALLS, key, encoded(value), allowed(Reason.MISSING_FIELD), kind)
    if kind == "huge_string":
        size = draw(st.sampled_from([129, 1_000, 70_000]))
        reasons = allowed(Reason.OUT_OF_RANGE, Reason.TOO_LARGE)
        return Hostile(CALLS, key, encoded({**valid, "event_id": "x" * size}), reasons, kind)
    if kind == "deep_nesting":
        depth = draw(st.sampled_from([10, 1_000, 20_000]))
        nested = "[" * depth + "]" * depth
        text = encoded(valid).replace(b'"connected"', nested.encode())
        reasons = allowed(Reason.INVALID_VALUE, Reason.WRONG_TYPE, Reason.INVALID_JSON, Reason.TOO_LARGE)
        return Hostile(CALLS, key, text, reasons, kind)
    if kind == "nan":
        token = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity"]))
        return Hostile(
            CALLS,
            key,
            encoded(valid).replace(b'"talk_seconds": 30', b'"talk_seconds": ' + token),
            allowed(Reason.INVALID_JSON),
            kind,
        )
    if kind == "invalid_utf8":
        garbage = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        text = encoded(valid).replace(b"fz-rep", b"fz-" + garbage)
        return Hostile(CALLS, key, text, allowed(Reason.INVALID_ENCODING), kind)
    if kind == "naive_timestamp":
        stamp = draw(st.sampled_from(["2024-03-05T12:00:00", "2024-03-05 12:00", "2024-03-05", "12:00:00Z"]))
        return Hostile(CALLS, key, encoded({**valid, "occurred_at": stamp}), allowed(Reason.BAD_TIMESTAMP), kind)
    if kind == "timestamp_out_of_range":
        stamp = draw(st.sampled_from(["1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2024-02-30T00:00:00Z"]))
        reasons = allowed(Reason.BAD_TIMESTAMP, Reason.OUT_OF_RANGE)
        return Hostile(CALLS, key, encoded({**valid, "occurred_at": stamp}), reasons, kind)
    if kind == "enormous_number":
        number = draw(st.sampled_from([b"1e400", b"10000000000000000000000000000", b"-1", b"86401"]))
        text = encoded(valid).replace(b'"talk_seconds": 30', b'"talk_seconds": ' + number)
        return Hostile(CALLS, key, text, allowed(Reason.OUT_OF_RANGE, Reason.WRONG_TYPE), kind)
    if kind == "megabyte":
        value = encoded({**valid, "pad": "x" * (1 << 20)})
        return Hostile(CALLS, key, value, allowed(Reason.TOO_LARGE), kind)
    if kind == "null_key":
        return Hostile(CALLS, None, encoded(valid), allowed(Reason.KEY_MISMATCH), kind)
    if kind == "other_key":
        other = draw(st.sampled_from([b"", b"fz-other", b"k" * 100_000, "déal".encode()]))
        return Hostile(CALLS, other, encoded(valid), allowed(Reason.KEY_MISMATCH), kind)
    if kind == "tombstone":
        return Hostile(CALLS, key, None, allowed(Reason.INVALID_JSON), kind)
    if kind == "bad_enum":
        field, bad = draw(st.sampled_from([("direction", "sideways"), ("outcome", "CONNECTED"), ("outcome", "")]))
        return Hostile(CALLS, key, encoded({**valid, field: bad}), allowed(Reason.INVALID_VALUE), kind)
    # "future": stamped far beyond the allowed skew ahead of the wall clock
    value = encoded({**valid, "occurred_at": "2999-01-01T00:00:00Z"})
    return Hostile(CALLS, key, value, allowed(Reason.FUTURE_EVENT), kind)
