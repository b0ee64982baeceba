"""API query parameters and the bearer token, without a server."""

from __future__ import annotations

from datetime import datetime

import pytest

from streams.api.auth import authorized
from streams.api.params import BadParameter, limit_of, period_of
from streams.fold.periods import Calendar, PeriodKind

BERLIN = Calendar("Europe/Berlin")
NOW = datetime.fromisoformat("2024-03-05T23:30:00+01:00").timestamp()  # a Tuesday, late evening


@pytest.mark.parametrize(
    ("query", "period"),
    [
        ({}, (PeriodKind.DAY, "2024-03-05")),
        ({"period": "week"}, (PeriodKind.WEEK, "2024-03-04")),
        ({"period": "week", "start": "2024-02-29"}, (PeriodKind.WEEK, "2024-02-26")),
        ({"period": "month", "start": "2023-12"}, (PeriodKind.MONTH, "2023-12")),
        ({"period": "month", "start": "2023-12-31"}, (PeriodKind.MONTH, "2023-12")),
        ({"period": "day", "start": "2024-03-31"}, (PeriodKind.DAY, "2024-03-31")),  # the DST day
        ({"period": "hour", "start": "2024-03-05T14"}, (PeriodKind.HOUR, "2024-03-05T14:00+01:00")),
        ({"period": "hour", "start": "2024-03-05T13:00Z"}, (PeriodKind.HOUR, "2024-03-05T14:00+01:00")),
        ({"period": "hour"}, (PeriodKind.HOUR, "2024-03-05T23:00+01:00")),
    ],
)
def test_periods(query: dict, period: tuple) -> None:
    assert period_of(query, BERLIN, NOW) == period


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"period": "year"}, "period must be one of"),
        ({"start": "yesterday"}, "start is not a date"),
        ({"start": "2024-02-30"}, "start is not a date"),
        ({"start": "20240305"}, "start is not a date"),
        ({"period": "hour", "start": "2024-03-05"}, "start for an hour"),
        ({"period": "month", "start": "2024-13"}, "start is not a date"),
        # datetime's last and first years, where the calendar's arithmetic would leave its range
        ({"start": "9999-12-31"}, "between the years 1900 and 9998"),
        ({"period": "hour", "start": "9999-12-31T23-01:00"}, "between the years 1900 and 9998"),
        ({"period": "week", "start": "0001-01-01"}, "between the years 1900 and 9998"),
    ],
)
def test_bad_periods_say_what_is_wrong(query: dict, says: str) -> None:
    with pytest.raises(BadParameter, match=says):
        period_of(query, BERLIN, NOW)


def test_limits() -> None:
    assert limit_of({}) == 100 and limit_of({"limit": "7"}) == 7
    for bad in ("0", "-1", "1001", "ten", "1e3", "", "²", "٣"):  # digits, but not ASCII ones
        with pytest.raises(BadParameter, match="limit must be"):
            limit_of({"limit": bad})


def test_the_token_is_compared_in_full() -> None:
    assert authorized(None, None) and authorized("Bearer anything", None)
    assert authorized("Bearer s3cret", "s3cret") and authorized("bearer s3cret", "s3cret")  # RFC 7235
    for header in (None, "", "s3cret", "Bearer ", "Bearer s3cre", "Bearer s3cret!", "Basic s3cret", "Bearer \udcff"):
        assert not authorized(header, "s3cret"), header
