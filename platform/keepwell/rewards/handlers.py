"""The event types rewards own, and the earning rules' part in every event: points earned by
the EarningRules in force, each lot with its expiry and the rule that gave it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from ..events.registry import PendingEvent, event_type, react
from ..infra.context import Ctx
from ..kernel.errors import Declined
from ..kernel.money import format_cents, to_cents
from ..ledger import Posting
from ..memberships import allowance, memberships
from ..memberships.handlers import membership_for, receipt
from ..rulesets import kinds
from ..rulesets.event_types import REASON, common, data_schema
from ..rulesets.in_force import evaluate, in_force
from . import points

BUILTIN = "keepwell@1"  # the ruleset named on entries no ruleset of the company produced

kinds.register("EarningRules", "earning_rules.schema.json", "Points rules", compiled=True)


def expiry_months(ctx: Ctx, on: date) -> int | None:
    found = in_force(ctx, "EarningRules", on)
    return found[0].expiry_months if found else None


def points_ref(ctx: Ctx, on: date) -> str:
    found = in_force(ctx, "EarningRules", on)
    return found[0].ref if found else BUILTIN


@react(order=10)
def earn_points(ctx: Ctx, event: PendingEvent, data: dict, local: date, member: Callable[[], dict],
                result: dict) -> dict[str, Any]:
    earned = 0
    for match in evaluate(ctx, "EarningRules", event.type, local, data, member):
        for rule_id in match.rule_ids:
            n = match.rules.earn[rule_id].points_for(match.fact, match.rules.tier_multipliers)
            earned += points.earn(ctx, event.customer_id, n, Posting(event.id, match.rules.ref, rule_id, local),
                                  match.rules.expiry_months)
    if event.type == "enrolled" and event.membership_id:
        earned += _joining_bonus(ctx, event, local)
    return {"points": {"earned": earned, "balance": points.balance(ctx, event.customer_id)}}


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


@event_type("redemption", title="Redemption", description="Details of a redemption event.", data=data_schema(
    ["points"],
    points={"title": "Points", "description": "Points redeemed.", "type": "integer", "minimum": 1,
            "maximum": 1000000000},
    reward={"title": "Reward", "description": "What the points were redeemed for.", "type": "string"}))
def redemption(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    points.redeem(ctx, event.customer_id, int(data["points"]),
                  Posting(event.id, points_ref(ctx, local), "points.redeem", local), memo=data.get("reward"))
    return {"redeemed": int(data["points"]), "reward": data.get("reward")}


@event_type("adjustment", title="Adjustment", description="Details of a adjustment event.", data={
    **data_schema(["unit", "amount", "reason"],
            unit={"title": "Unit", "description": "What is adjusted: \"points\" or \"allowance\".", "type": "string",
                  "enum": ["points", "allowance"]},
            amount={"title": "Amount", "description": "Change, negative to deduct: whole points such as \"-50\" for "
                    "unit points, or a money amount such as \"25.00\" for unit allowance.", "type": "string"},
            reason=REASON),
    "allOf": [{"if": {"required": ["unit"], "properties": {"unit": {"const": "points"}}},
               "then": {"properties": {"amount": {"pattern": "^-?[0-9]{1,12}$"}}}},
              {"if": {"required": ["unit"], "properties": {"unit": {"const": "allowance"}}},
               "then": {"properties": {"amount": common("money")}}}]})
def adjustment(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    why = Posting(event.id, BUILTIN, "manual.adjustment", local)
    if data["unit"] == "points":
        amount = int(data["amount"])
        _within_limit(abs(amount), ctx.company.adjustment_limit_points, f"{ctx.company.adjustment_limit_points} points")
        if amount >= 0:
            points.earn(ctx, event.customer_id, amount, why, expiry_months(ctx, local), memo=data["reason"])
        else:
            points.redeem(ctx, event.customer_id, -amount, why, kind="adjust", memo=data["reason"])
        return {"adjusted": {"unit": "points", "amount": amount}}
    m = membership_for(ctx, event, data, local, required=True)
    assert m is not None
    plan_ref, terms = memberships.plan_of(ctx, m)
    cents = to_cents(data["amount"])
    _within_limit(abs(cents), ctx.company.adjustment_limit_cents, format_cents(ctx.company.adjustment_limit_cents))
    allowance.adjust(ctx, m, terms, cents, Posting(event.id, plan_ref, "", local, m.current_period), data["reason"])
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
