"""An independent reference model of SPEC §2-§3: every catalog metric the dataset exercises.

Written plainly from the spec over the raw event dicts, sharing no code with ``streams``, so
the broker tests compare the engine against an expectation it did not compute itself. Where
the engine uses window arithmetic (business hours), this model walks the interval minute by
minute and asks whether each piece lies in working hours. The reporting timezone and the fiscal
year's first month are parameters (one broker test runs New York with a fiscal year from April).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

FIRST_RESPONSE_BOUNDS = [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800]
CYCLE_BOUNDS = [days * 86400 for days in (1, 3, 7, 14, 30, 60, 90, 180, 365)]
DWELL_BOUNDS = [3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400, 90 * 86400]
WELL_KNOWN_STAGES = {"new", "contacted", "qualified", "meeting", "proposal", "negotiation", "won", "lost"}
# SPEC §3's default probabilities of the weighted pipeline, written out from the spec.
STAGE_PROBABILITIES = {
    "new": 0.05,
    "contacted": 0.10,
    "qualified": 0.20,
    "meeting": 0.30,
    "proposal": 0.50,
    "negotiation": 0.75,
    "other": 0.10,
}
KNOWN_SOURCES = {"inbound_demo", "inbound_content", "outbound", "referral", "event", "partner"}
TOPIC_NAMES = {
    "deal_stages": "crm.deal-stages",
    "calls": "crm.calls",
    "emails": "crm.emails",
    "meetings": "crm.meetings",
}
WEEKDAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
UTC_ZONE = ZoneInfo("UTC")
DEFAULT_HOURS = {day: ["09:00", "17:00"] for day in WEEKDAY_NAMES[:5]}


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def period_start(kind: str, at: float, zone: ZoneInfo = UTC_ZONE) -> str:
    """The name of the hour, day, week or month holding ``at``, in the reporting timezone."""
    moment = datetime.fromtimestamp(at, zone)
    if kind == "hour":
        return moment.strftime("%Y-%m-%dT%H") + moment.strftime("%z")  # the offset tells a repeated hour apart
    if kind == "day":
        return moment.date().isoformat()
    if kind == "week":
        return (moment.date() - timedelta(days=moment.weekday())).isoformat()
    return moment.strftime("%Y-%m")


def fiscal_start_of_date(kind: str, day: date, first_month: int) -> str:
    """The first day of the fiscal quarter or year holding ``day``, the fiscal year starting on the
    1st of ``first_month``: counted in months since that month."""
    months_in = (day.month - first_month) % 12
    back = months_in % 3 if kind == "quarter" else months_in
    month_index = day.year * 12 + day.month - 1 - back
    return f"{month_index // 12:04d}-{month_index % 12 + 1:02d}-01"


def fiscal_start(kind: str, at: float, zone: ZoneInfo = UTC_ZONE, first_month: int = 1) -> str:
    return fiscal_start_of_date(kind, datetime.fromtimestamp(at, zone).date(), first_month)


def previous_period_start(kind: str, now: float, zone: ZoneInfo = UTC_ZONE) -> str:
    moment = datetime.fromtimestamp(now, zone)
    if kind == "hour":
        return period_start("hour", now - 3600, zone)
    if kind == "day":
        return (moment.date() - timedelta(days=1)).isoformat()
    if kind == "week":
        return (moment.date() - timedelta(days=moment.weekday() + 7)).isoformat()
    first = moment.date().replace(day=1) - timedelta(days=1)
    return first.strftime("%Y-%m")


def in_working_hours(profile: dict, at: float) -> bool:
    local = datetime.fromtimestamp(at, ZoneInfo(profile.get("timezone") or "UTC"))
    hours = profile.get("working_hours")
    hours = DEFAULT_HOURS if hours is None else hours
    window = hours.get(WEEKDAY_NAMES[local.weekday()])
    if window is None:
        return False
    clock = local.hour * 60 + local.minute + local.second / 60
    start = int(window[0][:2]) * 60 + int(window[0][3:])
    end = int(window[1][:2]) * 60 + int(window[1][3:])
    return start <= clock < end


def business_seconds(profile: dict | None, start: float, end: float) -> float:
    """Cut [start, end] at every whole UTC minute (working hours begin and end on whole local
    minutes, and every UTC offset is whole minutes), and count the pieces in working hours."""
    if profile is None:
        return end - start
    total = 0.0
    cut = start
    while cut < end:
        nxt = min(end, (math.floor(cut / 60) + 1) * 60)
        if in_working_hours(profile, (cut + nxt) / 2):
            total += nxt - cut
        cut = nxt
    return total


class Model:
    def __init__(
        self,
        profiles: dict[str, list[dict]],
        now: float,
        sla_default: float,
        sla_by_source: dict,
        zone: ZoneInfo = UTC_ZONE,
        fiscal_first_month: int = 1,
    ) -> None:
        self.profiles = {rep: sorted(history, key=lambda p: ts(p["updated_at"])) for rep, history in profiles.items()}
        self.now = now
        self.sla_default = sla_default
        self.sla_by_source = sla_by_source
        self.zone = zone
        self.fiscal_first_month = fiscal_first_month
        self.out: dict[tuple[str, frozenset], float] = defaultdict(float)
        self.current = {kind: period_start(kind, now, zone) for kind in ("hour", "day", "week", "month")}
        self.fiscal = {kind: fiscal_start(kind, now, zone, fiscal_first_month) for kind in ("quarter", "year")}
        self.today = datetime.fromtimestamp(now, zone).date()

    def fiscal_kinds(self, at: float) -> list[str]:
        """The current fiscal quarter and year, where they hold ``at``."""
        first = self.fiscal_first_month
        return [k for k, start in self.fiscal.items() if fiscal_start(k, at, self.zone, first) == start]

    def fiscal_kinds_of_date(self, day: date) -> list[str]:
        first = self.fiscal_first_month
        return [k for k, start in self.fiscal.items() if fiscal_start_of_date(k, day, first) == start]

    def put(self, name: str, value: float, **labels: str) -> None:
        self.out[(name, frozenset(labels.items()))] += value

    def profile(self, rep: str, at: float) -> dict | None:
        history = self.profiles.get(rep)
        if not history:
            return None
        in_force = [p for p in history if ts(p["updated_at"]) <= at]
        return in_force[-1] if in_force else history[0]

    def team(self, rep: str, explicit: str | None, at: float) -> str:
        if explicit:
            return explicit
        profile = self.profile(rep, at)
        return profile["team"] if profile else "unassigned"

    def source_label(self, source: str | None) -> str:
        if source is None:
            return "unknown"
        return source if source in KNOWN_SOURCES or source in self.sla_by_source else "other"

    def periods(self, at: float, hour: bool = True) -> list[str]:
        """The current period kinds that ``at`` falls in (deal-level and activity figures skip the hour)."""
        kinds = [kind for kind, start in self.current.items() if period_start(kind, at, self.zone) == start]
        return kinds if hour else [kind for kind in kinds if kind != "hour"]

    def observe(self, name: str, bounds: list[int], seconds: float, **labels: str) -> None:
        for bound in [*bounds, "+Inf"]:
            if bound == "+Inf" or seconds <= bound:
                self.put(f"{name}_bucket", 1, le=str(bound), **labels)
        self.put(f"{name}_count", 1, **labels)
        self.put(f"{name}_sum", seconds, **labels)


# What /metrics carries of these period families (the series budget, README); the API and the
# model carry every period.
METRICS_PERIODS = {
    "leadpulse_first_response_seconds": {"day", "month"},
    "leadpulse_first_response_by_source_seconds": {"day", "week", "month"},
    "leadpulse_stage_dwell_seconds": {"month"},
    "leadpulse_stage_transitions": {"month"},
}


def in_metrics(expected: dict[tuple[str, frozenset], float]) -> dict[tuple[str, frozenset], float]:
    """The expectation as /metrics exports it: without the periods the series budget leaves out."""

    def exported(name: str, labels: frozenset) -> bool:
        family = name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
        return family not in METRICS_PERIODS or dict(labels).get("period") in METRICS_PERIODS[family]

    return {key: value for key, value in expected.items() if exported(*key)}


def expected_metrics(
    *,
    profiles: dict[str, list[dict]],
    events: dict[str, list[dict]],
    now: float,
    sla_default: float,
    sla_by_source: dict[str, float],
    zone: ZoneInfo = UTC_ZONE,
    fiscal_first_month: int = 1,
) -> dict[tuple[str, frozenset], float]:
    """``events`` maps logical topic (deal_stages, calls, emails, meetings) to valid events in
    production order, repeats included; ``profiles`` maps each rep to its profile history."""
    m = Model(profiles, now, sla_default, sla_by_source, zone, fiscal_first_month)
    put = m.put

    # Deduplicate by (deal, topic, event_id): the first occurrence counts, repeats are duplicates.
    seen: set[tuple[str, str, str]] = set()
    unique: dict[str, list[dict]] = defaultdict(list)
    for topic, items in events.items():
        for event in items:
            key = (event["deal_id"], topic, event["event_id"])
            if key in seen:
                put("leadpulse_events_duplicate_total", 1, topic=TOPIC_NAMES[topic])
                continue
            seen.add(key)
            unique[topic].append(event)
            at = ts(event["occurred_at"])
            last = ("leadpulse_last_event_timestamp_seconds", frozenset({"topic": TOPIC_NAMES[topic]}.items()))
            m.out[last] = max(m.out.get(last, 0.0), at)

    def activity(rep: str, team: str, kind: str, at: float) -> None:
        for period in m.periods(at, hour=False):
            put("leadpulse_activities", 1, rep=rep, team=team, activity=kind, period=period)

    def outcome(team: str, kind: str, at: float) -> None:
        for period in m.periods(at, hour=False):
            put("leadpulse_activity_outcomes", 1, team=team, activity=kind, period=period)

    for call in unique["calls"]:
        at = ts(call["occurred_at"])
        rep, team = call["rep_id"], m.team(call["rep_id"], call.get("team"), at)
        put("leadpulse_calls_total", 1, rep=rep, team=team, direction=call["direction"], outcome=call["outcome"])
        activity(rep, team, "calls", at)
        if call["direction"] == "outbound":
            outcome(team, "calls_outbound", at)
            if call["outcome"] == "connected":
                outcome(team, "calls_connected", at)
        if call["outcome"] == "connected":
            outcome(team, "calls_handled", at)
            handle = call["talk_seconds"] + (call.get("wrap_up_seconds") or 0)
            for period in m.periods(at, hour=False):
                put("leadpulse_call_handle_seconds", handle, team=team, period=period)
    for email in unique["emails"]:
        at = ts(email["occurred_at"])
        rep, team = email["rep_id"], m.team(email["rep_id"], email.get("team"), at)
        put("leadpulse_emails_total", 1, rep=rep, team=team, action=email["action"])
        if email["action"] == "sent":
            activity(rep, team, "emails_sent", at)
            outcome(team, "emails_sent", at)
            if email.get("personalized"):
                outcome(team, "emails_personalized", at)
        if email["action"] == "bounced":
            outcome(team, "emails_bounced", at)
    for meeting in unique["meetings"]:
        at = ts(meeting["occurred_at"])
        rep, team = meeting["rep_id"], m.team(meeting["rep_id"], meeting.get("team"), at)
        put("leadpulse_meetings_total", 1, rep=rep, team=team, action=meeting["action"])
        if meeting["action"] == "held":
            activity(rep, team, "meetings_held", at)

    # Profile figures, from the profile in force now (one worker owns every rep here).
    for rep in m.profiles:
        profile = m.profile(rep, now)
        assert profile is not None
        if profile.get("monthly_quota") is not None:
            quota = float(Decimal(str(profile["monthly_quota"])))
            put(
                "leadpulse_monthly_quota",
                quota,
                rep=rep,
                team=profile["team"],
                currency=profile.get("currency") or "USD",
            )
        targets = profile.get("targets") or {}
        for field, kind, period in (
            ("calls_per_day", "calls", "day"),
            ("emails_per_day", "emails_sent", "day"),
            ("meetings_per_week", "meetings_held", "week"),
        ):
            if targets.get(field) is not None:
                put(
                    "leadpulse_activity_target",
                    targets[field],
                    rep=rep,
                    team=profile["team"],
                    activity=kind,
                    period=period,
                )

    stages_by_deal: dict[str, list[dict]] = defaultdict(list)
    for stage in unique["deal_stages"]:
        stages_by_deal[stage["deal_id"]].append(stage)
    activities_by_deal: dict[str, list[tuple[float, str, str]]] = defaultdict(list)  # (at, event_id, kind)
    for call in unique["calls"]:
        kind = "touch" if call["direction"] == "outbound" else "inbound"
        activities_by_deal[call["deal_id"]].append((ts(call["occurred_at"]), call["event_id"], kind))
    for email in unique["emails"]:
        kind = {"sent": "touch", "received": "inbound"}.get(email["action"])
        if kind:
            activities_by_deal[email["deal_id"]].append((ts(email["occurred_at"]), email["event_id"], kind))

    awaiting: dict[tuple[str, str], list[float]] = {(rep, m.team(rep, None, now)): [] for rep in m.profiles}
    breached: dict[tuple[str, str], int] = defaultdict(int)
    for deal, stages in stages_by_deal.items():
        stages.sort(key=lambda s: (ts(s["occurred_at"]), s["event_id"]))
        created = ts(stages[0]["occurred_at"])
        first = stages[0]
        source = next((s["source"] for s in stages if s.get("source")), None)

        def deal_team_at(at: float, stages: list[dict] = stages) -> tuple[str, str]:
            """Owner and team of the deal at ``at``."""
            before = [s for s in stages if ts(s["occurred_at"]) <= at]
            owner = before[-1] if before else stages[0]
            return owner["rep_id"], m.team(owner["rep_id"], owner.get("team"), at)

        creator_team = m.team(first["rep_id"], first.get("team"), created)
        put("leadpulse_deals_created_total", 1, rep=first["rep_id"], team=creator_team, source=m.source_label(source))
        for period in m.periods(created):
            put("leadpulse_leads_created", 1, team=creator_team, source=m.source_label(source), period=period)
        qualified = next((s for s in stages if s["stage"] == "qualified"), None)
        if qualified is not None:
            q_at = ts(qualified["occurred_at"])
            for period in m.periods(q_at):
                team = m.team(qualified["rep_id"], qualified.get("team"), q_at)
                put("leadpulse_leads_qualified", 1, team=team, source=m.source_label(source), period=period)

        ordered = sorted(activities_by_deal[deal])
        touches = [a for a in ordered if a[2] == "touch" and a[0] >= created]
        if touches:
            touch_at = touches[0][0]
            rep, team = deal_team_at(touch_at)
            seconds = touch_at - created
            business = business_seconds(m.profile(rep, touch_at), created, touch_at)
            for period in m.periods(touch_at):
                m.observe(
                    "leadpulse_first_response_seconds",
                    FIRST_RESPONSE_BOUNDS,
                    seconds,
                    rep=rep,
                    team=team,
                    period=period,
                )
                m.observe(
                    "leadpulse_first_response_by_source_seconds",
                    FIRST_RESPONSE_BOUNDS,
                    seconds,
                    team=team,
                    source=m.source_label(source),
                    period=period,
                )
                m.observe(
                    "leadpulse_first_response_business_seconds",
                    FIRST_RESPONSE_BOUNDS,
                    business,
                    team=team,
                    period=period,
                )
            # Re-responses: after the first response, the earliest unanswered inbound starts a
            # wait that the next touch closes.
            opened = None
            for at, event_id, kind in ordered:
                if (at, event_id) <= (touches[0][0], touches[0][1]):
                    continue
                if kind == "inbound" and opened is None:
                    opened = at
                elif kind == "touch" and opened is not None:
                    _, team = deal_team_at(at)
                    for period in m.periods(at):
                        m.observe(
                            "leadpulse_re_response_seconds",
                            FIRST_RESPONSE_BOUNDS,
                            at - opened,
                            team=team,
                            period=period,
                        )
                    opened = None

        # Stage runs: a repeated stage is no new stage.
        runs = [s for index, s in enumerate(stages) if index == 0 or stages[index - 1]["stage"] != s["stage"]]
        for left, entered in pairwise(runs):
            at = ts(entered["occurred_at"])
            team = m.team(entered["rep_id"], entered.get("team"), at)
            name = {s: (s if s in WELL_KNOWN_STAGES else "other") for s in (left["stage"], entered["stage"])}
            for period in m.periods(at, hour=False):
                put(
                    "leadpulse_stage_transitions",
                    1,
                    team=team,
                    from_stage=name[left["stage"]],
                    to_stage=name[entered["stage"]],
                    period=period,
                )
                m.observe(
                    "leadpulse_stage_dwell_seconds",
                    DWELL_BOUNDS,
                    at - ts(left["occurred_at"]),
                    team=team,
                    stage=name[left["stage"]],
                    period=period,
                )

        latest = stages[-1]
        terminal = latest["stage"] in {"won", "lost"}
        with_amount = [s for s in stages if s.get("amount") is not None]
        amount = Decimal(str(with_amount[-1]["amount"])) if with_amount else Decimal(0)
        currency = (with_amount[-1].get("currency") or "USD") if with_amount else "USD"
        deal_type = next((s["deal_type"] for s in reversed(stages) if s.get("deal_type")), "new_business")
        owner_now = (latest["rep_id"], m.team(latest["rep_id"], latest.get("team"), now))
        if terminal:
            index = len(stages) - 1
            while index > 0 and stages[index - 1]["stage"] == latest["stage"]:
                index -= 1
            closing = stages[index]
            closed_at = ts(closing["occurred_at"])
            rep, rep_team = closing["rep_id"], m.team(closing["rep_id"], closing.get("team"), closed_at)
            proposal = any(s["stage"] == "proposal" and ts(s["occurred_at"]) <= closed_at for s in stages)
            won = latest["stage"] == "won"
            kinds = m.periods(closed_at) + m.fiscal_kinds(closed_at)
            kinds_previous = [
                k
                for k in m.current
                if k != "hour" and period_start(k, closed_at, m.zone) == previous_period_start(k, now, m.zone)
            ]
            if won:
                for period in kinds_previous:
                    put(
                        "leadpulse_won_amount_previous_period",
                        float(amount),
                        team=rep_team,
                        period=period,
                        currency=currency,
                    )
            for period in kinds:  # the must-exist families: every period kind, the quarter and year included
                if won:
                    put("leadpulse_deals_won", 1, rep=rep, team=rep_team, period=period)
                    put("leadpulse_won_amount", float(amount), rep=rep, team=rep_team, period=period, currency=currency)
                else:
                    put("leadpulse_deals_lost", 1, rep=rep, team=rep_team, period=period)
            for period in m.periods(closed_at, hour=False):  # deal-level figures: no hour
                if proposal:
                    outcome = "won" if won else "lost"
                    put("leadpulse_deals_closed_after_proposal", 1, team=rep_team, outcome=outcome, period=period)
                if won:
                    labels = dict(team=rep_team, deal_type=deal_type, period=period, currency=currency)
                    put("leadpulse_deals_won_by_deal_type", 1, **labels)
                    put("leadpulse_won_amount_by_deal_type", float(amount), **labels)
                    cycle = closed_at - created
                    m.observe("leadpulse_sales_cycle_seconds", CYCLE_BOUNDS, cycle, team=rep_team, period=period)
                else:
                    reason = next(
                        (s.get("lost_reason") for s in reversed(stages[index:]) if s.get("lost_reason")), None
                    )
                    put("leadpulse_deals_lost_by_reason", 1, team=rep_team, reason=reason or "unknown", period=period)
            continue
        stage_label = latest["stage"] if latest["stage"] in WELL_KNOWN_STAGES else "other"
        put("leadpulse_pipeline_deals", 1, rep=owner_now[0], team=owner_now[1], stage=stage_label)
        put(
            "leadpulse_pipeline_amount",
            float(amount),
            rep=owner_now[0],
            team=owner_now[1],
            stage=stage_label,
            currency=currency,
        )
        weighted = float(amount) * STAGE_PROBABILITIES[stage_label]
        put(
            "leadpulse_weighted_pipeline_amount",
            weighted,
            rep=owner_now[0],
            team=owner_now[1],
            stage=stage_label,
            currency=currency,
        )
        expected_close = next(
            (s["expected_close_date"] for s in reversed(stages) if s.get("expected_close_date")), None
        )
        if expected_close is not None:
            closing_day = date.fromisoformat(expected_close)  # a date: the periods holding that day
            in_month = expected_close[:7] == m.current["month"]
            kinds = (["month"] if in_month else []) + m.fiscal_kinds_of_date(closing_day)
            for kind in kinds:
                put("leadpulse_forecast_weighted_amount", weighted, team=owner_now[1], currency=currency, period=kind)
        if expected_close is not None and expected_close < m.today.isoformat():
            put("leadpulse_deals_slipped", 1, rep=owner_now[0], team=owner_now[1])
            put("leadpulse_slipped_amount", float(amount), rep=owner_now[0], team=owner_now[1], currency=currency)
        if not touches:
            age = now - created
            awaiting.setdefault(owner_now, []).append(age)
            if age > sla_by_source.get(source or "unknown", sla_default):
                breached[owner_now] += 1
    for (rep, rep_team), ages in awaiting.items():
        put("leadpulse_leads_awaiting_response", len(ages), rep=rep, team=rep_team)
        put("leadpulse_lead_oldest_awaiting_seconds", max(ages, default=0.0), rep=rep, team=rep_team)
        put("leadpulse_leads_sla_breached", breached[(rep, rep_team)], rep=rep, team=rep_team)
    return dict(m.out)
