"""Operations: the included visits members were entitled to against those delivered (by month and
by service), the members with visits or allowance left in a period about to end (to call them
in before it expires), and failed payments with how many were recovered. SQL sums over the
visits and allowance ledger, the invoices and the payments, grouped — nothing walks members."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ...billing.models import Invoice, Payment
from ...customers.models import Customer
from ...infra.context import Ctx
from ...kernel.periods import period_end, period_index
from ...ledger.book import ALLOWANCE, VISITS
from ...ledger.models import Account, LedgerEntry
from ...memberships.models import Membership
from ...rulesets.models import Ruleset, RulesetVersion
from ..catalog import Params, currency, membership_scope, report
from ..report import Chart, Column, Report, Section, percent
from .points import month_keys

NEAR_DAYS = 30  # "near expiry": the period ends within this many days of the last day
VISIT_COLUMNS = (Column("entitled", "Visits entitled", "int"), Column("delivered", "Visits delivered", "int"),
                 Column("expired", "Unused visits expired", "int"),
                 Column("delivered_pct", "Delivered", "percent"))
UNUSED = (Column("customer", "Customer"), Column("membership", "Membership"), Column("plan", "Plan"),
          Column("tier", "Tier"), Column("visits", "Unused visits", "int"),
          Column("services", "Visits left by service"),
          Column("allowance", "Unused allowance", "money"), Column("period_end", "Period ends", "date"))
PAYMENTS = (Column("month", "Month"), Column("attempts", "Failed payment attempts", "int"),
            Column("attempts_amount", "Amount of failed attempts", "money"),
            Column("invoices", "Invoices that failed", "int"),
            Column("invoices_amount", "Amount of those invoices", "money"),
            Column("recovered", "Recovered (paid since)", "int"),
            Column("recovered_amount", "Amount recovered", "money"),
            Column("written_off", "Written off", "int"), Column("recovery_rate", "Recovery rate", "percent"))
_DELIVERED = "plan.services.%"  # the rule of a visit used by a completed service (plan.services.CODE.used)


@report("operations", "Operations",
        "Included visits entitled and delivered by month and by service; members with unused visits or "
        "allowance whose period ends within 30 days; failed payments and how many were recovered.",
        filters=("from", "to", "location", "plan", "tier"))
def operations(ctx: Ctx, p: Params) -> Report:
    by_month, by_service = _visits(ctx, p)
    return Report("operations", "Operations", p.shown(), currency(ctx, p),
                  [by_month, by_service, _unused(ctx, p), _payments(ctx, p)])


def _scoped(ctx: Ctx, p: Params) -> bool:
    return bool(p.location or p.plan or p.tier)


def _visits(ctx: Ctx, p: Params) -> tuple[Section, Section]:
    e = LedgerEntry
    year, month = sa.extract("year", e.effective_date), sa.extract("month", e.effective_date)

    def total(cond: Any, sign: int = 1) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, sign * e.amount), else_=0)), 0)

    used = sa.and_(e.kind == "debit", e.rule.like(_DELIVERED))
    q = (sa.select(year, month, Account.code,
                   total(e.kind == "grant"), total(sa.and_(e.kind == "debit", sa.not_(e.rule.like(_DELIVERED)))),
                   total(used, -1), total(e.kind == "expire", -1))
         .select_from(e).join(Account, Account.id == e.account_id)
         .where(e.company_id == ctx.company.id, Account.company_id == ctx.company.id, Account.unit == VISITS,
                e.effective_date >= p.start, e.effective_date <= p.end)
         .group_by(year, month, Account.code))
    if _scoped(ctx, p):
        q = q.where(Account.owner.in_(sa.select(Membership.id).where(*membership_scope(ctx, p))))
    months = {k: [0, 0, 0] for k in month_keys(p.start, p.end)}
    services: dict[str, list[int]] = {}
    for y, m, code, granted, taken_back, delivered, expired in ctx.session.execute(q):
        figures = (int(granted) + int(taken_back), int(delivered), int(expired))
        for row in (months[f"{int(y):04d}-{int(m):02d}"], services.setdefault(code, [0, 0, 0])):
            for i, v in enumerate(figures):
                row[i] += v
    note = ("Entitled: the included visits granted in the month (each period's, and extra visits from rewards), "
            "less visits taken back (a cancelled reward, visits already used on a previous tier). Delivered: "
            "visits used by completed services in the month. Expired: visits left unused at a period's end.")
    by_month = Section("visits-by-month", "Included visits by month", (Column("month", "Month"), *VISIT_COLUMNS),
                       note=note)
    for key, (ent, dlv, exp) in months.items():
        by_month.add(key, ent, dlv, exp, percent(dlv, ent))
    by_month.add("Total", *_totals(months.values()))
    by_month.chart = Chart("bars", "Included visits entitled and delivered", list(months),
                           {"Entitled": [r[0] for r in months.values()],
                            "Delivered": [r[1] for r in months.values()]})
    by_service = Section("visits-by-service", "Included visits by service", (Column("service", "Service"),
                                                                           *VISIT_COLUMNS), note=note)
    for code in sorted(services):
        ent, dlv, exp = services[code]
        by_service.add(code, ent, dlv, exp, percent(dlv, ent))
    by_service.add("Total", *_totals(services.values()))
    return by_month, by_service


def _totals(rows: Any) -> tuple[int, int, int, Any]:
    rows = list(rows)
    ent, dlv, exp = (sum(r[i] for r in rows) for i in range(3))
    return ent, dlv, exp, percent(dlv, ent)


def _ending_near(ctx: Ctx, p: Params, in_force: list[Any]) -> dict[str, list[date]]:
    """The issue dates, per kind of period, of memberships whose period on the last day ends
    within NEAR_DAYS of it. A period's end depends only on the issue date and the kind of
    period, so it is worked out once per distinct pair (a few thousand at most), not per member."""
    last = p.end + timedelta(days=NEAR_DAYS)
    pairs = ctx.session.execute(sa.select(Membership.issued_on, Membership.period).where(*in_force).distinct())
    out: dict[str, list[date]] = {}
    for issued, period in pairs:
        if period_end(issued, period, period_index(issued, period, p.end)) <= last:
            out.setdefault(period, []).append(issued)
    return out


def _unused(ctx: Ctx, p: Params) -> Section:
    s = Section("unused", "Unused visits and allowance near the period's end", UNUSED,
                note=f"Memberships in force on {p.end.isoformat()} whose period ends by "
                     f"{(p.end + timedelta(days=NEAR_DAYS)).isoformat()} ({NEAR_DAYS} days), with included visits or "
                     "allowance left at the end of that day (what expires unused if it is not used before the "
                     "period ends).")
    in_force = [*membership_scope(ctx, p), Membership.issued_on <= p.end,
                sa.or_(Membership.ended_on.is_(None), Membership.ended_on >= p.end)]
    near = _ending_near(ctx, p, in_force)
    if not near:
        return s
    e = LedgerEntry
    left = sa.func.sum(e.amount)
    rows = ctx.session.execute(
        sa.select(Membership.id, Customer.name, Ruleset.name, Membership.tier, Membership.issued_on,
                  Membership.period, Account.unit, Account.code, left)
        .select_from(Membership)
        .join(Customer, Customer.id == Membership.customer_id)
        .join(RulesetVersion, RulesetVersion.id == Membership.plan_version_id)
        .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
        .join(Account, sa.and_(Account.company_id == ctx.company.id, Account.owner == Membership.id,
                               Account.unit.in_((VISITS, ALLOWANCE))))
        .join(e, sa.and_(e.account_id == Account.id, e.effective_date <= p.end))
        .where(*in_force, sa.or_(*(sa.and_(Membership.period == period, Membership.issued_on.in_(days))
                                   for period, days in near.items())))
        .group_by(Membership.id, Customer.name, Ruleset.name, Membership.tier, Membership.issued_on,
                  Membership.period, Account.unit, Account.code)
        .having(left > 0)
        .order_by(Customer.name, Membership.id, Account.unit, Account.code))
    found: dict[str, dict[str, Any]] = {}
    for mid, customer, plan, tier, issued, period, unit, code, amount in rows:
        m = found.setdefault(mid, {"row": (customer, mid, plan, tier), "visits": [], "allowance": 0,
                                   "end": period_end(issued, period, period_index(issued, period, p.end))})
        if unit == VISITS:
            m["visits"].append((code, int(amount)))
        else:
            m["allowance"] += int(amount)
    for m in sorted(found.values(), key=lambda m: (m["end"], m["row"][0], m["row"][1])):
        s.add(*m["row"], sum(n for _, n in m["visits"]), ", ".join(f"{c} {n}" for c, n in m["visits"]),
              m["allowance"], m["end"])
    return s


def _payments(ctx: Ctx, p: Params) -> Section:
    inv, pay = Invoice, Payment
    mine: list[Any] = [inv.company_id == ctx.company.id]
    if _scoped(ctx, p):
        mine.append(inv.membership_id.in_(sa.select(Membership.id).where(*membership_scope(ctx, p))))
    months = {k: [0, 0, 0, 0, 0, 0, 0] for k in month_keys(p.start, p.end)}
    a_year, a_month = sa.extract("year", pay.attempted_on), sa.extract("month", pay.attempted_on)
    for y, m, n, amount in ctx.session.execute(
            sa.select(a_year, a_month, sa.func.count(), sa.func.coalesce(sa.func.sum(pay.amount_cents), 0))
            .join(inv, inv.id == pay.invoice_id)
            .where(*mine, pay.company_id == ctx.company.id, pay.kind == "charge", pay.status == "failed",
                   pay.attempted_on >= p.start, pay.attempted_on <= p.end)
            .group_by(a_year, a_month)):
        months[f"{int(y):04d}-{int(m):02d}"][0:2] = [int(n), int(amount)]
    f_year, f_month = sa.extract("year", inv.failed_on), sa.extract("month", inv.failed_on)
    recovered = sa.and_(inv.paid_on.is_not(None), inv.paid_on <= p.end)

    def total(cond: Any, value: Any = 1) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, value), else_=0)), 0)

    for y, m, n, amount, back, back_amount, off in ctx.session.execute(
            sa.select(f_year, f_month, sa.func.count(), sa.func.coalesce(sa.func.sum(inv.total_cents), 0),
                      total(recovered), total(recovered, inv.total_cents), total(inv.status == "uncollectible"))
            .where(*mine, inv.failed_on >= p.start, inv.failed_on <= p.end)
            .group_by(f_year, f_month)):
        months[f"{int(y):04d}-{int(m):02d}"][2:7] = [int(n), int(amount), int(back), int(back_amount), int(off)]
    s = Section("payments", "Failed payments and recovery", PAYMENTS,
                note="Failed attempts: card charges refused in the month (each retry counts). Invoices that failed: "
                     "by the month of their first failed charge; recovered: paid by the last day of the range; "
                     "written off: cancelled for non-payment. Recovery rate: recovered ÷ invoices that failed.")
    for key, row in months.items():
        s.add(key, *row, percent(row[4], row[2]))
    totals = [sum(r[i] for r in months.values()) for i in range(7)]
    s.add("Total", *totals, percent(totals[4], totals[2]))
    return s
