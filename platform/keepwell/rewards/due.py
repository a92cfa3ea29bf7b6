"""The rewards' due work: points whose last usable day has passed, expired lot by lot."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ..events import due
from ..events.due import DueUnit
from ..events.pipeline import post
from ..infra.context import Ctx
from . import points


def _plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    return [DueUnit("points_expiry", f"points_expired:{cid}:{through}", cid, through.isoformat(), as_of)
            for cid, through in points.next_expiry_dates(ctx, as_of)]


def _keys(ctx: Ctx, units: list[DueUnit]) -> list[str]:
    return [u.key for u in units]


def _run(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    through = date.fromisoformat(unit.subject)
    # A lot earned by a late (back-dated) event can expire through a date whose expiry event
    # exists already: that event is not run again, so the lot gets one under the next key.
    key, n = unit.key, 1
    while True:
        res = post(ctx, {"id": key, "type": "points_expired", "customer": unit.customer,
                         "occurred_at": ctx.start_of(through + timedelta(days=1)).isoformat(),
                         "data": {"through": unit.subject}}, trusted=True)
        if not res.get("duplicate"):
            return {"unit": unit.key, "expired_points": res.get("expired_points", 0)}
        if points.expirable(ctx, unit.customer, through) == 0:
            return {"unit": unit.key, "expired_points": 0}  # done before: a replay expires nothing
        n += 1
        key = f"{unit.key}:{n}"


due.kind("points_expiry", 20, _plan, _run, keys=_keys, entries_per_unit=2)
