"""Loyalty status tiers (Silver, Gold, Platinum...): reached by points earned (held points once
they unlock) or money spent over the program's window; upgraded the moment a customer reaches a
higher tier, downgraded at the yearly review (or never). A change is a `loyalty_tier_changed`
event, which notification triggers and points rules can react to. These are not the tiers of a
membership plan: they are the customer's standing in the rewards program."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ..events import pipeline
from ..events.models import Event
from ..infra.context import Ctx
from ..kernel.money import format_cents, to_cents
from ..kernel.periods import add_months
from . import points
from .models import LoyaltyStatus
from .program import Loyalty, LoyaltyTier, program


def current(ctx: Ctx, customer_id: str) -> LoyaltyStatus | None:
    return ctx.session.get(LoyaltyStatus, (ctx.company.id, customer_id))


def window_start(loyalty: Loyalty, on: date) -> date | None:
    return add_months(on, -12) + timedelta(days=1) if loyalty.window == "rolling_12_months" else None


def qualifying(ctx: Ctx, customer_id: str, loyalty: Loyalty, on: date, extra_spend: int = 0) -> int:
    """What counts toward the tiers on `on`: points earned, or cents spent, in the window."""
    start = window_start(loyalty, on)
    if loyalty.basis == "points":
        return points.earned_between(ctx, customer_id, start, on)
    amount = Event.payload["data"]["amount"].as_string()
    q = sa.select(amount).where(Event.company_id == ctx.company.id, Event.customer_id == customer_id,
                                Event.type == "purchase", Event.status == "processed", Event.local_date <= on)
    refunded = Event.result["refunded"].as_string()
    r = sa.select(refunded).where(Event.company_id == ctx.company.id, Event.customer_id == customer_id,
                                  Event.type == "purchase_refunded", Event.status == "processed",
                                  Event.local_date <= on)
    if start is not None:
        q, r = q.where(Event.local_date >= start), r.where(Event.local_date >= start)
    spent = sum(to_cents(a) for a in ctx.session.scalars(q) if a)
    spent -= sum(to_cents(a) for a in ctx.session.scalars(r) if a)
    for row in ctx.unit.rows.get("events", []):  # earlier in this batch, not written yet
        if row["customer_id"] == customer_id and row["status"] == "processed" and row["local_date"] <= on and (
                start is None or row["local_date"] >= start):
            if row["type"] == "purchase":
                spent += to_cents(row["payload"]["data"]["amount"])
            elif row["type"] == "purchase_refunded" and row["result"].get("refunded"):
                spent -= to_cents(row["result"]["refunded"])
    return spent + extra_spend


def shown_total(loyalty: Loyalty, total: int) -> str | int:
    return format_cents(total) if loyalty.basis == "spend" else total


def upgrade(ctx: Ctx, customer_id: str, on: date, extra_spend: int = 0) -> dict[str, Any] | None:
    """After an event: a customer who now reaches a higher tier moves up at once."""
    loyalty = program(ctx, on).loyalty
    if loyalty is None:
        return None
    total = qualifying(ctx, customer_id, loyalty, on, extra_spend)
    reached = loyalty.reached(total)
    now = current(ctx, customer_id)
    if reached is None or loyalty.rank(reached.id) <= loyalty.rank(now.tier if now else None):
        return None
    return change(ctx, customer_id, loyalty, now, reached, on, "up", total)


def review(ctx: Ctx, customer_id: str, on: date) -> dict[str, Any]:
    """The yearly review: a customer below their tier's threshold drops to the tier they reach."""
    loyalty = program(ctx, on).loyalty
    now = current(ctx, customer_id)
    if loyalty is None or now is None or loyalty.downgrade == "never":
        return {"changed": False}
    total = qualifying(ctx, customer_id, loyalty, on)
    reached = loyalty.reached(total)
    if loyalty.rank(reached.id if reached else None) >= loyalty.rank(now.tier):
        return {"changed": False, "tier": now.tier, "qualifying": shown_total(loyalty, total)}
    return change(ctx, customer_id, loyalty, now, reached, on, "down", total)


def change(ctx: Ctx, customer_id: str, loyalty: Loyalty, now: LoyaltyStatus | None, to: LoyaltyTier | None,
           on: date, direction: str, total: int) -> dict[str, Any]:
    before = now.tier if now else None
    if now is None:
        assert to is not None
        row = LoyaltyStatus(company_id=ctx.company.id, customer_id=customer_id, tier=to.id, since=on,
                            ruleset=loyalty.ref)
        ctx.unit.add(row)
    elif to is None:
        ctx.session.delete(now)
        ctx.unit.on_undo(lambda: ctx.session.add(now))
    else:
        ctx.unit.set(now, "tier", to.id)
        ctx.unit.set(now, "since", on)
        ctx.unit.set(now, "ruleset", loyalty.ref)
    ctx.session.flush()
    data = {"from": before or "none", "to": to.id if to else "none", "to_name": to.name if to else "No tier",
            "direction": direction, "qualifying": str(shown_total(loyalty, total))}
    pipeline.post_platform(ctx, pipeline.platform_payload(
        f"loyalty_tier_changed:{customer_id}:{on.isoformat()}:{data['to']}", "loyalty_tier_changed", customer_id,
        ctx.start_of(on), data))
    return {"changed": True, **data}


def view(ctx: Ctx, customer_id: str, on: date) -> dict[str, Any] | None:
    loyalty = program(ctx, on).loyalty
    now = current(ctx, customer_id)
    if loyalty is None:
        return None
    tier = loyalty.tier(now.tier) if now else None
    total = qualifying(ctx, customer_id, loyalty, on)
    higher = [t for t in loyalty.tiers if loyalty.rank(t.id) > loyalty.rank(tier.id if tier else None)]
    out: dict[str, Any] = {"id": tier.id if tier else None, "name": tier.name if tier else None,
                           "since": now.since.isoformat() if now else None, "basis": loyalty.basis,
                           "qualifying": shown_total(loyalty, total)}
    if higher:
        out["next"] = {"id": higher[0].id, "name": higher[0].name,
                       "needs": shown_total(loyalty, max(higher[0].threshold - total, 0))}
    return out


def multiplier(ctx: Ctx, customer_id: str, on: date) -> Any:
    loyalty = program(ctx, on).loyalty
    now = current(ctx, customer_id) if loyalty else None
    tier = loyalty.tier(now.tier) if loyalty and now else None
    return tier.multiplier if tier else None


def review_day(loyalty: Loyalty, as_of: date) -> date:
    """The latest review date on or before `as_of`."""
    month, day = loyalty.review_on
    this_year = date(as_of.year, month, min(day, 28 if month == 2 else day))
    return this_year if this_year <= as_of else date(as_of.year - 1, this_year.month, this_year.day)


def holders(ctx: Ctx) -> list[tuple[str, date]]:
    return [(c, s) for c, s in ctx.session.execute(
        sa.select(LoyaltyStatus.customer_id, LoyaltyStatus.since).where(LoyaltyStatus.company_id == ctx.company.id)
        .order_by(LoyaltyStatus.customer_id))]
