"""What a membership business watches, on the admin's home page: members by plan and tier and
over the last twelve months, this month's new, renewed, cancelled and expired memberships,
recurring revenue, renewals coming up, what is owed to members (allowance, points) and what
members owe (overdraft, failed payments), and the included visits still to do this period.
Every figure is an SQL aggregate scoped to the company (and, when asked, to the customers of one
of its locations); none walks memberships in Python."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ..billing.models import BillingSchedule, Invoice
from ..customers.models import ApiKey, Customer
from ..events.models import Event
from ..infra.context import Ctx
from ..kernel.money import format_cents, share_of
from ..ledger.book import ALLOWANCE, OVERDRAFT, VISITS
from ..ledger.models import Account
from ..memberships.models import Membership
from ..rewards import economy
from ..rulesets.models import Ruleset, RulesetVersion

LIVE = ("active",)  # past due and on hold are active memberships with a standing
PER_YEAR = {"monthly": 12, "quarterly": 4, "half_yearly": 2, "yearly": 1}


def dashboard(ctx: Ctx, today: date, location: str | None = None) -> dict[str, Any]:
    """The figures as of `today`; with `location` (an id), only its customers' (points stay the
    company's: a customer's points are not kept per location)."""
    month_start = today.replace(day=1)
    at = _at(ctx, location)
    return {
        "today": today.isoformat(),
        "location": location,
        "active": _scalar(ctx, sa.select(sa.func.count()).select_from(Membership).where(*_live(ctx, at))),
        "by_plan": _by_plan(ctx, at),
        "this_month": _this_month(ctx, month_start, today, at),
        "over_time": _over_time(ctx, today, at),
        "renewals_due": {str(n): _renewals_due(ctx, today, n, at) for n in (30, 60, 90)},
        "renewals_to": {str(n): (today + timedelta(days=n)).isoformat() for n in (30, 60, 90)},
        "recurring_revenue": _recurring(ctx, at),
        "owed": _owed(ctx, today, at),
        "visits_left": _scalar(ctx, sa.select(sa.func.coalesce(sa.func.sum(Account.balance), 0))
                               .join(Membership, Membership.id == Account.owner)
                               .where(Account.company_id == ctx.company.id, Account.unit == VISITS,
                                      Account.balance > 0, *_live(ctx, at))),
        "to_chase": _to_chase(ctx, at),
        "started": _started(ctx),
    }


def _scalar(ctx: Ctx, stmt: Any) -> int:
    return int(ctx.session.scalar(stmt) or 0)


def _at(ctx: Ctx, location: str | None) -> Any:
    """The customers of one location, as a subquery (None: every customer of the company)."""
    if not location:
        return None
    return sa.select(Customer.id).where(Customer.company_id == ctx.company.id, Customer.location_id == location)


def _members(ctx: Ctx, at: Any) -> tuple[Any, ...]:
    """The memberships counted: the company's, of the location's customers when there is one."""
    mine = (Membership.company_id == ctx.company.id,)
    return mine if at is None else (*mine, Membership.customer_id.in_(at))


def _live(ctx: Ctx, at: Any = None) -> tuple[Any, ...]:
    return *_members(ctx, at), Membership.status.in_(LIVE)


def _by_plan(ctx: Ctx, at: Any) -> list[dict[str, Any]]:
    rows = ctx.session.execute(
        sa.select(Ruleset.key, Ruleset.name, Membership.tier, sa.func.count())
        .join(RulesetVersion, RulesetVersion.id == Membership.plan_version_id)
        .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
        .where(*_live(ctx, at)).group_by(Ruleset.key, Ruleset.name, Membership.tier)
        .order_by(Ruleset.key, Membership.tier))
    return [{"plan": key, "plan_name": name, "tier": tier, "members": int(n)} for key, name, tier, n in rows]


def _this_month(ctx: Ctx, start: date, today: date, at: Any) -> dict[str, int]:
    cid = ctx.company.id
    new = _scalar(ctx, sa.select(sa.func.count()).select_from(Membership).where(
        *_members(ctx, at), Membership.issued_on >= start, Membership.issued_on <= today))
    renewed = _scalar(ctx, sa.select(sa.func.count()).select_from(Event).where(
        Event.company_id == cid, Event.type == "renewed", Event.status == "processed", Event.local_date >= start,
        Event.local_date <= today, *(() if at is None else (Event.customer_id.in_(at),))))

    def ended(status: str) -> int:
        return _scalar(ctx, sa.select(sa.func.count()).select_from(Membership).where(
            *_members(ctx, at), Membership.status == status, Membership.ended_on >= start,
            Membership.ended_on <= today))

    return {"new": new, "renewed": renewed, "cancelled": ended("cancelled"), "expired": ended("expired")}


def _over_time(ctx: Ctx, today: date, at: Any) -> list[dict[str, Any]]:
    """Members at the end of each of the last twelve months (this month: today): one pass over
    the company's memberships, a count per month, rather than a query per month."""
    months = []
    month = today.replace(day=1)
    for _ in range(12):
        months.append((month, min(today, _next_month(month) - timedelta(days=1))))
        month = (month - timedelta(days=1)).replace(day=1)
    counts = [sa.func.coalesce(sa.func.sum(sa.case(
        (sa.and_(Membership.issued_on <= last, sa.or_(Membership.ended_on.is_(None), Membership.ended_on > last)), 1),
        else_=0)), 0) for _, last in months]
    found = ctx.session.execute(sa.select(*counts).where(*_members(ctx, at))).one()
    return [{"month": m.strftime("%Y-%m"), "members": int(n)} for (m, _), n in zip(months, found)][::-1]


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def _renewals_due(ctx: Ctx, today: date, days: int, at: Any) -> int:
    return _scalar(ctx, sa.select(sa.func.count()).select_from(Membership).where(
        *_live(ctx, at), Membership.expires_on >= today, Membership.expires_on <= today + timedelta(days=days)))


def yearly_cents(s: Any = BillingSchedule) -> Any:
    """A billing schedule's price over a year (the price times its billings a year), in SQL: exact
    in cents; a month's is this over twelve, rounded once (`share_of`). `s`: the schedule table
    or an alias of it."""
    return sa.case(*((s.cadence == c, s.price_cents * n) for c, n in PER_YEAR.items()), else_=0)


def _recurring(ctx: Ctx, at: Any) -> dict[str, Any]:
    """MRR and ARR of the memberships billed on a schedule that has not been asked to end, by
    currency: each price times its billings a year, exact in cents until the MRR is rounded."""
    yearly = yearly_cents()
    rows = ctx.session.execute(
        sa.select(BillingSchedule.currency, sa.func.coalesce(sa.func.sum(yearly), 0), sa.func.count())
        .join(Membership, Membership.id == BillingSchedule.membership_id)
        .where(BillingSchedule.company_id == ctx.company.id, BillingSchedule.ends_on.is_(None), *_live(ctx, at))
        .group_by(BillingSchedule.currency).order_by(BillingSchedule.currency))
    return {"currencies": [{"currency": cur, "arr": format_cents(int(arr)),
                            "mrr": format_cents(share_of(int(arr), 1, 12)), "billed_members": int(n)}
                           for cur, arr, n in rows]}


def _owed(ctx: Ctx, today: date, at: Any) -> dict[str, Any]:
    def total(unit: str, positive: bool) -> int:
        return _scalar(ctx, sa.select(sa.func.coalesce(sa.func.sum(Account.balance), 0))
                       .join(Membership, Membership.id == Account.owner)
                       .where(Account.company_id == ctx.company.id, Account.unit == unit,
                              Account.balance > 0 if positive else Account.balance < 0, *_live(ctx, at)))

    points, worth = economy.outstanding(ctx, today)
    return {"allowance": format_cents(total(ALLOWANCE, True)), "overdraft_used": format_cents(-total(OVERDRAFT, False)),
            "points": points, "points_liability": worth}


def _to_chase(ctx: Ctx, at: Any) -> dict[str, Any]:
    cid = ctx.company.id
    standing = dict(ctx.session.execute(
        sa.select(Membership.standing, sa.func.count()).where(
            *_members(ctx, at), Membership.status == "active", Membership.standing.is_not(None))
        .group_by(Membership.standing)).all())
    due = ctx.session.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Invoice.amount_due_cents), 0))
                              .where(Invoice.company_id == cid, Invoice.status == "open", Invoice.amount_due_cents > 0,
                                     *(() if at is None else (Invoice.customer_id.in_(at),)))).one()
    return {"past_due": int(standing.get("past_due", 0)), "suspended": int(standing.get("suspended", 0)),
            "open_invoices": int(due[0]), "amount_due": format_cents(int(due[1]))}


def _started(ctx: Ctx) -> dict[str, bool]:
    """The "Get started" steps a company has done."""
    cid = ctx.company.id

    def exists(model: Any) -> bool:
        return ctx.session.scalar(sa.select(model.company_id).where(model.company_id == cid).limit(1)) is not None

    return {"pack_installed": exists(Ruleset), "customer_added": exists(Customer),
            "member_enrolled": exists(Membership), "key_created": exists(ApiKey)}
