"""The compiled core (mypyc, setup.py) runs under ``python3 dev.py test``, and folds exactly as the
plain sources do: the same deal records, aggregates, output records and dead letters for random
histories. The plain build runs in a long-lived subprocess on a copy of the .py files (no .so)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.build import CORE, current
from tests.fold_both import run

ROOT = Path(__file__).resolve().parent.parent
ASKED = os.environ.get("LEADPULSE_COMPILE", "auto").strip().lower() or "auto"


def test_the_core_runs_compiled_unless_none_was_asked_for() -> None:
    """No skip: a tree that should be compiled and is not (no compiler, a failed or stale build) fails."""
    build = current()
    if ASKED == "none":
        assert build.label == "python", build.summary()
        return
    assert build.label == "mypyc", (
        f"{build.summary()} (LEADPULSE_COMPILE={ASKED}): `python3 dev.py test` builds the core in place;"
        " `python3 dev.py` alone rebuilds it after an edit"
    )
    assert len(build.compiled) == len(CORE) and not build.stale


class PlainCore:
    """tests/fold_both.py as a script, on a copy of streams/ and schemas/ without any .so."""

    def __init__(self, tmp: Path) -> None:
        for package in ("streams", "schemas"):
            shutil.copytree(ROOT / package, tmp / package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        env = {**os.environ, "PYTHONPATH": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "fold_both.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=tmp,
            env=env,
            text=True,
        )
        self.build = self._read()["build"]

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the plain-build subprocess exited ({self.process.poll()})"
        return orjson.loads(line)

    def run(self, case: dict) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(case).decode() + "\n")
        self.process.stdin.flush()
        answer = self._read()
        assert "error" not in answer, answer["error"]
        return answer["result"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlainCore]:
    core = PlainCore(tmp_path_factory.mktemp("plain-core"))
    try:
        yield core
    finally:
        core.close()


# Histories: a few deals and reps over three weeks, every deal-scoped topic, rep profiles arriving
# late, duplicates, a broken message now and then; cut into batches whose clock moves on.
BASE = datetime(2024, 3, 4, 7, 0, tzinfo=UTC).timestamp()  # a Monday morning, reporting zone Europe/Berlin
DEALS = ("d1", "d2", "d3", "d4")
REPS = ("ann", "bob")
STAGES = ("new", "contacted", "qualified", "meeting", "proposal", "negotiation", "won", "lost", "custom")
SOURCES = (None, "inbound_demo", "referral", "webinar")
TOPICS = {"stage": "crm.deal-stages", "call": "crm.calls", "email": "crm.emails", "meeting": "crm.meetings"}

moments = st.floats(min_value=0, max_value=21 * 86400, allow_nan=False).map(lambda s: round(BASE + s, 3))


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@st.composite
def deal_event(draw: st.DrawFn, number: int) -> tuple[str, str, dict]:
    kind = draw(st.sampled_from(tuple(TOPICS)))
    deal = draw(st.sampled_from(DEALS))
    event: dict = {
        "event_id": f"e{number}",
        "occurred_at": iso(draw(moments)),
        "deal_id": deal,
        "rep_id": draw(st.sampled_from(REPS)),
    }
    if draw(st.booleans()):
        event["team"] = draw(st.sampled_from(("east", "west")))
    if kind == "stage":
        event["stage"] = draw(st.sampled_from(STAGES))
        event["amount"] = draw(st.one_of(st.none(), st.integers(0, 10**6), st.just("1234.56")))
        event["currency"] = draw(st.sampled_from(("USD", "EUR")))
        event["source"] = draw(st.sampled_from(SOURCES))
        event["deal_type"] = draw(st.sampled_from((None, "new_business", "upsell")))
        if event["stage"] == "lost":
            event["lost_reason"] = draw(st.sampled_from(("price", "timing")))
    elif kind == "call":
        event |= {
            "call_id": f"c{number}",
            "direction": draw(st.sampled_from(("outbound", "inbound"))),
            "outcome": draw(st.sampled_from(("connected", "no_answer", "voicemail"))),
            "talk_seconds": draw(st.integers(0, 3600)),
            "wrap_up_seconds": draw(st.sampled_from((None, 0, 30.5))),
        }
    elif kind == "email":
        event |= {
            "email_id": f"m{number}",
            "action": draw(st.sampled_from(("sent", "received", "opened", "bounced"))),
            "personalized": draw(st.booleans()),
        }
    else:
        event |= {"meeting_id": f"g{number}", "action": draw(st.sampled_from(("booked", "held", "no_show")))}
    return TOPICS[kind], deal, event


@st.composite
def rep_profile(draw: st.DrawFn) -> tuple[str, str, dict]:
    rep = draw(st.sampled_from(REPS))
    profile = {
        "rep_id": rep,
        "team": draw(st.sampled_from(("east", "west"))),
        "role": draw(st.sampled_from(("sdr", "ae"))),
        "timezone": draw(st.sampled_from(("UTC", "America/New_York"))),
        "monthly_quota": draw(st.sampled_from((None, 50000))),
        "updated_at": iso(draw(moments)),
    }
    return "crm.reps", rep, profile


@st.composite
def cases(draw: st.DrawFn) -> dict:
    events = [draw(deal_event(n)) for n in range(draw(st.integers(1, 30)))]
    events += draw(st.lists(rep_profile(), max_size=3))
    events += draw(st.lists(st.sampled_from(events), max_size=4))  # redelivered duplicates
    events = draw(st.permutations(events))
    offsets: dict[tuple[str, int], int] = {}
    messages = []
    for topic, key, event in events:
        partition = 0 if topic == "crm.reps" else draw(st.sampled_from((0, 1)))
        value = orjson.dumps(event).decode() if draw(st.integers(0, 19)) else '{"broken'
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        messages.append([topic, partition, offset, key, value, None])
    cuts = sorted(draw(st.lists(st.integers(0, len(messages)), max_size=3)))
    batches, start, now = [], 0, BASE
    for cut in [*cuts, len(messages)]:
        # Each batch's clock: a little after its latest event (an event ahead of it is rejected), later
        # still now and then; SLA steps pass between batches and before the timer's last look.
        latest = max(
            (orjson.loads(m[4]).get("occurred_at", "") for m in messages[start:cut] if "broken" not in m[4]), default=""
        )
        at = datetime.fromisoformat(latest).timestamp() if latest else now
        now = max(now, at) + draw(st.sampled_from((0, 60, 600, 3600, 86400)))
        batches.append({"now": round(now, 3), "messages": messages[start:cut]})
        start = cut
    due_at = now + draw(st.sampled_from((0, 120, 600, 1800, 7200)))
    return {"business_hours": draw(st.booleans()), "batches": batches, "due_at": due_at}


def test_the_plain_sources_run_interpreted(plain: PlainCore) -> None:
    assert plain.build == "python"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_compiled_and_plain_builds_fold_alike(plain: PlainCore, case: dict) -> None:
    compiled = run(case)
    interpreted = plain.run(case)
    for part in ("deals", "intake", "profiles", "rep_intake", "rollups", "planned", "due", "dead_letters"):
        assert compiled[part] == interpreted[part], part
    assert compiled == interpreted
