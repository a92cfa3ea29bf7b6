"""Memberships: enrol, cancel, change tier, show, statement, move to another plan version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ..billing import changes, refunds
from ..customers import limits
from ..customers.customers import get_customer
from ..events import pipeline
from ..infra.context import Ctx
from ..kernel.errors import Declined, InvalidDocument, NotFound
from ..kernel.money import format_cents, to_cents
from ..memberships import memberships, moves, renewal, statements
from ..memberships.statements import statement as membership_statement
from ..memberships.terms import resolve, tiers
from ..rulesets import versions
from .app import Keepwell, reading, use_case


@use_case
def enroll(ctx: Ctx, customer: str, plan: str, on: date, tier: str | None = None, key: str | None = None,
           allow_second: bool = False, cadence: str | None = None, payment_method: str | None = None,
           referral_code: str | None = None) -> dict[str, Any]:
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
    if referral_code:
        data["referral_code"] = referral_code
    # A second membership is a request of its own: asked for after a refusal, it is not a replay of it.
    default_key = f"enroll:{customer}:{plan}:{on.isoformat()}" + (":second" if allow_second else "")
    payload = {"id": key or default_key, "type": "enrolled", "customer": customer,
               "occurred_at": ctx.start_of(on).isoformat(), "data": data}
    return pipeline.post(ctx, payload)


@use_case
def charge_allowance(ctx: Ctx, membership_id: str, amount: str, on: date, key: str, description: str = "",
                     apply_discount: bool = False) -> dict[str, Any]:
    """A purchase paid from the membership's allowance (and its overdraft past the balance), as a
    till would send it: the `purchase` event's result, declined when even the overdraft is not
    enough. `key` makes a repeated submission one charge."""
    limits.check_day(ctx.company, ctx.today(), on, "on")
    m = memberships.get(ctx, membership_id)
    data: dict[str, Any] = {"amount": amount, "pay_with": "membership", "membership": m.id}
    if description:
        data["description"] = description
    if apply_discount:
        data["apply_discount"] = True
    payload = {"id": key, "type": "purchase", "customer": m.customer_id,
               "occurred_at": ctx.midday_of(on), "data": data}
    return pipeline.post(ctx, payload)


AT = ("now", "period_end")


def _at(at: str | None, default: str) -> str:
    at = at or default
    if at not in AT:
        raise InvalidDocument.field("at", f"{at[:20]!r} is not one of now, period_end")
    return at


def _notice(ctx: Ctx, m: Any, on: date) -> None:
    """A plan asking for notice: the last day is at least that many days after today. (A last
    day already past is the contractor recording a cancellation that happened: no notice.)"""
    terms = memberships.plan_of(ctx, m)[1]
    days = int(terms.cancellation.get("notice_days", 0))
    earliest = ctx.today() + timedelta(days=days)
    if days and ctx.today() <= on < earliest:
        raise Declined("notice_required", f"{terms.plan_name} asks for {days} days' notice to cancel: the earliest "
                       f"last day is {earliest.isoformat()}")


def _last_day_ahead(ctx: Ctx, m: Any, on: date) -> bool:
    """Whether a last day lies beyond the days events may be dated ahead — fine for a billed
    membership (notice given: it ends then); any other day outside the window is refused."""
    try:
        limits.check_day(ctx.company, ctx.today(), on, "on")
        return False
    except InvalidDocument:
        if changes.schedule_of(ctx, m.id) is None or on <= ctx.today():
            raise
        return True


def _scheduled(ctx: Ctx, m: Any, on: date) -> dict[str, Any] | None:
    """A last day ahead (notice given): a billed membership ends then, refunded by its plan's
    terms; None when `on` can be done now."""
    if not _last_day_ahead(ctx, m, on):
        return None
    s = changes.schedule_of(ctx, m.id)
    assert s is not None
    s.ends_on, s.ends_refund = on, "policy"
    return {"membership": m.id, "status": m.status, "ends_on": on.isoformat(), "at": "now", "scheduled": True,
            "currency": s.currency, "note": f"it stays active until {on.isoformat()}, then ends and is refunded by "
            "the plan's cancellation terms"}


@use_case
def cancel(ctx: Ctx, membership_id: str, on: date, at: str | None = None) -> dict[str, Any]:
    """Cancel a membership on a date (company time), giving back what its plan's cancellation
    terms say — a date ahead (notice given) ends it then; or, `at="period_end"`, at the end of
    the billing period holding that date (nothing prorated). A membership that is not active
    says why."""
    m = memberships.get(ctx, membership_id, lock=True)
    at = _at(at, "now")
    if m.status == "active":
        _notice(ctx, m, on)
        if at == "now":
            later = _scheduled(ctx, m, on)
            if later is not None:
                return later
    limits.check_day(ctx.company, ctx.today(), on, "on")
    if at == "period_end" and m.status == "active":
        s = changes.schedule_of(ctx, m.id)
        if s is None:
            raise Declined("not_billed", f"membership {m.id} is not billed here: cancel it on its last day instead")
        s.ends_on, s.ends_refund = changes.billing_period(s, on)[1], "none"
        return {"membership": m.id, "status": m.status, "ends_on": s.ends_on.isoformat(), "at": at,
                "refund": "0.00", "currency": s.currency,
                "note": "it stays active to the end of the billing period it has paid for, then ends"}
    return pipeline.post(ctx, {"id": f"admin:cancelled:{m.id}:{on.isoformat()}", "type": "cancelled",
                               "customer": m.customer_id, "occurred_at": ctx.midday_of(on),
                               "data": {"membership": m.id}}, trusted=True)


@use_case
def set_renewal(ctx: Ctx, membership_id: str, on: bool, by: str = "office") -> dict[str, Any]:
    """Have a membership renew automatically at the end of its period (`on`), or end with it: a
    `renewal_changed` event (so it shows in the events, reaches webhooks and notification
    triggers). `by="member"` is the member asking, allowed only where the plan lets members
    choose; the office may always turn renewal off, and on again where the plan renews."""
    m = memberships.get(ctx, membership_id)
    if by not in ("member", "office"):
        raise InvalidDocument.field("by", "must be member or office")
    now = ctx.clock.now()
    key = f"renewal_changed:{m.id}:{now.strftime('%Y%m%dT%H%M%S%f')}:{'on' if on else 'off'}"
    return pipeline.accepted(pipeline.post(ctx, pipeline.platform_payload(
        key, "renewal_changed", m.customer_id, now, {"membership": m.id, "auto_renewal": bool(on), "by": by}),
        trusted=True))


@dataclass(frozen=True)
class TierChanged:
    cancelled: str | None  # the membership that ended (None: the change waits for the period's end)
    membership: str  # the one on the new tier (or, waiting, the membership itself)
    tier: str
    result: dict[str, Any]  # the new membership's enrolment
    billing: dict[str, Any] | None = None  # credit, charge, due_now and the invoice, for a billed membership
    at: str = "now"
    effective_on: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cancelled": self.cancelled, "membership": self.membership, "tier": self.tier, "at": self.at,
                "effective_on": self.effective_on, **(self.billing or {})}


def _new_terms(ctx: Ctx, m: Any, tier: str, on: date) -> tuple[str, Any]:
    plan = memberships.plan_of(ctx, m)[0].split("@")[0]
    _rs, version = memberships.plan_version(ctx, plan, on)
    try:
        terms = resolve(version.content, tier)  # before anything changes
    except NotFound as exc:  # the tier asked for, not the membership
        raise InvalidDocument.field("tier", exc.message, exc.message) from None
    if terms.tier == m.tier:
        raise InvalidDocument.field("tier", f"the membership is on {terms.tier_name} already",
                                    f"membership {m.id} is on {terms.tier_name} already")
    return plan, terms


def _change_plan(ctx: Ctx, membership_id: str, tier: str, on: date, at: str | None) -> dict[str, Any]:
    limits.check_day(ctx.company, ctx.today(), on, "on")
    m = memberships.get(ctx, membership_id, lock=True)
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}")
    old = memberships.plan_of(ctx, m)[1]
    plan, new = _new_terms(ctx, m, tier, on)
    s = changes.schedule_of(ctx, m.id)
    at = _at(at, old.billing.get("tier_change", "now"))
    if at == "period_end" and s is None:
        raise Declined("not_billed", f"membership {m.id} is not billed here: change its tier on a day instead")
    found = changes.preview(ctx, m.id, old, new, on) if s is not None else None
    if at == "period_end" and s is not None:
        effective = changes.billing_period(s, on)[1] + timedelta(days=1)
        price = new.prices.get(s.cadence)
        if price is None:
            raise Declined("cadence_not_offered", f"{new.plan_name} ({new.tier_name}) is not billed {s.cadence}")
        found = {"credit": "0.00", "charge": format_cents(to_cents(price)), "due_now": "0.00", "refund": "0.00",
                 "currency": s.currency, "computed": {"new_price": format_cents(to_cents(price)),
                                                     "cadence": s.cadence, "first_bill_on": effective.isoformat()}}
    else:
        effective = on
    return {"m": m, "plan": plan, "old": old, "new": new, "schedule": s, "at": at, "effective": effective,
            "billing": found}


def _shown(found: dict[str, Any] | None) -> dict[str, Any] | None:
    keys = ("credit", "charge", "due_now", "refund", "currency", "computed")
    return {k: v for k, v in found.items() if k in keys} if found else None


@reading
def change_tier_preview(ctx: Ctx, membership_id: str, tier: str, on: date, at: str | None = None) -> dict[str, Any]:
    """What changing tier would credit, charge and ask now, changing nothing."""
    c = _change_plan(ctx, membership_id, tier, on, at)
    return {"membership": membership_id, "tier": c["new"].tier, "at": c["at"],
            "effective_on": c["effective"].isoformat(),
            **(_shown(c["billing"]) or {"credit": "0.00", "charge": "0.00", "due_now": "0.00", "refund": "0.00",
                                        "note": "the membership is not billed here: nothing is prorated"})}


@use_case
def change_tier(ctx: Ctx, membership_id: str, tier: str, on: date, at: str | None = None) -> TierChanged:
    """Move a membership to another tier of its plan, in one transaction: at once (`now`: the
    membership ends and one on the new tier starts, on the plan version in force that day; a
    billed one is credited the unused days and charged the new price for the rest) or at the
    billing period's end. A tier that version lacks, or a membership that is not active,
    changes nothing and says why."""
    c = _change_plan(ctx, membership_id, tier, on, at)
    m = c["m"]
    if c["at"] == "period_end":
        c["schedule"].change_to_tier = c["new"].tier
        return TierChanged(None, m.id, c["new"].tier, {}, _shown(c["billing"]), "period_end",
                           c["effective"].isoformat())
    started = changes.move(ctx, m, c["plan"], c["new"].tier, on)
    shown = _shown(c["billing"])
    if c["billing"] is not None and shown is not None:
        shown.update(changes.bill_change(ctx, m.id, started["membership"], c["old"], c["new"], on, c["billing"]))
    return TierChanged(m.id, started["membership"], c["new"].tier, started, shown, "now", on.isoformat())


@reading
def show(ctx: Ctx, membership_id: str) -> dict[str, Any]:
    """Status, plan version, tier, period, allowance and included services of a membership."""
    return memberships.view(ctx, memberships.get(ctx, membership_id))


STATUSES = ("active", "past_due", "suspended", "cancelled", "expired")


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
def cancel_preview(ctx: Ctx, membership_id: str, on: date, at: str | None = None) -> dict[str, Any]:
    """What cancelling on `on` would do, changing nothing: the periods it closes first, the day
    it ends, what is left unused then (it does not carry over: a cancelled membership grants and
    charges nothing more), and what it gives back and how that is computed."""
    m = memberships.get(ctx, membership_id)
    _last_day_ahead(ctx, m, on)
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}")
    at = _at(at, "now")
    shown = memberships.view(ctx, m)
    s = changes.schedule_of(ctx, m.id)
    if at == "period_end":
        if s is None:
            raise Declined("not_billed", f"membership {m.id} is not billed here: cancel it on its last day instead")
        ends = changes.billing_period(s, on)[1]
        return {"membership": m.id, "status_after": "cancelled", "at": at, "ends_on": ends.isoformat(),
                "refund": "0.00", "owed": "0.00", "currency": s.currency,
                "refund_computed": {"policy": "period_end", "note": "nothing is prorated: the member keeps what "
                                    "was paid for until the billing period ends"},
                "now": {"allowance": shown["allowance"], "services": shown["services"]},
                "note": f"it stays active until {ends.isoformat()}, the end of the billing period, then ends"}
    closes = renewal.periods_behind(m, on, ctx.company.max_periods_per_event)
    refund = refunds.preview(ctx, m.id, on)
    return {"membership": m.id, "status_after": "cancelled", "at": at, "ends_on": on.isoformat(),
            **({"refund": refund["refund"], "owed": refund["owed"], "currency": refund["currency"],
                "refund_computed": refund["computed"]} if refund else {}),
            "periods_closed_first": closes, "now": {"allowance": shown["allowance"], "services": shown["services"]},
            "note": ("the balances shown are today's; the periods that end before the day close first (each "
                     "as its own event), and what is left on the day goes unused" if closes else
                     "what is left on the day goes unused")
            + ("; the refund is what the plan's cancellation terms give back of what was invoiced, as a credit "
               "note paid back to the card" if refund
               else "; the membership is not billed here: nothing is refunded or charged by cancelling")}


@reading
def of_customer(ctx: Ctx, customer_id: str) -> list[dict[str, Any]]:
    """Every membership of a customer (any status), oldest first, as `show` gives each."""
    get_customer(ctx.session, ctx.company.id, customer_id)  # another company's customer: not found
    return [memberships.view(ctx, m) for m in memberships.of_customer(ctx, customer_id)]


@reading
def statement(ctx: Ctx, membership_id: str, start: date, end: date) -> dict[str, Any]:
    _range(start, end)
    return membership_statement(ctx, membership_id, start, end)


@reading
def statement_document(ctx: Ctx, start: date, end: date, membership_id: str | None = None, plan: str | None = None,
                       fmt: str = "pdf") -> bytes:
    """The statement of one membership, or of every membership of a plan in the range, as PDF
    (or HTML): opening balance, every line, the overdraft payments, closing balance."""
    _range(start, end)
    if membership_id:
        shown = [membership_statement(ctx, membership_id, start, end)]
    elif plan:
        shown = statements.of_plan(ctx, plan, start, end)
        if not shown:
            raise NotFound(f"no membership of plan {plan!r} between {start} and {end}")
    else:
        raise InvalidDocument.field("membership", "name a membership or a plan")
    return statements.document(ctx, shown, start, end, fmt)


def _range(start: date, end: date) -> None:
    if start > end:
        raise InvalidDocument.field("from", "the statement's range ends before it starts",
                                    f"the range {start} .. {end} ends before it starts")


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
        spec = v.content.get("spec") or {}
        out += [(f"{rs.key}|{t['id']}",
                 f"{rs.name} — {t.get('name', t['id'])}{_prices(t.get('price') or spec.get('price'))}")
                for t in tiers(v.content)]
    return out


_PER = {"monthly": "a month", "quarterly": "a quarter", "yearly": "a year"}


def _prices(price: dict[str, str] | None) -> str:
    """ " (14.95 a month · 149.00 a year)": what a tier costs at each cadence it is sold at."""
    shown = [f"{price[c]} {words}" for c, words in _PER.items() if price and price.get(c)]
    return f" ({' · '.join(shown)})" if shown else ""


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
