"""The memberships' due work: periods that have ended, closed (and renewed or expired).

Most period ends are alike: thousands of members of one plan version and tier whose period ended
on the same day, none of whose events any rule reacts to. Those are done as a set (`close_many`):
the plan terms, the moment and the rules' verdict are decided once per group, the memberships are
read and locked as plain rows in a few queries, and each member's events, entries and answer are
made by the same code the pipeline runs (`renewal.close_period`, `pipeline.record_platform`) and
written with the chunk's COPY. A unit the set cannot take (its customer has other work in the
chunk, it closes more than one period, an event of it is stored already, a rule may react to
its events) is left to the pipeline, one at a time. tests/test_due_sets.py runs random histories
both ways and compares every row.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..events import due, pipeline
from ..events.due import DueUnit
from ..infra.context import Ctx
from ..kernel.errors import NotFound
from ..ledger import book
from ..rulesets.in_force import may_fire
from . import memberships, renewal
from .models import AnyMembership, Membership, MembershipRow


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


def _done(unit: DueUnit, m: AnyMembership, closed: int) -> dict[str, Any]:
    return {"unit": unit.key, "periods_closed": closed, "status": m.status, "expires_on": m.expires_on.isoformat()}


def _run(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    m = own_membership(ctx, unit, lock=True)
    closed = renewal.catch_up(ctx, m, unit.as_of, for_event=False)
    return _done(unit, m, len(closed))


def close_many(ctx: Ctx, units: list[DueUnit], names: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Close, as a set, the period ends among `units` that a set can take (see the module
    docstring); their results by unit key. The caller holds the customers' locks (`names`)."""
    rows = memberships.lock_rows(ctx, [u.subject for u in units])
    fit = [(u, m) for u in units if (m := rows.get(u.subject)) is not None and m.customer_id == u.customer
           and u.customer in names and renewal.closes_once(m, u.as_of)]
    pipeline.lookup_keys(ctx, [k for _u, m in fit for k in renewal.period_keys(m)])
    fit = [(u, m) for u, m in fit if all(pipeline.stored(ctx, k) is None for k in renewal.period_keys(m))]
    book(ctx).load_owners([m.id for _u, m in fit] + [m.customer_id for _u, m in fit])
    groups: dict[tuple[int, str, date, bool], list[tuple[DueUnit, MembershipRow]]] = {}
    for u, m in fit:
        groups.setdefault((m.plan_version_id, m.tier, m.expires_on, m.auto_renewal), []).append((u, m))
    out: dict[str, dict[str, Any]] = {}
    for (_version, _tier, ended, renews), group in groups.items():
        local = ctx.local_date(ctx.start_of(ended + renewal.ONE_DAY))
        if any(may_fire(ctx, t, local) for t in ("period_ended", "renewed" if renews else "expired")):
            continue  # a rule may react (and read the member): the pipeline does these
        plan = memberships.plan_of(ctx, group[0][1])
        for u, m in group:
            renewal.close_period_event(ctx, m, _poster(ctx, m, names[m.customer_id], plan))
            out[u.key] = _done(u, m, 1)
    return out


def _poster(ctx: Ctx, m: MembershipRow, name: str, plan: Any) -> renewal.Poster:
    def close(c: Ctx, event: Any, data: dict, local: date) -> dict[str, Any]:
        return renewal.close_period(c, m, event.id, plan)

    def post(payload: dict[str, Any]) -> dict[str, Any]:
        return pipeline.record_platform(ctx, payload, name, close if payload["type"] == "period_ended" else None)

    return post


due.kind("period_end", 10, _plan, _run, keys=_keys, entries_per_unit=6, many=close_many)
