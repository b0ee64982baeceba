"""Input bytes to a validated event, or the reason it is rejected (SPEC §1).

Pure: no Faust, no I/O. The caller dead-letters a :class:`Rejection` with the original bytes.
A rejection's detail names the field and the rule, never a value from the payload: payloads may
carry personal data (an email in a rep id), and details travel to logs and dashboards.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, from_json

from schemas.events import MAX_EVENT_BYTES, MODEL_BY_TOPIC, DealEvent, InputTopic, RepProfile
from schemas.outputs import DeadLetterReason as Reason


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str


_TIMESTAMP_ERRORS = frozenset(
    {
        "datetime_type",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "datetime_object_invalid",
        "timezone_aware",
        "date_type",
        "date_parsing",
        "date_from_datetime_parsing",
        "date_from_datetime_inexact",
    }
)
_RANGE_ERRORS = frozenset(
    {
        "string_too_short",
        "string_too_long",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
        "too_short",
        "too_long",
        "out_of_range",
    }
)
_VALUE_ERRORS = frozenset({"literal_error", "enum", "string_pattern_mismatch", "invalid_value", "value_error"})
_SHOWN_ERRORS = 3


def decode(
    topic: InputTopic,
    key: bytes | None,
    value: bytes | None,
    *,
    now: float,
    max_future_skew_seconds: float,
) -> BaseModel | Rejection:
    """Validate one message of an input topic; ``now`` is the wall clock in epoch seconds."""
    if value is None:
        return Rejection(Reason.INVALID_JSON, "message has no value (null/tombstone)")
    if len(value) > MAX_EVENT_BYTES:
        return Rejection(Reason.TOO_LARGE, f"message is {len(value)} bytes; the limit is {MAX_EVENT_BYTES}")
    if _has_nan_or_infinity(value):
        return Rejection(Reason.INVALID_JSON, "NaN and Infinity are not JSON (RFC 8259)")
    try:
        event = MODEL_BY_TOPIC[topic].model_validate_json(value)
    except ValidationError as exc:
        return _rejection_from(exc, value)
    expected_key = event.rep_id if isinstance(event, RepProfile) else event.deal_id  # type: ignore[attr-defined]
    if key is None or key != expected_key.encode():
        field = "rep_id" if isinstance(event, RepProfile) else "deal_id"
        shown = "the message has no key" if key is None else f"the message key ({len(key)} bytes)"
        return Rejection(Reason.KEY_MISMATCH, f"{shown} is not the event's {field}")
    stamp = event.occurred_at if isinstance(event, DealEvent) else event.updated_at  # type: ignore[attr-defined]
    ahead = stamp.timestamp() - now
    if ahead > max_future_skew_seconds:
        return Rejection(
            Reason.FUTURE_EVENT,
            f"{stamp.isoformat()} is {ahead:.0f}s ahead of the wall clock (max {max_future_skew_seconds:.0f}s)",
        )
    return event


def _has_nan_or_infinity(value: bytes) -> bool:
    """Whether the message is JSON only if ``NaN``/``Infinity`` are let in: pydantic's parser accepts
    them, so without this an event with ``"x": NaN`` in an ignored field would pass. Strings that
    merely contain the words cost one strict parse; other messages, a byte search (two searches for
    one letter first, which ``find`` runs as memchr: half the time of searching for the words)."""
    if value.find(b"N") < 0 and value.find(b"I") < 0:
        return False
    if b"NaN" not in value and b"Infinity" not in value:
        return False
    try:
        from_json(value, allow_inf_nan=False)
    except ValueError:
        try:
            from_json(value, allow_inf_nan=True)
        except ValueError:
            return False  # broken for another reason too: the validator names that one
        return True
    return False


def _rejection_from(exc: ValidationError, value: bytes) -> Rejection:
    errors = exc.errors(include_url=False)
    reason = _reason_of(errors[0], value)
    shown = "; ".join(_describe(error) for error in errors[:_SHOWN_ERRORS])
    more = f" (+{len(errors) - _SHOWN_ERRORS} more)" if len(errors) > _SHOWN_ERRORS else ""
    return Rejection(reason, shown + more)


def _reason_of(error: ErrorDetails, value: bytes) -> Reason:
    kind = error["type"]
    if kind == "json_invalid":
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return Reason.INVALID_ENCODING
        return Reason.INVALID_JSON
    if kind in {"model_type", "model_attributes_type"} and not error["loc"]:
        return Reason.NOT_AN_OBJECT
    if kind == "missing" or (kind.endswith("_type") and error.get("input", ...) is None):
        return Reason.MISSING_FIELD
    if kind in _TIMESTAMP_ERRORS:
        return Reason.BAD_TIMESTAMP
    if kind in _RANGE_ERRORS:
        return Reason.OUT_OF_RANGE
    if kind == "wrong_type" or kind.endswith("_type"):
        return Reason.WRONG_TYPE
    if kind in _VALUE_ERRORS:
        return Reason.INVALID_VALUE
    return Reason.INVALID_VALUE


def _describe(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "message"
    return f"{where}: {error['msg']}"
