"""Deferred revenue, the report a contractor's accountant asks for: for a day, what members were
billed for their memberships, how much of it is earned (recognised), what was given back
(credit notes), and what is still deferred — service paid for and not yet delivered — per
membership and in total, with a roll-forward over the range that always reconciles:

    opening deferred (the day before `from`) + billed − recognised − refunded = closing deferred (`to`)

What is billed: the membership fee and proration lines (a change of tier's credit for the old
tier's unused days included, as the negative line it is) of finalised invoices, on their issue
day, before tax. What is refunded: credit notes, on their day, before tax (the invoice's share
of tax taken off). Each plan says how its fees are earned (`spec.revenue_recognition`):

- `by_day` (default): a line's amount evenly over the days of the period it pays for — earned by
  day d: amount × (days from the period's first day to d) ÷ (days in the period), in whole cents
  rounded toward zero, so the last day earns what is left and the period earns the line exactly;
- `by_visit`: a line's amount spread over the period's included visits (every service counted),
  earned as each is done (the membership's included visits drawn in the period, at most the
  included number) — amount × visits ÷ included, toward zero — and the rest released on the
  period's last day (`release_at_period_end`) or when the member's unused visits expire at the
  membership period's end (`release_at_expiry`). A plan with no included visits earns by day.

A membership that ends (cancelled or expired; not a change of tier, whose billing goes on)
has earned everything by its last day: what was not given back is released then. A refund
takes its amount off what is still deferred; deferred is never below zero (a refund of more
than is deferred reduces what was recognised). Recognised to a day is billed − refunded −
deferred, so the roll-forward's recognised is the change of it over the range.

The lines are summed in SQL per membership (a CASE per policy, the day arithmetic on day
numbers); Python only takes each membership's row to its deferred amount and the totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from ...billing.models import BillingSchedule, CreditNote, Invoice, InvoiceLine
from ...customers.models import Customer
from ...infra.context import Ctx
from ...ledger.book import VISITS
from ...ledger.models import Account, LedgerEntry
from ...memberships.models import Membership
from ...memberships.terms import resolve, tiers
from ...rulesets.models import Ruleset, RulesetVersion
from ..catalog import Params, currency, membership_scope, report
from ..report import Column, Report, Section

BILLED_KINDS = ("membership_fee", "proration", "proration_credit")
EPOCH = date(1970, 1, 1)


# --- the policies, as pure functions (the SQL below computes the same) ---------------------------

def _toward_zero(x: Fraction) -> int:
    return int(x)  # int() of a Fraction truncates toward zero, as SQL's integer division does


def earned_by_day(amount: int, start: date, end: date, on: date) -> int:
    """What a line of `amount` for the days start..end has earned by the end of day `on`."""
    if on < start:
        return 0
    if on >= end:
        return amount
    return _toward_zero(Fraction(amount * ((on - start).days + 1), (end - start).days + 1))


def earned_by_visit(amount: int, included: int, visits: int, released: bool) -> int:
    """What a line of `amount` for a period of `included` visits has earned once `visits` of them
    were done (all of it once the rest is released)."""
    if released:
        return amount
    return _toward_zero(Fraction(amount * min(visits, included), included))


def deferred_of(unearned: int, refunded: int) -> int:
    """What is still deferred: the unearned part of what was billed less what was given back."""
    return max(unearned - refunded, 0)


# --- SQL -----------------------------------------------------------------------------------------

class day_number(FunctionElement):
    """A date as the number of days since 1970-01-01, in SQL (PostgreSQL and SQLite)."""

    type = sa.Integer()
    inherit_cache = True


@compiles(day_number)
def _day_number_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


@compiles(day_number, "sqlite")
def _day_number_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


@dataclass(frozen=True)
class Policy:
    policy: str  # by_day | by_visit
    included: int  # visits of a period (0: earned by day)
    at_expiry: bool


def policies(ctx: Ctx) -> dict[tuple[int, str], Policy]:
    """Every plan version's recognition policy, per tier (a company has a few dozen)."""
    out = {}
    rows = ctx.session.execute(sa.select(RulesetVersion.id, RulesetVersion.content)
                               .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
                               .where(Ruleset.company_id == ctx.company.id, Ruleset.kind == "Plan"))
    for vid, content in rows:
        for t in tiers(content):
            terms = resolve(content, t["id"])
            by_visit = terms.revenue_policy == "by_visit" and terms.visits_included > 0
            out[(vid, terms.tier)] = Policy("by_visit" if by_visit else "by_day",
                                            terms.visits_included if by_visit else 0,
                                            terms.unused_visits == "release_at_expiry")
    return out


def _unearned(on: date, pol: dict[tuple[int, str], Policy]) -> Any:
    """A line's amount not yet earned at the end of day `on` (the lines of finalised invoices
    issued by then; others 0)."""
    line, m = InvoiceLine, Membership
    visiting = [(k, v) for k, v in pol.items() if v.included]
    included = sa.case(*((sa.and_(m.plan_version_id == vid, m.tier == tier), v.included)
                         for (vid, tier), v in visiting), else_=0) if visiting else sa.literal(0)
    at_expiry = [sa.and_(m.plan_version_id == vid, m.tier == tier) for (vid, tier), v in visiting if v.at_expiry]
    nx = aliased(BillingSchedule, name="nx")
    ended = sa.and_(m.ended_on.is_not(None), m.ended_on <= on,
                    ~sa.exists(sa.select(nx.membership_id).where(nx.replaces == m.id)))
    days = day_number(line.period_end) - day_number(line.period_start) + 1
    by_day = line.amount_cents * (sa.literal((on - EPOCH).days) - day_number(line.period_start) + 1) // days

    def visits_entries(what: Any, kind: str, *when: Any) -> Any:
        return (sa.select(what).select_from(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id)
                .where(Account.company_id == m.company_id, Account.owner == m.id, Account.unit == VISITS,
                       LedgerEntry.kind == kind, *when))

    # The visits drawn in the line's period (to the day), and whether its visits expired by then.
    visits = visits_entries(sa.func.count(LedgerEntry.id), "debit", LedgerEntry.effective_date >= line.period_start,
                            LedgerEntry.effective_date <= line.period_end,
                            LedgerEntry.effective_date <= on).scalar_subquery()
    expired = visits_entries(LedgerEntry.id, "expire", LedgerEntry.effective_date > line.period_start,
                             LedgerEntry.effective_date <= on).exists()
    released: Any = line.period_end <= on
    if at_expiry:
        released = sa.case((sa.or_(*at_expiry), expired), else_=released)
    by_visit = line.amount_cents * sa.case((visits < included, visits), else_=included) // included
    earned = sa.case(
        (ended, line.amount_cents),
        (line.period_start > on, 0),
        (sa.and_(included > 0, released), line.amount_cents),
        (included > 0, by_visit),
        (line.period_end <= on, line.amount_cents),
        else_=by_day)
    return sa.case((Invoice.issued_on <= on, line.amount_cents - earned), else_=0)


@dataclass
class _Row:
    membership: str
    customer: str
    plan: str
    tier: str
    policy: str
    billed: tuple[int, int]  # by the opening day, by `to`
    unearned: tuple[int, int]
    refunded: tuple[int, int] = (0, 0)

    def deferred(self, i: int) -> int:
        return deferred_of(self.unearned[i], self.refunded[i])

    def recognised(self, i: int) -> int:
        return self.billed[i] - self.refunded[i] - self.deferred(i)


def rows(ctx: Ctx, p: Params) -> list[_Row]:
    """Each membership's billed, unearned and refunded amounts at the opening and at `to`."""
    opening, closing = p.start - timedelta(days=1), p.end
    pol = policies(ctx)
    scope = membership_scope(ctx, p)

    def total(value: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(value), 0)

    billed = [total(sa.case((Invoice.issued_on <= d, InvoiceLine.amount_cents), else_=0)) for d in (opening, closing)]
    q = (sa.select(Membership.id, Customer.name, Ruleset.name, Membership.tier, Membership.plan_version_id,
                   *billed, total(_unearned(opening, pol)), total(_unearned(closing, pol)))
         .select_from(InvoiceLine)
         .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
         .join(Membership, Membership.id == Invoice.membership_id)
         .join(Customer, Customer.id == Membership.customer_id)
         .join(RulesetVersion, RulesetVersion.id == Membership.plan_version_id)
         .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
         .where(*scope, Invoice.company_id == ctx.company.id, Invoice.status != "draft",
                Invoice.issued_on <= closing, InvoiceLine.kind.in_(BILLED_KINDS))
         .group_by(Membership.id, Customer.name, Ruleset.name, Membership.tier, Membership.plan_version_id,
                   Membership.issued_on)
         .order_by(Ruleset.name, Membership.issued_on, Membership.id))
    found = {}
    for mid, name, plan, tier, vid, b0, b1, u0, u1 in ctx.session.execute(q):
        policy = pol.get((vid, tier))
        found[mid] = _Row(mid, name, plan, tier, policy.policy.replace("_", " ") if policy else "by day",
                          (int(b0), int(b1)), (int(u0), int(u1)))
    # Credit notes before tax: the note less its share of the invoice's tax.
    ex_tax = CreditNote.amount_cents - sa.case(
        (Invoice.total_cents != 0, CreditNote.amount_cents * Invoice.tax_cents // Invoice.total_cents), else_=0)
    refunds = (sa.select(CreditNote.membership_id,
                         *(total(sa.case((CreditNote.issued_on <= d, ex_tax), else_=0)) for d in (opening, closing)))
               .join(Invoice, Invoice.id == CreditNote.invoice_id)
               .join(Membership, Membership.id == CreditNote.membership_id)
               .where(*scope, CreditNote.company_id == ctx.company.id, CreditNote.issued_on <= closing)
               .group_by(CreditNote.membership_id))
    for mid, r0, r1 in ctx.session.execute(refunds):
        if mid in found:  # a note is always on a billed invoice
            found[mid].refunded = (int(r0), int(r1))
    return [r for r in found.values() if any(r.billed) or any(r.refunded)]


@report("deferred-revenue", "Deferred revenue",
        "For the last day: what members were billed, what is recognised, refunded and still deferred, per "
        "membership and in total, by each plan's recognition policy (by day or by visit); a roll-forward over "
        "the range (opening deferred + billed − recognised − refunded = closing deferred).",
        filters=("from", "to", "location", "plan", "tier"))
def deferred_revenue(ctx: Ctx, p: Params) -> Report:
    found = rows(ctx, p)
    opening = p.start - timedelta(days=1)
    members = Section("memberships", f"Deferred revenue by membership on {p.end.isoformat()}",
                      (Column("membership", "Membership"), Column("customer", "Customer"), Column("plan", "Plan"),
                       Column("tier", "Tier"), Column("policy", "Earned"),
                       Column("billed", "Billed to date", "money"), Column("recognised", "Recognised to date", "money"),
                       Column("refunded", "Refunded to date", "money"), Column("deferred", "Deferred", "money")),
                      note="Billed: membership fees and prorations invoiced (before tax). Refunded: credit notes "
                           "(before tax). Deferred = billed − recognised − refunded: service paid for and not yet "
                           "delivered.")
    for r in found:
        members.add(r.membership, r.customer, r.plan, r.tier, r.policy, r.billed[1], r.recognised(1), r.refunded[1],
                    r.deferred(1))
    roll = Section("roll-forward", f"Roll-forward, {p.start.isoformat()} to {p.end.isoformat()}",
                   (Column("plan", "Plan"), Column("opening", f"Deferred on {opening.isoformat()}", "money"),
                    Column("billed", "Billed", "money"), Column("recognised", "Recognised", "money"),
                    Column("refunded", "Refunded", "money"),
                    Column("closing", f"Deferred on {p.end.isoformat()}", "money")),
                   note="Opening deferred + billed − recognised − refunded = closing deferred, for each plan and in "
                        "total. Recognised: by day over each billing period, or by visit as the plan says; a "
                        "membership that ends has earned what it was not given back by its last day.")
    by_plan: dict[str, list[int]] = {}
    for r in found:
        t = by_plan.setdefault(r.plan, [0, 0, 0, 0, 0])
        for i, v in enumerate((r.deferred(0), r.billed[1] - r.billed[0], r.recognised(1) - r.recognised(0),
                               r.refunded[1] - r.refunded[0], r.deferred(1))):
            t[i] += v
    for plan, t in by_plan.items():
        roll.add(plan, *t)
    totals = [sum(t[i] for t in by_plan.values()) for i in range(5)]
    roll.add("Total", *totals)
    summary = Section("summary", f"Deferred revenue on {p.end.isoformat()}",
                      (Column("memberships", "Memberships", "int"), Column("billed", "Billed to date", "money"),
                       Column("recognised", "Recognised to date", "money"),
                       Column("refunded", "Refunded to date", "money"), Column("deferred", "Deferred", "money")))
    summary.add(len(found), sum(r.billed[1] for r in found), sum(r.recognised(1) for r in found),
                sum(r.refunded[1] for r in found), sum(r.deferred(1) for r in found))
    return Report("deferred-revenue", "Deferred revenue", p.shown(), currency(ctx, p), [summary, roll, members])
