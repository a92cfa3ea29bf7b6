"""Memberships: enrolment on a pinned plan version, periods that close and renew, the view a
member or a POS sees."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from . import allowance, entitlements
from .errors import NotFound
from .ledger import Posting, book
from .models import Customer, Membership, Ruleset, RulesetVersion
from .outcomes import Declined
from .periods import period_end, period_index, period_start
from .plans import PlanTerms, resolve
from .tenancy import Ctx, new_id
from .versions import get_version, in_force, ref


_terms: dict[tuple[str, str | None], PlanTerms] = {}


def terms_of(content_hash: str, content: dict, tier: str | None) -> PlanTerms:
    """A plan version's terms for a tier; published versions never change, so this is cached."""
    key = (content_hash, tier)
    found = _terms.get(key)
    if found is None:
        found = _terms[key] = resolve(content, tier)
    return found


def plan_of(ctx: Ctx, m: Membership) -> tuple[str, PlanTerms]:
    from .rules import version

    v = version(ctx, m.plan_version_id)
    if v is not None:
        return v.ref, terms_of(v.content_hash, v.content, m.tier)
    v = ctx.session.get(RulesetVersion, m.plan_version_id)
    rs = ctx.session.get(Ruleset, v.ruleset_id)
    return ref(rs, v), terms_of(v.content_hash, v.content, m.tier)


def load(ctx: Ctx, customer_ids) -> None:
    """Load (and lock) every membership of these customers into the transaction's book, in a
    few queries; the event pipeline then finds them without asking the database again. The
    callers hold the customers' locks: the memberships are locked in the same order."""
    b = book(ctx)
    todo = sorted({c for c in customer_ids if c not in b.members})
    for i in range(0, len(todo), 500):
        part = todo[i:i + 500]
        for c in part:
            b.members[c] = []
        q = (sa.select(Membership).where(Membership.company_id == ctx.company.id, Membership.customer_id.in_(part))
             .order_by(Membership.created_at, Membership.id).with_for_update())
        for m in ctx.session.scalars(q):
            b.members[m.customer_id].append(m)
            b.member_ids[m.id] = m


def of_customer(ctx: Ctx, customer_id: str) -> list[Membership]:
    """All memberships of a customer (any status), oldest first."""
    b = book(ctx)
    found = b.members.get(customer_id)
    if found is None:
        load(ctx, [customer_id])
        found = b.members[customer_id]
    return found


def get(ctx: Ctx, membership_id: str, lock: bool = False) -> Membership:
    m = book(ctx).member_ids.get(membership_id)  # loaded, and locked, with its customer's
    if m is not None:
        return m
    q = sa.select(Membership).where(Membership.company_id == ctx.company.id, Membership.id == membership_id)
    if lock:
        q = q.with_for_update()
    m = ctx.session.scalar(q)
    if m is None:
        raise NotFound(f"no membership {membership_id!r}")
    return m


def active_for(ctx: Ctx, customer_id: str, membership_id: str | None = None) -> Membership | None:
    """The membership an event is about: the one named, or the customer's only active one."""
    if membership_id:
        m = get(ctx, membership_id)
        if m.customer_id != customer_id:
            raise NotFound(f"membership {membership_id!r} does not belong to customer {customer_id!r}")
        return m
    found = [m for m in of_customer(ctx, customer_id) if m.status == "active"]
    if len(found) > 1:
        raise Declined("ambiguous_membership", "customer has several active memberships: name one in data.membership",
                       memberships=[m.id for m in found])
    return found[0] if found else None


def likely_for(ctx: Ctx, customer_id: str, service_code: str | None) -> Membership | None:
    """The active membership an unnamed event most likely concerns, for customers with several:
    the oldest one covering the service code when there is one, else the oldest."""
    found = [m for m in of_customer(ctx, customer_id) if m.status == "active"]
    if service_code:
        covering = [m for m in found if plan_of(ctx, m)[1].service(service_code) is not None]
        if covering:
            return covering[0]
    return found[0] if found else None


def enroll(ctx: Ctx, customer: Customer, plan: str, tier: str | None, on: date, event_id: int) -> Membership:
    if "@" in plan:
        rs, v = get_version(ctx.session, ctx.company.id, plan)
    else:
        rs, v = in_force(ctx.session, ctx.company.id, plan, on)
    if rs.kind != "Plan":
        raise NotFound(f"{plan!r} is a {rs.kind}, not a Plan")
    terms = resolve(v.content, tier)
    m = Membership(
        id=new_id("mem"), company_id=ctx.company.id, customer_id=customer.id, plan_version_id=v.id, tier=terms.tier,
        period=terms.period, issued_on=on, current_period=0, expires_on=period_end(on, terms.period, 0),
        auto_renewal=terms.auto_renewal, status="active",
    )
    ctx.session.add(m)
    ctx.session.flush()
    _remember(ctx, m)
    why = Posting(event_id, ref(rs, v), "", on, 0)
    allowance.open_period(ctx, m, terms, why)
    entitlements.open_period(ctx, m, terms, why)
    return m


def _remember(ctx: Ctx, m: Membership) -> None:
    """A new membership joins its customer's list in the book (and leaves it, with its row, if
    the event that created it is undone)."""
    b = book(ctx)
    listed = of_customer(ctx, m.customer_id)
    if m not in listed:
        listed.append(m)
    b.member_ids[m.id] = m

    def undo() -> None:
        if m in listed:
            listed.remove(m)
        b.member_ids.pop(m.id, None)
        if m in ctx.session.new:
            ctx.session.expunge(m)
        else:
            ctx.session.delete(m)

    b.undo.append(undo)


def migrate(ctx: Ctx, m: Membership, target: str) -> None:
    """Move a membership to another version of its plan. What the current period granted stays;
    the new terms apply from the next period's grants (allowance, overdraft limit, services)."""
    rs, v = get_version(ctx.session, ctx.company.id, target)
    current_rs = ctx.session.get(Ruleset, ctx.session.get(RulesetVersion, m.plan_version_id).ruleset_id)
    if rs.id != current_rs.id:
        raise Declined("other_plan", f"{target} is not a version of {current_rs.key}")
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}")
    terms = resolve(v.content, m.tier)  # NotFound when the tier is gone from that version
    if terms.period != m.period:
        raise Declined("period_changed", f"{target} has a {terms.period} period; this membership runs {m.period}")
    b = book(ctx)
    b.set_member(m, "plan_version_id", v.id)
    b.set_member(m, "auto_renewal", terms.auto_renewal)


def migration_preview(ctx: Ctx, plan: str, target: str) -> list[dict]:
    """What `migrate` would change for every active membership of a plan not yet on `target`."""
    from .errors import KeepwellError

    rs, v = get_version(ctx.session, ctx.company.id, target)
    if rs.kind != "Plan":
        raise KeepwellError(f"{target} is a {rs.kind}, not a Plan")
    rows = []
    q = (sa.select(Membership).join(RulesetVersion, RulesetVersion.id == Membership.plan_version_id)
         .where(Membership.company_id == ctx.company.id, Membership.status == "active",
                RulesetVersion.ruleset_id == rs.id, Membership.plan_version_id != v.id)
         .order_by(Membership.created_at, Membership.id))
    for m in ctx.session.scalars(q):
        old_ref, old = plan_of(ctx, m)
        try:
            new = resolve(v.content, m.tier)
            problem = None if new.period == m.period else f"period changes from {m.period} to {new.period}"
        except NotFound as exc:
            new, problem = None, exc.message
        row = {"membership": m.id, "customer": m.customer_id, "tier": m.tier, "from": old_ref, "to": ref(rs, v),
               "problem": problem, "changes": {}}
        if new is not None:
            from .money import format_cents

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


def close_period(ctx: Ctx, m: Membership, event_id: int) -> dict:
    """Close the current period: renew into the next one, or expire the membership."""
    plan_ref, terms = plan_of(ctx, m)
    k = m.current_period
    next_start = period_start(m.issued_on, m.period, k + 1)
    renew = m.auto_renewal
    why = Posting(event_id, plan_ref, "", next_start, k + 1 if renew else k)
    allowance.close_period(ctx, m, terms, why, renew)
    entitlements.close_period(ctx, m, terms, why, renew)
    b = book(ctx)
    if renew:
        b.set_member(m, "current_period", k + 1)
        b.set_member(m, "expires_on", period_end(m.issued_on, m.period, k + 1))
    else:
        b.set_member(m, "status", "expired")
        b.set_member(m, "ended_on", m.expires_on)
    return {"membership": m.id, "closed_period": k, "renewed": renew, "status": m.status,
            "expires_on": m.expires_on.isoformat()}


def cancel(ctx: Ctx, m: Membership, on: date) -> None:
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}")
    b = book(ctx)
    b.set_member(m, "status", "cancelled")
    b.set_member(m, "ended_on", on)


def current_period_of(m: Membership, on: date) -> int:
    return period_index(m.issued_on, m.period, on)


def view(ctx: Ctx, m: Membership) -> dict:
    plan_ref, terms = plan_of(ctx, m)
    customer = ctx.session.get(Customer, m.customer_id)
    k = m.current_period
    out = {
        "id": m.id,
        "customer": {"id": customer.id, "name": customer.name, "email": customer.email},
        "status": m.status,
        "plan": plan_ref,
        "plan_name": terms.plan_name,
        "tier": m.tier,
        "tier_name": terms.tier_name,
        "issued_on": m.issued_on.isoformat(),
        "period": {"kind": m.period, "index": k, "start": period_start(m.issued_on, m.period, k).isoformat(),
                   "end": period_end(m.issued_on, m.period, k).isoformat()},
        "expires_on": m.expires_on.isoformat(),
        "auto_renewal": m.auto_renewal,
        "ended_on": m.ended_on.isoformat() if m.ended_on else None,
        "allowance": allowance.state(ctx, m, terms).to_dict() if terms.has_allowance else None,
        "services": entitlements.usage(ctx, m, terms),
        "discount_percent": terms.discount_percent,
        "priority": terms.priority,
        "emergency": terms.emergency,
    }
    return out


def due_for_close(ctx: Ctx, as_of: date) -> list[tuple[str, str]]:
    """(membership, customer) pairs whose current period ended before `as_of`."""
    rows = ctx.session.execute(
        sa.select(Membership.id, Membership.customer_id)
        .where(Membership.company_id == ctx.company.id, Membership.status == "active", Membership.expires_on < as_of)
        .order_by(Membership.expires_on, Membership.id)
    )
    return [(mid, cid) for mid, cid in rows]
