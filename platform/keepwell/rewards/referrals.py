"""Referrals: each customer's code; a referee who gives it is recorded, qualifies on their first
qualifying event (the program's choice: enrolment or first paid invoice), and after the holding
period both sides are rewarded: two `referral_rewarded` events the points rules give points for."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ..customers.customers import get_customer
from ..events import pipeline
from ..events.registry import PendingEvent
from ..infra.context import Ctx
from ..kernel.errors import Declined
from .models import Referral, ReferralCode
from .program import program

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud and typed from a card


def code_for(ctx: Ctx, customer_id: str) -> str:
    """The customer's referral code, made on first ask."""
    cust = get_customer(ctx.session, ctx.company.id, customer_id)
    found = ctx.session.scalar(sa.select(ReferralCode.code).where(ReferralCode.company_id == ctx.company.id,
                                                                  ReferralCode.customer_id == cust.id))
    if found:
        return str(found)
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(8))
        if _owner(ctx, code) is None:
            break
    ctx.session.add(ReferralCode(company_id=ctx.company.id, customer_id=cust.id, code=code))
    ctx.session.flush()
    return code


def _owner(ctx: Ctx, code: str) -> str | None:
    return ctx.session.scalar(sa.select(ReferralCode.customer_id).where(
        ReferralCode.company_id == ctx.company.id, ReferralCode.code == code.strip().upper()))


def record(ctx: Ctx, event: PendingEvent, code: str, local: date) -> dict[str, Any]:
    """The referee (the event's customer) gives a referrer's code."""
    referrer = _owner(ctx, code)
    shown = code.strip().upper()
    if referrer is None:
        raise Declined("referral_code_unknown", f"referral code {shown} is not one of this company's codes")
    if referrer == event.customer_id:
        raise Declined("referral_self", "a customer cannot use their own referral code")
    earlier = ctx.session.scalar(sa.select(Referral).where(Referral.company_id == ctx.company.id,
                                                           Referral.referee_id == event.customer_id))
    if earlier is not None:
        raise Declined("referral_duplicate", f"this customer was referred already (code {earlier.code}, "
                       f"{earlier.referred_on.isoformat()}): a person is referred once")
    prog = program(ctx, local)
    ref = Referral(company_id=ctx.company.id, code=shown, referrer_id=referrer, referee_id=event.customer_id,
                   status="pending", qualifying_event=prog.qualifying_event, holding_days=prog.holding_days,
                   referred_on=local)
    ctx.unit.add(ref)
    ctx.session.flush()
    return {"referral": {"code": shown, "referrer": referrer, "status": "pending",
                         "qualifies_on": prog.qualifying_event}}


def qualify(ctx: Ctx, event: PendingEvent, local: date) -> dict[str, Any] | None:
    """The referee's first qualifying event: the referral qualifies (and pays out now when there
    is no holding period)."""
    ref = ctx.session.scalar(sa.select(Referral).where(
        Referral.company_id == ctx.company.id, Referral.referee_id == event.customer_id,
        Referral.status == "pending", Referral.qualifying_event == event.type))
    if ref is None:
        return None
    reward_on = local + timedelta(days=ref.holding_days)
    ctx.unit.set(ref, "status", "qualified")
    ctx.unit.set(ref, "qualified_on", local)
    ctx.unit.set(ref, "reward_on", reward_on)
    if reward_on <= local:
        pay_out(ctx, ref, local)
    return {"referral": {"code": ref.code, "referrer": ref.referrer_id, "status": ref.status,
                         "reward_on": reward_on.isoformat()}}


def pay_out(ctx: Ctx, ref: Referral, on: date) -> dict[str, Any]:
    """Both sides earn: one `referral_rewarded` event each (the points rules give the points)."""
    out = {}
    at = ctx.start_of(on)
    for role, who in (("referrer", ref.referrer_id), ("referee", ref.referee_id)):
        res = pipeline.post_platform(ctx, pipeline.platform_payload(
            f"referral_rewarded:{ref.id}:{role}", "referral_rewarded", who, at,
            {"role": role, "referral": str(ref.id), "referrer": ref.referrer_id, "referee": ref.referee_id}))
        out[role] = res.get("points", {}).get("earned", 0)
    ctx.unit.set(ref, "status", "rewarded")
    ctx.unit.set(ref, "rewarded_on", on)
    return out


def due_rewards(ctx: Ctx, as_of: date) -> list[Referral]:
    return list(ctx.session.scalars(sa.select(Referral).where(
        Referral.company_id == ctx.company.id, Referral.status == "qualified", Referral.reward_on <= as_of)
        .order_by(Referral.reward_on, Referral.id)))


def get(ctx: Ctx, referral_id: int) -> Referral | None:
    return ctx.session.scalar(sa.select(Referral).where(Referral.company_id == ctx.company.id,
                                                        Referral.id == referral_id))


def of_referrer(ctx: Ctx, customer_id: str) -> list[dict[str, Any]]:
    rows = ctx.session.scalars(sa.select(Referral).where(Referral.company_id == ctx.company.id,
                                                         Referral.referrer_id == customer_id)
                               .order_by(Referral.referred_on, Referral.id))
    return [view(r) for r in rows]


def view(r: Referral) -> dict[str, Any]:
    return {"referral": r.id, "code": r.code, "referrer": r.referrer_id, "referee": r.referee_id, "status": r.status,
            "referred_on": r.referred_on.isoformat(), "qualifies_on": r.qualifying_event,
            "qualified_on": r.qualified_on.isoformat() if r.qualified_on else None,
            "reward_on": r.reward_on.isoformat() if r.reward_on else None,
            "rewarded_on": r.rewarded_on.isoformat() if r.rewarded_on else None}
