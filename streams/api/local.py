"""What one worker answers from the partitions it owns: the parts the API gathers.

Every answer names the deal partitions it covers, so the worker that gathers can tell a whole
answer (every partition exactly once) from one taken while a rebalance moves partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.api.deals import deal_body
from streams.config import DEFAULT_STAGE_PROBABILITIES
from streams.fold.contributions import FoldContext
from streams.fold.outputs import instant
from streams.fold.periods import Period
from streams.fold.profiles import profile_at, team_at
from streams.metrics.figures import FigureReader
from streams.metrics.labels import SourceLabels
from streams.metrics.report import SubjectKind, build_report
from streams.state.codec import deal_partition, decode_deal
from streams.state.profiles import RepDirectory
from streams.state.rollups import Rollups


class NotReady(Exception):
    """This worker's tables are recovering or a rebalance is under way (an HTTP 503)."""


@dataclass
class LocalView:
    rollups: Rollups
    directory: RepDirectory
    deals: Mapping[bytes, bytes]
    ctx: FoldContext
    source_labels: SourceLabels
    topic_names: Mapping[str, str]
    owned: Callable[[], frozenset[int] | None]  # deal partitions owned and rebuilt; None: not ready
    clock: Callable[[], float]
    before_read: Callable[[], object] = lambda: None
    stage_probabilities: Mapping[str, float] = field(default_factory=lambda: DEFAULT_STAGE_PROBABILITIES)

    def partitions_or_raise(self) -> frozenset[int]:
        owned = self.owned()
        if owned is None:
            raise NotReady("this worker is recovering its tables or rebalancing")
        self.before_read()
        return owned

    def deal(self, deal_id: str) -> dict[str, Any]:
        """``{"partitions", "deal"}``: the deal's state, or None when no owned partition has it."""
        owned = self.partitions_or_raise()
        record = self.deals.get(deal_id.encode())
        body = None
        if record is not None and deal_partition(record) in owned:
            found = deal_body(decode_deal(record)[1], self.ctx, self.clock())
            body = None if found is None else found.model_dump(mode="json")
        return {"partitions": sorted(owned), "deal": body}

    def report(self, subject: SubjectKind, name: str, period: Period) -> dict[str, Any]:
        """``{"partitions", "known", "report"}``: the subject's figures over the owned partitions."""
        owned = self.partitions_or_raise()
        reader = FigureReader(
            self.rollups,
            self.directory,
            owned,
            self.clock(),
            self.source_labels,
            self.topic_names,
            stage_probabilities=self.stage_probabilities,
        )
        report = build_report(reader, subject, name, period)
        return {"partitions": sorted(owned), "known": self.known(subject, name), "report": report.to_json()}

    def awaiting(self, team: str, limit: int) -> dict[str, Any]:
        """``{"partitions", "known", "now", "total", "breached", "leads"}``: the team's waiting
        leads (team now), the oldest ``limit`` of them, oldest first."""
        owned = self.partitions_or_raise()
        now = self.clock()
        leads = []
        breached = 0
        for deal_id, lead in self.rollups.awaiting(owned):
            if team_at(self.directory, lead.rep, lead.team, now) != team:
                continue
            breached += now > lead.breach_at
            leads.append((lead.created_at, deal_id, lead))
        leads.sort(key=lambda item: (item[0], item[1]))
        return {
            "partitions": sorted(owned),
            "known": self.known("team", team),
            "now": now,
            "total": len(leads),
            "breached": breached,
            "leads": [
                {
                    "deal_id": deal_id,
                    "rep": lead.rep,
                    "source": lead.source,
                    "created_at": created,
                    "breach_at": lead.breach_at,
                }
                for created, deal_id, lead in leads[:limit]
            ],
        }

    def known(self, subject: SubjectKind, name: str) -> bool:
        """Whether a profile names the rep, or the team (in any profile a rep ever had)."""
        if subject == "rep":
            return bool(self.directory.history(name))
        return any(profile.team == name for rep in self.directory.reps() for profile in self.directory.history(rep))

    def teams(self) -> list[str]:
        """The teams of the profiles in force now."""
        now = self.clock()
        return sorted(_teams_now(self.directory, self.directory.reps(), now))


def _teams_now(directory: RepDirectory, reps: Iterable[str], now: float) -> set[str]:
    teams = set()
    for rep in reps:
        profile = profile_at(directory, rep, now)
        if profile is not None:
            teams.add(profile.team)
    return teams


def awaiting_lead_body(lead: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A gathered lead as the API shows it, its wait measured at ``now``."""
    return {
        "deal_id": lead["deal_id"],
        "rep": lead["rep"],
        "source": lead["source"],
        "created_at": instant(lead["created_at"]),
        "waiting_seconds": round(max(0.0, now - lead["created_at"]), 3),
        "sla_breached": now > lead["breach_at"],
    }
