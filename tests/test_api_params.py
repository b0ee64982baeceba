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


APRIL = Calendar("Europe/Berlin", fiscal_year_start_month=4)


@pytest.mark.parametrize(
    ("query", "period"),
    [
        ({"period": "quarter"}, (PeriodKind.QUARTER, "2024-01-01")),  # fiscal Q4 of the year from April 2023
        ({"period": "year"}, (PeriodKind.YEAR, "2023-04-01")),
        ({"period": "quarter", "start": "2024-04-01"}, (PeriodKind.QUARTER, "2024-04-01")),
        ({"period": "quarter", "start": "2023-10-01"}, (PeriodKind.QUARTER, "2023-10-01")),
        ({"period": "year", "start": "2024-04-01"}, (PeriodKind.YEAR, "2024-04-01")),
    ],
)
def test_fiscal_quarters_and_years_are_named_by_their_first_day(query: dict, period: tuple) -> None:
    assert period_of(query, APRIL, NOW) == period


def test_a_date_inside_a_fiscal_quarter_is_not_its_name() -> None:
    with pytest.raises(
        BadParameter, match=r"fiscal year starts on the 1st of month 4\): 2024-04-01 is the one holding"
    ):
        period_of({"period": "quarter", "start": "2024-05-01"}, APRIL, NOW)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"period": "decade"}, "period must be one of hour, day, week, month, quarter, year"),
        ({"period": "quarter", "start": "2024-02-01"}, "start for period=quarter is the first day of a fiscal quarter"),
        ({"period": "year", "start": "2024-04-01"}, "2024-01-01 is the one holding '2024-04-01'"),
        ({"period": "quarter", "start": "2024-01"}, "start is not a date"),
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
