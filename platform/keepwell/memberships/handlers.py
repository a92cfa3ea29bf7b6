"""The event types memberships own, and their part in every event: the membership an event is
about, its periods closed up to the event's date, and what the rules may know of the member."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..events.pipeline import customer
from ..events.registry import PendingEvent, before_each, event_type, member_snapshot, preload
from ..infra.context import Ctx
from ..kernel.calendar_words import day
from ..kernel.errors import Declined, NotFound
from ..kernel.money import format_cents, percent_of, to_cents
from ..kernel.periods import period_start
from ..ledger import Posting, book
from ..rulesets.event_types import EVENT_TYPES, REASON, REFERRAL_CODE, STRING, common, data_schema
from . import allowance, carry, entitlements, memberships, moves, renewal
from .models import Membership
from .terms import PlanTerms

MEMBERSHIP = {"title": "Membership", "description": "ID of the membership concerned.", "type": "string",
              "minLength": 1, "maxLength": 200}
MEMBERSHIP_EVENT = data_schema(["membership"], membership=MEMBERSHIP, reason=REASON)

EVENT_TYPES.declare_member_fields({"tier": STRING, "plan": STRING, "status": STRING})


# --- every event ---------------------------------------------------------------------------------

@before_each
def close_ended_periods(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> None:
    """Before an event is applied, the periods that ended before its date are closed. This runs
    outside the event's undo: a declined purchase must not undo a period end."""
    if event.type in EVENT_TYPES.platform_only:
        return
    try:
        m = memberships.active_for(ctx, event.customer_id, data.get("membership"))
    except (Declined, NotFound):
        return  # the handler reports it
    if m is not None:
        renewal.catch_up(ctx, m, local)


@member_snapshot
def snapshot(ctx: Ctx, event: PendingEvent) -> dict[str, Any]:
    m: Membership | None
    if not event.membership_id:
        m = (
            memberships.likely_for(ctx, event.customer_id, None)
            if event.type not in EVENT_TYPES.platform_only
            else None
        )
    else:
        m = memberships.get(ctx, event.membership_id)
    if m is None:
        return {"status": "none"}
    plan_ref = memberships.plan_of(ctx, m)[0]
    return {"tier": m.tier, "plan": plan_ref.split("@")[0], "status": m.status}


@preload
def load_members(ctx: Ctx, customer_ids: list[str]) -> None:
    """A batch's memberships and all their accounts (and the customers' own, points), at once."""
    memberships.load(ctx, customer_ids)
    state = memberships.members(ctx)
    book(ctx).load_owners(customer_ids + [m.id for c in customer_ids for m in state.of_customer.get(c, ())])


def membership_for(ctx: Ctx, event: PendingEvent, data: dict, local: date, required: bool,
                   service_code: str | None = None) -> Membership | None:
    """The active membership an event concerns; with `required`, a decline when there is none."""
    try:
        m = memberships.active_for(ctx, event.customer_id, data.get("membership"))
    except Declined:
        if required:  # paying with "the" membership needs to know which one
            raise
        # Several active memberships and none named: a card purchase or a visit still goes
        # through, on the membership that covers the service, else the oldest.
        m = memberships.likely_for(ctx, event.customer_id, service_code)
    if m is not None:
        renewal.catch_up(ctx, m, local)
        if m.status != "active":
            if required:
                raise Declined("membership_not_active", f"membership {m.id} is {m.status} since {m.ended_on}")
            return None
        if m.standing == "suspended":
            if required:
                raise Declined("membership_suspended", f"membership {m.id} is suspended until its unpaid invoice "
                               "is paid: its allowance cannot be used meanwhile")
            return None
        if local < m.issued_on:
            if required:
                raise Declined("before_membership", f"membership {m.id} starts on {m.issued_on}")
            return None
        ctx.unit.set(event, "membership_id", m.id)
    elif required:
        raise Declined("no_membership", "customer has no active membership")
    return m


def receipt(ctx: Ctx, m: Membership) -> dict[str, Any]:
    """What a POS shows and prints: name, remaining balance, overdraft left, expiry. The fields
    are for the till; `receipt_lines` is the text to print, with the allowance left and the
    overdraft only when the company prints them (`companies set --receipt-balance`)."""
    plan_ref, terms = memberships.plan_of(ctx, m)
    st = allowance.state(ctx, m, terms)
    lines = [f"{terms.plan_name} member ({terms.tier_name})"]
    if terms.has_allowance and ctx.company.receipt_shows_balance:
        lines.append(f"Allowance left: {format_cents(st.balance)} {terms.currency}")
        if st.overdraft_used:
            lines.append(f"Overdraft used: {format_cents(st.overdraft_used)} {terms.currency}")
        if terms.overdraft_limit_cents:
            lines.append(f"Overdraft available: {format_cents(st.overdraft_left)} {terms.currency}")
    lines.append(f"{'Renews' if terms.auto_renewal else 'Expires'} on {day(m.expires_on)}")
    return {"membership": m.id, "plan": plan_ref, "tier": m.tier, "balance": format_cents(st.balance),
            "overdraft_left": format_cents(st.overdraft_left), "overdraft_used": format_cents(st.overdraft_used),
            "expires_on": m.expires_on.isoformat(), "receipt_lines": lines}


# --- the event types -------------------------------------------------------------------------------

@event_type("purchase", title="Purchase", description="Details of a purchase event.", data=data_schema(
    ["amount"],
    amount={"title": "Amount", "description": "Amount paid, e.g. \"129.00\".", **common("nonneg_money")},
    pay_with={"title": "Paid with", "description": "How it was paid.", "type": "string",
              "enum": ["membership", "card", "cash", "other"], "default": "other"},
    service_code={"title": "Service code", "description": "Catalogue code of the service bought, if any.",
                  **common("service_code")},
    description={"title": "Description", "description": "What was bought.", "type": "string"},
    membership=MEMBERSHIP,
    category={"title": "Category", "description": "Purchase category, e.g. \"parts\".", "type": "string"},
    apply_discount={"title": "Apply the member discount", "description": "Take the membership's member discount "
                    "off the amount (the till sends the list price).", "type": "boolean", "default": False},
    referral_code=REFERRAL_CODE))
def purchase(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    cents = to_cents(data["amount"])
    if data.get("pay_with") != "membership":
        m = membership_for(ctx, event, data, local, required=False)
        discount = (_member_discount(cents, memberships.plan_of(ctx, m)[1], local)
                    if m and data.get("apply_discount") else {})
        return {"charged": format_cents(cents - discount.get("cents", 0)), "membership": m.id if m else None,
                **discount.get("shown", {})}
    m = membership_for(ctx, event, data, local, required=True)
    assert m is not None
    plan_ref, terms = memberships.plan_of(ctx, m)
    happened_in = memberships.current_period_of(m, local)
    late: dict[str, Any] = {}
    if happened_in != m.current_period:
        # A till that synced late: the plan says whether the current period pays for it.
        if terms.late_charges == "decline":
            raise Declined("period_closed", f"{local} is not in the membership's current period "
                           f"(which started after the period of that day ended)")
        late = {"late": {"happened_on": local.isoformat(), "period": happened_in,
                         "charged_to_period": m.current_period}}
    discount = _member_discount(cents, terms, local) if data.get("apply_discount") else {}
    # What was bought (the till's description) reads on the member's statement beside the charge.
    memo = "; ".join(filter(None, (
        " ".join(str(data.get("description") or "").split())[:120],
        f"purchase of {local.isoformat()} (period {happened_in}), charged to the current period" if late else ""))) \
        or None
    # A late charge is dated the first day of the period that pays for it (its statement shows it).
    day = period_start(m.issued_on, m.period, m.current_period) if late else local
    paid = allowance.charge(ctx, m, terms, cents - discount.get("cents", 0),
                            Posting(event.id, plan_ref, "", day, m.current_period), memo)
    return {**paid, **discount.get("shown", {}), **late, **receipt(ctx, m)}


def _member_discount(cents: int, terms: PlanTerms, day: date) -> dict[str, Any]:
    """The member discount on a list price that day (a running promotion adds its own):
    {"cents": off, "shown": what the receipt says}."""
    percent, promo = terms.discount_on(day)
    off = percent_of(cents, percent)
    shown = {"list_amount": format_cents(cents), "discount_percent": f"{percent.normalize():f}",
             "discount": format_cents(off)}
    if promo is not None:
        shown["promotion"] = promo.id
    return {"cents": off, "shown": shown}


@event_type("service_completed", title="Service completed", description="Details of a service_completed event.",
            data=data_schema(["service_code"],
                       service_code={"title": "Service code", "description": "Catalogue code of the completed service.",
                                     **common("service_code")},
                       amount={"title": "Amount", "description": "Amount charged for the service.",
                               **common("nonneg_money")},
                       technician={"title": "Technician", "description": "Who did the work.", "type": "string"},
                       membership=MEMBERSHIP, referral_code=REFERRAL_CODE))
def service_completed(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    m = membership_for(ctx, event, data, local, required=False, service_code=data["service_code"])
    out: dict[str, Any] = {"service_code": data["service_code"], "covered": False, "membership": m.id if m else None}
    price = to_cents(data["amount"]) if data.get("amount") else None
    if m is not None:
        plan_ref, terms = memberships.plan_of(ctx, m)
        why = Posting(event.id, plan_ref, "", local, m.current_period)
        if entitlements.draw(ctx, m, terms, data["service_code"], why):
            out.update(covered=True, charge="0.00")
            out["services"] = [s for s in entitlements.usage(ctx, m, terms) if s["code"] == data["service_code"]]
            return out
        if price is not None:
            discount = _member_discount(price, terms, local)
            out["discount"] = format_cents(discount["cents"])
            if "promotion" in discount["shown"]:
                out["promotion"] = discount["shown"]["promotion"]
            price -= discount["cents"]
    if price is not None:
        out["charge"] = format_cents(price)
    return out


@event_type("enrolled", title="Enrolled", description="Details of a enrolled event.", data=data_schema(
    ["plan"],
    plan={"title": "Plan", "description": "Plan ID, optionally with a version: \"vip-customer\" or \"vip-customer@3\".",
          "type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}(@[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$",
          "examples": ["vip-customer", "vip-customer@3"]},
    tier={"title": "Tier", "description": "Tier ID within the plan, if the plan has tiers.", **common("slug")},
    membership=MEMBERSHIP,
    cadence={"title": "Billing cadence", "description": "How often the member is billed, among the prices the plan "
             "offers for the tier; leave out for a membership billed elsewhere.", "type": "string",
             "enum": ["monthly", "quarterly", "yearly"]},
    payment_method={"title": "Payment method", "description": "The card the membership is charged to (a payment "
                    "method id); leave out for the customer's default card.", "type": "string", "minLength": 1,
                    "maxLength": 40},
    replaces={"title": "Replaces", "description": "The membership this one replaces (a change of tier): billing "
              "goes on from it, on the same billing day, cadence and card.", **MEMBERSHIP},
    allow_second={"title": "Allow a second membership",
                  "description": "Enrol even though the customer already has an active membership of this plan.",
                  "type": "boolean", "default": False},
    referral_code=REFERRAL_CODE))
def enrolled(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    old = memberships.get(ctx, data["replaces"]) if data.get("replaces") else None
    if old is not None and old.customer_id != event.customer_id:
        raise Declined("wrong_customer", f"membership {old.id} belongs to another customer")
    m = memberships.enroll(ctx, customer(ctx, event.customer_id), data["plan"], data.get("tier"), local, event.id,
                           allow_second=bool(data.get("allow_second")), replaces=old.id if old else None)
    ctx.unit.set(event, "membership_id", m.id)
    out = {"membership": m.id, "plan": memberships.plan_of(ctx, m)[0], "tier": m.tier,
           "expires_on": m.expires_on.isoformat()}
    if old is not None:  # a change of tier: what was used this period on the old tier counts
        plan_ref, terms = memberships.plan_of(ctx, m)
        old_terms = memberships.plan_of(ctx, old)[1]
        out["carried"] = carry.carry_usage(ctx, old, old_terms, m, terms,
                                           Posting(event.id, plan_ref, "", local, m.current_period))
        if old_terms.auto_renewal and not old.auto_renewal and m.auto_renewal:
            # renewal turned off on the old tier stays off on the new: a tier change is not a yes
            memberships.members(ctx).set(m, "auto_renewal", False)
    return out


def _own_membership(ctx: Ctx, event: PendingEvent, data: dict) -> Membership:
    m = memberships.get(ctx, data["membership"], lock=True)
    if m.customer_id != event.customer_id:
        raise Declined("wrong_customer", f"membership {m.id} belongs to another customer")
    return m


@event_type("cancelled", title="Cancelled", description="Details of a cancelled event.", data=data_schema(
    ["membership"], membership=MEMBERSHIP, reason=REASON,
    refund={"title": "Refund", "description": "\"policy\": give back what the plan's cancellation terms say (a credit "
            "note, paid back to the card); \"none\": give nothing back (a change of tier credits the unused days on "
            "its own invoice; a membership cancelled for not paying is owed nothing).", "type": "string",
            "enum": ["policy", "none"], "default": "policy"}))
def cancelled(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    m = _own_membership(ctx, event, data)
    renewal.catch_up(ctx, m, local)
    memberships.cancel(ctx, m, local)
    return {"membership": m.id, "status": m.status}


@event_type("renewal_changed", title="Renewal turned on or off",
            description="A membership set to renew automatically at the end of its period, or to end with it "
            "(by the member from the portal, where the plan lets them, or by the office).",
            data=data_schema(["membership", "auto_renewal"], membership=MEMBERSHIP,
                             auto_renewal={"title": "Renews automatically", "type": "boolean",
                                           "description": "On: it renews at the end of each period; off: it "
                                           "ends with the current one."},
                             by={"title": "Changed by", "type": "string", "enum": ["member", "office"],
                                 "default": "office", "description": "Who asked: the member (from the portal) "
                                 "or the office."}),
            platform_only=True, key_prefix="renewal_changed:")
def renewal_changed(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    m = _own_membership(ctx, event, data)
    renewal.catch_up(ctx, m, local)
    on, by = bool(data["auto_renewal"]), data.get("by", "office")
    renewal.choose(ctx, m, on, by == "member")
    return {"membership": m.id, "auto_renewal": m.auto_renewal, "by": by, "expires_on": m.expires_on.isoformat()}


@event_type("period_ended", title="Period ended", description="Details of a period_ended event.",
            data=MEMBERSHIP_EVENT, platform_only=True, key_prefix="period_ended:")
def period_ended(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    m = memberships.get(ctx, data["membership"], lock=True)
    return renewal.close_period(ctx, m, event.id)


@event_type("renewed", title="Renewed", description="Details of a renewed event.",
            data=MEMBERSHIP_EVENT, platform_only=True, key_prefix="renewed:")
def renewed(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    return {}  # the period end did the work; this event is what rules and notifications react to


@event_type("expired", title="Expired", description="Details of a expired event.",
            data=MEMBERSHIP_EVENT, platform_only=True, key_prefix="expired:")
def expired(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    return {}


@event_type("migrated", title="Moved to another plan version",
            description="Raised by `keepwell membership migrate`: the membership moves to another version of its plan.",
            data=data_schema(["membership", "plan"], membership=MEMBERSHIP,
                       plan={"title": "Plan version", "description": "The plan version it moves to, as id@version.",
                             "type": "string", "minLength": 3, "maxLength": 200},
                       reason=REASON),
            platform_only=True, key_prefix="migrated:")
def migrated(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> dict[str, Any]:
    m = _own_membership(ctx, event, data)
    before = memberships.plan_of(ctx, m)[0]
    moves.move(ctx, m, data["plan"])
    return {"membership": m.id, "from": before, "to": memberships.plan_of(ctx, m)[0]}
