"""Changing tier mid-period, and ending at the billing period's end.

A change `now` on day D of a billing period [start, end]:
- credit: the unused part of what the membership's current invoice charged for its service,
  by day — its amount times the days D..end over the invoice's days, rounded half-up once. A
  second change in the same period credits what the first change invoiced (its stub line), not
  the original price;
- charge: the new tier's price for D..end, by day over the whole billing period's days;
- due now: the charge less the credit, on one invoice of the new membership (both lines on it).
  A downgrade whose credit is larger pays the difference back (a credit note on the invoice the
  credit came from, refunded to its card).
Upgrading from 10.00 to 20.00 on day 16 of a 30-day period: credit 5.00, charge 10.00, due 5.00.
A change at `period_end` moves the member when the billing period ends, at the new price, with
nothing prorated. Billing continues on the same billing day, at the same cadence, on the same card.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ..events import pipeline
from ..infra.context import Ctx
from ..kernel.errors import Declined
from ..kernel.money import format_cents, share_of, tax_of, to_cents
from ..memberships.terms import PlanTerms
from . import invoices, refunds, schedule
from .models import BillingSchedule, Invoice

NEVER = date(9999, 12, 31)  # the next bill of a schedule whose membership has ended


def schedule_of(ctx: Ctx, membership_id: str) -> BillingSchedule | None:
    s = ctx.session.get(BillingSchedule, membership_id)
    return s if s is not None and s.company_id == ctx.company.id else None


def billing_period(s: BillingSchedule, on: date) -> tuple[date, date]:
    """The billing period (first and last day) holding `on`; the stub's full period before the anchor."""
    k = -1
    while True:
        start, end = schedule.period_of(s.anchor_on, s.anchor_day, s.cadence, k)
        if end >= on:
            return start, end
        k += 1


def current_invoice(ctx: Ctx, membership_id: str, on: date) -> Invoice | None:
    return ctx.session.scalar(sa.select(Invoice).where(
        Invoice.company_id == ctx.company.id, Invoice.membership_id == membership_id,
        Invoice.status.in_(("open", "paid")), Invoice.period_start <= on, Invoice.period_end >= on)
        .order_by(Invoice.number.desc()).limit(1))


def preview(ctx: Ctx, membership_id: str, old: PlanTerms, new: PlanTerms, on: date) -> dict[str, Any] | None:
    """What changing to `new` on `on` credits, charges and asks now; None when not billed here."""
    s = schedule_of(ctx, membership_id)
    if s is None:
        return None
    price = new.prices.get(s.cadence)
    if price is None:
        raise Declined("cadence_not_offered", f"{new.plan_name} ({new.tier_name}) is not billed {s.cadence}")
    start, end = billing_period(s, on)
    inv = current_invoice(ctx, membership_id, on)
    credit = 0
    how: dict[str, Any] = {"billing_period": {"start": start.isoformat(), "end": end.isoformat()},
                           "days_left": (end - on).days + 1, "days_in_period": (end - start).days + 1,
                           "new_price": format_cents(to_cents(price)), "cadence": s.cadence}
    if inv is not None:
        charged = refunds.service_cents(ctx, inv)
        inv_days = (inv.period_end - inv.period_start).days + 1
        unused = (inv.period_end - on).days + 1
        credit = share_of(charged, unused, inv_days)
        how.update(invoice=inv.number, invoiced=format_cents(charged), invoice_days=inv_days, days_unused=unused)
    charge = share_of(to_cents(price), (end - on).days + 1, (end - start).days + 1)
    # With sales tax: each line of the change's invoice taxed on its own; a refund gives the
    # tax charged on it back.
    place = invoices.location_of(ctx, s.customer_id)
    rate = place.tax_rate if place is not None else "0"
    applied = min(credit, charge)
    tax = tax_of(charge, rate) + tax_of(-applied, rate)
    back = credit - charge + (tax_of(credit - charge, inv.tax_rate) if inv is not None and inv.tax_rate else 0)
    if tax or (inv is not None and inv.tax_rate):
        how.update(tax_rate=rate, tax=format_cents(tax))
    return {"credit": format_cents(credit), "charge": format_cents(charge),
            "due_now": format_cents(max(charge - applied + tax, 0)), "refund": format_cents(max(back, 0)),
            "refund_cents": max(back, 0),
            "currency": s.currency, "computed": how, "credit_cents": credit, "charge_cents": charge,
            "period_end": end, "invoice": inv}


def bill_change(ctx: Ctx, old_id: str, new_id: str, old: PlanTerms, new: PlanTerms, on: date,
                found: dict[str, Any]) -> dict[str, Any]:
    """The change's invoice on the new membership (credit and charge), and the old schedule stopped."""
    s_old = schedule_of(ctx, old_id)
    s_new = schedule_of(ctx, new_id)
    assert s_old is not None and s_new is not None
    end: date = found["period_end"]
    credit, charge = found["credit_cents"], found["charge_cents"]
    applied = min(credit, charge)
    lines = [{"kind": "proration", "description": f"{new.plan_name} ({new.tier_name}), {on} to {end} (remaining "
              f"{(end - on).days + 1} days)", "amount_cents": charge, "period_start": on, "period_end": end}]
    if applied:
        lines.append({"kind": "proration_credit", "description": f"Unused time on {old.tier_name}, {on} to {end}",
                      "amount_cents": -applied, "period_start": on, "period_end": end})
    inv = invoices.issue(ctx, f"{new_id}:{on.isoformat()}", new_id, s_new.customer_id, s_new.currency, on, lines)
    if inv is not None and inv.total_cents == 0:
        inv.status, inv.paid_on, inv.next_attempt_on = "paid", on, None
    s_new.next_bill_on = end + timedelta(days=1)
    s_old.next_bill_on = NEVER
    out = {"invoice": inv.number if inv else None}
    if credit > charge and found["invoice"] is not None:
        notes = refunds.pay_back(ctx, old_id, found["refund_cents"], on, f"downgrade to {new.tier_name}", "tier",
                                 [found["invoice"].number])
        out["credit_notes"] = notes
    return out


def move(ctx: Ctx, m: Any, plan: str, tier: str, on: date) -> dict[str, Any]:
    """The membership ends and one on `tier` starts on `on`, billing going on from it: two events
    in the caller's transaction (a refusal of either undoes both)."""
    pipeline.accepted(pipeline.post(ctx, {"id": f"admin:cancelled:{m.id}:{on.isoformat()}:upgrade:{tier}",
                                          "type": "cancelled", "customer": m.customer_id,
                                          "occurred_at": ctx.midday_of(on),
                                          "data": {"membership": m.id, "reason": f"changed to tier {tier}",
                                                   "refund": "none"}}, trusted=True))
    return pipeline.accepted(pipeline.post(ctx, {"id": f"upgrade:{m.id}:{tier}:{on.isoformat()}", "type": "enrolled",
                                  "customer": m.customer_id, "occurred_at": ctx.midday_of(on),
                                  "data": {"plan": plan, "tier": tier, "replaces": m.id}}, trusted=True))


def at_period_end(ctx: Ctx, s: BillingSchedule, m: Any) -> dict[str, Any] | None:
    """What was asked for the end of the billing period now ending (due work, on the first day
    of the next): the change of tier, or the end of the membership."""
    on = s.next_bill_on
    if s.ends_on is not None and on > s.ends_on:
        s.next_bill_on = NEVER
        refund = s.ends_refund or "none"
        why = "cancelled at the billing period's end" if refund == "none" else "cancelled with notice"
        return pipeline.post(ctx, {"id": f"period_end:cancelled:{m.id}:{s.ends_on.isoformat()}", "type": "cancelled",
                                   "customer": m.customer_id, "occurred_at": ctx.midday_of(s.ends_on),
                                   "data": {"membership": m.id, "reason": why, "refund": refund}}, trusted=True)
    if s.change_to_tier:
        tier, s.change_to_tier = s.change_to_tier, None
        s.next_bill_on = NEVER
        return move(ctx, m, s.ruleset.split("@")[0], tier, on)
    return None
