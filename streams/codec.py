"""Bytes of the records LeadPulse keeps in its tables (and so in their changelogs).

Tables hold these bytes, not Python objects: memory per deal is the size of its record, and
the changelog message is exactly what the table holds. Records are compact JSON arrays with a
leading format version; bump it (and the table's ``_vN`` name) when the layout changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from schemas.events import RepProfile
from streams.fold.deals import DealState
from streams.fold.facts import ActivityFact, StageFact

DEAL_RECORD_VERSION = 1


def encode_deal(partition: int, state: DealState) -> bytes:
    return orjson.dumps(
        [
            DEAL_RECORD_VERSION,
            partition,
            state.deal_id,
            state.offsets,
            state.duplicates,
            [
                [
                    f.at,
                    f.event_id,
                    f.stage,
                    f.rep,
                    f.team,
                    f.amount_micro,
                    f.currency,
                    f.source,
                    f.deal_type,
                    f.expected_close,
                ]
                for f in state.stages
            ],
            [
                [f.at, f.event_id, f.kind, f.rep, f.team, f.action, f.outcome, f.handle_micro, f.personalized]
                for f in state.activities
            ],
        ]
    )


def decode_deal(data: bytes) -> tuple[int, DealState]:
    """``(partition, state)`` of a deal record."""
    version, partition, deal_id, offsets, duplicates, stages, activities = orjson.loads(data)
    if version != DEAL_RECORD_VERSION:
        raise ValueError(f"deal record version {version} is not {DEAL_RECORD_VERSION}")
    return partition, DealState(
        deal_id=deal_id,
        stages=tuple(StageFact(*fields) for fields in stages),
        activities=tuple(ActivityFact(*fields) for fields in activities),
        offsets=tuple((topic, partition, offset) for topic, partition, offset in offsets),
        duplicates=tuple(duplicates),
    )


def deal_partition(data: bytes) -> int:
    """The partition of a deal record, without decoding the rest of it."""
    start = data.index(b",") + 1
    return int(data[start : data.index(b",", start)])


@dataclass
class IntakeTally:
    """What one input topic-partition delivered: messages seen and rejected by reason.

    ``offset`` is the highest offset counted, so a redelivered message is not counted twice.
    """

    offset: int = -1
    messages: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def count(self, offset: int, reason: str | None) -> bool:
        """Count one message; False (and nothing counted) when it was counted before."""
        if offset <= self.offset:
            return False
        self.offset = offset
        self.messages += 1
        if reason is not None:
            reason = str(reason)  # a DeadLetterReason (StrEnum) becomes its plain code
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
        return True

    def encode(self) -> bytes:
        return orjson.dumps([self.offset, self.messages, self.rejected])

    @classmethod
    def decode(cls, data: bytes | None) -> IntakeTally:
        if data is None:
            return cls()
        offset, messages, rejected = orjson.loads(data)
        return cls(offset, messages, rejected)


def encode_profile(profile: RepProfile) -> bytes:
    return orjson.dumps(profile.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def decode_profile(data: bytes) -> RepProfile:
    return RepProfile.model_validate_json(data)
