"""What a company's clients may send: how far from now an event may be dated. Each bound is a
company setting (`keepwell companies set --future-hours/--backdate-days`), so a contractor
importing last year's history can widen the window and a point of sale cannot post a purchase
dated 5000-01-01 that would close thousands of periods."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ..kernel.errors import InvalidDocument
from .models import Company

LIMITS = {  # column: (smallest, largest, what it means)
    "future_hours": (0, 24 * 31, "how many hours ahead of now an event may be dated"),
    "backdate_days": (1, 36_600, "how many days back an event may be dated"),
    "max_periods_per_event": (1, 1_200, "how many ended periods one event may close (older ones are due work)"),
    "adjustment_limit_cents": (1, 10**13, "the largest manual allowance adjustment, in cents"),
    "adjustment_limit_points": (1, 10**12, "the largest manual points adjustment"),
}


def check_moment(company: Company, now: datetime, moment: datetime, field: str = "occurred_at") -> None:
    """Refuse a moment outside the company's window around `now`."""
    ahead = timedelta(hours=company.future_hours)
    back = timedelta(days=company.backdate_days)
    try:
        too_late = moment > now + ahead
        too_early = moment < now - back
    except OverflowError:  # a date at the very edge of the calendar, in an offset that leaves it
        too_late, too_early = moment.year > now.year, moment.year < now.year
    if too_late:
        raise InvalidDocument.field(field, f"{moment.isoformat()} is in the future: an event may be dated at most "
                                    f"{company.future_hours} hours ahead of now")
    if too_early:
        earliest = (now - back).date()
        raise InvalidDocument.field(field, f"{moment.isoformat()} is too long ago: this company accepts events dated "
                                    f"from {earliest} ({company.backdate_days} days back; an owner can change this "
                                    "with `keepwell companies set --backdate-days`)")


def check_day(company: Company, today: date, day: date, field: str) -> None:
    """Refuse a calendar day (an enrolment's start) outside the company's window around today."""
    last = today + timedelta(days=max(1, company.future_hours // 24))
    if day > last:
        raise InvalidDocument.field(field, f"{day} is in the future: the latest allowed is {last}")
    try:
        first = today - timedelta(days=company.backdate_days)
    except OverflowError:
        return
    if day < first:
        raise InvalidDocument.field(field, f"{day} is too long ago: the earliest allowed is {first}")


def check_limit(name: str, value: object) -> int:
    low, high, meaning = LIMITS[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidDocument.field(name.replace("_", "-"), f"{meaning}: a whole number from {low} to {high}")
    return value


def widen(company: Company) -> None:
    """Every bound at its widest: for a scratch copy that replays history (a simulation)."""
    for name in ("future_hours", "backdate_days", "max_periods_per_event"):
        setattr(company, name, LIMITS[name][1])
