"""Billing dates and proration, as pure functions (property-tested).

A schedule bills in advance, every `cadence`, from its anchor: period k starts on the anchor
day of the month anchor + k*cadence, the day clamped to short months and kept (31: Jan 31,
Feb 28, Mar 31). Enrolling before the anchor leaves a stub, [enrolment, anchor), billed by the
plan's proration: `daily` (the price times the stub's days over the days of the full period it
is part of, rounded half-up to the cent, once), `full_period` (the full price) or `none`.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from ..kernel.money import share_of
from ..kernel.periods import MONTHS

CADENCES = ("monthly", "quarterly", "yearly")
PRORATIONS = ("daily", "full_period", "none")


def on_day(year: int, month: int, day: int) -> date:
    """The `day` of a month, clamped to its length."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def shift(d: date, months: int, day: int) -> date:
    """The anchor `day` of the month `months` after d's."""
    total = d.month - 1 + months
    return on_day(d.year + total // 12, total % 12 + 1, day)


def anchor(starts_on: date, anchor_day: int | None) -> date:
    """The first full period's first day: the enrolment day itself, or the first anchor day on or
    after it."""
    if anchor_day is None:
        return starts_on
    candidate = on_day(starts_on.year, starts_on.month, anchor_day)
    return candidate if candidate >= starts_on else shift(starts_on, 1, anchor_day)


def period_of(anchor_on: date, anchor_day: int, cadence: str, k: int) -> tuple[date, date]:
    """Billing period k (first and last day) of a schedule; k = -1 is the full period the stub
    is part of."""
    step = MONTHS[cadence]
    start = shift(anchor_on, step * k, anchor_day)
    return start, shift(anchor_on, step * (k + 1), anchor_day) - timedelta(days=1)


def stub_days(starts_on: date, anchor_on: date, anchor_day: int, cadence: str) -> tuple[int, int]:
    """The stub's days, and the days of the full period it is part of."""
    full_start, full_end = period_of(anchor_on, anchor_day, cadence, -1)
    return (anchor_on - starts_on).days, (full_end - full_start).days + 1


def stub_amount(price_cents: int, starts_on: date, anchor_on: date, anchor_day: int, cadence: str,
                proration: str) -> int:
    """What the stub [starts_on, anchor_on) costs."""
    if starts_on >= anchor_on or proration == "none":
        return 0
    if proration == "full_period":
        return price_cents
    return share_of(price_cents, *stub_days(starts_on, anchor_on, anchor_day, cadence))
