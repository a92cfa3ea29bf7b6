"""The memberships' due work: periods that have ended, closed (and renewed or expired)."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..events import due
from ..events.due import DueUnit
from ..infra.context import Ctx
from ..kernel.errors import NotFound
from . import memberships, renewal
from .models import Membership


def _plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    return [DueUnit("period_end", f"due:period_end:{mid}:{as_of}", cid, mid, as_of)
            for mid, cid in memberships.due_for_close(ctx, as_of)]


def _keys(ctx: Ctx, units: list[DueUnit]) -> list[str]:
    keys = []
    for u in units:
        m = memberships.members(ctx).by_id.get(u.subject)
        if m is not None:
            keys += renewal.period_keys(m)
    return keys


def own_membership(ctx: Ctx, unit: DueUnit, lock: bool = False) -> Membership:
    """The unit's membership, which must be the unit's customer's: the customer row is what
    serialises writers, so work on another customer's membership under this lock is refused."""
    m = memberships.get(ctx, unit.subject, lock=lock)
    if m.customer_id != unit.customer:
        raise NotFound(f"membership {m.id!r} does not belong to customer {unit.customer!r}")
    return m


def _run(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    m = own_membership(ctx, unit, lock=True)
    closed = renewal.catch_up(ctx, m, unit.as_of, for_event=False)
    return {"unit": unit.key, "periods_closed": len(closed), "status": m.status, "expires_on": m.expires_on.isoformat()}


due.kind("period_end", 10, _plan, _run, keys=_keys, entries_per_unit=6)
