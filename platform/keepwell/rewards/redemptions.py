"""Redeeming a reward from the catalog and following it to fulfilment.

A redemption checks the reward's dates, who may redeem it, the customer's limit and balance,
debits the points from lots in the program's order (the lots drawn are recorded), takes the stock,
and gives what the reward is: an extra included visit or allowance credit at once, a discount
to use, goods to ship. Each change of status is an event; cancelling gives the points back to
the same lots, the stock back, and takes back an unused visit or credit."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ..events import pipeline
from ..events.registry import PendingEvent, snapshot_of
from ..infra.context import Ctx
from ..infra.tables import utcnow
from ..kernel.errors import Declined, NotFound
from ..kernel.ids import new_id
from ..kernel.money import format_cents
from ..ledger import ALLOWANCE, VISITS, Posting, book
from ..memberships import memberships
from ..memberships.handlers import membership_for
from ..rulesets.compiler import CompiledRules
from . import catalog, points, refunds
from .models import Redemption
from .program import program

# status -> the statuses it may move to
MOVES = {"pending": ("fulfilled", "cancelled"), "ordered": ("shipped", "cancelled"), "shipped": ("delivered",),
         "fulfilled": ("cancelled",), "delivered": (), "cancelled": ()}
NEXT = {"pending": "fulfilled", "ordered": "shipped", "shipped": "delivered"}


def redeem(ctx: Ctx, event: PendingEvent, data: dict, local: date, reward: catalog.Reward,
           rules: CompiledRules) -> dict[str, Any]:
    """Redeem `reward` of the catalog `rules` (found by the caller, `catalog.lookup`)."""
    quantity = int(data.get("quantity", 1))
    if not reward.available_on(local):
        raise Declined("not_available", f"{reward.name} cannot be redeemed on {local.isoformat()} "
                       "(outside its dates or season)")
    member = snapshot_of(ctx, event)
    if not catalog.eligible(ctx, reward, rules, local, data, member):
        raise Declined("not_eligible", f"{reward.name} is not offered to this customer "
                       "(its conditions on who may redeem it are not met)")
    limit = reward.spec.get("limit")
    if limit:
        per = limit.get("per", "year")
        used = catalog.redeemed_in(ctx, event.customer_id, reward.id, local, per)
        if used + quantity > limit["quantity"]:
            shown = "in all" if per == "ever" else f"per {per}"
            raise Declined("limit_reached", f"{reward.name}: at most {limit['quantity']} {shown} per customer; "
                           f"{used} redeemed already", redeemed=used, limit=limit["quantity"])
    cost = reward.cost(member.get("tier")) * quantity
    if data.get("points") is not None and int(data["points"]) != cost:
        raise Declined("points_mismatch", f"{quantity} x {reward.name} costs {cost} points, not {data['points']}")
    m = None
    if reward.type in ("free_service", "account_credit"):
        m = membership_for(ctx, event, data, local, required=True)
    why = Posting(event.id, rules.ref, f"reward.{reward.id}", local)
    _entry, drawn = points.redeem(ctx, event.customer_id, cost, why, memo=f"{quantity} x {reward.name}",
                                  order=program(ctx, local).order)
    catalog.reserve(ctx, reward, quantity)
    given: dict[str, Any] = {}
    if m is not None:
        given = _give(ctx, m, reward, quantity, Posting(event.id, rules.ref, f"reward.{reward.id}", local,
                                                        m.current_period))
    ship_to = data.get("ship_to")
    if ship_to is None and _ships(reward):
        ship_to = pipeline.customer(ctx, event.customer_id).service_address  # the address on file
    r = Redemption(id=new_id("rdm"), company_id=ctx.company.id, customer_id=event.customer_id,
                   membership_id=m.id if m else None, catalog=rules.ref, reward_id=reward.id,
                   reward_name=reward.name, reward_type=reward.type, quantity=quantity, points=cost,
                   status=reward.initial_status(), stock_key=reward.stock_key, event_id=event.id,
                   redeemed_on=local, ship_to=ship_to)
    ctx.unit.add(r)
    # (the event's own "status" and "points" keys are the pipeline's: processed, points earned)
    return {"redemption": r.id, "redemption_status": r.status, "reward": reward.id, "reward_name": reward.name,
            "quantity": quantity, "points_spent": cost, "lots": points.drawn_view(drawn),
            "balance": points.balance(ctx, event.customer_id), "gives": catalog.describe(reward), **given}


def _give(ctx: Ctx, m: Any, reward: catalog.Reward, quantity: int, why: Posting) -> dict[str, Any]:
    """A free service as extra included visits; account credit on the allowance."""
    b = book(ctx)
    if reward.type == "free_service":
        code = reward.spec["service_code"]
        b.post(b.account(m.id, VISITS, code), "grant", quantity, why,
               memo=f"{quantity} extra x {code}: reward {reward.name}")
        return {"membership": m.id, "visits_added": {code: quantity}}
    cents = catalog.credit_cents(reward) * quantity
    terms = memberships.plan_of(ctx, m)[1]
    b.post(b.account(m.id, ALLOWANCE, currency=terms.currency), "credit", cents, why, memo=f"reward {reward.name}")
    return {"membership": m.id, "credit": format_cents(cents)}


def _ships(reward: catalog.Reward) -> bool:
    return reward.initial_status() == "ordered"


def get(ctx: Ctx, redemption_id: str, lock: bool = False) -> Redemption:
    q = sa.select(Redemption).where(Redemption.company_id == ctx.company.id, Redemption.id == redemption_id)
    found = ctx.session.scalar(q.with_for_update() if lock else q)
    if found is None:
        raise NotFound(f"no redemption {redemption_id!r}")
    return found


def change(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    """Move a redemption on (fulfilled, shipped, delivered) or cancel it."""
    r = get(ctx, data["redemption"], lock=True)
    if r.customer_id != event.customer_id:
        raise NotFound(f"no redemption {r.id!r} for this customer")
    to = data["status"]
    if to == "next":
        to = NEXT.get(r.status, "")
    if to not in MOVES[r.status]:
        allowed = " or ".join(MOVES[r.status]) or "nothing: it is final"
        raise Declined("wrong_status", f"redemption {r.id} is {r.status}: it can move to {allowed}",
                       current=r.status)
    out: dict[str, Any] = {"redemption": r.id, "from": r.status}
    if to == "cancelled":
        out.update(_cancel(ctx, event, r, local))
    ctx.unit.set(r, "status", to)
    ctx.unit.set(r, "updated_at", utcnow())
    if data.get("tracking"):
        ctx.unit.set(r, "tracking", data["tracking"])
    return {**out, "redemption_status": to, "reward": r.reward_id, "reward_name": r.reward_name}


def _cancel(ctx: Ctx, event: PendingEvent, r: Redemption, local: date) -> dict[str, Any]:
    why = Posting(event.id, r.catalog, f"reward.{r.reward_id}.cancelled", local)
    if r.membership_id and r.reward_type in ("free_service", "account_credit"):
        _take_back(ctx, r, why)
    entry = _entry_of(ctx, r)
    drawn = points.give_back(ctx, r.customer_id, entry, why, memo=f"cancelled: {r.quantity} x {r.reward_name}")
    settled = refunds.settle(ctx, r.customer_id, {lot.entry_id for lot, _n in drawn}, why)
    catalog.release(ctx, r.stock_key, r.quantity)
    ctx.unit.on_undo(lambda: catalog.release(ctx, r.stock_key, -r.quantity))  # a declined cancel keeps the units
    out = {"points_returned": sum(n for _lot, n in drawn), "lots": points.drawn_view(drawn),
           "balance": points.balance(ctx, r.customer_id)}
    if settled:  # owed to refunds of the purchases they were earned on: purchase -> points
        out["points_clawed_back"] = sum(settled.values())
        out["clawed_back_for"] = settled
    return out


def _take_back(ctx: Ctx, r: Redemption, why: Posting) -> None:
    m = memberships.get(ctx, r.membership_id or "")
    b = book(ctx)
    why = Posting(why.event_id, why.ruleset, why.rule, why.effective_date, m.current_period)
    given = _posted(ctx, r, VISITS if r.reward_type == "free_service" else ALLOWANCE)
    if any(period != m.current_period for _code, _amount, period in given):
        raise Declined("reward_used", f"redemption {r.id} was given in a period of the membership that has ended "
                       "(what it gave expired with that period): it can no longer be cancelled")
    if r.reward_type == "free_service":
        code = _service_code(ctx, r)
        acc = b.account(m.id, VISITS, code)
        if acc.balance < r.quantity:
            raise Declined("reward_used", f"the extra {code} visit of redemption {r.id} has been used: "
                           "it can no longer be cancelled")
        b.post(acc, "debit", -r.quantity, why, memo=f"reward {r.reward_name} cancelled")
        return
    terms = memberships.plan_of(ctx, m)[1]
    acc = b.account(m.id, ALLOWANCE, currency=terms.currency)
    cents = _credit_of(ctx, r)
    if acc.balance < cents:
        raise Declined("reward_used", f"the credit of redemption {r.id} has been spent: it can no longer be cancelled")
    b.post(acc, "credit_reversed", -cents, why, memo=f"reward {r.reward_name} cancelled")


def _entry_of(ctx: Ctx, r: Redemption) -> int:
    from ..ledger.models import LedgerEntry

    found = ctx.session.scalar(sa.select(LedgerEntry.id).where(
        LedgerEntry.event_id == r.event_id, LedgerEntry.kind == "redeem", LedgerEntry.company_id == ctx.company.id))
    if found is None:
        raise NotFound(f"redemption {r.id} has no points entry")
    return int(found)


def _posted(ctx: Ctx, r: Redemption, unit: str) -> list[tuple[str, int, int | None]]:
    """What the redemption gave the membership: (service code, amount, period) entries."""
    from ..ledger.models import Account, LedgerEntry

    return [(code, amount, period) for code, amount, period in ctx.session.execute(
        sa.select(Account.code, LedgerEntry.amount, LedgerEntry.period)
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(LedgerEntry.event_id == r.event_id, Account.unit == unit, Account.owner == r.membership_id))]


def _service_code(ctx: Ctx, r: Redemption) -> str:
    return next(code for code, _amount, _period in _posted(ctx, r, VISITS))


def _credit_of(ctx: Ctx, r: Redemption) -> int:
    return sum(amount for _code, amount, _period in _posted(ctx, r, ALLOWANCE))


def view(r: Redemption, customer_name: str | None = None) -> dict[str, Any]:
    return {"redemption": r.id, "customer": r.customer_id, "customer_name": customer_name, "reward": r.reward_id,
            "reward_name": r.reward_name, "type": r.reward_type, "quantity": r.quantity, "points": r.points,
            "status": r.status, "redeemed_on": r.redeemed_on.isoformat(), "membership": r.membership_id,
            "ship_to": r.ship_to, "tracking": r.tracking, "catalog": r.catalog, "next": NEXT.get(r.status),
            "can_cancel": "cancelled" in MOVES[r.status]}


def listing(ctx: Ctx, status: str | None, customer: str | None, limit: int, offset: int) -> list[Redemption]:
    """Newest first; status "open" is every one still to fulfil."""
    q = sa.select(Redemption).where(Redemption.company_id == ctx.company.id)
    if status == "open":
        q = q.where(Redemption.status.in_(("pending", "ordered", "shipped")))
    elif status:
        q = q.where(Redemption.status == status)
    if customer:
        q = q.where(Redemption.customer_id == customer)
    return list(ctx.session.scalars(q.order_by(Redemption.created_at.desc(), Redemption.id)
                                    .limit(limit).offset(offset)))
