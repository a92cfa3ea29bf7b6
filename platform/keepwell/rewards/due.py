"""The rewards' due work: points whose last usable day has passed, expired lot by lot."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ..events import due
from ..events.due import DueUnit
from ..events.pipeline import post
from ..infra.context import Ctx
from . import loyalty, points, referrals
from .program import program


def _plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    return [DueUnit("points_expiry", f"points_expired:{cid}:{through}", cid, through.isoformat(), as_of)
            for cid, through in points.next_expiry_dates(ctx, as_of)]


def _keys(ctx: Ctx, units: list[DueUnit]) -> list[str]:
    return [u.key for u in units]


def _run(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    through = date.fromisoformat(unit.subject)
    # A lot earned by a late (back-dated) event can expire through a date whose expiry event
    # exists already: that event is not run again, so the lot gets one under the next key.
    key, n = unit.key, 1
    while True:
        res = post(ctx, {"id": key, "type": "points_expired", "customer": unit.customer,
                         "occurred_at": ctx.start_of(through + timedelta(days=1)).isoformat(),
                         "data": {"through": unit.subject}}, trusted=True)
        if not res.get("duplicate"):
            return {"unit": unit.key, "expired_points": res.get("expired_points", 0)}
        if points.expirable(ctx, unit.customer, through) == 0:
            return {"unit": unit.key, "expired_points": 0}  # done before: a replay expires nothing
        n += 1
        key = f"{unit.key}:{n}"


due.kind("points_expiry", 20, _plan, _run, keys=_keys, entries_per_unit=2)


# --- points held for a return window, unlocking -------------------------------------------------

def _plan_unlocks(ctx: Ctx, as_of: date) -> list[DueUnit]:
    return [DueUnit("points_unlock", f"points_unlocked:{cid}:{day}", cid, day.isoformat(), as_of)
            for cid, day in points.unlock_dates(ctx, as_of)]


def _run_unlock(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    res = post(ctx, {"id": unit.key, "type": "points_unlocked", "customer": unit.customer,
                     "occurred_at": ctx.start_of(date.fromisoformat(unit.subject)).isoformat(),
                     "data": {"on": unit.subject}}, trusted=True)
    return {"unit": unit.key, "unlocked_points": 0 if res.get("duplicate") else res.get("unlocked_points", 0)}


due.kind("points_unlock", 19, _plan_unlocks, _run_unlock, keys=_keys)


# --- referrals whose holding period has ended --------------------------------------------------

def _plan_referrals(ctx: Ctx, as_of: date) -> list[DueUnit]:
    return [DueUnit("referral_rewards", f"referral_rewarded:{r.id}:referee", r.referee_id, str(r.id), as_of)
            for r in referrals.due_rewards(ctx, as_of)]


def _run_referral(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    ref = referrals.get(ctx, int(unit.subject))
    if ref is None or ref.status != "qualified" or ref.reward_on is None:
        return {"unit": unit.key, "rewarded": False}  # done before
    return {"unit": unit.key, "rewarded": True, "points": referrals.pay_out(ctx, ref, ref.reward_on)}


due.kind("referral_rewards", 21, _plan_referrals, _run_referral)


# --- the loyalty tiers' yearly review -------------------------------------------------------------

def _plan_reviews(ctx: Ctx, as_of: date) -> list[DueUnit]:
    found = program(ctx, as_of).loyalty
    if found is None or found.downgrade == "never":
        return []
    day = loyalty.review_day(found, as_of)
    return [DueUnit("loyalty_review", f"loyalty_review:{cid}:{day}", cid, day.isoformat(), as_of)
            for cid, since in loyalty.holders(ctx) if since < day]


def _run_review(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    res = post(ctx, {"id": unit.key, "type": "loyalty_review", "customer": unit.customer,
                     "occurred_at": ctx.midday_of(date.fromisoformat(unit.subject)), "data": {"on": unit.subject}},
               trusted=True)
    return {"unit": unit.key, "review": res.get("review", {})}


due.kind("loyalty_review", 22, _plan_reviews, _run_review, keys=_keys)
