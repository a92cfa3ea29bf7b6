"""Money is exact; periods are computed from the issue date, month ends clamped."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepwell.kernel.money import MoneyError, format_cents, percent_of, to_cents
from keepwell.kernel.periods import PERIODS, period_end, period_index, period_start


def test_money_parsing():
    assert to_cents("1000.00") == 100000
    assert to_cents("0.1") == 10
    assert to_cents(Decimal("19.99")) == 1999
    for bad in (19.99, "1.005", "abc", "NaN", True):
        with pytest.raises(MoneyError):
            to_cents(bad)


@given(st.integers(-10**12, 10**12))
def test_format_and_parse_round_trip(cents):
    assert to_cents(format_cents(cents)) == cents


def test_percent_rounds_half_even_to_the_cent():
    assert percent_of(15000, "10") == 1500
    assert percent_of(125, "10") == 12  # 12.5 -> 12
    assert percent_of(135, "10") == 14  # 13.5 -> 14


def test_half_yearly_example():
    issued = date(2020, 1, 1)
    assert period_end(issued, "half_yearly", 0) == date(2020, 6, 30)
    assert period_start(issued, "half_yearly", 1) == date(2020, 7, 1)
    assert period_end(issued, "half_yearly", 1) == date(2020, 12, 31)


def test_month_end_issue_keeps_its_day():
    issued = date(2020, 1, 31)
    starts = [period_start(issued, "monthly", k) for k in range(5)]
    assert starts == [date(2020, 1, 31), date(2020, 2, 29), date(2020, 3, 31), date(2020, 4, 30), date(2020, 5, 31)]


@given(st.dates(date(1990, 1, 1), date(2100, 12, 31)), st.sampled_from(PERIODS), st.integers(0, 200))
def test_periods_tile_the_calendar(issued, period, k):
    start, end = period_start(issued, period, k), period_end(issued, period, k)
    assert start <= end
    assert period_start(issued, period, k + 1) == end + timedelta(days=1)
    assert period_index(issued, period, start) == k
    assert period_index(issued, period, end) == k


@given(st.dates(date(1990, 1, 1), date(2100, 12, 31)), st.sampled_from(PERIODS), st.integers(-400, 40000))
def test_every_day_belongs_to_exactly_one_period(issued, period, offset):
    day = issued + timedelta(days=offset)
    k = period_index(issued, period, day)
    if day < issued:
        assert k == -1
    else:
        assert period_start(issued, period, k) <= day <= period_end(issued, period, k)
