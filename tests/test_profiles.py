"""Profile histories: any arrival order gives the same history; the profile in force."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.fold.profiles import History, in_force, merge
from tests.test_outputs import profile

DAY = 86400.0
PROFILES = [
    profile("ann", "emea", 10 * DAY),
    profile("ann", "apac", 20 * DAY),
    profile("ann", "amer", 20 * DAY),  # same instant as apac: the greater record wins, in any order
    profile("ann", "emea", 30 * DAY, timezone="Europe/Berlin"),
    profile("ann", "emea", 5 * DAY),
]


@given(st.permutations(PROFILES))
def test_any_arrival_order_gives_the_same_history(order: list) -> None:
    history: History = ()
    for item in order:
        history = merge(history, item)
    expected: History = ()
    for item in PROFILES:
        expected = merge(expected, item)
    assert history == expected
    assert [p.updated_at for p in history] == [5 * DAY, 10 * DAY, 20 * DAY, 30 * DAY]


@given(st.permutations(PROFILES))
def test_the_history_keeps_the_newest(order: list) -> None:
    history: History = ()
    for item in order:
        history = merge(history, item, limit=2)
    assert [p.updated_at for p in history] == [20 * DAY, 30 * DAY]


def test_the_profile_in_force() -> None:
    history: History = ()
    for item in PROFILES:
        history = merge(history, item)
    assert in_force(history, 0).updated_at == 5 * DAY  # before every profile: the earliest
    assert in_force(history, 10 * DAY).team == "emea"  # at its updated_at, a profile is in force
    assert in_force(history, 25 * DAY).team in {"apac", "amer"}
    assert in_force(history, 31 * DAY).timezone == "Europe/Berlin"
    assert in_force((), 0) is None
    assert merge(history, PROFILES[0]) is history  # nothing new: the same history back
