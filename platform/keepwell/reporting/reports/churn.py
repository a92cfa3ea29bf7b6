"""Retention and churn: how many members of each monthly enrolment cohort are still members month
after month (a table and a chart), the renewal rate, the churn rate of each month and the
conversion of non-member customers into members. Every figure is an SQL aggregate.

A change of tier is neither a new member nor a lost one: it ends the old membership and starts
one that names it (`memberships.replaces`), so a cohort follows each enrolment through its changes
of tier (a recursive query over the chain), and churn leaves them out."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ...customers.models import Customer
from ...events.models import Event
from ...infra.context import Ctx
from ...memberships.models import Membership
from ..catalog import Params, currency, customer_scope, membership_scope, report
from ..report import Chart, Column, Report, Section, percent
from .membership_summary import known_periods, opening, renewals, replaced, total

MONTHS = 12  # retention is shown for the twelve months after enrolment
CHARTED = 12  # the latest cohorts drawn on the chart (the table has them all)
ONE_DAY = timedelta(days=1)
SERVED = ("purchase", "service_completed")

COHORTS = (Column("cohort", "Enrolled in"), Column("enrolled", "Members enrolled", "int"),
           *(Column(f"month_{k}", f"Month {k}", "percent") for k in range(1, MONTHS + 1)))
RENEWALS = (Column("renewed", "Renewed", "int"), Column("expired", "Expired", "int"),
            Column("cancelled_at_term", "Cancelled at the end of the period", "int"),
            Column("periods_ended", "Periods ended", "int"), Column("renewal_rate", "Renewal rate", "percent"))
CHURN = (Column("month", "Month"), Column("active_start", "Members at the start of the month", "int"),
         Column("ended", "Ended in the month", "int"), Column("churn_rate", "Churn rate", "percent"))
CONVERSION = (Column("sold", "Memberships sold", "int"), Column("opportunities", "Non-member customers served", "int"),
              Column("conversion", "Conversion", "percent"))


def _month(d: date) -> int:
    return d.year * 12 + d.month - 1


def _first_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _month_index(col: Any) -> Any:
    return sa.extract("year", col) * 12 + sa.extract("month", col) - 1


@report("churn", "Retention and churn",
        "Retention by monthly enrolment cohort (a table and a chart), the renewal rate, the churn rate of each month "
        "and the conversion of non-member customers served into members.",
        filters=("from", "to", "location", "plan", "tier"))
def churn(ctx: Ctx, p: Params) -> Report:
    return Report("churn", "Retention and churn", p.shown(), currency(ctx, p),
                  [_cohorts(ctx, p), _renewal_rate(ctx, p), _monthly_churn(ctx, p), _conversion(ctx, p)])


def _cohorts(ctx: Ctx, p: Params) -> Section:
    m, nxt, root = Membership, aliased(Membership), aliased(Membership)
    # Each enrolment in the range (not a change of tier) and the memberships that replaced it, in turn.
    chain = (sa.select(m.id.label("root"), m.id.label("mid"), m.ended_on.label("ended_on"))
             .where(*membership_scope(ctx, p), known_periods(), m.replaces.is_(None),
                    m.issued_on.between(p.start, p.end))
             .cte("chain", recursive=True))
    chain = chain.union_all(sa.select(chain.c.root, nxt.id, nxt.ended_on)
                            .where(nxt.company_id == ctx.company.id, nxt.replaces == chain.c.mid))
    # An enrolment is a member until the last of its chain ended (never, while one is running).
    lives = (sa.select(chain.c.root, sa.func.sum(sa.case((chain.c.ended_on.is_(None), 1), else_=0)).label("running"),
                       sa.func.max(chain.c.ended_on).label("last_end"))
             .group_by(chain.c.root).subquery("lives"))
    each = (sa.select(_month_index(root.issued_on).label("cohort"), lives.c.running,
                      _month_index(lives.c.last_end).label("end_month"))
            .select_from(lives).join(root, root.id == lives.c.root).subquery("each"))
    # Retained at month k: not ended before the first day of the k-th month after the cohort's.
    kept = [total(sa.or_(each.c.running > 0, each.c.end_month - each.c.cohort >= k)) for k in range(1, MONTHS + 1)]
    found = {int(c): (int(n), [int(x) for x in ks]) for c, n, *ks in ctx.session.execute(
        sa.select(each.c.cohort, sa.func.count(), *kept).group_by(each.c.cohort))}

    s = Section("cohorts", "Retention by enrolment cohort", COHORTS,
                note="Each row is the members who enrolled that month (a change of tier is not an enrolment: the "
                     "member keeps their cohort); month k is the percent of them who had not ended before the first "
                     f"day of the k-th month after it. Months after {p.end.isoformat()} are not reached yet and are "
                     "left empty.")
    labels = [f"Month {k}" for k in range(1, MONTHS + 1)]
    series: dict[str, list[int | float]] = {}
    for c in range(_month(p.start), _month(p.end) + 1):
        enrolled, retained = found.get(c, (0, [0] * MONTHS))
        cells = [percent(retained[k - 1], enrolled) if _first_of(c + k) <= p.end else None
                 for k in range(1, MONTHS + 1)]
        name = _first_of(c).strftime("%Y-%m")
        s.add(name, enrolled, *cells)
        if enrolled:
            series[name] = [float(v) for v in cells if v is not None]
    shown = dict(list(series.items())[-CHARTED:])
    if shown:
        s.chart = Chart("line", "Members retained by enrolment month (%)", labels, shown)
    return s


def _renewal_rate(ctx: Ctx, p: Params) -> Section:
    m, gone = Membership, replaced(ctx)
    ended_in = m.ended_on.between(p.start, p.end)
    # A renewal is dated the day after the period it renews ended.
    renewed = int(ctx.session.scalar(renewals(ctx, p, p.start + ONE_DAY, p.end + ONE_DAY)) or 0)
    expired, at_term = ctx.session.execute(
        sa.select(total(m.status == "expired", ended_in),
                  total(m.status == "cancelled", ended_in, m.ended_on == m.expires_on, gone.c.id.is_(None)))
        .select_from(m).outerjoin(gone, gone.c.id == m.id)
        .where(*membership_scope(ctx, p), known_periods())).one()
    ended = renewed + int(expired) + int(at_term)
    s = Section("renewals", "Renewal rate", RENEWALS,
                note="The membership periods whose last day falls in the range: renewed into the next period, expired "
                     "(not renewing), or cancelled on the period's last day (at the end of the term). Renewal rate = "
                     "renewed / (renewed + expired + cancelled at the end of the period). A cancellation in the middle "
                     "of a period is churn, not a period that ended; a change of tier is neither.")
    s.add(renewed, int(expired), int(at_term), ended, percent(renewed, ended))
    return s


def _monthly_churn(ctx: Ctx, p: Params) -> Section:
    m, gone = Membership, replaced(ctx)
    months = []
    for c in range(_month(p.start), _month(p.end) + 1):
        first, last = max(_first_of(c), p.start), min(_first_of(c + 1) - ONE_DAY, p.end)
        months.append((first, last))
    lost = sa.and_(m.status.in_(("cancelled", "expired")), gone.c.id.is_(None))
    figures = ctx.session.execute(
        sa.select(*(agg for first, last in months
                    for agg in (total(opening(m, first)), total(lost, m.ended_on.between(first, last)))))
        .select_from(m).outerjoin(gone, gone.c.id == m.id)
        .where(*membership_scope(ctx, p), known_periods(), m.issued_on <= p.end,
               sa.or_(m.ended_on.is_(None), m.ended_on >= p.start))).one()
    s = Section("churn", "Churn by month", CHURN,
                note="Members at the start of the month: enrolled before its first day and not ended before it. Ended "
                     "in the month: cancelled or expired (a change of tier is not counted). Churn rate = ended / "
                     "members at the start of the month.")
    for i, (first, _last) in enumerate(months):
        active, ended = int(figures[2 * i]), int(figures[2 * i + 1])
        s.add(first.strftime("%Y-%m"), active, ended, percent(ended, active))
    return s


def _conversion(ctx: Ctx, p: Params) -> Section:
    m, other = Membership, aliased(Membership)
    sold = int(ctx.session.scalar(sa.select(sa.func.count()).select_from(m).where(
        *membership_scope(ctx, p), known_periods(), m.replaces.is_(None), m.issued_on.between(p.start, p.end))) or 0)
    member_then = (sa.select(other.id).where(other.company_id == ctx.company.id, other.customer_id == Event.customer_id,
                                            opening(other, Event.local_date)).exists())
    opportunities = int(ctx.session.scalar(
        sa.select(sa.func.count(sa.distinct(Event.customer_id))).where(
            Event.company_id == ctx.company.id, Event.type.in_(SERVED), Event.status == "processed",
            Event.local_date.between(p.start, p.end),
            Event.customer_id.in_(sa.select(Customer.id).where(*customer_scope(ctx, p))), ~member_then)) or 0)
    s = Section("conversion", "Conversion", CONVERSION,
                note="Memberships sold: enrolments in the range (not changes of tier) of the plan and tier asked for. "
                     "Non-member customers served: customers with a purchase or a completed service in the range who "
                     "had no membership (of any plan) when that day began. Conversion = sold / served non-members.")
    s.add(sold, opportunities, percent(sold, opportunities))
    return s
