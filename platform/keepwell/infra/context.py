"""`Ctx`: what one unit of work hands every area function — its transaction, the company it
works for, the rules engine and the clock. Built by the use-case layer, one per transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ..kernel.clock import Clock, SystemClock
from .unit import Unit, unit_of


class Tenant(Protocol):
    """The company a unit of work is scoped to (the customers area's `Company` row)."""

    id: int
    slug: str
    name: str
    timezone: str


@dataclass
class Ctx:
    session: Session
    company: Any  # a Tenant: every query of the unit of work is scoped to company.id
    rules: Any  # the rules engine (keepwell.rulesets.engine.RulesEngine)
    clock: Clock = SystemClock()

    @property
    def unit(self) -> Unit:
        return unit_of(self.session)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.company.timezone)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.tz)

    def today(self) -> date:
        """Today in the company's time zone, by the clock."""
        return self.local_date(self.clock.now())
