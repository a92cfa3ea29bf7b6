"""The membership statement, house-account style: for one membership or one customer, every
line between opening and closing balance (the member's own statement, the "Membership Overdraft
Payment" line included); for all members of a plan (or every member), one row per membership
with what moved its balance, summed in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm

from ...customers.models import Customer
from ...infra.context import Ctx
from ...kernel.money import to_cents
from ...ledger.book import ALLOWANCE, OVERDRAFT
from ...ledger.models import Account, LedgerEntry
from ...memberships import statements
from ...memberships.models import Membership
from ...memberships.statements import OVERDRAFT_PAYMENT
from ..catalog import Params, currency, membership_scope, report
from ..report import Column, Report, Section

LINES = (Column("date", "Date", "date"), Column("description", "Description"), Column("amount", "Amount", "money"),
         Column("balance", "Balance", "money"), Column("overdraft_used", "Overdraft used", "money"))
SUMMARY = (Column("membership", "Membership"), Column("customer", "Customer"), Column("tier", "Tier"),
           Column("opening", "Opening balance", "money"), Column("granted", "Allowance granted", "money"),
           Column("charges", "Charges", "money"), Column("from_overdraft", "Paid from the overdraft", "money"),
           Column("overdraft_payments", OVERDRAFT_PAYMENT, "money"),
           Column("expired", "Unused allowance expired", "money"), Column("other", "Adjustments and credits", "money"),
           Column("closing", "Closing balance", "money"),
           Column("overdraft_used", "Overdraft used at close", "money"))
# Ledger entry kinds by summary column (allowance account; the overdraft account's use shows in charges).
_KINDS = {"granted": ("grant", "overdraft_unused"), "charges": ("debit",),
          "overdraft_payments": ("overdraft_recovery",), "expired": ("expire",)}


def _in_range(p: Params) -> list[Any]:
    return [Membership.issued_on <= p.end, sa.or_(Membership.ended_on.is_(None), Membership.ended_on >= p.start)]


@report("statement", "Membership statement",
        "Opening balance, every line (the Membership Overdraft Payment line included) and closing balance: for "
        "one membership or customer line by line; for all members of a plan, one row per membership.",
        filters=("from", "to", "membership", "customer", "plan", "tier", "location"))
def statement(ctx: Ctx, p: Params) -> Report:
    ids = list(ctx.session.scalars(sa.select(Membership.id).where(*membership_scope(ctx, p), *_in_range(p))
                                   .order_by(Membership.issued_on, Membership.id)))
    if p.membership or p.customer:
        sections = [_lines(ctx, mid, p) for mid in ids]
    else:
        sections = [_summary(ctx, p, ids)]
    return Report("statement", "Membership statement", p.shown(), currency(ctx, p), sections)


def _lines(ctx: Ctx, membership_id: str, p: Params) -> Section:
    st = statements.statement(ctx, membership_id, max(p.start, _issued(ctx, membership_id)), p.end)
    m, house = st["membership"], st["house"]
    s = Section(f"membership-{membership_id}", f"{m['customer']['name']} — {m['plan_name']} ({m['tier_name']}), "
                f"{membership_id}", LINES)
    if "lines" not in house:
        s.note = "This plan has no allowance: its statement has no money lines."
        return s
    s.add(p.start, "Opening balance", None, to_cents(house["opening"]["balance"]),
          to_cents(house["opening"]["overdraft_used"]))
    for line in house["lines"]:
        s.add(line["date"], line["description"], to_cents(line["amount"]), to_cents(line["balance"]),
              to_cents(line["overdraft_used"]))
    s.add(p.end, "Closing balance", None, to_cents(house["closing"]["balance"]),
          to_cents(house["closing"]["overdraft_used"]))
    return s


def _issued(ctx: Ctx, membership_id: str) -> Any:
    return ctx.session.scalar(sa.select(Membership.issued_on).where(Membership.id == membership_id))


def _summary(ctx: Ctx, p: Params, ids: list[str]) -> Section:
    s = Section("memberships", "Memberships", SUMMARY,
                note="Charges are what members spent, the part paid from the overdraft included (shown again, "
                     "added back, as paid from the overdraft); the overdraft payment is what the next period's "
                     "allowance paid back. Opening balance + allowance granted + charges + paid from the overdraft "
                     "+ overdraft payments + expired + adjustments = closing balance.")
    if not ids:
        return s
    e = LedgerEntry
    within = e.effective_date.between(p.start, p.end)

    def total(*conds: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(*conds), e.amount), else_=0)), 0)

    # Each account's sums first (one pass over the company's entries, grouped by account), then
    # joined to the memberships: the database aggregates narrow rows instead of joined wide ones.
    named = [k for ks in _KINDS.values() for k in ks]
    sums = (sa.select(e.account_id.label("account"), total(e.effective_date < p.start).label("opening"),
                      *(total(within, e.kind.in_(kinds)).label(name) for name, kinds in _KINDS.items()),
                      total(within, e.kind == "overdraft").label("used"),
                      total(within, e.kind.not_in(named)).label("other"), sa.func.sum(e.amount).label("closing"))
            .where(e.company_id == ctx.company.id, e.effective_date <= p.end)
            .group_by(e.account_id)).subquery()
    allowance, overdraft = sa.orm.aliased(Account), sa.orm.aliased(Account)
    a_sums, o_sums = sums.alias("a_sums"), sums.alias("o_sums")

    def of(sub: Any, column: str) -> Any:
        return sa.func.coalesce(sub.c[column], 0)

    q = (sa.select(Membership.id, Customer.name, Membership.tier, of(a_sums, "opening"), of(a_sums, "granted"),
                   of(a_sums, "charges"), of(o_sums, "used"), of(a_sums, "overdraft_payments"),
                   of(a_sums, "expired"), of(a_sums, "other"), of(a_sums, "closing"), of(o_sums, "closing"))
         .select_from(Membership)
         .join(Customer, Customer.id == Membership.customer_id)
         .outerjoin(allowance, sa.and_(allowance.company_id == ctx.company.id, allowance.owner == Membership.id,
                                       allowance.unit == ALLOWANCE))
         .outerjoin(a_sums, a_sums.c.account == allowance.id)
         .outerjoin(overdraft, sa.and_(overdraft.company_id == ctx.company.id, overdraft.owner == Membership.id,
                                       overdraft.unit == OVERDRAFT))
         .outerjoin(o_sums, o_sums.c.account == overdraft.id)
         .where(*membership_scope(ctx, p), *_in_range(p))
         .order_by(Membership.issued_on, Membership.id))
    for mid, name, tier, opening, granted, charges, od_charges, payments, expired, other, closing, od in \
            ctx.session.execute(q):
        s.add(mid, name, tier, int(opening), int(granted), int(charges) + int(od_charges), -int(od_charges),
              int(payments), int(expired), int(other), int(closing), -int(od))
    return s
