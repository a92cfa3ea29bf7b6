"""Billing's part in events: an enrolment that names a billing cadence gets its schedule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from ..events.registry import PendingEvent, react
from ..infra.context import Ctx
from ..kernel.errors import Declined
from ..kernel.money import format_cents, to_cents
from ..memberships import memberships
from . import schedule
from .models import BillingSchedule

_SCHEDULES = BillingSchedule.__table__


@react(order=5)
def schedule_billing(ctx: Ctx, event: PendingEvent, data: dict, local: date, member: Callable[[], dict],
                     result: dict) -> dict[str, Any] | None:
    cadence = data.get("cadence")
    if event.type != "enrolled" or not cadence or not event.membership_id:
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
           "ruleset": plan_ref}
    ctx.unit.add_row(_SCHEDULES, row)  # type: ignore[arg-type]
    return {"billing": {"cadence": cadence, "price": format_cents(row["price_cents"]), "currency": terms.currency,
                        "anchor_on": anchor_on.isoformat(), "proration": terms.billing_proration}}
