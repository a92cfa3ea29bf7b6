"""Payment methods: a customer's cards, kept by a gateway and known here by token, brand, last
four digits and expiry. The first card a customer adds is their default (the one membership
payments use, unless a membership names its own); adding a card to a customer with a failed
payment has it tried at the next billing run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..customers.customers import get_customer
from ..infra.context import Ctx
from ..kernel.errors import Declined, NotFound
from ..kernel.ids import new_id
from .gateways import Card
from .models import BillingSchedule, Invoice, PaymentMethod


def view(pm: PaymentMethod) -> dict[str, Any]:
    return {"id": pm.id, "customer": pm.customer_id, "gateway": pm.gateway, "brand": pm.brand, "last4": pm.last4,
            "exp_month": pm.exp_month, "exp_year": pm.exp_year, "default": pm.is_default, "status": pm.status,
            "label": f"{pm.brand.capitalize()} ending {pm.last4}, expires {pm.exp_month:02d}/{pm.exp_year}"}


def add(ctx: Ctx, customer_id: str, gateway: str, card: Card, default: bool = False) -> PaymentMethod:
    get_customer(ctx.session, ctx.company.id, customer_id, lock=True)
    others = list(_active(ctx, customer_id))
    pm = PaymentMethod(id=new_id("pm"), company_id=ctx.company.id, customer_id=customer_id, gateway=gateway,
                       reference=card.reference, brand=card.brand, last4=card.last4, exp_month=card.exp_month,
                       exp_year=card.exp_year, is_default=default or not others, status="active")
    if pm.is_default:
        for o in others:
            o.is_default = False
    ctx.session.add(pm)
    ctx.session.flush()
    if pm.is_default:
        _retry_failed(ctx, customer_id)
    return pm


def _active(ctx: Ctx, customer_id: str) -> list[PaymentMethod]:
    return list(ctx.session.scalars(sa.select(PaymentMethod).where(
        PaymentMethod.company_id == ctx.company.id, PaymentMethod.customer_id == customer_id,
        PaymentMethod.status == "active").order_by(PaymentMethod.created_at, PaymentMethod.id)))


def _retry_failed(ctx: Ctx, customer_id: str) -> None:
    """A new default card: the customer's unpaid invoices are charged to it at the next run
    (dated today, by the company's clock)."""
    today = ctx.today()
    for inv in ctx.session.scalars(sa.select(Invoice).where(
            Invoice.company_id == ctx.company.id, Invoice.customer_id == customer_id, Invoice.status == "open",
            Invoice.amount_due_cents > 0)):
        inv.next_attempt_on = min(inv.next_attempt_on or today, today)


def get(ctx: Ctx, pm_id: str, customer_id: str | None = None) -> PaymentMethod:
    pm = ctx.session.get(PaymentMethod, pm_id)
    if pm is None or pm.company_id != ctx.company.id or (customer_id and pm.customer_id != customer_id):
        raise NotFound(f"no payment method {pm_id!r}" + (f" of customer {customer_id}" if customer_id else ""))
    return pm


def listing(ctx: Ctx, customer_id: str) -> list[dict[str, Any]]:
    get_customer(ctx.session, ctx.company.id, customer_id)
    return [view(pm) for pm in _active(ctx, customer_id)]


def set_default(ctx: Ctx, pm_id: str) -> PaymentMethod:
    pm = get(ctx, pm_id)
    if pm.status != "active":
        raise Declined("payment_method_removed", f"payment method {pm.id} was removed")
    for o in _active(ctx, pm.customer_id):
        o.is_default = o.id == pm.id
    _retry_failed(ctx, pm.customer_id)
    return pm


def remove(ctx: Ctx, pm_id: str) -> PaymentMethod:
    """Removed cards are kept (payments name them) but never charged again; a membership that
    named it falls back to the customer's default, and the oldest card left becomes the default."""
    pm = get(ctx, pm_id)
    pm.status, was_default, pm.is_default = "removed", pm.is_default, False
    for s in ctx.session.scalars(sa.select(BillingSchedule).where(BillingSchedule.company_id == ctx.company.id,
                                                                   BillingSchedule.payment_method_id == pm.id)):
        s.payment_method_id = None
    left = _active(ctx, pm.customer_id)
    if was_default and left:
        left[0].is_default = True
    return pm


def to_charge(ctx: Ctx, schedule: BillingSchedule | None, customer_id: str) -> PaymentMethod | None:
    """The card a membership's invoices are charged to: its own, else the customer's default."""
    if schedule is not None and schedule.payment_method_id:
        pm = ctx.session.get(PaymentMethod, schedule.payment_method_id)
        if pm is not None and pm.status == "active":
            return pm
    return next((pm for pm in _active(ctx, customer_id) if pm.is_default), None)
