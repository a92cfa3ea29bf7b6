"""Billing's due work: the periods of each schedule that have begun, invoiced in advance."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ..events import due
from ..events.due import DueUnit
from ..infra.context import Ctx
from ..memberships import memberships
from . import changes, invoices, schedule
from .models import BillingSchedule

MOST_PERIODS = 120  # periods one unit catches up (a long-neglected schedule takes several runs)


def _plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    # Periods begun, and memberships whose asked-for last day has passed (cancelled with notice).
    rows = ctx.session.execute(sa.select(BillingSchedule.membership_id, BillingSchedule.customer_id,
                                         BillingSchedule.next_bill_on)
                               .where(BillingSchedule.company_id == ctx.company.id,
                                      sa.or_(BillingSchedule.next_bill_on <= as_of,
                                             sa.and_(BillingSchedule.ends_on < as_of,
                                                     BillingSchedule.next_bill_on != changes.NEVER)))
                               .order_by(BillingSchedule.next_bill_on, BillingSchedule.membership_id))
    return [DueUnit("billing", f"due:billing:{mid}:{on.isoformat()}", cid, mid, as_of) for mid, cid, on in rows]


def _run(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    s = ctx.session.get(BillingSchedule, unit.subject, with_for_update=True)
    if s is None or s.company_id != ctx.company.id or s.customer_id != unit.customer:
        return {"unit": unit.key, "invoices_issued": 0}
    m = memberships.get(ctx, s.membership_id)
    issued = 0
    for _ in range(MOST_PERIODS):
        if s.ends_on is not None and s.ends_on < unit.as_of and s.ends_on < s.next_bill_on and m.status == "active":
            changes.at_period_end(ctx, s, m)  # its last day has passed: it ends
            break
        if s.next_bill_on > unit.as_of:
            break  # not begun yet
        if m.status != "active":
            s.next_bill_on = changes.NEVER  # the membership has ended: nothing more to bill
            break
        if changes.at_period_end(ctx, s, m) is not None:
            break  # changed tier (the new membership bills from here) or ended
        start, end, lines = _period(ctx, s, m)
        inv = invoices.issue(ctx, f"{s.membership_id}:{start.isoformat()}", s.membership_id, s.customer_id,
                             s.currency, start, lines) if lines else None
        issued += 1 if inv is not None else 0
        s.next_bill_on = end + timedelta(days=1)
    return {"unit": unit.key, "invoices_issued": issued}


def _period(ctx: Ctx, s: BillingSchedule, m: Any) -> tuple[date, date, list[dict[str, Any]]]:
    """The billing period starting at the schedule's next bill day, and its lines."""
    terms = memberships.plan_of(ctx, m)[1]
    plan = f"{terms.plan_name} ({terms.tier_name}), {s.cadence}"
    if s.next_bill_on < s.anchor_on:  # the stub before the first full period
        start, end = s.next_bill_on, s.anchor_on - timedelta(days=1)
        amount = schedule.stub_amount(s.price_cents, start, s.anchor_on, s.anchor_day, s.cadence, s.proration)
        days, of = schedule.stub_days(start, s.anchor_on, s.anchor_day, s.cadence)
        how = {"daily": f"{days} of {of} days", "full_period": "a full period", "none": "no charge"}[s.proration]
        lines = [{"kind": "proration", "description": f"{plan}: {start} to {end} ({how})", "amount_cents": amount,
                  "period_start": start, "period_end": end}] if amount else []
        return start, end, lines
    start, end = changes.billing_period(s, s.next_bill_on)  # next_bill_on is always a period's first day
    return start, end, [{"kind": "membership_fee", "description": f"{plan}: {start} to {end}",
                         "amount_cents": s.price_cents, "period_start": start, "period_end": end}]


due.kind("billing", 15, _plan, _run)
