"""Time as the product sees it. Use cases ask the clock, never `date.today()`, so that every
default ("effective from today", "enrolled today") follows one source that tests can set."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that shows one moment until it is moved: for tests and rehearsals."""

    def __init__(self, moment: datetime):
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


def today_in(clock: Clock, tz: str) -> date:
    """Today's date in a time zone (a company's)."""
    return clock.now().astimezone(ZoneInfo(tz)).date()
