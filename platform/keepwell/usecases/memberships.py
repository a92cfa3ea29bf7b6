"""Memberships: enrol, cancel, change tier, show, statement, move to another plan version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ..billing import refunds
from ..customers import limits
from ..customers.customers import get_customer
from ..events import pipeline
from ..infra.context import Ctx
from ..kernel.errors import Declined, InvalidDocument, NotFound
from ..memberships import memberships, moves, renewal
from ..memberships.statements import statement as membership_statement
from ..memberships.terms import resolve, tiers
from ..rulesets import versions
from .app import Keepwell, reading, use_case


def _noon(ctx: Ctx, on: date) -> str:
    """Midday of a date in the company's time zone: an action dated `on` lands on that day."""
    return (ctx.start_of(on) + timedelta(hours=12)).isoformat()


def _declined(result: dict[str, Any]) -> Declined:
    return Declined(result.get("reason") or "declined", result.get("message") or "declined")


@use_case
def enroll(ctx: Ctx, customer: str, plan: str, on: date, tier: str | None = None, key: str | None = None,
           allow_second: bool = False, cadence: str | None = None, payment_method: str | None = None) -> dict[str, Any]:
    """Enrol a customer (the idempotency key defaults to enroll:CUSTOMER:PLAN:DATE); the
    answer is the `enrolled` event's result, with the new membership's id."""
    limits.check_day(ctx.company, ctx.today(), on, "on")
    data: dict[str, Any] = {"plan": plan, **({"tier": tier} if tier else {})}
    if allow_second:
        data["allow_second"] = True
    if cadence:
        data["cadence"] = cadence  # billed at this cadence, among the plan's prices
    if payment_method:
        data["payment_method"] = payment_method
    # A second membership is a request of its own: asked for after a refusal, it is not a replay of it.
    default_key = f"enroll:{customer}:{plan}:{on.isoformat()}" + (":second" if allow_second else "")
    payload = {"id": key or default_key, "type": "enrolled", "customer": customer,
               "occurred_at": ctx.start_of(on).isoformat(), "data": data}
    return pipeline.post(ctx, payload)


@use_case
def cancel(ctx: Ctx, membership_id: str, on: date) -> dict[str, Any]:
    """Cancel a membership on a date (company time); a membership that is not active says why."""
    limits.check_day(ctx.company, ctx.today(), on, "on")
    m = memberships.get(ctx, membership_id)
    return pipeline.post(ctx, {"id": f"admin:cancelled:{m.id}:{on.isoformat()}", "type": "cancelled",
                               "customer": m.customer_id, "occurred_at": _noon(ctx, on),
                               "data": {"membership": m.id}}, trusted=True)


@dataclass(frozen=True)
class TierChanged:
    cancelled: str  # the membership that ended
    membership: str  # the one on the new tier
    tier: str
    result: dict[str, Any]  # the new membership's enrolment


@use_case
def change_tier(ctx: Ctx, membership_id: str, tier: str, on: date) -> TierChanged:
    """Move a membership to another tier of its plan on a date, in one transaction: the
    membership ends and one on the new tier starts, on the plan version in force that day. A
    tier that version lacks, or a membership that is not active, changes nothing and says why."""
    limits.check_day(ctx.company, ctx.today(), on, "on")
    m = memberships.get(ctx, membership_id, lock=True)
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}")
    plan = memberships.plan_of(ctx, m)[0].split("@")[0]
    _rs, version = memberships.plan_version(ctx, plan, on)
    try:
        terms = resolve(version.content, tier)  # before anything changes
    except NotFound as exc:  # the tier asked for, not the membership
        raise InvalidDocument.field("tier", exc.message, exc.message) from None
    if terms.tier == m.tier:
        raise InvalidDocument.field("tier", f"the membership is on {terms.tier_name} already",
                                    f"membership {m.id} is on {terms.tier_name} already")
    ended = pipeline.post(ctx, {"id": f"admin:cancelled:{m.id}:{on.isoformat()}:upgrade:{tier}", "type": "cancelled",
                                "customer": m.customer_id, "occurred_at": _noon(ctx, on),
                                "data": {"membership": m.id}}, trusted=True)
    if ended["status"] == "declined":
        raise _declined(ended)
    started = pipeline.post(ctx, {"id": f"upgrade:{m.id}:{tier}:{on.isoformat()}", "type": "enrolled",
                                  "customer": m.customer_id, "occurred_at": _noon(ctx, on),
                                  "data": {"plan": plan, "tier": tier}}, trusted=True)
    if started["status"] == "declined":
        raise _declined(started)  # the cancellation above goes with this transaction
    return TierChanged(m.id, started["membership"], terms.tier, started)


@reading
def show(ctx: Ctx, membership_id: str) -> dict[str, Any]:
    """Status, plan version, tier, period, allowance and included services of a membership."""
    return memberships.view(ctx, memberships.get(ctx, membership_id))


STATUSES = ("active", "cancelled", "expired")


@reading
def list_memberships(ctx: Ctx, limit: int = 50, after: str | None = None, customer: str | None = None,
                     plan: str | None = None, status: str | None = None) -> dict[str, Any]:
    """Memberships oldest first, a page after a cursor (the last membership id of the previous
    page), by customer, plan and status."""
    if status and status not in STATUSES:
        raise InvalidDocument.field("status", f"{status[:20]!r} is not one of {', '.join(STATUSES)}")
    rows, more = memberships.page(ctx, limit, after, customer, plan, status)
    return {"memberships": [memberships.view(ctx, m) for m in rows], "has_more": more,
            "last": rows[-1].id if rows else None}


@reading
def cancel_preview(ctx: Ctx, membership_id: str, on: date) -> dict[str, Any]:
    """What cancelling on `on` would do, changing nothing: the periods it closes first, the day
    it ends, and what is left unused then (it does not carry over: a cancelled membership
    grants and charges nothing more)."""
    limits.check_day(ctx.company, ctx.today(), on, "on")
    m = memberships.get(ctx, membership_id)
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}")
    shown = memberships.view(ctx, m)
    closes = renewal.periods_behind(m, on, ctx.company.max_periods_per_event)
    refund = refunds.preview(ctx, m.id, on)
    return {"membership": m.id, "status_after": "cancelled", "ends_on": on.isoformat(),
            **({"refund": refund["refund"], "owed": refund["owed"], "currency": refund["currency"],
                "refund_computed": refund["computed"]} if refund else {}),
            "periods_closed_first": closes, "now": {"allowance": shown["allowance"], "services": shown["services"]},
            "note": ("the balances shown are today's; the periods that end before the day close first (each "
                     "as its own event), and what is left on the day goes unused" if closes else
                     "what is left on the day goes unused")
            + ("; the refund is what the plan's cancellation terms give back of what was invoiced" if refund
               else "; the membership is not billed here: nothing is refunded or charged by cancelling")}


@reading
def of_customer(ctx: Ctx, customer_id: str) -> list[dict[str, Any]]:
    """Every membership of a customer (any status), oldest first, as `show` gives each."""
    get_customer(ctx.session, ctx.company.id, customer_id)  # another company's customer: not found
    return [memberships.view(ctx, m) for m in memberships.of_customer(ctx, customer_id)]


@reading
def statement(ctx: Ctx, membership_id: str, start: date, end: date) -> dict[str, Any]:
    if start > end:
        raise InvalidDocument.field("from", "the statement's range ends before it starts",
                                    f"the range {start} .. {end} ends before it starts")
    return membership_statement(ctx, membership_id, start, end)


@reading
def tiers_in_force(ctx: Ctx, membership_id: str, on: date) -> list[tuple[str, str]]:
    """(tier id, name) of the tiers a membership can move to on a date: those of its plan's
    version in force then (which is what a change of tier enrols on)."""
    m = memberships.get(ctx, membership_id)
    plan = memberships.plan_of(ctx, m)[0].split("@")[0]
    _rs, version = memberships.plan_version(ctx, plan, on)
    return [(t["id"], t.get("name", t["id"])) for t in tiers(version.content) if t["id"] != m.tier]


@reading
def plan_choices(ctx: Ctx, on: date) -> list[tuple[str, str]]:
    """("plan|tier", "Plan — Tier") for each tier of each plan version in force on a date."""
    out = []
    for rs in versions.of_kind(ctx.session, ctx.company.id, "Plan"):
        try:
            _rs, v = memberships.plan_version(ctx, rs.key, on)
        except NotFound:
            continue  # only drafts, or nothing in force yet on that date
        out += [(f"{rs.key}|{t['id']}", f"{rs.name} — {t.get('name', t['id'])}") for t in tiers(v.content)]
    return out


@use_case
def move_preview(ctx: Ctx, plan: str, target: str) -> list[dict[str, Any]]:
    return moves.preview(ctx, plan, target)


def move(app: Keepwell, company: str, plan: str, target: str, apply: bool = False) -> list[dict[str, Any]]:
    """Preview (default) or apply moving a plan's active memberships to another version; each
    move is a `migrated` event of its own (one transaction each), idempotent and explained."""
    rows = move_preview(app, company, plan, target)
    if not apply:
        return rows
    for row in rows:
        if row["problem"]:
            row["applied"] = False
            continue
        payload = {"id": f"migrated:{row['membership']}:{row['to']}", "type": "migrated", "customer": row["customer"],
                   "occurred_at": app.clock.now().isoformat(),
                   "data": {"membership": row["membership"], "plan": row["to"]}}
        result = app.run(company, lambda c, p=payload: pipeline.post(c, p, trusted=True))
        row["applied"] = result.get("status") == "processed"
        if not row["applied"]:
            row["problem"] = result.get("message")
    return rows
