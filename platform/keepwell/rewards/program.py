"""The points program's policies, as the EarningRules in force say them, each with its default:
which lots a redemption uses first, points held for a return window, what a refund takes back,
when a referral pays out, and the loyalty status tiers. Where several EarningRules rulesets are
in force (two trade packs side by side), the first that sets a policy gives it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..infra.context import Ctx
from ..kernel.money import to_cents
from ..rulesets.in_force import in_force

OLDEST_FIRST, SOONEST_EXPIRING = "oldest_first", "soonest_expiring"
WITHIN_BALANCE, ALLOW_NEGATIVE = "within_balance", "allow_negative"
BUILTIN = "keepwell@1"  # the ruleset named on entries no ruleset of the company produced


@dataclass(frozen=True)
class LoyaltyTier:
    id: str
    name: str
    threshold: int  # points, or cents when the basis is spend
    multiplier: Decimal


@dataclass(frozen=True)
class Loyalty:
    ref: str  # the rules (id@version) that define the tiers
    basis: str  # points | spend
    window: str  # rolling_12_months | since_start
    downgrade: str  # at_review | never
    review_on: tuple[int, int]  # month, day
    tiers: tuple[LoyaltyTier, ...]  # lowest first

    def tier(self, tier_id: str | None) -> LoyaltyTier | None:
        return next((t for t in self.tiers if t.id == tier_id), None)

    def reached(self, total: int) -> LoyaltyTier | None:
        """The highest tier a qualifying total reaches."""
        found = None
        for t in self.tiers:
            if total >= t.threshold:
                found = t
        return found

    def rank(self, tier_id: str | None) -> int:
        return next((i + 1 for i, t in enumerate(self.tiers) if t.id == tier_id), 0)


@dataclass(frozen=True)
class Program:
    ref: str  # the rules named on the program's own entries (redemptions, expiries, clawbacks)
    expiry_months: int | None
    order: str
    pending_days: int
    pending_events: frozenset[str]
    clawback: str
    qualifying_event: str
    holding_days: int
    loyalty: Loyalty | None
    point_value: str | None

    def held_days(self, event_type: str) -> int:
        """Days the points of an event of this type are held (0: spendable at once)."""
        return self.pending_days if event_type in self.pending_events else 0


def _first(policies: list[dict], key: str) -> dict | None:
    return next((p[key] for p in policies if key in p), None)


def program(ctx: Ctx, on: date) -> Program:
    memo = ctx.unit.memo
    found = memo.get(("rewards.program", on))
    if found is not None:
        return found  # type: ignore[no-any-return]
    rules = in_force(ctx, "EarningRules", on)
    policies = [r.policies for r in rules]
    expiry = _first(policies, "expiry") or {}
    pending = _first(policies, "pending") or {}
    refunds = _first(policies, "refunds") or {}
    referrals = _first(policies, "referrals") or {}
    value = next((p["point_value"] for p in policies if "point_value" in p), None)
    loyalty = None
    for r in rules:
        spec = r.policies.get("loyalty_tiers")
        if spec:
            loyalty = _loyalty(r.ref, spec)
            break
    found = memo[("rewards.program", on)] = Program(
        ref=rules[0].ref if rules else BUILTIN,
        expiry_months=expiry.get("after_months"),
        order=expiry.get("order", OLDEST_FIRST),
        pending_days=int(pending.get("days", 0)),
        pending_events=frozenset(pending.get("events", ["purchase"])),
        clawback=refunds.get("clawback", WITHIN_BALANCE),
        qualifying_event=referrals.get("qualifying_event", "enrolled"),
        holding_days=int(referrals.get("holding_days", 0)),
        loyalty=loyalty,
        point_value=value,
    )
    return found


def _loyalty(ref: str, spec: dict) -> Loyalty:
    basis = spec.get("basis", "points")
    month, day = (int(x) for x in spec.get("review_on", "01-01").split("-"))
    tiers = tuple(
        LoyaltyTier(t["id"], t["name"], to_cents(t["threshold"]) if basis == "spend" else int(Decimal(t["threshold"])),
                    Decimal(t.get("multiplier", "1")))
        for t in spec["tiers"])
    return Loyalty(ref, basis, spec.get("window", "rolling_12_months"), spec.get("downgrade", "at_review"),
                   (month, day), tiers)
