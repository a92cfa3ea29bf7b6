"""Memberships: enrolment on a pinned plan version, the membership an event is about, cancelling,
and the view a member or a POS sees.

The memberships a unit of work touches are loaded (and locked, after their customer) once, into
the `Members` part of the unit; changes to them are written together at its flush.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from ..customers.models import Customer
from ..infra import bulk
from ..infra.context import Ctx
from ..infra.sql import chunks, one_of
from ..infra.unit import Unit
from ..kernel.errors import Declined, InvalidDocument, NotFound
from ..kernel.ids import new_id
from ..kernel.periods import period_end, period_index, period_start
from ..ledger import Posting
from ..rulesets import in_force as rules_in_force
from ..rulesets.models import Ruleset, RulesetVersion
from ..rulesets.versions import get_version, in_force, ref
from . import allowance, entitlements
from .models import AnyMembership, Membership, MembershipRow
from .terms import PlanTerms, resolve, terms_of

_MEMBERS: sa.Table = Membership.__table__  # type: ignore[assignment]
_COLUMNS = ("plan_version_id", "current_period", "expires_on", "auto_renewal", "status", "ended_on")


class Members:
    """The memberships' part of a unit of work: those loaded (with their customers) and the ones
    changed, written with one statement at the flush."""

    def __init__(self, unit: Unit):
        self.unit = unit
        self.of_customer: dict[str, list[Membership]] = {}  # customer id -> all its memberships
        self.by_id: dict[str, Membership] = {}
        self.dirty: dict[str, AnyMembership] = {}

    def set(self, m: AnyMembership, attr: str, value: Any) -> None:
        """Change a stored membership's column: written by the flush with the others in one
        statement (the ORM sees the value as already stored, so it writes no UPDATE of its own)."""
        old = getattr(m, attr)
        put = set_committed_value if isinstance(m, Membership) else setattr
        put(m, attr, value)
        self.unit.on_undo(lambda: put(m, attr, old))
        self.dirty[m.id] = m

    def before_flush(self) -> None:
        pass

    def after_flush(self, writes: bulk.Writes) -> None:
        writes.update(_MEMBERS, [{"id": m.id, **{c: getattr(m, c) for c in _COLUMNS}} for m in self.dirty.values()])
        self.dirty.clear()


def members(ctx: Ctx) -> Members:
    return ctx.part(Members)


def plan_of(ctx: Ctx, m: AnyMembership) -> tuple[str, PlanTerms]:
    """The plan version a membership is pinned to (id@version) and its terms for the tier."""
    v = rules_in_force.version(ctx, m.plan_version_id)
    if v is not None:
        return v.ref, terms_of(v.content_hash, v.content, m.tier)
    row = ctx.session.get(RulesetVersion, m.plan_version_id)
    assert row is not None
    rs = ctx.session.get(Ruleset, row.ruleset_id)
    assert rs is not None
    return ref(rs, row), terms_of(row.content_hash, row.content, m.tier)


def load(ctx: Ctx, customer_ids: list[str]) -> None:
    """Load (and lock) every membership of these customers, in a few queries; the pipeline then
    finds them without asking the database again. The callers hold the customers' locks: the
    memberships are locked in the same order."""
    state = members(ctx)
    todo = sorted({c for c in customer_ids if c not in state.of_customer})
    for part in chunks(ctx.session, todo):
        for c in part:
            state.of_customer[c] = []
        q = (sa.select(Membership).where(Membership.company_id == ctx.company.id,
                                         one_of(ctx.session, Membership.customer_id, part))
             .order_by(Membership.created_at, Membership.id).with_for_update())
        for m in ctx.session.scalars(q):
            state.of_customer[m.customer_id].append(m)
            state.by_id[m.id] = m


def lock_rows(ctx: Ctx, membership_ids: list[str]) -> dict[str, MembershipRow]:
    """Lock and read these memberships as plain rows (no ORM objects: set-based due work reads
    thousands). The caller holds their customers' locks."""
    cols = [_MEMBERS.c[name] for name in MembershipRow.__slots__]
    out: dict[str, MembershipRow] = {}
    for part in chunks(ctx.session, sorted(set(membership_ids))):
        q = (sa.select(*cols).where(_MEMBERS.c.company_id == ctx.company.id, one_of(ctx.session, _MEMBERS.c.id, part))
             .order_by(_MEMBERS.c.id).with_for_update())
        for row in ctx.session.execute(q):
            out[row[0]] = MembershipRow(*row)
    return out


def of_customer(ctx: Ctx, customer_id: str) -> list[Membership]:
    """All memberships of a customer (any status), oldest first."""
    state = members(ctx)
    found = state.of_customer.get(customer_id)
    if found is None:
        load(ctx, [customer_id])
        found = state.of_customer[customer_id]
    return found


def get(ctx: Ctx, membership_id: str, lock: bool = False) -> Membership:
    m = members(ctx).by_id.get(membership_id)  # loaded, and locked, with its customer's
    if m is not None:
        return m
    q = sa.select(Membership).where(Membership.company_id == ctx.company.id, Membership.id == membership_id)
    if lock:
        q = q.with_for_update()
    found = ctx.session.scalar(q)
    if found is None:
        raise NotFound(f"no membership {membership_id!r}")
    return found


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


def plan_version(ctx: Ctx, plan: str, on: date) -> tuple[Ruleset, RulesetVersion]:
    """The Plan version enrolment on `on` uses: the one named (id@N), else the one in force."""
    rs, v = (
        get_version(ctx.session, ctx.company.id, plan)
        if "@" in plan
        else in_force(ctx.session, ctx.company.id, plan, on)
    )
    if rs.kind != "Plan":
        raise NotFound(f"{plan!r} is a {rs.kind}, not a Plan")
    return rs, v


def enroll(ctx: Ctx, customer: Customer, plan: str, tier: str | None, on: date, event_id: int,
           allow_second: bool = False, replaces: str | None = None) -> Membership:
    rs, v = plan_version(ctx, plan, on)
    terms = resolve(v.content, tier)
    if not allow_second:
        same = [m for m in of_customer(ctx, customer.id) if m.status == "active" and _plan_key(ctx, m) == rs.key]
        if same:
            raise Declined("already_member", f"{customer.name} already has an active {terms.plan_name} membership "
                           f"({same[0].id}); cancel it, change its tier, or allow a second one", membership=same[0].id)
    m = Membership(
        id=new_id("mem"), company_id=ctx.company.id, customer_id=customer.id, plan_version_id=v.id, tier=terms.tier,
        period=terms.period, issued_on=on, current_period=0, expires_on=period_end(on, terms.period, 0),
        auto_renewal=terms.auto_renewal, status="active", replaces=replaces,
    )
    ctx.session.add(m)
    ctx.session.flush()
    _remember(ctx, m)
    why = Posting(event_id, ref(rs, v), "", on, 0)
    allowance.open_period(ctx, m, terms, why)
    entitlements.open_period(ctx, m, terms, why)
    return m


def _plan_key(ctx: Ctx, m: Membership) -> str:
    return plan_of(ctx, m)[0].split("@")[0]


def _remember(ctx: Ctx, m: Membership) -> None:
    """A new membership joins its customer's list (and leaves it, with its row, if the event that
    created it is undone)."""
    state = members(ctx)
    listed = of_customer(ctx, m.customer_id)
    if m not in listed:
        listed.append(m)
    state.by_id[m.id] = m

    def undo() -> None:
        if m in listed:
            listed.remove(m)
        state.by_id.pop(m.id, None)
        if m in ctx.session.new:
            ctx.session.expunge(m)
        else:
            ctx.session.delete(m)

    ctx.unit.on_undo(undo)


def cancel(ctx: Ctx, m: Membership, on: date) -> None:
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}")
    state = members(ctx)
    state.set(m, "status", "cancelled")
    state.set(m, "ended_on", on)


def current_period_of(m: Membership, on: date) -> int:
    return period_index(m.issued_on, m.period, on)


def view(ctx: Ctx, m: Membership) -> dict[str, Any]:
    plan_ref, terms = plan_of(ctx, m)
    customer = ctx.session.get(Customer, m.customer_id)
    assert customer is not None
    k = m.current_period
    return {
        "id": m.id,
        "customer": {"id": customer.id, "name": customer.name, "email": customer.email},
        "status": (m.standing or m.status) if m.status == "active" else m.status,  # past_due | suspended
        "plan": plan_ref,
        "plan_name": terms.plan_name,
        "tier": m.tier,
        "tier_name": terms.tier_name,
        "issued_on": m.issued_on.isoformat(),
        "period": {"kind": m.period, "index": k, "start": period_start(m.issued_on, m.period, k).isoformat(),
                   "end": period_end(m.issued_on, m.period, k).isoformat()},
        "expires_on": m.expires_on.isoformat(),
        "auto_renewal": m.auto_renewal,
        "members_choose_renewal": terms.members_choose_renewal and terms.auto_renewal,
        "ended_on": m.ended_on.isoformat() if m.ended_on else None,
        "allowance": allowance.state(ctx, m, terms).to_dict() if terms.has_allowance else None,
        "services": entitlements.usage(ctx, m, terms),
        "discount_percent": terms.discount_percent,
        "priority": terms.priority,
        "emergency": terms.emergency,
    }


def of_plan(ctx: Ctx, plan: str) -> sa.ColumnElement[bool]:
    """The condition "a membership of plan `plan`, on any of its versions"."""
    return Membership.plan_version_id.in_(
        sa.select(RulesetVersion.id).join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
        .where(Ruleset.company_id == ctx.company.id, Ruleset.key == plan))


def page(ctx: Ctx, limit: int, after: str | None = None, customer: str | None = None, plan: str | None = None,
         status: str | None = None) -> tuple[list[Membership], bool]:
    """Memberships oldest first, after the membership `after` (a cursor), of one customer, plan
    (any of its versions) and/or status; and whether more follow."""
    stmt = sa.select(Membership).where(Membership.company_id == ctx.company.id)
    if customer:
        stmt = stmt.where(Membership.customer_id == customer)
    if status in ("past_due", "suspended"):  # active, with billing's say on its standing
        stmt = stmt.where(Membership.status == "active", Membership.standing == status)
    elif status:
        stmt = stmt.where(Membership.status == status)
    if plan:
        stmt = stmt.where(of_plan(ctx, plan))
    if after:
        mark = ctx.session.execute(sa.select(Membership.created_at, Membership.id).where(
            Membership.company_id == ctx.company.id, Membership.id == after)).first()
        if mark is None:
            raise InvalidDocument.field("starting_after", f"no membership {after!r} to start after")
        stmt = stmt.where(sa.or_(Membership.created_at > mark[0],
                                 sa.and_(Membership.created_at == mark[0], Membership.id > mark[1])))
    rows = list(ctx.session.scalars(stmt.order_by(Membership.created_at, Membership.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def due_for_close(ctx: Ctx, as_of: date) -> list[tuple[str, str]]:
    """(membership, customer) pairs whose current period ended before `as_of`: earliest end
    first, and a customer's memberships ending together oldest first (the order their events,
    and the points rules give for them, take)."""
    rows = ctx.session.execute(
        sa.select(Membership.id, Membership.customer_id)
        .where(Membership.company_id == ctx.company.id, Membership.status == "active", Membership.expires_on < as_of)
        .order_by(Membership.expires_on, Membership.created_at, Membership.id)
    )
    return [(mid, cid) for mid, cid in rows]


def all_of_company(ctx: Ctx) -> list[Membership]:
    return list(ctx.session.scalars(sa.select(Membership).where(Membership.company_id == ctx.company.id)))
