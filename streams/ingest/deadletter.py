"""Dead-letter records (SPEC §1): the original bytes and where they came from, with a reason."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.outputs import DeadLetterRecord
from streams.ingest.decode import Rejection


@dataclass(init=False, unsafe_hash=True)  # immutable by convention (streams/fold/facts.py says why)
class InputMessage:
    """One consumed Kafka message, as the processors see it (no Faust types)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp_ms = timestamp_ms


# What a dead letter carries of the original: base64 makes it a third larger, and the record must fit
# a producer request (1 MiB by default) whatever the input topic accepted (a 1 MiB message, once,
# crashed Faust's producer: MessageSizeTooLargeError).
KEY_KEPT_BYTES = 64 * 1024
VALUE_KEPT_BYTES = 256 * 1024


def dead_letter(message: InputMessage, rejection: Rejection, now: float) -> DeadLetterRecord:
    key, value = message.key, message.value or b""
    return DeadLetterRecord(
        reason=rejection.reason,
        detail=rejection.detail,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key_base64=None if key is None else base64.b64encode(key[:KEY_KEPT_BYTES]).decode(),
        value_base64=base64.b64encode(value[:VALUE_KEPT_BYTES]).decode(),
        key_bytes=len(key or b""),
        value_bytes=len(value),
        truncated=len(key or b"") > KEY_KEPT_BYTES or len(value) > VALUE_KEPT_BYTES,
        message_timestamp_ms=message.timestamp_ms,
        rejected_at=datetime.fromtimestamp(now, UTC),
    )
