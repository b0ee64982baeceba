"""Which history the simulator replays before it goes live: pure, no clock or broker.

The demo opens on the fiscal quarter so far (SPEC §5), so that every board panel, recording rule
and page cell has data at once: the quarter's won amount, attainment, forecast and coverage need
deals closed over weeks, and "won yesterday" (revenue growth) needs yesterday, so the history goes
back at least two days even on a quarter's first day. It is played at a realistic floor's pace
(``HISTORY_RATE``), slower than the lively demo's live rate: a full quarter is then about 100,000
messages, which one worker folds well inside a minute.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.fold.periods import Calendar, PeriodKind

# About 1,100 events a day: for the demo's 12 SDRs, ten new leads each a day and their lifecycles
# (calls, emails, meetings, closes); about 20 deals won a day across 3 teams.
HISTORY_RATE = 0.0125
MIN_HISTORY_SECONDS = 2 * 86400


@dataclass(frozen=True)
class History:
    """Replay from ``start`` (epoch seconds) to the moment the simulator goes live, at ``rate``
    events per second."""

    start: float
    rate: float


def quarter_so_far(calendar: Calendar, now: float, *, rate: float = HISTORY_RATE) -> History:
    """The current fiscal quarter up to ``now``, and at least the last two days."""
    quarter_start = calendar.start_of(calendar.period_of(PeriodKind.QUARTER, now)).timestamp()
    return History(min(quarter_start, now - MIN_HISTORY_SECONDS), rate)


def last(seconds: float, now: float, *, rate: float) -> History:
    """The last ``seconds`` before ``now`` at ``rate`` (the simulator's ``--history SECONDS``)."""
    return History(now - seconds, rate)
