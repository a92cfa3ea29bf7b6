"""Period arithmetic. Period k of a membership starts on issue date + k periods, always computed
from the issue date (day clamped to the month's length), and ends the day before period k+1 starts.
Computing from the issue date (not from the previous period) is what keeps Jan 31 monthly on the
31st in March after a short February.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}
PERIODS = tuple(MONTHS)


def add_months(d: date, months: int) -> date:
    total = d.month - 1 + months
    year, month = d.year + total // 12, total % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def period_start(issued: date, period: str, k: int) -> date:
    if k < 0:
        raise ValueError("period index must be >= 0")
    return add_months(issued, MONTHS[period] * k)


def period_end(issued: date, period: str, k: int) -> date:
    """Last day (inclusive) of period k."""
    return period_start(issued, period, k + 1) - timedelta(days=1)


def period_index(issued: date, period: str, on: date) -> int:
    """The k whose period contains `on`; -1 before the issue date."""
    if on < issued:
        return -1
    step = MONTHS[period]
    months = (on.year - issued.year) * 12 + (on.month - issued.month)
    k = max(0, months // step - 1)  # a lower bound; walk forward at most two steps
    while period_start(issued, period, k + 1) <= on:
        k += 1
    return k
