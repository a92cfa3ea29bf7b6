"""A refunded purchase and its points: points still held for the return window are cancelled;
points already spendable are taken back from the purchase's own lots, then from the rest, and
what was spent already is taken within the balance or left as a debt (the program's policy).
However many refunds a purchase has, together they never take more than it earned."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ..events import pipeline
from ..events.models import Event
from ..events.registry import PendingEvent
from ..infra.context import Ctx
from ..kernel.errors import Declined, NotFound
from ..kernel.money import format_cents, to_cents
from ..ledger import POINTS, Posting, book
from ..ledger.models import LedgerEntry
from . import points
from .program import ALLOW_NEGATIVE, program


def refund(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    bought = pipeline.find(ctx, data["purchase"])
    if bought is None or bought.customer_id != event.customer_id or bought.type != "purchase":
        raise NotFound(f"no purchase {data['purchase']!r} of this customer")
    if bought.status != "processed":
        raise Declined("purchase_declined", f"purchase {bought.key} was declined: there is nothing to refund")
    paid = to_cents(bought.payload["data"]["amount"])
    before = _refunded_before(ctx, event.customer_id, bought.key)
    cents = to_cents(data["amount"]) if data.get("amount") else paid - before
    if cents <= 0 or before + cents > paid:
        raise Declined("refund_exceeds_purchase", f"purchase {bought.key} was {format_cents(paid)}, "
                       f"{format_cents(before)} refunded already: at most {format_cents(paid - before)} more",
                       refundable=format_cents(paid - before))
    earned, taken_before = _points_of(ctx, event.customer_id, bought.id)
    target = earned * (before + cents) // paid if paid else earned
    prog = program(ctx, local)
    took = points.clawback(ctx, event.customer_id, bought.id, max(target - taken_before, 0),
                           Posting(event.id, prog.ref, f"refund:{bought.id}", local),
                           allow_negative=prog.clawback == ALLOW_NEGATIVE, order=prog.order)
    return {"refunded": format_cents(cents), "purchase": bought.key, "points_earned": earned,
            "points_clawed_back": took["taken"], "points_pending_cancelled": took["pending_cancelled"],
            "points_not_recovered": took["not_recovered"], "points_debt": took["debt"],
            "points_balance": points.balance(ctx, event.customer_id)}


def _refunded_before(ctx: Ctx, customer_id: str, purchase_key: str) -> int:
    rows = ctx.session.execute(sa.select(Event.payload, Event.result).where(
        Event.company_id == ctx.company.id, Event.customer_id == customer_id, Event.type == "purchase_refunded",
        Event.status == "processed"))
    found = [(p, r) for p, r in rows]
    found += [(row["payload"], row["result"]) for row in ctx.unit.rows.get("events", [])
              if row["customer_id"] == customer_id and row["type"] == "purchase_refunded"
              and row["status"] == "processed"]
    return sum(to_cents(r["refunded"]) for p, r in found if p["data"]["purchase"] == purchase_key)


def _points_of(ctx: Ctx, customer_id: str, purchase_id: int) -> tuple[int, int]:
    """Points the purchase earned, and what its refunds took back already."""
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return 0, 0
    earned = int(ctx.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == acc.id, LedgerEntry.event_id == purchase_id, LedgerEntry.kind == "earn")) or 0)
    taken = -int(ctx.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == acc.id, LedgerEntry.kind == "clawback",
        LedgerEntry.rule == f"refund:{purchase_id}")) or 0)
    taken -= sum(r["amount"] for r in ctx.unit.rows.get(LedgerEntry.__tablename__, [])
                 if r["account_id"] == acc.id and r["kind"] == "clawback" and r["rule"] == f"refund:{purchase_id}")
    earned += sum(r["amount"] for r in ctx.unit.rows.get(LedgerEntry.__tablename__, [])
                  if r["account_id"] == acc.id and r["kind"] == "earn" and r["event_id"] == purchase_id)
    return earned, taken


def settle(ctx: Ctx, customer_id: str, lot_entries: set[int], why: Posting) -> dict[str, int]:
    """Points given back to lots of purchases refunded since (a cancelled redemption): what those
    refunds could not take back then is taken now, so a refund and a cancel never leave the
    customer the points of a purchase they were refunded. Answers the points taken per purchase."""
    earned_by = dict(ctx.session.execute(sa.select(LedgerEntry.id, LedgerEntry.event_id)
                                         .where(LedgerEntry.id.in_(sorted(lot_entries)))).all()) if lot_entries else {}
    taken: dict[str, int] = {}
    prog = program(ctx, why.effective_date)
    for purchase_id in sorted(set(earned_by.values())):
        bought = ctx.session.get(Event, purchase_id)
        if bought is None or bought.type != "purchase" or bought.company_id != ctx.company.id:
            continue
        refunded = _refunded_before(ctx, customer_id, bought.key)
        if not refunded:
            continue
        earned, clawed = _points_of(ctx, customer_id, bought.id)
        paid = to_cents(bought.payload["data"]["amount"])
        short = (earned * refunded // paid if paid else earned) - clawed
        if short > 0:
            n = points.clawback(ctx, customer_id, bought.id, short, why.with_rule(f"refund:{bought.id}"),
                                allow_negative=prog.clawback == ALLOW_NEGATIVE, order=prog.order)["taken"]
            if n:
                taken[bought.key] = n
    return taken
