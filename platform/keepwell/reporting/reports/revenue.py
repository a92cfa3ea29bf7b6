"""Recurring revenue: MRR and ARR at each month's end and what moved them (new, expansion,
contraction, churn), lifetime value per plan and tier, and a twelve-month forecast from the
members billed today and the renewal rates seen in the range.

A membership counts on a day when it is billed on a schedule, has begun (issued on or before the
day) and has not ended (its end day is after the day) — as the dashboard counts members. Its
revenue is its schedule's price over a year (`dashboard.yearly_cents`): ARR is exact in cents,
MRR is ARR over twelve rounded once, as on the dashboard. A change of tier ends one membership
and starts another the same day: the difference of their prices is expansion or contraction,
not churn and new.

Everything is summed in SQL: one query for the month ends (a column per month, grouped by plan
and tier), one for the starts and one for the ends (grouped by day, then put in their months).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ...billing.models import BillingSchedule
from ...events.models import Event
from ...infra.context import Ctx
from ...kernel.money import share_of
from ...kernel.periods import MONTHS
from ...memberships.models import Membership
from ...rulesets.models import Ruleset, RulesetVersion
from ..catalog import Params, currency, membership_scope, report
from ..dashboard import yearly_cents
from ..report import Chart, Column, Report, Section, percent

MOST_LIFETIME = 120  # months: the lifetime of a plan no member has left in the range
FORECAST_MONTHS = 12


def months_of(p: Params) -> list[tuple[str, date, date]]:
    """The months of the range: (YYYY-MM, the day before it (or before `from`), its last day (or `to`))."""
    out, first = [], p.start
    while first <= p.end:
        nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        out.append((first.strftime("%Y-%m"), first - timedelta(days=1), min(nxt - timedelta(days=1), p.end)))
        first = nxt
    return out


def mrr_of(arr: int) -> int:
    """A month's recurring revenue: the year's over twelve, rounded once, half up (the dashboard's)."""
    return share_of(arr, 1, 12)


def _active(d: date) -> Any:
    return sa.and_(Membership.issued_on <= d, sa.or_(Membership.ended_on.is_(None), Membership.ended_on > d))


@dataclass
class _Group:
    plan: str
    plan_name: str
    tier: str
    arr: list[int] = field(default_factory=list)  # at the opening, then each month's end
    count: list[int] = field(default_factory=list)
    in_force: list[int] = field(default_factory=list)  # members at some time in each month
    churned: int = 0


@report("recurring-revenue", "Recurring revenue",
        "MRR and ARR at each month's end with their movement (new, expansion, contraction, churn), lifetime "
        "value per plan and tier, and a 12-month revenue forecast from the members billed and their renewal rate.",
        filters=("from", "to", "location", "plan", "tier"))
def recurring_revenue(ctx: Ctx, p: Params) -> Report:
    months = months_of(p)
    scope = membership_scope(ctx, p)
    s = BillingSchedule
    billed = sa.select(Membership.id).join(s, s.membership_id == Membership.id).where(*scope)
    groups = _month_ends(ctx, p, months, scope)
    starts, ends = _movements(ctx, p, scope, billed)
    rates = _renewals(ctx, p, scope, billed)
    base = _base(ctx, p, scope)

    total_arr = [sum(g.arr[i] for g in groups) for i in range(len(months) + 1)]
    total_count = [sum(g.count[i] for g in groups) for i in range(len(months) + 1)]
    sections = [_summary(p, total_arr[-1], total_count[-1], rates, base),
                _movement_section(months, total_arr, total_count, starts, ends),
                _lifetime(groups, len(months)),
                _renewal_section(rates),
                _forecast(p, rates, base)]
    return Report("recurring-revenue", "Recurring revenue", p.shown(), currency(ctx, p), sections)


def _month_ends(ctx: Ctx, p: Params, months: list[tuple[str, date, date]], scope: list[Any]) -> list[_Group]:
    """ARR and members at the opening and each month's end, and members in force during each
    month, by plan and tier: one query, a column per month."""
    y = yearly_cents()
    ends = [months[0][1]] + [last for _, _, last in months]

    def total(cond: Any, value: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, value), else_=0)), 0)

    in_force = [sa.and_(Membership.issued_on <= last, sa.or_(Membership.ended_on.is_(None),
                                                             Membership.ended_on > before))
                for _, before, last in months]
    first, last = months[0][1], p.end
    nx = aliased(BillingSchedule, name="nx")
    churned = sa.and_(Membership.ended_on > first, Membership.ended_on <= last,
                      ~sa.exists(sa.select(nx.membership_id).where(nx.replaces == Membership.id)))
    q = (sa.select(Ruleset.key, Ruleset.name, Membership.tier,
                   *(total(_active(d), y) for d in ends), *(total(_active(d), 1) for d in ends),
                   *(total(c, 1) for c in in_force), total(churned, 1))
         .select_from(Membership)
         .join(BillingSchedule, BillingSchedule.membership_id == Membership.id)
         .join(RulesetVersion, RulesetVersion.id == Membership.plan_version_id)
         .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
         .where(*scope, Membership.issued_on <= p.end,
                sa.or_(Membership.ended_on.is_(None), Membership.ended_on > first))
         .group_by(Ruleset.key, Ruleset.name, Membership.tier).order_by(Ruleset.key, Membership.tier))
    n = len(ends)
    out = []
    for row in ctx.session.execute(q):
        values = [int(v) for v in row[3:]]
        out.append(_Group(row[0], row[1], row[2], values[:n], values[n:2 * n], values[2 * n:3 * n - 1],
                          values[-1]))
    return out


def _movements(ctx: Ctx, p: Params, scope: list[Any], billed: Any) -> tuple[dict[date, tuple[int, int, int, int]],
                                                                          dict[date, int]]:
    """By day: the ARR new memberships brought (and how many), expansion and contraction from
    changes of tier (the new price against the one it replaced, counted when both memberships
    are in the report); the ARR of memberships that ended (not replaced by one in the report)."""
    first = p.start - timedelta(days=1)
    prev = aliased(BillingSchedule, name="prev")
    y, yp = yearly_cents(), yearly_cents(prev)
    replaced = prev.membership_id.is_not(None)

    def total(cond: Any, value: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, value), else_=0)), 0)

    q = (sa.select(Membership.issued_on, total(~replaced, y), total(~replaced, 1),
                   total(sa.and_(replaced, y > yp), y - yp), total(sa.and_(replaced, y < yp), yp - y))
         .select_from(Membership)
         .join(BillingSchedule, BillingSchedule.membership_id == Membership.id)
         .outerjoin(prev, sa.and_(prev.membership_id == BillingSchedule.replaces, prev.membership_id.in_(billed)))
         .where(*scope, Membership.issued_on > first, Membership.issued_on <= p.end)
         .group_by(Membership.issued_on))
    starts = {d: (int(a), int(b), int(c), int(e)) for d, a, b, c, e in ctx.session.execute(q)}
    nx = aliased(BillingSchedule, name="nx")
    q2 = (sa.select(Membership.ended_on, total(nx.membership_id.is_(None), y))
          .select_from(Membership)
          .join(BillingSchedule, BillingSchedule.membership_id == Membership.id)
          .outerjoin(nx, sa.and_(nx.replaces == Membership.id, nx.membership_id.in_(billed)))
          .where(*scope, Membership.ended_on > first, Membership.ended_on <= p.end)
          .group_by(Membership.ended_on))
    ends = {d: int(v) for d, v in ctx.session.execute(q2)}
    return starts, ends


@dataclass
class _Rate:
    period: str
    renewed: int
    ended: int

    @property
    def rate(self) -> Fraction | None:
        seen = self.renewed + self.ended
        return Fraction(self.renewed, seen) if seen else None


def _renewals(ctx: Ctx, p: Params, scope: list[Any], billed: Any) -> list[_Rate]:
    """By membership period: the renewals in the range (its `renewed` events) and the billed
    memberships that ended in it other than by a change of tier (they did not renew)."""
    renewed = dict(ctx.session.execute(
        sa.select(Membership.period, sa.func.count())
        .select_from(Event).join(Membership, Membership.id == Event.membership_id)
        .where(Event.company_id == ctx.company.id, Event.type == "renewed", Event.status == "processed",
               Event.local_date >= p.start, Event.local_date <= p.end, Membership.id.in_(billed))
        .group_by(Membership.period)).all())
    nx = aliased(BillingSchedule, name="nx")
    ended = dict(ctx.session.execute(
        sa.select(Membership.period, sa.func.count())
        .select_from(Membership)
        .join(BillingSchedule, BillingSchedule.membership_id == Membership.id)
        .where(*scope, Membership.ended_on >= p.start, Membership.ended_on <= p.end,
               ~sa.exists(sa.select(nx.membership_id).where(nx.replaces == Membership.id)))
        .group_by(Membership.period)).all())
    return [_Rate(k, int(renewed.get(k, 0)), int(ended.get(k, 0))) for k in MONTHS
            if renewed.get(k) or ended.get(k)]


def _base(ctx: Ctx, p: Params, scope: list[Any]) -> dict[str, int]:
    """The ARR billed at `to`, by membership period."""
    return {k: int(v) for k, v in ctx.session.execute(
        sa.select(Membership.period, sa.func.coalesce(sa.func.sum(yearly_cents()), 0))
        .select_from(Membership).join(BillingSchedule, BillingSchedule.membership_id == Membership.id)
        .where(*scope, _active(p.end)).group_by(Membership.period))}


def _overall(rates: list[_Rate]) -> Fraction | None:
    return _Rate("", sum(r.renewed for r in rates), sum(r.ended for r in rates)).rate


def _summary(p: Params, arr: int, count: int, rates: list[_Rate], base: dict[str, int]) -> Section:
    s = Section("summary", f"Recurring revenue on {p.end.isoformat()}",
                (Column("figure", "Figure"), Column("value", "Value", "money"), Column("members", "Members", "int"),
                 Column("rate", "Rate", "percent")),
                note="ARR is each billed membership's price times its billings a year (monthly ×12, quarterly ×4, "
                     "yearly ×1), exact to the cent; MRR is ARR ÷ 12, rounded half up once — the dashboard's figures.")
    overall = _overall(rates)
    s.add("MRR", mrr_of(arr), count, None)
    s.add("ARR", arr, count, None)
    s.add("Renewal rate in the range", None, None,
          percent(overall.numerator, overall.denominator) if overall is not None else None)
    s.add(f"Forecast revenue, next {FORECAST_MONTHS} months", sum(v for _, v in _forecast_rows(p, rates, base)),
          None, None)
    return s


def _movement_section(months: list[tuple[str, date, date]], arr: list[int], count: list[int],
                      starts: dict[date, tuple[int, int, int, int]], ends: dict[date, int]) -> Section:
    s = Section("movement", "MRR movement by month",
                (Column("month", "Month"), Column("opening", "Opening MRR", "money"), Column("new", "New", "money"),
                 Column("expansion", "Expansion", "money"), Column("contraction", "Contraction", "money"),
                 Column("churn", "Churn", "money"), Column("closing", "Closing MRR", "money"),
                 Column("arr", "Closing ARR", "money"), Column("new_members", "New members", "int"),
                 Column("members", "Members at month end", "int")),
                note="Opening + new + expansion − contraction − churn = closing, every month. New: memberships "
                     "that started; expansion and contraction: changes to a tier with a higher or lower price (the "
                     "difference); churn: memberships that ended (cancelled or expired, not changed tier). Each is "
                     "counted in ARR to the cent and shown in MRR as the change it makes to the rounded MRR, so "
                     "the columns add up.")
    for i, (label, before, last) in enumerate(months):
        new = exp = con = churn = joined = 0
        for d, (a, n, e, c) in starts.items():
            if before < d <= last:
                new, joined, exp, con = new + a, joined + n, exp + e, con + c
        churn = sum(v for d, v in ends.items() if before < d <= last)
        steps = [arr[i], arr[i] + new, arr[i] + new + exp, arr[i] + new + exp - con, arr[i] + new + exp - con - churn]
        assert steps[-1] == arr[i + 1], (label, steps, arr[i + 1])
        m = [mrr_of(v) for v in steps]
        s.add(label, m[0], m[1] - m[0], m[2] - m[1], m[2] - m[3], m[3] - m[4], m[4], arr[i + 1], joined,
              count[i + 1])
    s.chart = Chart("line", "MRR at month end", [label for label, _, _ in months],
                    {"MRR": [float(Decimal(mrr_of(v)) / 100) for v in arr[1:]]})
    return s


def _lifetime(groups: list[_Group], n: int) -> Section:
    s = Section("lifetime", "Lifetime value by plan and tier",
                (Column("plan", "Plan"), Column("tier", "Tier"), Column("members", "Members at the end", "int"),
                 Column("average", "Average monthly revenue", "money"), Column("churned", "Ended", "int"),
                 Column("member_months", "Member-months", "int"),
                 Column("churn_rate", "Monthly churn rate", "percent"),
                 Column("lifetime", "Average lifetime (months)"), Column("ltv", "Lifetime value", "money")),
                note="Average monthly revenue = the sum of the ARR at each month's end ÷ the sum of the members "
                     "then ÷ 12. Monthly churn rate = memberships that ended in the range (not by a change of "
                     "tier) ÷ member-months (the members in force during each month, added up). Average "
                     f"lifetime = 1 ÷ the monthly churn rate, at most {MOST_LIFETIME} months ({MOST_LIFETIME} when "
                     "none ended). Lifetime value = average monthly revenue × average lifetime, rounded half up to "
                     "the cent once.")
    for g in groups:
        members = sum(g.count[1:])
        avg = Fraction(sum(g.arr[1:]), members * 12) if members else Fraction(0)
        exposure = sum(g.in_force)
        rate = Fraction(g.churned, exposure) if exposure else Fraction(0)
        life = min(Fraction(MOST_LIFETIME), 1 / rate) if rate else Fraction(MOST_LIFETIME)
        s.add(g.plan_name, g.tier, g.count[-1], _cents(avg), g.churned, exposure,
              percent(rate.numerator, rate.denominator) if exposure else None,
              f"{Decimal(life.numerator) / Decimal(life.denominator):.2f}", _cents(avg * life))
    return s


def _cents(x: Fraction) -> int:
    return int((Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal(1), ROUND_HALF_UP))


def _renewal_section(rates: list[_Rate]) -> Section:
    s = Section("renewals", "Renewal rate by membership period",
                (Column("period", "Membership period"), Column("renewed", "Renewed", "int"),
                 Column("ended", "Ended without renewing", "int"), Column("rate", "Renewal rate", "percent")),
                note="Renewed: the periods that ended in the range and renewed. Ended without renewing: billed "
                     "memberships that ended in the range (expired or cancelled, not changed tier). Renewal rate = "
                     "renewed ÷ (renewed + ended).")
    for r in rates:
        s.add(r.period.replace("_", "-"), r.renewed, r.ended, percent(r.renewed, r.renewed + r.ended))
    return s


def _forecast_rows(p: Params, rates: list[_Rate], base: dict[str, int]) -> list[tuple[str, int]]:
    overall = _overall(rates)
    by_period = {r.period: r.rate for r in rates}
    out = []
    month = (p.end.replace(day=28) + timedelta(days=4)).replace(day=1)
    for k in range(1, FORECAST_MONTHS + 1):
        expected = Decimal(0)
        for period, arr in base.items():
            r = by_period.get(period) or overall
            r = Fraction(1) if r is None else r
            length = MONTHS.get(period, 12)
            kept = (Decimal(r.numerator) / Decimal(r.denominator)) ** (Decimal(k) / Decimal(length)) if r else 0
            expected += Decimal(arr) / 12 * kept
        out.append((month.strftime("%Y-%m"), int(expected.quantize(Decimal(1), ROUND_HALF_UP))))
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _forecast(p: Params, rates: list[_Rate], base: dict[str, int]) -> Section:
    s = Section("forecast", f"Revenue forecast, next {FORECAST_MONTHS} months",
                (Column("month", "Month"), Column("revenue", "Expected revenue", "money")),
                note=f"From the members billed on {p.end.isoformat()} (no new sales): month k's revenue = the MRR "
                     "of the members on each membership period × r^(k ÷ the period's months), where r is the "
                     "renewal rate of that period in the range (the range's overall rate when none of that period "
                     "came up for renewal, 100% when none at all), rounded half up to the cent.")
    for label, value in _forecast_rows(p, rates, base):
        s.add(label, value)
    return s
