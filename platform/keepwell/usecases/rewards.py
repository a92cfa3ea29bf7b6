"""Rewards: a customer's points and lots, the catalog, redemptions and their fulfilment,
referral codes and referrals, loyalty tiers, the points economy."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ..customers import limits
from ..customers.customers import get_customer, names
from ..events import pipeline
from ..infra.context import Ctx
from ..kernel.errors import Declined, InvalidDocument, Problem
from ..kernel.ids import new_id
from ..kernel.periods import add_months
from ..rewards import catalog, economy, loyalty, redemptions, referrals
from ..rewards import points as points_area
from .app import reading, use_case


@reading
def points(ctx: Ctx, customer_id: str, on: date | None = None) -> dict[str, Any]:
    """A customer's points: the balance (the sum of the entries), what is held for a return
    window, what can be spent on `on` (today), the lots with their expiry and status, the
    loyalty tier."""
    cust = get_customer(ctx.session, ctx.company.id, customer_id)
    today = on or ctx.today()
    return {"customer": {"id": cust.id, "name": cust.name}, "balance": points_area.balance(ctx, cust.id),
            "pending": points_area.pending(ctx, cust.id, today), "available": points_area.usable(ctx, cust.id, today),
            "tier": loyalty.view(ctx, cust.id, today), "lots": points_area.lots(ctx, cust.id, today)}


@reading
def catalog_list(ctx: Ctx, on: date | None = None, customer: str | None = None) -> list[dict[str, Any]]:
    """The rewards of the catalog in force on `on` (today), with their stock left."""
    day = on or ctx.today()
    if customer:
        get_customer(ctx.session, ctx.company.id, customer)
    return [catalog.view(ctx, reward, day) for reward, _rules in catalog.rewards_on(ctx, day)]


def _event(ctx: Ctx, key: str, type_: str, customer: str, on: date, data: dict[str, Any]) -> dict[str, Any]:
    return pipeline.post(ctx, {"id": key, "type": type_, "customer": customer,
                               "occurred_at": ctx.midday_of(on), "data": data})


def _answer(res: dict[str, Any]) -> dict[str, Any]:
    """A redemption's event answered as the redemption: its status, the points it cost and the
    lots they came from (or went back to). Declined becomes the error of its reason."""
    if res.get("status") == "declined":
        raise Declined(res.get("reason", "declined"), res.get("message", "declined"),
                       **{k: v for k, v in res.items() if k in ("available", "asked", "left", "limit", "redeemed",
                                                                 "current")})
    if "redemption_status" not in res:  # the key named an earlier, different event
        raise Declined("key_reused", f"key {res.get('event')!r} was already used for a different event")
    out = {k: v for k, v in res.items() if k not in ("status", "points", "entries", "redemption_status",
                                                     "points_spent", "type", "local_date", "duplicate")}
    out.update(status=res["redemption_status"], event=res["event"], date=res["local_date"],
               duplicate=res.get("duplicate", False))
    if "points_spent" in res:
        out["points"] = res["points_spent"]
    return out


@use_case
def redeem(ctx: Ctx, customer: str, reward: str, quantity: int = 1, on: date | None = None,
           membership: str | None = None, ship_to: str | None = None, key: str | None = None) -> dict[str, Any]:
    """Redeem a catalog reward: the `redemption` event's answer (redemption, status, points, lots)."""
    day = on or ctx.today()
    limits.check_day(ctx.company, ctx.today(), day, "on")
    if not 1 <= quantity <= 100:
        raise InvalidDocument("bad quantity", [Problem("quantity", "Quantity must be between 1 and 100")])
    data: dict[str, Any] = {"reward": reward, "quantity": quantity}
    if membership:
        data["membership"] = membership
    if ship_to:
        data["ship_to"] = ship_to
    return _answer(_event(ctx, key or new_id("redeem"), "redemption", customer, day, data))


@use_case
def change_redemption(ctx: Ctx, redemption_id: str, status: str, tracking: str | None = None,
                      reason: str | None = None, on: date | None = None) -> dict[str, Any]:
    """Move a redemption on (status "next", fulfilled, shipped, delivered) or cancel it."""
    r = redemptions.get(ctx, redemption_id)
    day = on or ctx.today()
    limits.check_day(ctx.company, ctx.today(), day, "on")
    data: dict[str, Any] = {"redemption": r.id, "status": status}
    if tracking:
        data["tracking"] = tracking
    if reason:
        data["reason"] = reason
    step = status if status != "next" else redemptions.NEXT.get(r.status, f"next-from-{r.status}")
    key = f"redemption:{r.id}:{step}"  # the same change asked twice is one event
    return _answer(_event(ctx, key, "redemption_changed", r.customer_id, day, data))


@reading
def list_redemptions(ctx: Ctx, status: str | None = None, customer: str | None = None, limit: int = 50,
                     offset: int = 0) -> list[dict[str, Any]]:
    """Redemptions, newest first; status "open" for the queue still to fulfil."""
    rows = redemptions.listing(ctx, status, customer, limit, offset)
    who = names(ctx.session, ctx.company.id, {r.customer_id for r in rows})
    return [redemptions.view(r, who.get(r.customer_id)) for r in rows]


@reading
def get_redemption(ctx: Ctx, redemption_id: str) -> dict[str, Any]:
    r = redemptions.get(ctx, redemption_id)
    return redemptions.view(r, names(ctx.session, ctx.company.id, {r.customer_id}).get(r.customer_id))


@use_case
def adjust_points(ctx: Ctx, customer: str, amount: int, reason: str, by: str, on: date | None = None,
                  key: str | None = None) -> dict[str, Any]:
    """A manual points adjustment (negative to deduct): it needs a reason and names who made it
    (the staff user or the API key); at most the company's adjustment limit."""
    day = on or ctx.today()
    limits.check_day(ctx.company, ctx.today(), day, "on")
    problems = [Problem("reason", "Give a reason for the adjustment")] if not (reason or "").strip() else []
    if amount == 0:
        problems.append(Problem("amount", "Amount must be a whole number of points other than 0, like 50 or -50"))
    if problems:
        raise InvalidDocument("adjustment rejected", problems)
    res = _event(ctx, key or new_id("adjust"), "adjustment", customer, day,
                 {"unit": "points", "amount": str(amount), "reason": reason.strip(), "by": by[:200]})
    if res.get("status") == "declined":
        raise Declined(res.get("reason", "declined"), res.get("message", "declined"))
    return {"event": res["event"], "adjusted": amount, "balance": points_area.balance(ctx, customer),
            "by": by, "reason": reason.strip(), "duplicate": res.get("duplicate", False)}


@use_case
def referral_code(ctx: Ctx, customer: str) -> str:
    """The customer's referral code (made on first ask)."""
    return referrals.code_for(ctx, customer)


@reading
def referrals_of(ctx: Ctx, customer: str) -> dict[str, Any]:
    """Who joined with the customer's code, and where each referral stands."""
    cust = get_customer(ctx.session, ctx.company.id, customer)
    rows = referrals.of_referrer(ctx, cust.id)
    who = names(ctx.session, ctx.company.id, {r["referee"] for r in rows})
    for r in rows:
        r["referee_name"] = who.get(r["referee"])
    return {"customer": {"id": cust.id, "name": cust.name}, "referrals": rows}


@reading
def liability(ctx: Ctx, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """Points outstanding and their liability; earned, redeemed, expired per month; breakage."""
    last = end or ctx.today()
    first = start or add_months(last, -12) + timedelta(days=1)
    if first > last:
        raise InvalidDocument("bad range", [Problem("from", "From must be on or before To")])
    return economy.liability(ctx, first, last)
