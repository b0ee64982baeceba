"""Output events (SPEC §4): the one place each record LeadPulse publishes is defined."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class DeadLetterReason(StrEnum):
    """Why an input message was rejected; each value is a ``reason`` label value."""

    TOO_LARGE = "too_large"  # over 64 KiB
    INVALID_ENCODING = "invalid_encoding"  # not UTF-8
    INVALID_JSON = "invalid_json"  # not parseable JSON
    NOT_AN_OBJECT = "not_an_object"  # JSON, but not an object
    MISSING_FIELD = "missing_field"  # a required field is absent or null
    WRONG_TYPE = "wrong_type"  # a field has another JSON type ("10" for a number)
    BAD_TIMESTAMP = "bad_timestamp"  # not RFC 3339, no offset, or not a real date
    INVALID_VALUE = "invalid_value"  # not one of an enum, a currency code, a timezone...
    OUT_OF_RANGE = "out_of_range"  # too long, too short, negative, too many seconds
    FUTURE_EVENT = "future_event"  # occurred_at more than max_future_skew ahead of the wall clock
    KEY_MISMATCH = "key_mismatch"  # message key is not the event's deal_id / rep_id


class DeadLetterRecord(BaseModel):
    """``leadpulse.dead-letter``: a rejected input message with everything needed to replay it."""

    model_config = ConfigDict(frozen=True)

    reason: DeadLetterReason
    detail: str = Field(description="Human-readable explanation, naming the offending field.")
    topic: str
    partition: int
    offset: int
    key_base64: str | None = Field(description="The original message key, base64; null when absent.")
    value_base64: str = Field(description="The original message bytes, base64.")
    message_timestamp_ms: int | None = Field(description="The Kafka timestamp of the original message.")
    rejected_at: AwareDatetime
