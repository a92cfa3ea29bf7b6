"""Moving memberships to another version of their plan. Memberships stay pinned to the version
they enrolled on until moved; what the current period granted stays, and the new terms apply
from the next period's grants (allowance, overdraft limit, services)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.errors import Declined, InvalidDocument, NotFound
from ..kernel.money import format_cents
from ..rulesets.models import Ruleset, RulesetVersion
from ..rulesets.versions import get_version, ref
from .memberships import members, plan_of
from .models import Membership
from .terms import resolve


def move(ctx: Ctx, m: Membership, target: str) -> None:
    rs, v = get_version(ctx.session, ctx.company.id, target)
    pinned = ctx.session.get(RulesetVersion, m.plan_version_id)
    assert pinned is not None
    current = ctx.session.get(Ruleset, pinned.ruleset_id)
    assert current is not None
    if rs.id != current.id:
        raise Declined("other_plan", f"{target} is not a version of {current.key}")
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}")
    terms = resolve(v.content, m.tier)  # NotFound when the tier is gone from that version
    if terms.period != m.period:
        raise Declined("period_changed", f"{target} has a {terms.period} period; this membership runs {m.period}")
    state = members(ctx)
    state.set(m, "plan_version_id", v.id)
    state.set(m, "auto_renewal", terms.auto_renewal)


def preview(ctx: Ctx, plan: str, target: str) -> list[dict[str, Any]]:
    """What `move` would change for every active membership of a plan not yet on `target`."""
    rs, v = get_version(ctx.session, ctx.company.id, target)
    if rs.kind != "Plan":
        raise InvalidDocument.field(
            "to", f"{target} is a {rs.kind}, not a Plan", f"{target} is a {rs.kind}, not a Plan"
        )
    rows = []
    q = (sa.select(Membership).join(RulesetVersion, RulesetVersion.id == Membership.plan_version_id)
         .where(Membership.company_id == ctx.company.id, Membership.status == "active",
                RulesetVersion.ruleset_id == rs.id, Membership.plan_version_id != v.id)
         .order_by(Membership.created_at, Membership.id))
    for m in ctx.session.scalars(q):
        old_ref, old = plan_of(ctx, m)
        try:
            new = resolve(v.content, m.tier)
            problem = (f"period changes from {m.period} to {new.period}" if new.period != m.period else
                       f"currency changes from {old.currency} to {new.currency}: balances stay in one currency"
                       if new.currency != old.currency else None)
        except NotFound as exc:
            new, problem = None, exc.message
        row: dict[str, Any] = {"membership": m.id, "customer": m.customer_id, "tier": m.tier, "from": old_ref,
                               "to": ref(rs, v), "problem": problem, "changes": {}}
        if new is not None:
            for label, a, b in (("allowance", old.allowance_cents, new.allowance_cents),
                                ("overdraft_limit", old.overdraft_limit_cents, new.overdraft_limit_cents)):
                if a != b:
                    row["changes"][label] = {"from": format_cents(a), "to": format_cents(b)}
            old_s = {s.code: s.quantity for s in old.included_services}
            new_s = {s.code: s.quantity for s in new.included_services}
            for code in sorted(set(old_s) | set(new_s)):
                if old_s.get(code, 0) != new_s.get(code, 0):
                    row["changes"][f"services.{code}"] = {"from": old_s.get(code, 0), "to": new_s.get(code, 0)}
            if old.auto_renewal != new.auto_renewal:
                row["changes"]["auto_renewal"] = {"from": old.auto_renewal, "to": new.auto_renewal}
        rows.append(row)
    return rows
