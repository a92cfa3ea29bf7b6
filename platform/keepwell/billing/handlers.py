"""Billing's part in events: an enrolment that names a billing cadence gets its schedule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from ..events.registry import PendingEvent, event_type, react
from ..infra.context import Ctx
from ..kernel.errors import Declined
from ..kernel.money import format_cents, to_cents
from ..memberships import memberships
from ..memberships.handlers import MEMBERSHIP
from ..rulesets.event_types import common, data_schema
from . import changes, payment_methods, refunds, schedule
from .models import BillingSchedule

_SCHEDULES = BillingSchedule.__table__


@react(order=5)
def schedule_billing(ctx: Ctx, event: PendingEvent, data: dict, local: date, member: Callable[[], dict],
                     result: dict) -> dict[str, Any] | None:
    if event.type != "enrolled" or not event.membership_id:
        return None
    before = ctx.session.get(BillingSchedule, data["replaces"]) if data.get("replaces") else None
    cadence = before.cadence if before is not None else data.get("cadence")
    if not cadence:
        return None
    m = memberships.get(ctx, event.membership_id)
    plan_ref, terms = memberships.plan_of(ctx, m)
    price = terms.prices.get(cadence)
    if price is None:
        offered = ", ".join(c for c in schedule.CADENCES if c in terms.prices)
        raise Declined("cadence_not_offered", f"{terms.plan_name} ({terms.tier_name}) is not billed {cadence}: "
                       + (f"it is billed {offered}" if offered else "it has no price"))
    anchor_day = terms.billing_anchor_day or local.day
    anchor_on = schedule.anchor(local, terms.billing_anchor_day)
    row = {"membership_id": m.id, "company_id": ctx.company.id, "customer_id": m.customer_id, "cadence": cadence,
           "starts_on": local, "anchor_on": anchor_on, "anchor_day": anchor_day, "price_cents": to_cents(price),
           "currency": terms.currency, "proration": terms.billing_proration, "next_bill_on": local,
           "ruleset": plan_ref, "payment_method_id": None, "change_to_tier": None, "ends_on": None, "ends_refund": None,
           "replaces": None}
    if before is not None and before.company_id == ctx.company.id:
        # A change of tier: billing goes on from the old schedule, on its day, card and currency.
        start, end = changes.billing_period(before, local)
        row.update(anchor_day=before.anchor_day, anchor_on=start if start == local else end + timedelta(days=1),
                   proration="daily", payment_method_id=before.payment_method_id, replaces=before.membership_id)
    if data.get("payment_method"):  # charged to this card rather than the customer's default
        row["payment_method_id"] = payment_methods.get(ctx, data["payment_method"], m.customer_id).id
    ctx.unit.add_row(_SCHEDULES, row)  # type: ignore[arg-type]
    return {"billing": {"cadence": cadence, "price": format_cents(row["price_cents"]), "currency": terms.currency,
                        "anchor_on": anchor_on.isoformat(), "proration": terms.billing_proration}}


@react(order=6)
def refund_on_cancel(ctx: Ctx, event: PendingEvent, data: dict, local: date, member: Callable[[], dict],
                     result: dict) -> dict[str, Any] | None:
    """A cancelled membership gives back what its plan's cancellation terms say."""
    if event.type != "cancelled" or data.get("refund", "policy") != "policy":
        return None
    given = refunds.give_back(ctx, data["membership"], local, data.get("reason") or "membership cancelled")
    if given is None:
        return None
    return {"refund": given["refund"], "owed": given["owed"], "currency": given["currency"],
            "refund_computed": given["computed"], "credit_notes": given.get("credit_notes", [])}


# --- payments: the events collecting an invoice raises (billing.payments) -------------------------

INVOICE = {"title": "Invoice", "description": "Number of the invoice.", "type": "integer", "minimum": 1}
AMOUNT = {"title": "Amount", "description": "Amount of the payment.", **common("nonneg_money")}
ATTEMPT = {"title": "Attempt", "description": "Which attempt to collect the invoice it was (1 is the first).",
           "type": "integer", "minimum": 1}
DAY = {"title": "Day", **common("date")}


@event_type("payment_succeeded", title="Payment received",
            description="A membership invoice was paid by card (a payment after failures restores the membership).",
            data=data_schema(["membership", "invoice", "amount", "attempt"], membership=MEMBERSHIP, invoice=INVOICE,
                             amount=AMOUNT, attempt=ATTEMPT,
                             restored_from={"title": "Restored from", "description": "The standing it was in.",
                                            "type": "string", "enum": ["past_due", "suspended"]}),
            platform_only=True, key_prefix="payment_succeeded:")
def payment_succeeded(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    m = memberships.get(ctx, data["membership"], lock=True)
    m.standing = None
    return {"membership": m.id, "invoice": data["invoice"], "status": m.status,
            **({"restored": True} if data.get("restored_from") else {})}


@event_type("payment_failed", title="Payment failed",
            description="Charging a membership invoice failed: when it is tried again, and the membership's standing.",
            data=data_schema(["membership", "invoice", "amount", "attempt", "decline_code", "standing"],
                             membership=MEMBERSHIP, invoice=INVOICE, amount=AMOUNT, attempt=ATTEMPT,
                             decline_code={"title": "Reason code", "description": "The bank's reason, e.g. "
                                           "insufficient_funds.", "type": "string"},
                             message={"title": "Message", "description": "The reason, in words.", "type": "string"},
                             will_retry={"title": "Will be retried", "type": "boolean"},
                             retry_on={**DAY, "description": "When the card is tried again."},
                             cancels_on={**DAY, "description": "When the membership is cancelled if still unpaid."},
                             standing={"title": "Standing", "description": "The membership's standing now.",
                                       "type": "string", "enum": ["past_due", "suspended"]}),
            platform_only=True, key_prefix="payment_failed:")
def payment_failed(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    m = memberships.get(ctx, data["membership"], lock=True)
    m.standing = data["standing"]
    return {"membership": m.id, "invoice": data["invoice"], "standing": m.standing}


@event_type("membership_suspended", title="Membership suspended",
            description="A membership unpaid past the plan's grace days: its allowance and included visits are "
                        "held until the invoice is paid.",
            data=data_schema(["membership", "invoice"], membership=MEMBERSHIP, invoice=INVOICE, amount=AMOUNT,
                             cancels_on={**DAY, "description": "When it is cancelled if still unpaid."}),
            platform_only=True, key_prefix="membership_suspended:")
def membership_suspended(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    m = memberships.get(ctx, data["membership"], lock=True)
    m.standing = "suspended"
    return {"membership": m.id, "standing": m.standing}
