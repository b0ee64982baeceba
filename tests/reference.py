"""An independent reference model of SPEC §2-§3 for the must-exist metrics.

Written plainly from the spec over the raw event dicts, sharing no code with ``streams``, so
the broker tests compare the engine against an expectation it did not compute itself.
Reporting timezone: UTC.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

BUCKETS = ["60", "300", "900", "1800", "3600", "7200", "14400", "28800", "86400", "172800", "+Inf"]
WELL_KNOWN_STAGES = {"new", "contacted", "qualified", "meeting", "proposal", "negotiation", "won", "lost"}
KNOWN_SOURCES = {"inbound_demo", "inbound_content", "outbound", "referral", "event", "partner"}


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def period_start(kind: str, at: float) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    if kind == "hour":
        return moment.strftime("%Y-%m-%dT%H")
    if kind == "day":
        return moment.date().isoformat()
    if kind == "week":
        return (moment.date() - timedelta(days=moment.weekday())).isoformat()
    return moment.strftime("%Y-%m")


def expected_metrics(
    *,
    profiles: dict[str, dict],
    events: dict[str, list[dict]],
    now: float,
    sla_default: float,
    sla_by_source: dict[str, float],
) -> dict[tuple[str, frozenset], float]:
    """``events`` maps logical topic (deal_stages, calls, emails, meetings) to valid events in
    production order, repeats included."""
    out: dict[tuple[str, frozenset], float] = defaultdict(float)

    def put(name: str, value: float, **labels: str) -> None:
        out[(name, frozenset(labels.items()))] += value

    def team(rep: str, explicit: str | None) -> str:
        if explicit:
            return explicit
        return profiles[rep]["team"] if rep in profiles else "unassigned"

    def source_label(source: str | None) -> str:
        if source is None:
            return "unknown"
        return source if source in KNOWN_SOURCES or source in sla_by_source else "other"

    # Deduplicate by (deal, event_id): the first occurrence counts, repeats are duplicates.
    seen: set[tuple[str, str]] = set()
    unique: dict[str, list[dict]] = defaultdict(list)
    topic_names = {
        "deal_stages": "crm.deal-stages",
        "calls": "crm.calls",
        "emails": "crm.emails",
        "meetings": "crm.meetings",
    }
    for topic, items in events.items():
        for event in items:
            key = (event["deal_id"], event["event_id"])
            if key in seen:
                put("leadpulse_events_duplicate_total", 1, topic=topic_names[topic])
                continue
            seen.add(key)
            unique[topic].append(event)

    for call in unique["calls"]:
        put(
            "leadpulse_calls_total",
            1,
            rep=call["rep_id"],
            team=team(call["rep_id"], call.get("team")),
            direction=call["direction"],
            outcome=call["outcome"],
        )
    for email in unique["emails"]:
        put(
            "leadpulse_emails_total",
            1,
            rep=email["rep_id"],
            team=team(email["rep_id"], email.get("team")),
            action=email["action"],
        )
    for meeting in unique["meetings"]:
        put(
            "leadpulse_meetings_total",
            1,
            rep=meeting["rep_id"],
            team=team(meeting["rep_id"], meeting.get("team")),
            action=meeting["action"],
        )

    stages_by_deal: dict[str, list[dict]] = defaultdict(list)
    for stage in unique["deal_stages"]:
        stages_by_deal[stage["deal_id"]].append(stage)
    touches_by_deal: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for call in unique["calls"]:
        if call["direction"] == "outbound":
            touches_by_deal[call["deal_id"]].append((ts(call["occurred_at"]), call["event_id"]))
    for email in unique["emails"]:
        if email["action"] == "sent":
            touches_by_deal[email["deal_id"]].append((ts(email["occurred_at"]), email["event_id"]))

    awaiting: dict[tuple[str, str], list[float]] = {(rep, team(rep, None)): [] for rep in profiles}
    breached: dict[tuple[str, str], int] = defaultdict(int)
    current = {kind: period_start(kind, now) for kind in ("hour", "day", "week", "month")}
    for deal, stages in stages_by_deal.items():
        stages.sort(key=lambda s: (ts(s["occurred_at"]), s["event_id"]))
        created = ts(stages[0]["occurred_at"])
        first = stages[0]
        source = next((s["source"] for s in stages if s.get("source")), None)
        put(
            "leadpulse_deals_created_total",
            1,
            rep=first["rep_id"],
            team=team(first["rep_id"], first.get("team")),
            source=source_label(source),
        )
        latest = stages[-1]
        terminal = latest["stage"] in {"won", "lost"}
        touches = sorted(t for t in touches_by_deal[deal] if t[0] >= created)
        if touches:
            touch_at = touches[0][0]
            owner = [s for s in stages if ts(s["occurred_at"]) <= touch_at][-1]
            seconds = touch_at - created
            for kind, start in current.items():
                if period_start(kind, touch_at) != start:
                    continue
                labels = dict(
                    rep=owner["rep_id"],
                    team=team(owner["rep_id"], owner.get("team")),
                    source=source_label(source),
                    period=kind,
                )
                for bound in BUCKETS:
                    if bound == "+Inf" or seconds <= float(bound):
                        put("leadpulse_first_response_seconds_bucket", 1, le=bound, **labels)
                put("leadpulse_first_response_seconds_count", 1, **labels)
                put("leadpulse_first_response_seconds_sum", seconds, **labels)
        with_amount = [s for s in stages if s.get("amount") is not None]
        amount = Decimal(str(with_amount[-1]["amount"])) if with_amount else Decimal(0)
        currency = (with_amount[-1].get("currency") or "USD") if with_amount else "USD"
        owner_now = (latest["rep_id"], team(latest["rep_id"], latest.get("team")))
        if terminal:
            index = len(stages) - 1
            while index > 0 and stages[index - 1]["stage"] == latest["stage"]:
                index -= 1
            closing = stages[index]
            closed_at = ts(closing["occurred_at"])
            rep, rep_team = closing["rep_id"], team(closing["rep_id"], closing.get("team"))
            for kind, start in current.items():
                if period_start(kind, closed_at) != start:
                    continue
                if latest["stage"] == "won":
                    put("leadpulse_deals_won", 1, rep=rep, team=rep_team, period=kind)
                    put("leadpulse_won_amount", float(amount), rep=rep, team=rep_team, period=kind, currency=currency)
                else:
                    put("leadpulse_deals_lost", 1, rep=rep, team=rep_team, period=kind)
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
        if not touches:
            age = now - created
            awaiting.setdefault(owner_now, []).append(age)
            if age > sla_by_source.get(source or "unknown", sla_default):
                breached[owner_now] += 1
    for (rep, rep_team), ages in awaiting.items():
        put("leadpulse_leads_awaiting_response", len(ages), rep=rep, team=rep_team)
        put("leadpulse_lead_oldest_awaiting_seconds", max(ages, default=0.0), rep=rep, team=rep_team)
        put("leadpulse_leads_sla_breached", breached[(rep, rep_team)], rep=rep, team=rep_team)
    return dict(out)
