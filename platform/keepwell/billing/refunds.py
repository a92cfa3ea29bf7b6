"""What cancelling would give back, by the plan's cancellation terms — shown before a member or a
contractor confirms (the refund itself is paid with payments).

For the invoice whose billing period holds the last day:
- `refund: full` gives back its total; `none` nothing; within `full_refund_within_days` of
  joining, every invoice so far is given back in full;
- `refund: prorated` (default) gives back the unused days' share of its total, rounded half-up
  once; with `refund_basis: usage`, a member who took more visits than the days they had pays
  for the visits instead: the refund is the total less the larger of the days used and the
  visits used (each at `visit_value`), never below zero;
- the cancellation `fee` is taken from what is given back (the answer says what is owed if the
  fee is larger).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.money import format_cents, share_of, to_cents
from ..ledger import VISITS
from ..ledger.models import Account, LedgerEntry
from ..memberships import memberships
from .models import BillingSchedule, Invoice


def visits_taken(ctx: Ctx, membership_id: str, start: date, end: date) -> int:
    """Included visits drawn between two days (both included)."""
    return int(ctx.session.scalar(
        sa.select(sa.func.count()).select_from(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id)
        .where(Account.company_id == ctx.company.id, Account.owner == membership_id, Account.unit == VISITS,
               LedgerEntry.kind == "debit", LedgerEntry.effective_date >= start, LedgerEntry.effective_date <= end))
        or 0)


def preview(ctx: Ctx, membership_id: str, on: date) -> dict[str, Any] | None:
    """The refund cancelling on `on` (the last day) would give, and how it is computed; None for a
    membership not billed here."""
    s = ctx.session.get(BillingSchedule, membership_id)
    if s is None or s.company_id != ctx.company.id:
        return None
    terms = memberships.plan_of(ctx, memberships.get(ctx, membership_id))[1]
    c = terms.cancellation
    fee = to_cents(c.get("fee", "0"))
    invoices = list(ctx.session.scalars(sa.select(Invoice).where(
        Invoice.company_id == ctx.company.id, Invoice.membership_id == membership_id).order_by(Invoice.number)))
    current = next((i for i in invoices if i.period_start <= on <= i.period_end), None)
    how: dict[str, Any] = {"policy": c.get("refund", "prorated"), "basis": c.get("refund_basis", "days"),
                           "fee": format_cents(fee)}
    within = c.get("full_refund_within_days")
    if within is not None and (on - s.starts_on).days <= within:
        back = sum(i.total_cents for i in invoices)
        how.update(policy="full_within_days", days_since_joining=(on - s.starts_on).days)
    elif current is None:
        back = 0
        how["invoice"] = None
    else:
        days = (current.period_end - current.period_start).days + 1
        unused = (current.period_end - on).days
        how.update(invoice=current.number, invoiced=format_cents(current.total_cents), days_in_period=days,
                   days_unused=unused)
        if how["policy"] == "full":
            back = current.total_cents
        elif how["policy"] == "none":
            back = 0
        else:
            used_days = current.total_cents - share_of(current.total_cents, unused, days)
            used = used_days
            if how["basis"] == "usage":
                taken = visits_taken(ctx, membership_id, current.period_start, on)
                value = taken * to_cents(c.get("visit_value", "0"))
                how.update(visits_used=taken, value_of_visits=format_cents(value))
                used = max(used_days, value)
            back = max(current.total_cents - used, 0)
    net = back - fee
    return {"refund": format_cents(max(net, 0)), "owed": format_cents(max(-net, 0)), "currency": s.currency,
            "computed": how}
