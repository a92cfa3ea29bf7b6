"""`Ctx`: what one unit of work hands every area function — its transaction, the company it
works for, the rules engine and the clock. Built by the use-case layer, one per transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ..kernel.clock import Clock, SystemClock
from .unit import Unit, unit_of

P = TypeVar("P")


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
    gateways: Any = None  # payment gateways by name (billing.gateways): built by the composition root
    _unit: Unit | None = field(default=None, repr=False, compare=False)
    _parts: dict[type, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def unit(self) -> Unit:
        """This transaction's unit of work (looked up once: a Ctx lives for one transaction)."""
        if self._unit is None:
            self._unit = unit_of(self.session)
        return self._unit

    def part(self, cls: type[P]) -> P:
        """An area's working state in this unit of work (`Unit.part`), looked up once."""
        found = self._parts.get(cls)
        if found is None:
            found = self._parts[cls] = self.unit.part(cls)  # type: ignore[type-var]
        return found  # type: ignore[no-any-return]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.company.timezone)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.tz)

    def midday_of(self, day: date) -> str:
        """Noon of a day in the company's time zone, as ISO text: an action dated `day` lands on
        that day whatever the time zone."""
        return (self.start_of(day) + timedelta(hours=12)).isoformat()

    def today(self) -> date:
        """Today in the company's time zone, by the clock."""
        return self.local_date(self.clock.now())
