"""Dead-letter records (SPEC §1): the original bytes and where they came from, with a reason."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.outputs import DeadLetterRecord
from streams.decode import Rejection


@dataclass(frozen=True, slots=True)
class InputMessage:
    """One consumed Kafka message, as the processors see it (no Faust types)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


def dead_letter(message: InputMessage, rejection: Rejection, now: float) -> DeadLetterRecord:
    return DeadLetterRecord(
        reason=rejection.reason,
        detail=rejection.detail,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key_base64=None if message.key is None else base64.b64encode(message.key).decode(),
        value_base64=base64.b64encode(message.value or b"").decode(),
        message_timestamp_ms=message.timestamp_ms,
        rejected_at=datetime.fromtimestamp(now, UTC),
    )
