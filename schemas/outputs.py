"""Output events (SPEC §4): the one place each record LeadPulse publishes is defined."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

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
    key_base64: str | None = Field(description="The original message key, base64 (its first 64 KiB); null when absent.")
    value_base64: str = Field(description="The original message bytes, base64 (their first 256 KiB).")
    key_bytes: int = Field(default=0, ge=0, description="The original key's length in bytes.")
    value_bytes: int = Field(default=0, ge=0, description="The original value's length in bytes.")
    truncated: bool = Field(
        default=False,
        description="The key or value was longer than carried here: the whole message is in its input topic"
        " at topic/partition/offset (for as long as that topic keeps it).",
    )
    message_timestamp_ms: int | None = Field(description="The Kafka timestamp of the original message.")
    rejected_at: AwareDatetime


class LeadResponseRecord(BaseModel):
    """``leadpulse.lead-responses`` (key: the deal id): a deal's first response, once known.

    A late event that changes any field gives a corrected record with a higher ``revision``;
    consumers keep the highest revision per deal.
    """

    model_config = ConfigDict(frozen=True)

    deal_id: str
    revision: int = Field(ge=1, description="1 for the first record of a deal; corrections count up.")
    rep: str = Field(description="The deal's owner at the first touch.")
    team: str = Field(description="The deal's team at the first touch (SPEC §2).")
    source: str | None = Field(description="The lead source as the CRM sent it; null when none was given.")
    created_at: AwareDatetime
    first_touch_at: AwareDatetime
    first_touch_kind: Literal["call", "email"]
    first_touch_event_id: str
    response_seconds: float = Field(ge=0)
    business_seconds: float = Field(ge=0, description="The part inside the owner's working hours.")
    sla_seconds: float = Field(gt=0, description="The source's SLA (its first escalation step).")
    sla_breached: bool = Field(description="Whether the response took longer than the SLA.")


class AlertKind(StrEnum):
    SLA_BREACH = "sla_breach"  # an awaiting lead crossed an escalation step
    SLA_RESOLVED = "sla_resolved"  # a breached lead was touched or closed
    DEAL_SLIPPED = "deal_slipped"  # an open deal's expected close date has passed


class AlertRecord(BaseModel):
    """``leadpulse.alerts`` (key: the deal id).

    ``alert_id`` is deterministic (kind, step, deal): a repeat after a crash carries the same id,
    so a consumer drops ids it has seen.
    """

    model_config = ConfigDict(frozen=True)

    alert_id: str = Field(
        description="'<kind>:<step>@<deal_id>': the step number (sla_resolved: the highest step breached), "
        "or the expected close date (deal_slipped)."
    )
    kind: AlertKind
    deal_id: str
    rep: str = Field(description="The deal's owner at `at`.")
    team: str = Field(description="The deal's team at `at`.")
    source: str | None
    at: AwareDatetime = Field(
        description="sla_breach: when the step was crossed; sla_resolved: the touch or the close; "
        "deal_slipped: the start of the day after the expected close date (reporting timezone)."
    )
    created_at: AwareDatetime | None = None
    step: int | None = Field(default=None, description="sla_breach: 1-based step; sla_resolved: highest step sent.")
    steps: int | None = Field(default=None, description="How many escalation steps the source has.")
    threshold_seconds: float | None = Field(default=None, description="sla_breach: the step's wait.")
    business_hours: bool = Field(default=False, description="Whether waits count the owner's working hours only.")
    resolution: Literal["touched", "closed"] | None = None
    expected_close_date: date | None = None
    amount: str | None = Field(default=None, description="deal_slipped: the open amount, a decimal string.")
    currency: str | None = None
