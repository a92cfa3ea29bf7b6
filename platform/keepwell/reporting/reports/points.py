"""The points economy: per month what customers earned, redeemed, let expire, had adjusted and
had taken back by refunds; the points outstanding on the last day and what they are worth at the
program's point value; breakage; redemptions by reward; earning by rule and promotion; and what
the program cost against the revenue from the customers who earned. Every figure is an SQL sum
over the points ledger (or the redemptions and invoices), grouped — nothing walks customers."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ...billing.models import Invoice
from ...customers.models import Customer
from ...infra.context import Ctx
from ...kernel.money import to_cents
from ...ledger.book import POINTS
from ...ledger.models import Account, LedgerEntry
from ...memberships.statements import POINTS_WORDS
from ...rewards.catalog import TYPES
from ...rewards.models import Redemption
from ...rewards.program import program
from ...rulesets.models import Ruleset, RulesetVersion
from ..catalog import Params, currency, customer_scope, report
from ..report import Chart, Column, Report, Section, percent

MONTHS = (Column("month", "Month"), Column("earned", POINTS_WORDS["earn"], "points"),
          Column("redeemed", "Points redeemed (less cancelled)", "points"),
          Column("expired", POINTS_WORDS["expire"], "points"), Column("adjusted", POINTS_WORDS["adjust"], "points"),
          Column("clawed_back", POINTS_WORDS["clawback"], "points"), Column("net", "Net change", "points"))
OUTSTANDING = (Column("on", "On", "date"), Column("points", "Points outstanding", "points"),
               Column("customers", "Customers with points", "int"),
               Column("point_value", "Value of one point", "money"), Column("liability", "Liability", "money"),
               Column("breakage", "Breakage (expired ÷ redeemed and expired)", "percent"))
REWARDS = (Column("reward", "Reward"), Column("type", "Type"), Column("redemptions", "Redemptions", "int"),
           Column("quantity", "Quantity", "int"), Column("points", "Points", "points"),
           Column("value", "Value at the point value", "money"))
EARNING = (Column("rule", "Rule"), Column("description", "Description"), Column("kind", "Rule or promotion"),
           Column("ruleset", "Rules (version)"), Column("times", "Times earned", "int"),
           Column("points", "Points earned", "points"), Column("share", "Share of points earned", "percent"))
ROI = (Column("redeemed", "Points redeemed (less cancelled)", "points"),
       Column("cost", "Program cost", "money"), Column("earners", "Customers who earned", "int"),
       Column("revenue", "Revenue from customers who earned", "money"),
       Column("roi", "Return on program cost", "percent"))
# ledger entry kind -> the month column it is counted in, and its sign there (entries are signed:
# an earn is +, a redemption -, a cancelled redemption + back)
_COLUMN = {"earn": ("earned", 1), "redeem": ("redeemed", -1), "redeem_cancelled": ("redeemed", -1),
           "expire": ("expired", -1), "adjust": ("adjusted", 1), "clawback": ("clawed_back", -1)}
OTHER_REWARD = "Points redeemed outside the catalog"


@report("points", "Points economy",
        "Points earned, redeemed and expired per month; points outstanding and their liability at the point "
        "value; breakage; redemptions by reward; earning by rule and promotion; program cost against the "
        "revenue from the customers who earned (ROI).",
        filters=("from", "to", "location"))
def points(ctx: Ctx, p: Params) -> Report:
    value = program(ctx, p.end).point_value
    cents = to_cents(value) if value else None  # the point value in cents (two places at most: exact)
    months = _months(ctx, p)
    expired = sum(int(r[3]) for r in months.rows[:-1])
    redeemed = sum(int(r[2]) for r in months.rows[:-1])
    sections = [months, _outstanding(ctx, p, cents, redeemed, expired), _rewards(ctx, p, cents), _earning(ctx, p),
                _roi(ctx, p, cents, redeemed)]
    return Report("points", "Points economy", p.shown(), currency(ctx, p), sections)


def _points_of(ctx: Ctx, p: Params) -> list[Any]:
    """The conditions on `Account` for the points accounts counted: the company's customers' (of
    the location given)."""
    where: list[Any] = [Account.company_id == ctx.company.id, Account.unit == POINTS]
    if p.location:
        where.append(Account.owner.in_(sa.select(Customer.id).where(*customer_scope(ctx, p))))
    return where


def month_keys(start: date, end: date) -> list[str]:
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _months(ctx: Ctx, p: Params) -> Section:
    e = LedgerEntry
    year, month = sa.extract("year", e.effective_date), sa.extract("month", e.effective_date)
    rows = ctx.session.execute(
        sa.select(year, month, e.kind, sa.func.sum(e.amount))
        .join(Account, Account.id == e.account_id)
        .where(e.company_id == ctx.company.id, *_points_of(ctx, p), e.effective_date >= p.start,
               e.effective_date <= p.end)
        .group_by(year, month, e.kind))
    cols = ("earned", "redeemed", "expired", "adjusted", "clawed_back", "net")
    by_month = {k: dict.fromkeys(cols, 0) for k in month_keys(p.start, p.end)}
    for y, m, kind, amount in rows:
        row = by_month[f"{int(y):04d}-{int(m):02d}"]
        column, sign = _COLUMN.get(kind, ("adjusted", 1))  # a kind of entry not named: an adjustment
        row[column] += sign * int(amount)
        row["net"] += int(amount)
    s = Section("months", "Points by month", MONTHS,
                note="Redeemed is less redemptions cancelled in the month; adjusted is signed (points given or "
                     "taken by hand); taken back is what refunds of purchases took back. The net change is the "
                     "month's change of the points customers hold.")
    for key, row in by_month.items():
        s.add(key, *(row[c] for c in cols))
    s.add("Total", *(sum(r[c] for r in by_month.values()) for c in cols))
    s.chart = Chart("bars", "Points earned, redeemed and expired", list(by_month),
                    {"Earned": [r["earned"] for r in by_month.values()],
                     "Redeemed": [r["redeemed"] for r in by_month.values()],
                     "Expired": [r["expired"] for r in by_month.values()]})
    return s


def _outstanding(ctx: Ctx, p: Params, cents: int | None, redeemed: int, expired: int) -> Section:
    """What customers hold at the end of the last day: each points account's entries to then,
    summed in SQL (an account below zero — a refund took back more than was left — counts as none)."""
    e = LedgerEntry
    held = (sa.select(sa.func.sum(e.amount).label("points"))
            .join(Account, Account.id == e.account_id)
            .where(e.company_id == ctx.company.id, *_points_of(ctx, p), e.effective_date <= p.end)
            .group_by(e.account_id).subquery())
    total, customers = ctx.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(held.c.points), 0), sa.func.count())
        .where(held.c.points > 0)).one()
    s = Section("outstanding", "Points outstanding and liability", OUTSTANDING,
                note="Liability: the points outstanding at the value of one point in the program in force on the "
                     "last day (none when the program gives points no value). Breakage, as on the points economy "
                     "page: of the points used up in the range (redeemed or expired), the share that expired.")
    s.add(p.end, int(total), int(customers), cents, None if cents is None else int(total) * cents,
          percent(expired, redeemed + expired))
    return s


def _customers_of(ctx: Ctx, p: Params) -> list[Any]:
    if not p.location:
        return []
    return [Redemption.customer_id.in_(sa.select(Customer.id).where(*customer_scope(ctx, p)))]


def _rewards(ctx: Ctx, p: Params, cents: int | None) -> Section:
    r = Redemption
    s = Section("rewards", "Redemptions by reward", REWARDS,
                note="Catalog redemptions made in the range and not cancelled since, by reward; points redeemed "
                     "without a catalog reward (a redemption event naming only points) are one line of their own.")
    rows = ctx.session.execute(
        sa.select(r.reward_id, r.reward_name, r.reward_type, sa.func.count(), sa.func.sum(r.quantity),
                  sa.func.sum(r.points))
        .where(r.company_id == ctx.company.id, r.redeemed_on >= p.start, r.redeemed_on <= p.end,
               r.status != "cancelled", *_customers_of(ctx, p))
        .group_by(r.reward_id, r.reward_name, r.reward_type)
        .order_by(sa.func.sum(r.points).desc(), r.reward_id))
    for _rid, name, kind, n, quantity, pts in rows:
        s.add(name, TYPES.get(kind, kind), int(n), int(quantity), int(pts), _worth(int(pts), cents))
    e = LedgerEntry
    n, pts = ctx.session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(-e.amount), 0))
        .join(Account, Account.id == e.account_id)
        .where(e.company_id == ctx.company.id, *_points_of(ctx, p), e.kind == "redeem",
               e.effective_date >= p.start, e.effective_date <= p.end,
               e.event_id.not_in(sa.select(r.event_id).where(r.company_id == ctx.company.id)))).one()
    if n:
        s.add(OTHER_REWARD, "", int(n), int(n), int(pts), _worth(int(pts), cents))
    return s


def _worth(points: int, cents: int | None) -> int | None:
    return None if cents is None else points * cents


def _earning(ctx: Ctx, p: Params) -> Section:
    e = LedgerEntry
    rows = list(ctx.session.execute(
        sa.select(e.ruleset, e.rule, sa.func.count(), sa.func.sum(e.amount))
        .join(Account, Account.id == e.account_id)
        .where(e.company_id == ctx.company.id, *_points_of(ctx, p), e.kind == "earn",
               e.effective_date >= p.start, e.effective_date <= p.end)
        .group_by(e.ruleset, e.rule)
        .order_by(sa.func.sum(e.amount).desc(), e.rule, e.ruleset)))
    total = sum(int(r[3]) for r in rows)
    rules = _rules(ctx, {ref for ref, *_ in rows})
    s = Section("earning", "Earning by rule and promotion", EARNING,
                note="A promotion is an earning rule with a date window. Points from each rule as the ledger "
                     "names it (rules id@version).")
    for ref, rule, n, pts in rows:
        spec = rules.get((ref, rule), {})
        s.add(rule, str(spec.get("description", "")), "Promotion" if spec.get("window") else "Rule", ref, int(n),
              int(pts), percent(int(pts), total))
    return s


def _rules(ctx: Ctx, refs: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """The earning rules of the rulesets versions named (id@version), by (version, rule id): one
    query for the few versions a range's entries name."""
    wanted: dict[str, set[int]] = {}
    for ref in refs:
        key, _, version = ref.rpartition("@")
        if key and version.isdigit():
            wanted.setdefault(key, set()).add(int(version))
    if not wanted:
        return {}
    found = ctx.session.execute(
        sa.select(Ruleset.key, RulesetVersion.version, RulesetVersion.content)
        .join(RulesetVersion, RulesetVersion.ruleset_id == Ruleset.id)
        .where(Ruleset.company_id == ctx.company.id, Ruleset.kind == "EarningRules", Ruleset.key.in_(wanted)))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, version, content in found:
        if version in wanted[key]:
            for rule in ((content or {}).get("spec") or {}).get("rules", []):
                out[(f"{key}@{version}", str(rule.get("id")))] = rule
    return out


def _roi(ctx: Ctx, p: Params, cents: int | None, redeemed: int) -> Section:
    e = LedgerEntry
    earners = (sa.select(Account.owner).join(e, e.account_id == Account.id)
               .where(e.company_id == ctx.company.id, *_points_of(ctx, p), e.kind == "earn",
                      e.effective_date >= p.start, e.effective_date <= p.end))
    count = int(ctx.session.scalar(sa.select(sa.func.count()).select_from(earners.distinct().subquery())) or 0)
    revenue = int(ctx.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Invoice.subtotal_cents), 0))
        .where(Invoice.company_id == ctx.company.id, Invoice.status == "paid", Invoice.paid_on >= p.start,
               Invoice.paid_on <= p.end, Invoice.customer_id.in_(earners))) or 0)
    cost = _worth(redeemed, cents)
    s = Section("roi", "Program cost and return", ROI,
                note="Program cost: the points redeemed in the range (less those cancelled) at the value of one "
                     "point (the reward catalog keeps no cost of its own for rewards). Revenue: the membership "
                     "invoices paid in the range by the customers who earned points in it, before tax. Return: "
                     "(revenue − cost) ÷ cost.")
    s.add(redeemed, cost, count, revenue, percent(revenue - cost, cost) if cost else None)
    return s
