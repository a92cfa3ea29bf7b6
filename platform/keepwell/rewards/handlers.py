"""The event types rewards own, and the rewards' part in every event: points earned by the
EarningRules in force (each lot with its expiry, its return window and the rule that gave it),
a referee's code recorded and qualified, a loyalty tier reached."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from ..events.registry import PendingEvent, event_type, member_snapshot, react
from ..infra.context import Ctx
from ..kernel.errors import Declined, NotFound
from ..kernel.money import floor_multiply, format_cents, to_cents
from ..ledger import Posting
from ..memberships import allowance, memberships
from ..memberships.handlers import membership_for, receipt
from ..rulesets import kinds
from ..rulesets.event_types import EVENT_TYPES, REASON, STRING, common, data_schema
from ..rulesets.in_force import evaluate
from . import catalog, loyalty, points, redemptions, referrals, refunds
from .program import BUILTIN, program

kinds.register("EarningRules", "earning_rules.schema.json", "Points rules", compiled=True)
EVENT_TYPES.declare_member_fields({"loyalty_tier": STRING})

QUALIFYING = ("enrolled", "payment_succeeded")  # the events a referral can qualify on


def expiry_months(ctx: Ctx, on: date) -> int | None:
    return program(ctx, on).expiry_months


def points_ref(ctx: Ctx, on: date) -> str:
    return program(ctx, on).ref


@member_snapshot
def loyalty_snapshot(ctx: Ctx, event: PendingEvent) -> dict[str, Any]:
    if program(ctx, event.local_date).loyalty is None:
        return {}
    now = loyalty.current(ctx, event.customer_id)
    return {"loyalty_tier": now.tier if now else ""}


@react(order=5)
def referral_code(ctx: Ctx, event: PendingEvent, data: dict, local: date, member: Callable[[], dict],
                  result: dict) -> dict[str, Any] | None:
    """A referee's code is recorded; the referee's first qualifying event qualifies it."""
    out: dict[str, Any] = {}
    if data.get("referral_code"):
        out.update(referrals.record(ctx, event, data["referral_code"], local))
    if event.type in QUALIFYING:
        out.update(referrals.qualify(ctx, event, local) or {})
    return out


@react(order=10)
def earn_points(ctx: Ctx, event: PendingEvent, data: dict, local: date, member: Callable[[], dict],
                result: dict) -> dict[str, Any]:
    earned = 0
    prog = program(ctx, local)
    held = prog.held_days(event.type)
    boost = loyalty.multiplier(ctx, event.customer_id, local) if prog.loyalty else None
    for match in evaluate(ctx, "EarningRules", event.type, local, data, member):
        for rule_id in match.rule_ids:
            n = match.rules.earn[rule_id].points_for(match.fact, match.rules.tier_multipliers)
            if boost is not None and match.rules.earn[rule_id].tier_multiplier:
                n = floor_multiply(n, boost)  # the customer's loyalty tier multiplies too
            earned += points.earn(ctx, event.customer_id, n, Posting(event.id, match.rules.ref, rule_id, local),
                                  match.rules.expiry_months, held_days=held)
    if event.type == "enrolled" and event.membership_id:
        earned += _joining_bonus(ctx, event, local)
    out: dict[str, Any] = {"points": {"earned": earned, "balance": points.balance(ctx, event.customer_id)}}
    if held and earned:
        out["points"]["pending"] = earned
    spend = event.type == "purchase" and prog.loyalty is not None and prog.loyalty.basis == "spend"
    if prog.loyalty is not None and event.type != "loyalty_tier_changed" and (earned or spend):
        extra = to_cents(data["amount"]) if spend else 0  # this purchase is not stored yet
        changed = loyalty.upgrade(ctx, event.customer_id, local, extra)
        if changed:
            out["loyalty_tier"] = changed
    return out


def _joining_bonus(ctx: Ctx, event: PendingEvent, local: date) -> int:
    """The bonus points of the plan's promotions running on the day a member joins (for their
    tier); each entry names its promotion."""
    m = memberships.get(ctx, event.membership_id or "")
    plan_ref, terms = memberships.plan_of(ctx, m)
    earned = 0
    for promo in terms.promotions:
        if promo.bonus_points and promo.active_on(local):
            earned += points.earn(ctx, event.customer_id, promo.bonus_points,
                                  Posting(event.id, plan_ref, f"plan.promotions.{promo.id}.bonus_points", local),
                                  expiry_months(ctx, local), memo=f"{promo.name}: bonus for joining")
    return earned


@event_type("referral", title="Referral", description="Details of a referral event.", data=data_schema(
    ["referred_name"],
    referred_name={"title": "Referred name", "description": "Name of the person referred.", "type": "string",
                   "minLength": 1},
    referred_email={"title": "Referred email", "description": "Email of the person referred.", "type": "string",
                    "format": "email"}))
def referral(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    return {}  # the earning rules reward it


@event_type("redemption", title="Redemption", description="Points spent: a reward of the catalog (its cost in "
            "points, stock and limits apply), or a number of points for something outside it.", data=data_schema(
    [],
    points={"title": "Points", "description": "Points redeemed (for a catalog reward: its cost, checked).",
            "type": "integer", "minimum": 1, "maximum": 1000000000},
    reward={"title": "Reward", "description": "The catalog reward's ID, or what the points were redeemed for.",
            "type": "string", "minLength": 1, "maxLength": 120},
    quantity={"title": "Quantity", "description": "How many of the reward (1 to 100).", "type": "integer",
              "minimum": 1, "maximum": 100, "default": 1},
    membership={"title": "Membership", "description": "The membership a free service or a credit goes to.",
                "type": "string", "minLength": 1, "maxLength": 200},
    ship_to={"title": "Ship to", "description": "Where shipped merchandise goes (default: the service address).",
             "type": "string", "minLength": 1, "maxLength": 300}))
def redemption(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    found = catalog.lookup(ctx, data["reward"], local) if data.get("reward") else None
    if found is not None:
        return redemptions.redeem(ctx, event, data, local, *found)
    if not data.get("points"):
        raise NotFound(f"no reward {data.get('reward')!r} in the catalog on {local.isoformat()}"
                       if data.get("reward") else "a redemption names a reward of the catalog or a number of points")
    points.redeem(ctx, event.customer_id, int(data["points"]),
                  Posting(event.id, points_ref(ctx, local), "points.redeem", local), memo=data.get("reward"),
                  order=program(ctx, local).order)
    return {"redeemed": int(data["points"]), "reward": data.get("reward")}


@event_type("redemption_changed", title="Redemption status changed",
            description="A redemption moves on: fulfilled, shipped, delivered, or cancelled (points back to the "
            "same lots).", data=data_schema(
    ["redemption", "status"],
    redemption={"title": "Redemption", "description": "The redemption's ID (rdm_...).", "type": "string",
                "minLength": 1, "maxLength": 40},
    status={"title": "New status", "description": "\"next\" moves it one step on (pending to fulfilled, "
            "ordered to shipped, shipped to delivered).", "type": "string",
            "enum": ["next", "fulfilled", "shipped", "delivered", "cancelled"]},
    tracking={"title": "Tracking number", "description": "The parcel's tracking number (shipped).",
              "type": "string", "minLength": 1, "maxLength": 120},
    reason=REASON))
def redemption_changed(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    return redemptions.change(ctx, event, data, local)


@event_type("purchase_refunded", title="Purchase refunded",
            description="A purchase refunded in whole or in part: its points are taken back (policy refunds).",
            data=data_schema(
    ["purchase"],
    purchase={"title": "Purchase", "description": "The refunded purchase event's ID.", "type": "string",
              "minLength": 1, "maxLength": 200},
    amount={"title": "Amount refunded", "description": "Leave out to refund what is left of the purchase.",
            **common("positive_money")},
    reason=REASON))
def purchase_refunded(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    return refunds.refund(ctx, event, data, local)


@event_type("referral_rewarded", title="Referral rewarded",
            description="Raised when a referral pays out, once for the referrer and once for the referee "
            "(data.role): the points rules on it give each side their points.",
            data=data_schema(["role", "referral", "referrer", "referee"],
                             role={"title": "Role", "description": "Who is rewarded.", "type": "string",
                                   "enum": ["referrer", "referee"]},
                             referral={"title": "Referral", "description": "The referral's number.",
                                       "type": "string"},
                             referrer={"title": "Referrer", "description": "Customer who referred.",
                                       "type": "string"},
                             referee={"title": "Referee", "description": "Customer who was referred.",
                                      "type": "string"}),
            platform_only=True, key_prefix="referral_rewarded:")
def referral_rewarded(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    return {"role": data["role"]}  # the earning rules reward it


@event_type("loyalty_tier_changed", title="Loyalty tier changed",
            description="Raised when a customer's loyalty status tier changes (up at once, down at the review).",
            data=data_schema(["from", "to", "direction"],
                             **{"from": {"title": "From", "description": "The tier before (\"none\": none).",
                                         "type": "string"},
                                "to": {"title": "To", "description": "The new tier (\"none\": none).",
                                       "type": "string"},
                                "to_name": {"title": "New tier's name", "description": "e.g. Gold.",
                                            "type": "string"},
                                "direction": {"title": "Direction", "description": "up or down.", "type": "string",
                                              "enum": ["up", "down"]},
                                "qualifying": {"title": "Qualifying total", "description": "What counted.",
                                               "type": "string"}}),
            platform_only=True, key_prefix="loyalty_tier_changed:")
def loyalty_tier_changed(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    return {"loyalty_tier": {"from": data["from"], "to": data["to"], "direction": data["direction"]}}


@event_type("loyalty_review", title="Loyalty review",
            description="Raised by due work on the review date: a customer below their tier's threshold drops.",
            data=data_schema(["on"], on={"title": "Review date", "description": "The review day.",
                                         **common("date")}),
            platform_only=True, key_prefix="loyalty_review:")
def loyalty_review(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    return {"review": loyalty.review(ctx, event.customer_id, local)}


@event_type("points_unlocked", title="Points unlocked",
            description="Raised by due work: points held for a purchase's return window become spendable.",
            data=data_schema(["on"], on={"title": "Unlock date", "description": "The day they unlock.",
                                         **common("date")}),
            platform_only=True, key_prefix="points_unlocked:")
def points_unlocked(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    n = points.unlocking(ctx, event.customer_id, date.fromisoformat(data["on"]))
    out: dict[str, Any] = {"unlocked_points": n, "available": points.usable(ctx, event.customer_id, local)}
    changed = loyalty.upgrade(ctx, event.customer_id, local)
    if changed:
        out["loyalty_tier"] = changed
    return out


@event_type("adjustment", title="Adjustment", description="A manual correction of points or allowance, with its "
            "reason and who made it.", data={
    **data_schema(["unit", "amount", "reason"],
            unit={"title": "Unit", "description": "What is adjusted: \"points\" or \"allowance\".", "type": "string",
                  "enum": ["points", "allowance"]},
            amount={"title": "Amount", "description": "Change, negative to deduct: whole points such as \"-50\" for "
                    "unit points, or a money amount such as \"25.00\" for unit allowance.", "type": "string"},
            reason=REASON,
            by={"title": "By", "description": "The staff user or API key that made the adjustment.",
                "type": "string", "minLength": 1, "maxLength": 200}),
    "allOf": [{"if": {"required": ["unit"], "properties": {"unit": {"const": "points"}}},
               "then": {"properties": {"amount": {"pattern": "^-?[0-9]{1,12}$"}}}},
              {"if": {"required": ["unit"], "properties": {"unit": {"const": "allowance"}}},
               "then": {"properties": {"amount": common("money")}}}]})
def adjustment(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    why = Posting(event.id, BUILTIN, "manual.adjustment", local)
    memo = f"{data['reason']} (by {data['by']})" if data.get("by") else data["reason"]
    if data["unit"] == "points":
        amount = int(data["amount"])
        _within_limit(abs(amount), ctx.company.adjustment_limit_points, f"{ctx.company.adjustment_limit_points} points")
        if amount >= 0:
            points.earn(ctx, event.customer_id, amount, why, expiry_months(ctx, local), memo=memo)
        else:
            points.redeem(ctx, event.customer_id, -amount, why, kind="adjust", memo=memo,
                          order=program(ctx, local).order)
        return {"adjusted": {"unit": "points", "amount": amount}}
    m = membership_for(ctx, event, data, local, required=True)
    assert m is not None
    plan_ref, terms = memberships.plan_of(ctx, m)
    cents = to_cents(data["amount"])
    _within_limit(abs(cents), ctx.company.adjustment_limit_cents, format_cents(ctx.company.adjustment_limit_cents))
    allowance.adjust(ctx, m, terms, cents, Posting(event.id, plan_ref, "", local, m.current_period), memo)
    return {"adjusted": {"unit": "allowance", "amount": format_cents(cents)}, **receipt(ctx, m)}


def _within_limit(size: int, limit: int, shown: str) -> None:
    # A manual adjustment is bounded by the company's limit: a key that may adjust cannot
    # credit 999,999,999,999.99 (larger corrections are several adjustments, each with a reason).
    if size > limit:
        raise Declined("adjustment_over_limit", f"an adjustment may change at most {shown} (the company's limit)")


@event_type("points_expired", title="Points expired",
            description="Raised by due work: points whose last usable day is on or before `through` expire.",
            data=data_schema(["through"],
                       through={"title": "Through",
                                "description": "Lots whose last usable day is on or before this date expire.",
                                **common("date")},
                       reason=REASON),
            platform_only=True, key_prefix="points_expired:")
def points_expired(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    through = date.fromisoformat(data["through"])
    n = points.expire_through(ctx, event.customer_id, through,
                              Posting(event.id, points_ref(ctx, local), "points.expiry", local))
    return {"expired_points": n, "through": through.isoformat()}
