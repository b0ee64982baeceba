"""Processor and collector with dicts standing in for the tables, read through a fresh registry."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from streams.build import current as core_build
from streams.config import load_settings
from streams.exporter.collector import LeadPulseCollector, Ownership
from streams.fold.contributions import FoldContext
from streams.fold.periods import Calendar
from streams.ingest.deadletter import InputMessage
from streams.ingest.processor import BatchProcessor
from streams.state.keystore import DictKeyStore
from streams.state.profile_sync import ProfileSync
from streams.state.profiles import RepDirectory
from streams.state.rollups import Rollups

NOW = datetime(2024, 3, 5, 12, 30, tzinfo=UTC).timestamp()  # mid-hour: every period is current


class Harness:
    def __init__(self, calendar: Calendar | None = None, now: float = NOW) -> None:
        self.settings = load_settings()
        self.now = now
        self.deals, self.intake = DictKeyStore(), DictKeyStore()
        self.profiles, self.rep_intake = DictKeyStore(), DictKeyStore()
        self.directory = RepDirectory(self.profiles)
        self.rollups = Rollups(FoldContext(calendar or Calendar("UTC"), self.directory, self.settings.sla_policy()))
        self.profile_sync = ProfileSync(self.directory, self.rollups, self.deals)
        self.dead_letters: list = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.owned = Ownership(ready=True, deal_partitions=frozenset({0, 1}), rep_partitions=frozenset({0}))

        async def publish(record: object, key: bytes | None) -> None:
            self.dead_letters.append(record)

        self.processor = BatchProcessor(
            self.settings,
            deals=self.deals,
            intake=self.intake,
            rep_profiles=self.profiles,
            rep_intake=self.rep_intake,
            rollups=self.rollups,
            publish_dead_letter=publish,
            clock=lambda: self.now,
            before_deal_batch=self.profile_sync,
        )
        self.collector = LeadPulseCollector(
            self.settings,
            rollups=self.rollups,
            directory=self.directory,
            intake=self.intake,
            rep_intake=self.rep_intake,
            ownership=lambda: self.owned,
            version="test",
            clock=lambda: self.now,
        )
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)

    def message(
        self,
        topic: str,
        partition: int,
        key: str,
        value: dict | bytes,
        offset: int | None = None,
        timestamp_ms: int | None = None,
    ) -> InputMessage:
        if offset is None:
            offset = self.offsets.get((topic, partition), -1) + 1
        self.offsets[(topic, partition)] = max(offset, self.offsets.get((topic, partition), -1))
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return InputMessage(topic, partition, offset, key.encode(), raw, timestamp_ms)

    def deals_in(self, *messages: InputMessage) -> None:
        asyncio.run(self.processor.process_deal_messages(messages))

    def reps_in(self, *messages: InputMessage) -> None:
        asyncio.run(self.processor.process_rep_messages(messages))

    def value(self, name: str, **labels: str) -> float | None:
        self.profile_sync()  # as the worker's output timer does, every half second
        return self.registry.get_sample_value(name, labels)


def stage(deal: str, rep: str, at: float, stage_name: str, event_id: str, **extra: object) -> dict:
    iso = datetime.fromtimestamp(at, UTC).isoformat()
    return {"event_id": event_id, "occurred_at": iso, "deal_id": deal, "rep_id": rep, "stage": stage_name, **extra}


def call(deal: str, rep: str, at: float, event_id: str) -> dict:
    iso = datetime.fromtimestamp(at, UTC).isoformat()
    return {
        "event_id": event_id,
        "occurred_at": iso,
        "deal_id": deal,
        "rep_id": rep,
        "call_id": event_id,
        "direction": "outbound",
        "outcome": "connected",
        "talk_seconds": 60,
    }


@pytest.fixture
def harness() -> Harness:
    return Harness()


def test_only_actively_owned_partitions_are_exported(harness: Harness) -> None:
    harness.deals_in(
        harness.message("crm.deal-stages", 0, "a", stage("a", "ann", NOW - 600, "new", "s1", source="referral")),
        harness.message("crm.deal-stages", 1, "b", stage("b", "ann", NOW - 500, "new", "s2", source="referral")),
    )
    labels = {"rep": "ann", "team": "unassigned", "source": "referral"}
    assert harness.value("leadpulse_deals_created_total", **labels) == 2
    harness.owned = Ownership(ready=True, deal_partitions=frozenset({1}), rep_partitions=frozenset())
    assert harness.value("leadpulse_deals_created_total", **labels) == 1
    assert harness.value("leadpulse_leads_awaiting_response", rep="ann", team="unassigned") == 1
    assert harness.value("leadpulse_lead_oldest_awaiting_seconds", rep="ann", team="unassigned") == 500
    harness.owned = Ownership(ready=False)
    assert harness.value("leadpulse_deals_created_total", **labels) is None
    assert harness.value("leadpulse_build_info", version="test", build=core_build().label) == 1


def test_first_response_histogram_and_sla(harness: Harness) -> None:
    harness.deals_in(
        harness.message("crm.deal-stages", 0, "a", stage("a", "ann", NOW - 900, "new", "s1", source="inbound_demo")),
        harness.message("crm.calls", 0, "a", call("a", "ann", NOW - 900 + 240, "c1")),
        harness.message("crm.deal-stages", 0, "b", stage("b", "ann", NOW - 400, "new", "s2", source="inbound_demo")),
    )
    series = {"rep": "ann", "team": "unassigned", "period": "day"}
    buckets = {
        le: harness.value("leadpulse_first_response_seconds_bucket", le=le, **series)
        for le in ("60", "300", "900", "+Inf")
    }
    assert buckets == {"60": 0, "300": 1, "900": 1, "+Inf": 1}
    assert harness.value("leadpulse_first_response_seconds_count", **series) == 1
    assert harness.value("leadpulse_first_response_seconds_sum", **series) == 240
    assert harness.value("leadpulse_leads_sla_breached", rep="ann", team="unassigned") == 1  # 400 s > 300 s


def test_a_profile_arriving_later_moves_series_to_the_rep_team(harness: Harness) -> None:
    harness.deals_in(harness.message("crm.calls", 0, "a", call("a", "ann", NOW - 60, "c1")))
    calls = {"rep": "ann", "direction": "outbound", "outcome": "connected"}
    assert harness.value("leadpulse_calls_total", team="unassigned", **calls) == 1
    profile = {"rep_id": "ann", "team": "emea", "role": "sdr", "updated_at": "2024-03-01T00:00:00Z"}
    older = {**profile, "team": "apac", "updated_at": "2024-02-01T00:00:00Z"}
    harness.reps_in(harness.message("crm.reps", 0, "ann", profile), harness.message("crm.reps", 0, "ann", older))
    assert harness.value("leadpulse_calls_total", team="emea", **calls) == 1
    assert harness.value("leadpulse_calls_total", team="unassigned", **calls) is None


def test_redelivered_batches_change_nothing(harness: Harness) -> None:
    batch = [
        harness.message("crm.deal-stages", 0, "a", stage("a", "ann", NOW - 600, "new", "s1")),
        harness.message("crm.calls", 0, "a", call("a", "ann", NOW - 500, "c1")),
        harness.message("crm.calls", 0, "a", call("a", "ann", NOW - 500, "c1")),  # a repeat
        harness.message("crm.calls", 0, "a", b"{not json"),
    ]
    harness.deals_in(*batch)
    harness.deals_in(*batch)  # redelivered after a crash before the commit
    calls = {"rep": "ann", "team": "unassigned", "direction": "outbound", "outcome": "connected"}
    assert harness.value("leadpulse_calls_total", **calls) == 1
    assert harness.value("leadpulse_events_duplicate_total", topic="crm.calls") == 1
    assert harness.value("leadpulse_events_rejected_total", topic="crm.calls", reason="invalid_json") == 1
    assert harness.value("leadpulse_events_processed_total", topic="crm.calls") == 3
    assert [letter.reason for letter in harness.dead_letters] == ["invalid_json"]
    assert harness.dead_letters[0].offset == 2


def test_pipeline_and_closed_deals(harness: Harness) -> None:
    harness.deals_in(
        harness.message("crm.deal-stages", 0, "a", stage("a", "ann", NOW - 900, "new", "s1", amount="100.25")),
        harness.message(
            "crm.deal-stages", 0, "b", stage("b", "bob", NOW - 900, "proposal", "s2", amount=50, currency="EUR")
        ),
        harness.message("crm.deal-stages", 0, "b", stage("b", "bob", NOW - 100, "won", "s3")),
        harness.message("crm.deal-stages", 0, "c", stage("c", "bob", NOW - 100, "lost", "s4", team="special")),
        harness.message("crm.deal-stages", 0, "d", stage("d", "ann", NOW - 900, "discovery", "s5")),
    )
    assert harness.value("leadpulse_pipeline_deals", rep="ann", team="unassigned", stage="new") == 1
    assert harness.value("leadpulse_pipeline_amount", rep="ann", team="unassigned", stage="new", currency="USD") == (
        100.25
    )
    assert harness.value("leadpulse_pipeline_deals", rep="ann", team="unassigned", stage="other") == 1
    for period in ("hour", "day", "week", "month"):
        assert harness.value("leadpulse_deals_won", rep="bob", team="unassigned", period=period) == 1
        assert harness.value("leadpulse_won_amount", rep="bob", team="unassigned", period=period, currency="EUR") == 50
        assert harness.value("leadpulse_deals_lost", rep="bob", team="special", period=period) == 1


def test_a_tombstone_after_a_profile_in_the_same_batch_removes_it(harness: Harness) -> None:
    profile = {"rep_id": "ann", "team": "emea", "role": "sdr", "updated_at": "2024-03-01T00:00:00Z"}
    tombstone = InputMessage("crm.reps", 0, 1, b"ann", None)
    harness.reps_in(harness.message("crm.reps", 0, "ann", profile, offset=0), tombstone)
    assert b"ann" not in harness.profiles


def test_future_events_are_judged_against_the_message_timestamp(harness: Harness) -> None:
    """A redelivery long after the first attempt is judged as the first attempt was."""
    ahead = call("a", "ann", NOW + 400, "c1")  # 400 s after the message was produced (skew limit 300 s)
    produced_ms = int(NOW * 1000)
    harness.deals_in(harness.message("crm.calls", 0, "a", ahead, offset=0, timestamp_ms=produced_ms))
    assert harness.value("leadpulse_events_rejected_total", topic="crm.calls", reason="future_event") == 1
    harness.processor.clock = lambda: NOW + 3600  # an hour later, a fresh worker sees it again
    harness.intake.clear()
    harness.deals_in(harness.message("crm.calls", 0, "a", ahead, offset=0, timestamp_ms=produced_ms))
    assert (
        harness.value("leadpulse_calls_total", rep="ann", team="unassigned", direction="outbound", outcome="connected")
        is None
    )


def test_reps_beyond_the_label_budget_are_summed_into_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """A producer inventing reps costs a bounded number of series: the first two reps seen keep
    their label for good, the rest are summed into ``other`` and counted as folded."""
    monkeypatch.setenv("LEADPULSE_MAX_REP_LABELS", "2")
    monkeypatch.setenv("LEADPULSE_MAX_CURRENCY_LABELS", "1")
    harness = Harness()
    reps = ["ann", "bob", "cat", "dan", "eve"]
    harness.deals_in(
        *(
            harness.message("crm.deal-stages", 0, f"d-{rep}", stage(f"d-{rep}", rep, NOW - 600, "new", f"s-{rep}"))
            for rep in reps
        )
    )

    def created_by_rep() -> dict[str, float]:
        harness.profile_sync()
        return {
            sample.labels["rep"]: sample.value
            for family in harness.registry.collect()
            if family.name == "leadpulse_deals_created"
            for sample in family.samples
        }

    first = created_by_rep()
    assert len(first) == 3 and first["other"] == 3 and sum(first.values()) == len(reps)
    kept = set(first) - {"other"}
    awaiting = {rep: harness.value("leadpulse_leads_awaiting_response", rep=rep, team="unassigned") for rep in first}
    assert awaiting == {rep: (3 if rep == "other" else 1) for rep in first}
    assert harness.value("leadpulse_label_values_folded", label="rep") == 3
    assert harness.value("leadpulse_label_values_folded", label="team") == 0
    assert harness.value("leadpulse_label_values_folded", label="currency") == 0
    # A sixth rep and a second deal of a kept rep: the kept reps stay, the newcomer is folded too.
    later = next(iter(sorted(kept)))
    harness.deals_in(
        harness.message("crm.deal-stages", 1, "d-fay", stage("d-fay", "fay", NOW - 60, "new", "s-fay")),
        harness.message("crm.deal-stages", 1, "d-2", stage("d-2", later, NOW - 60, "new", "s-2")),
    )
    second = created_by_rep()
    assert set(second) == set(first) and second["other"] == 4 and second[later] == 2
    assert harness.value("leadpulse_label_values_folded", label="rep") == 4
    # Currencies are open too (any three upper-case letters): one kept here, the other folded.
    euros = stage("d-eur", later, NOW - 60, "new", "s-e", currency="EUR", amount=100)
    harness.deals_in(harness.message("crm.deal-stages", 1, "d-eur", euros))
    amounts: dict[str, float] = {}
    for family in harness.registry.collect():
        if family.name == "leadpulse_pipeline_amount":
            for sample in family.samples:
                amounts[sample.labels["currency"]] = amounts.get(sample.labels["currency"], 0) + sample.value
    assert len(amounts) == 2 and "other" in amounts and sum(amounts.values()) == 100
    assert harness.value("leadpulse_label_values_folded", label="currency") == 1


def test_sources_stages_and_lost_reasons_beyond_the_closed_sets_are_exported_as_other_and_counted(
    harness: Harness,
) -> None:
    """Closed labels need no budget (unknown values become ``other``), but what they fold is counted."""
    unknown_sources = ["tradeshow-2026", "cold-list-7", "webinar-x"]
    messages = [
        harness.message(
            "crm.deal-stages", 0, f"d-src-{n}", stage(f"d-src-{n}", "ann", NOW - 600, "new", f"s-{n}", source=source)
        )
        for n, source in enumerate(["inbound_demo", *unknown_sources])
    ]
    messages += [
        harness.message("crm.deal-stages", 0, f"d-stg-{n}", stage(f"d-stg-{n}", "ann", NOW - 600, name, f"t-{n}"))
        for n, name in enumerate(["qualified", "discovery", "security-review"])
    ]
    reasons = [f"reason-{n:02d}" for n in range(22)]  # one lost deal each: the top 20 by name are kept
    messages += [
        harness.message(
            "crm.deal-stages",
            0,
            f"d-lost-{n}",
            stage(f"d-lost-{n}", "ann", NOW - 60, "lost", f"l-{n}", lost_reason=reason),
        )
        for n, reason in enumerate(reasons)
    ]
    harness.deals_in(*messages)
    created_by_source = {
        sample.labels["source"]: sample.value
        for family in harness.registry.collect()
        if family.name == "leadpulse_leads_created"
        for sample in family.samples
        if sample.labels.get("period") == "day"
    }
    assert created_by_source["other"] == len(unknown_sources) and created_by_source["inbound_demo"] == 1
    pipeline_stages = {
        sample.labels["stage"]
        for family in harness.registry.collect()
        if family.name == "leadpulse_pipeline_deals"
        for sample in family.samples
    }
    assert pipeline_stages == {"new", "qualified", "other"}
    assert harness.value("leadpulse_label_values_folded", label="source") == len(unknown_sources)
    assert harness.value("leadpulse_label_values_folded", label="stage") == 2
    assert harness.value("leadpulse_label_values_folded", label="lost_reason") == 2
    assert harness.value("leadpulse_deals_lost_by_reason", team="unassigned", reason="other", period="day") == 2


def test_deal_watermarks_name_the_input_topics(harness: Harness) -> None:
    """What a start over checks a recovered deal table against: each input partition's highest offset."""
    harness.deals_in(
        harness.message("crm.deal-stages", 2, "d-1", stage("d-1", "ann", NOW - 600, "new", "s-1"), offset=7),
        harness.message("crm.calls", 2, "d-1", call("d-1", "ann", NOW - 300, "c-1"), offset=41),
        harness.message("crm.calls", 2, "d-1", call("d-1", "ann", NOW - 200, "c-2"), offset=40),
    )
    records = list(harness.deals.values())
    assert harness.processor.deal_watermarks(records) == {("crm.deal-stages", 2): 7, ("crm.calls", 2): 41}
