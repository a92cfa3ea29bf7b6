"""Due work: what is due by a date, one unit (what a worker job does), or all of it in chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..events import due
from ..events.due import DueUnit
from ..infra.context import Ctx
from .app import Keepwell, use_case

BATCH = 500  # units of due work per transaction

__all__ = ["BATCH", "DueRun", "DueUnit", "plan", "run", "run_unit"]


@use_case
def plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    """Everything due up to `as_of`: period ends, points expiries, reminders."""
    return due.plan(ctx, as_of)


@use_case
def run_unit(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    return due.run_unit(ctx, unit)


@dataclass(frozen=True)
class DueRun:
    as_of: date
    units: int
    periods_closed: int
    points_expired: int
    reminders_queued: int
    invoices_issued: int = 0
    charged: int = 0  # invoices paid by card
    failed: int = 0  # card payments that failed
    retried: int = 0  # attempts after a failure (whatever their outcome)
    by_kind: dict[str, int] | None = None  # units done, per kind of due work

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "units": self.units, "periods_closed": self.periods_closed,
                "points_expired": self.points_expired, "reminders_queued": self.reminders_queued,
                "invoices_issued": self.invoices_issued, "charged": self.charged, "failed": self.failed,
                "retried": self.retried, "by_kind": dict(self.by_kind or {})}


def run(app: Keepwell, company: str, as_of: date, progress: Callable[[int, int], None] | None = None,
        chunk: int = BATCH, as_sets: bool = True, kinds: set[str] | None = None) -> DueRun:
    """Run everything due up to `as_of`, in chunks of units, one transaction per chunk; repeat
    until nothing is left (closing a period can make the next reminder due). `as_sets=False`
    runs every unit through the event pipeline (what the set-based path is compared with);
    `kinds` runs only those kinds of due work (billing alone, say)."""
    units = periods = points = reminders = invoices = 0
    paid = {"charged": 0, "failed": 0, "retried": 0}
    seen: set[str] = set()
    by_kind: dict[str, int] = {}
    while True:
        todo = [u for u in plan(app, company, as_of) if u.key not in seen and (kinds is None or u.kind in kinds)]
        if not todo:
            break
        for i in range(0, len(todo), chunk):
            part = todo[i:i + chunk]
            for r in app.run(company, lambda c, part=part: due.run_units(c, part, as_sets)):
                units += 1
                periods += r.get("periods_closed", 0)
                points += r.get("expired_points", 0)
                reminders += 1 if r.get("queued") else 0
                invoices += r.get("invoices_issued", 0)
                for k in paid:
                    paid[k] += r.get(k, 0)
            seen.update(u.key for u in part)
            for u in part:
                by_kind[u.kind] = by_kind.get(u.kind, 0) + 1
            if progress:
                progress(min(i + chunk, len(todo)), len(todo))
    return DueRun(as_of, units, periods, points, reminders, invoices, **paid, by_kind=by_kind)
