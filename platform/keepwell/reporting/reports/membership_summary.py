"""The membership summary: for a date range, per plan, tier and allowance period, the members at
the start and at the end and what moved them — new, renewed, upgraded, downgraded, cancelled,
expired. Counted in SQL (a sum of cases per group), never membership by membership.

How a day is counted (the dashboard's way): a membership is a member at the close of day D when it
was enrolled on or before D and had not ended by D (ended_on after D, or not ended). The start of
the range is the opening of its first day, i.e. the close of the day before. So, in every row,

    active at end = active at start + new + changes of tier onto the row − cancelled − expired
                    − changes of tier off the row

and, over the whole table (a change of tier moves a member from one row to another), active at
end = active at start + new − cancelled − expired.

A change of tier ends the old membership (cancelled, "changed to tier X") and starts a new one
that names it (`memberships.replaces`): it is an upgrade or a downgrade, never a new member nor a
cancellation."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ...events.models import Event
from ...infra.context import Ctx
from ...kernel.money import to_cents
from ...memberships.models import Membership
from ...memberships.terms import resolve, tiers
from ...rulesets.models import Ruleset, RulesetVersion
from ..catalog import Params, currency, membership_scope, report
from ..report import Column, Report, Section

# The allowance periods there are; a membership on any other period value (data from before the
# schema was narrowed) is left out of the reports, as the contractor asked.
PERIODS = {"monthly": "Monthly", "quarterly": "Quarterly", "half_yearly": "Half-yearly", "yearly": "Yearly"}
PER_YEAR = {"monthly": 12, "quarterly": 4, "half_yearly": 2, "yearly": 1}  # as the dashboard's recurring revenue

COLUMNS = (Column("plan", "Plan"), Column("tier", "Tier"), Column("period", "Allowance period"),
           Column("active_start", "Active at start", "int"), Column("active_end", "Active at end", "int"),
           Column("new", "New", "int"), Column("renewed", "Renewed", "int"), Column("upgraded", "Upgraded", "int"),
           Column("downgraded", "Downgraded", "int"), Column("cancelled", "Cancelled", "int"),
           Column("expired", "Expired", "int"))
NOTE = ("Active at start: members when the first day began; active at end: members when the last day closed. New: "
        "enrolled in the range (a change of tier is not new). Renewed: periods renewed in the range (counted on the "
        "first day of the new period). Upgraded and downgraded: changes of tier in the range, on the new tier's row, "
        "to a dearer or a cheaper tier (yearly price, or the monthly or quarterly price times its billings a year). "
        "Cancelled: ended by cancellation in the range, not counting changes of tier. Expired: ended at the end of a "
        "period that did not renew. Active at end = active at start + new - cancelled - expired in the total row.")


# --- counting members, shared with the churn report -------------------------------------------------

def opening(m: Any, day: Any) -> Any:
    """`m` was a member when `day` began: enrolled before it and not ended before it (`day` a
    date or a column)."""
    return sa.and_(m.issued_on < day, sa.or_(m.ended_on.is_(None), m.ended_on >= day))


def closing(m: Any, day: Any) -> Any:
    """`m` was still a member when `day` closed (the dashboard's count): enrolled on or before it
    and not ended on or before it."""
    return sa.and_(m.issued_on <= day, sa.or_(m.ended_on.is_(None), m.ended_on > day))


def replaced(ctx: Ctx) -> Any:
    """The ids of the memberships a change of tier ended (each named by the one that replaced it)."""
    return (sa.select(Membership.replaces.label("id")).where(Membership.company_id == ctx.company.id,
                                                             Membership.replaces.is_not(None))
            .distinct().subquery("replaced"))


def known_periods() -> Any:
    return Membership.period.in_(tuple(PERIODS))


def annual_price(ctx: Ctx, m: Any) -> Any:
    """A tier's price for a year, in cents, as an SQL CASE over the plan versions of the company
    (a few rows, read once): what an upgrade and a downgrade compare. NULL for a tier with no
    price."""
    whens = []
    for vid, content in ctx.session.execute(
            sa.select(RulesetVersion.id, RulesetVersion.content).join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
            .where(Ruleset.company_id == ctx.company.id, Ruleset.kind == "Plan")):
        for t in tiers(content):
            cents = _yearly_cents(resolve(content, t["id"]).prices)
            if cents is not None:
                whens.append((sa.and_(m.plan_version_id == vid, m.tier == t["id"]), cents))
    # No priced tier at all: a typed NULL (a bare NULL cannot be compared with > in SQLAlchemy).
    return sa.case(*whens, else_=sa.null()) if whens else sa.cast(sa.null(), sa.BigInteger)


def _yearly_cents(prices: dict[str, Any]) -> int | None:
    for cadence in ("yearly", "half_yearly", "quarterly", "monthly"):
        if prices.get(cadence) is not None:
            return to_cents(str(prices[cadence])) * PER_YEAR[cadence]
    return None


def plan_names(ctx: Ctx) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Plan names by plan id and tier names by (plan, tier), from each plan's latest version."""
    plans: dict[str, str] = {}
    tier_names: dict[tuple[str, str], str] = {}
    rows = ctx.session.execute(
        sa.select(Ruleset.key, Ruleset.name, RulesetVersion.content)
        .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
        .where(Ruleset.company_id == ctx.company.id, Ruleset.kind == "Plan").order_by(Ruleset.key, RulesetVersion.id))
    for key, name, content in rows:  # the latest version last: its names win
        plans[key] = str(((content or {}).get("metadata") or {}).get("name") or name or key)
        for t in tiers(content):
            tier_names[(key, t["id"])] = str(t.get("name") or t["id"])
    return plans, tier_names


def total(*conds: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(*conds), 1), else_=0)), 0)


# --- the report ----------------------------------------------------------------------------------

@report("membership-summary", "Membership summary",
        "Members at the start and end of the range, and new, renewed, upgraded, downgraded, cancelled and expired "
        "memberships, by plan, tier and allowance period (monthly, quarterly, half-yearly, yearly).",
        filters=("from", "to", "location", "plan", "tier"))
def membership_summary(ctx: Ctx, p: Params) -> Report:
    m, old = Membership, aliased(Membership)
    gone = replaced(ctx)
    by_change = gone.c.id.is_not(None)
    issued_in = m.issued_on.between(p.start, p.end)
    ended_in = m.ended_on.between(p.start, p.end)
    new_price, old_price = annual_price(ctx, m), annual_price(ctx, old)
    changed = sa.and_(issued_in, m.replaces.is_not(None))
    group = (Ruleset.key, m.tier, m.period)
    q = (sa.select(*group,
                   total(opening(m, p.start)), total(closing(m, p.end)),
                   total(issued_in, m.replaces.is_(None)),
                   total(changed, new_price > old_price), total(changed, new_price < old_price),
                   total(m.status == "cancelled", ended_in, sa.not_(by_change)),
                   total(m.status == "expired", ended_in))
         .select_from(m)
         .join(RulesetVersion, RulesetVersion.id == m.plan_version_id)
         .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
         .outerjoin(old, sa.and_(old.id == m.replaces, old.company_id == ctx.company.id))
         .outerjoin(gone, gone.c.id == m.id)
         .where(*membership_scope(ctx, p), known_periods(), m.issued_on <= p.end,
                sa.or_(m.ended_on.is_(None), m.ended_on >= p.start))
         .group_by(*group))
    counts: dict[tuple[str, str, str], list[int]] = {}
    for key, tier, period, *figures in ctx.session.execute(q):
        counts[(key, tier, period)] = [int(figures[0]), int(figures[1]), int(figures[2]), 0, *map(int, figures[3:])]
    for key, tier, period, n in ctx.session.execute(renewals(ctx, p, p.start, p.end, group)):
        counts.setdefault((key, tier, period), [0] * 8)[3] = int(n)

    plans, tier_names = plan_names(ctx)
    s = Section("summary", "Memberships by plan, tier and allowance period", COLUMNS, note=NOTE)
    order = list(PERIODS)
    for (key, tier, period), figures in sorted(counts.items(), key=lambda kv: (
            plans.get(kv[0][0], kv[0][0]), tier_names.get((kv[0][0], kv[0][1]), kv[0][1]), order.index(kv[0][2]))):
        s.add(plans.get(key, key), tier_names.get((key, tier), tier), PERIODS[period], *figures)
    s.add("Total", "", "", *(sum(f[i] for f in counts.values()) for i in range(8)))
    return Report("membership-summary", "Membership summary", p.shown(), currency(ctx, p), [s])


def renewals(ctx: Ctx, p: Params, first: date, last: date, group: tuple[Any, ...] = ()) -> Any:
    """The `renewed` events dated `first`..`last` (the first day of each new period) of the
    memberships the filters take, counted (by `group`, columns of Membership and Ruleset)."""
    m = Membership
    q = (sa.select(*group, sa.func.count()).select_from(Event)
         .join(m, sa.and_(m.id == Event.membership_id, m.company_id == ctx.company.id))
         .where(Event.company_id == ctx.company.id, Event.type == "renewed", Event.status == "processed",
                Event.local_date.between(first, last), *membership_scope(ctx, p), known_periods()))
    if any(c is Ruleset.key for c in group):
        q = (q.join(RulesetVersion, RulesetVersion.id == m.plan_version_id)
             .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id))
    return q.group_by(*group) if group else q
