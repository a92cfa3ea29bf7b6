"""The flow of one event: in (validated, stored once per key), context, rules, apply, explain.

Everything here runs inside the caller's transaction: the event row, its ledger entries and its
outbox rows commit together or not at all. A repeated key returns the first result untouched.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from . import allowance, entitlements, memberships, points
from .documents import content_hash
from .errors import InvalidDocument, NotFound, Problem
from .ledger import Posting
from .models import Event, LedgerEntry, Account, OutboxMessage
from .money import format_cents, to_cents
from .outcomes import Declined
from .rules import evaluate
from .tenancy import Ctx, get_customer
from .validation import validate_event

# Raised only by the platform's own due work, never accepted from outside.
PLATFORM_ONLY = frozenset({"period_ended", "renewed", "expired", "points_expired", "migrated"})
BUILTIN = "keepwell@1"
# Keys of the platform's own events (close_period_event, due.run_unit): never accepted from outside.
RESERVED_KEYS = ("period_ended:", "renewed:", "expired:", "points_expired:", "migrated:")


def check(payload: object, trusted: bool = False) -> list[Problem]:
    problems = validate_event(payload)
    if not problems and payload["type"] in PLATFORM_ONLY and not trusted:
        problems = [Problem("type", f"{payload['type']!r} events are raised by `keepwell run-due`, not posted")]
    elif not problems and not trusted and payload["id"].startswith(RESERVED_KEYS):
        # An outside event holding a platform key would stand in for the period end (or expiry)
        # it names: that period would never close and catch_up would loop on it forever.
        problems = [Problem("id", f"ids starting with {', '.join(RESERVED_KEYS)} are reserved for the platform's own events")]
    return problems


def post(ctx: Ctx, payload: dict, trusted: bool = False) -> dict:
    """Process one event and return its result (the stored one, for a repeated key)."""
    problems = check(payload, trusted)
    if problems:
        raise InvalidDocument(f"event {payload.get('id', '?') if isinstance(payload, dict) else '?'} rejected", problems)
    digest = content_hash(payload)
    existing = ctx.session.scalar(sa.select(Event).where(Event.company_id == ctx.company.id, Event.key == payload["id"]))
    if existing is not None:
        return _replay(existing, digest)
    customer = get_customer(ctx.session, ctx.company, payload["customer"], lock=True)
    occurred = datetime.fromisoformat(payload["occurred_at"])
    local = ctx.local_date(occurred)
    data = payload.get("data") or {}
    event = Event(
        company_id=ctx.company.id, key=payload["id"], type=payload["type"], customer_id=customer.id,
        membership_id=data.get("membership"), occurred_at=occurred.astimezone(timezone.utc), local_date=local, payload=payload,
        payload_hash=digest, status="processing", result={},
    )
    ctx.session.add(event)
    ctx.session.flush()  # a concurrent duplicate fails here on the unique key; the caller retries
    result = {"event": event.key, "type": event.type, "customer": {"id": customer.id, "name": customer.name},
              "local_date": local.isoformat()}
    handler = HANDLERS[event.type]
    if event.type not in PLATFORM_ONLY:
        _close_ended_periods(ctx, event, data, local)
    savepoint = ctx.session.begin_nested()
    try:
        result.update(handler(ctx, event, data, local))
        member = _member_snapshot(ctx, event)
        result["points"] = _earn_points(ctx, event, data, local, member)
        _notify(ctx, event, data, local, member, result)
        savepoint.commit()
        event.status = "processed"
    except Declined as d:
        savepoint.rollback()
        event.status = "declined"
        result.update({"reason": d.reason, "message": d.message, **d.details})
    result["status"] = "approved" if event.status == "processed" and event.type == "purchase" else event.status
    result["entries"] = _entries_of(ctx, event)
    event.result = result
    ctx.session.flush()
    return dict(result, duplicate=False)


def _replay(existing: Event, digest: str) -> dict:
    out = dict(existing.result, duplicate=True)
    if existing.payload_hash != digest:
        out["warning"] = "this id was first used with different content; the first result stands"
    return out


# --- handlers: each returns what the answer should say, or raises Declined --------------------

def _membership_for(ctx: Ctx, event: Event, data: dict, local: date, required: bool, service_code: str | None = None):
    try:
        m = memberships.active_for(ctx, event.customer_id, data.get("membership"))
    except Declined:
        if required:  # paying with "the" membership needs to know which one
            raise
        # Several active memberships and none named: a card purchase or a visit still goes
        # through, on the membership that covers the service, else the oldest.
        m = memberships.likely_for(ctx, event.customer_id, service_code)
    if m is not None:
        catch_up(ctx, m, local)
        if m.status != "active":
            if required:
                raise Declined("membership_not_active", f"membership {m.id} is {m.status} since {m.ended_on}")
            return None
        if local < m.issued_on:
            if required:
                raise Declined("before_membership", f"membership {m.id} starts on {m.issued_on}")
            return None
        event.membership_id = m.id
    elif required:
        raise Declined("no_membership", "customer has no active membership")
    return m


def _purchase(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    cents = to_cents(data["amount"])
    if data.get("pay_with") != "membership":
        m = _membership_for(ctx, event, data, local, required=False)
        return {"charged": format_cents(cents), "membership": m.id if m else None}
    m = _membership_for(ctx, event, data, local, required=True)
    if memberships.current_period_of(m, local) != m.current_period:
        raise Declined("period_closed", f"{local} is not in the membership's current period (ends {m.expires_on})")
    plan_ref, terms = memberships.plan_of(ctx, m)
    paid = allowance.charge(ctx, m, terms, cents, Posting(event.id, plan_ref, "", local, m.current_period))
    return {**paid, **_receipt(ctx, m)}


def _receipt(ctx: Ctx, m) -> dict:
    """What a POS shows and prints: name, remaining balance, overdraft left, expiry."""
    _ref, terms = memberships.plan_of(ctx, m)
    st = allowance.state(ctx, m, terms)
    return {"membership": m.id, "plan": _ref, "tier": m.tier, "balance": format_cents(st.balance),
            "overdraft_left": format_cents(st.overdraft_left), "overdraft_used": format_cents(st.overdraft_used),
            "expires_on": m.expires_on.isoformat()}


def _service_completed(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    m = _membership_for(ctx, event, data, local, required=False, service_code=data["service_code"])
    out = {"service_code": data["service_code"], "covered": False, "membership": m.id if m else None}
    price = to_cents(data["amount"]) if data.get("amount") else None
    if m is not None:
        plan_ref, terms = memberships.plan_of(ctx, m)
        why = Posting(event.id, plan_ref, "", local, m.current_period)
        if entitlements.draw(ctx, m, terms, data["service_code"], why):
            out.update(covered=True, charge="0.00")
            out["services"] = [s for s in entitlements.usage(ctx, m, terms) if s["code"] == data["service_code"]]
            return out
        if price is not None:
            from .money import percent_of

            out["discount"] = format_cents(percent_of(price, terms.discount_percent))
            price -= percent_of(price, terms.discount_percent)
    if price is not None:
        out["charge"] = format_cents(price)
    return out


def _nothing(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    return {}


def _redemption(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    points.redeem(ctx, event.customer_id, int(data["points"]), Posting(event.id, _points_ref(ctx, local), "points.redeem", local),
                  memo=data.get("reward"))
    return {"redeemed": int(data["points"]), "reward": data.get("reward")}


def _adjustment(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    why = Posting(event.id, BUILTIN, "manual.adjustment", local)
    if data["unit"] == "points":
        amount = int(data["amount"])
        if amount >= 0:
            expiry = _expiry_months(ctx, local)
            points.earn(ctx, event.customer_id, amount, why, expiry, memo=data["reason"])
        else:
            points.redeem(ctx, event.customer_id, -amount, why, kind="adjust", memo=data["reason"])
        return {"adjusted": {"unit": "points", "amount": amount}}
    m = _membership_for(ctx, event, data, local, required=True)
    plan_ref, terms = memberships.plan_of(ctx, m)
    cents = to_cents(data["amount"])
    allowance.adjust(ctx, m, terms, cents, Posting(event.id, plan_ref, "", local, m.current_period), data["reason"])
    return {"adjusted": {"unit": "allowance", "amount": format_cents(cents)}, **_receipt(ctx, m)}


def _enrolled(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    customer = get_customer(ctx.session, ctx.company, event.customer_id)
    m = memberships.enroll(ctx, customer, data["plan"], data.get("tier"), local, event.id)
    event.membership_id = m.id
    return {"membership": m.id, "plan": memberships.plan_of(ctx, m)[0], "tier": m.tier, "expires_on": m.expires_on.isoformat()}


def _cancelled(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    m = memberships.get(ctx, data["membership"], lock=True)
    if m.customer_id != event.customer_id:
        raise Declined("wrong_customer", f"membership {m.id} belongs to another customer")
    catch_up(ctx, m, local)
    memberships.cancel(ctx, m, local)
    return {"membership": m.id, "status": m.status}


def _period_ended(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    m = memberships.get(ctx, data["membership"], lock=True)
    return memberships.close_period(ctx, m, event.id)


def _points_expired(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    through = date.fromisoformat(data["through"])
    n = points.expire_through(ctx, event.customer_id, through, Posting(event.id, _points_ref(ctx, local), "points.expiry", local))
    return {"expired_points": n, "through": through.isoformat()}


def _migrated(ctx: Ctx, event: Event, data: dict, local: date) -> dict:
    m = memberships.get(ctx, data["membership"], lock=True)
    if m.customer_id != event.customer_id:
        raise Declined("wrong_customer", f"membership {m.id} belongs to another customer")
    before = memberships.plan_of(ctx, m)[0]
    memberships.migrate(ctx, m, data["plan"])
    return {"membership": m.id, "from": before, "to": memberships.plan_of(ctx, m)[0]}


HANDLERS = {
    "purchase": _purchase,
    "service_completed": _service_completed,
    "referral": _nothing,
    "redemption": _redemption,
    "adjustment": _adjustment,
    "enrolled": _enrolled,
    "cancelled": _cancelled,
    "period_ended": _period_ended,
    "renewed": _nothing,
    "expired": _nothing,
    "points_expired": _points_expired,
    "migrated": _migrated,
}


# --- periods: an event dated after a period's end first closes that period ------------------

def _close_ended_periods(ctx: Ctx, event: Event, data: dict, local: date) -> None:
    """Before an event is applied, periods that ended before its date are closed. This runs
    outside the event's savepoint: a declined purchase must not undo a period end."""
    try:
        m = memberships.active_for(ctx, event.customer_id, data.get("membership"))
    except (Declined, NotFound):
        return  # the handler reports it
    if m is not None:
        catch_up(ctx, m, local)


def catch_up(ctx: Ctx, m, upto: date) -> list[dict]:
    """Close every period of `m` that ended before `upto`, each as its own platform event with a
    deterministic key, so run-due and a late-arriving purchase can never close a period twice."""
    results = []
    while m.status == "active" and m.expires_on < upto:
        results.append(close_period_event(ctx, m))
    return results


def close_period_event(ctx: Ctx, m) -> dict:
    k = m.current_period
    day = m.expires_on
    res = post(ctx, _platform_payload(f"period_ended:{m.id}:{k}", "period_ended", m.customer_id, ctx.start_of(day + _ONE_DAY),
                                      {"membership": m.id}), trusted=True)
    if m.status == "active":
        post(ctx, _platform_payload(f"renewed:{m.id}:{k + 1}", "renewed", m.customer_id, ctx.start_of(day + _ONE_DAY),
                                    {"membership": m.id}), trusted=True)
    elif m.status == "expired":
        post(ctx, _platform_payload(f"expired:{m.id}", "expired", m.customer_id, ctx.start_of(day + _ONE_DAY),
                                    {"membership": m.id}), trusted=True)
    return res


def _platform_payload(key: str, type_: str, customer: str, at: datetime, data: dict) -> dict:
    return {"id": key, "type": type_, "customer": customer, "occurred_at": at.isoformat(), "data": data}


_ONE_DAY = timedelta(days=1)


# --- rules: points earned and notifications intended --------------------------------------

def _member_snapshot(ctx: Ctx, event: Event) -> dict:
    if not event.membership_id:
        m = memberships.likely_for(ctx, event.customer_id, None) if event.type not in PLATFORM_ONLY else None
    else:
        m = memberships.get(ctx, event.membership_id)
    if m is None:
        return {"status": "none"}
    plan_ref = memberships.plan_of(ctx, m)[0]
    return {"tier": m.tier, "plan": plan_ref.split("@")[0], "status": m.status}


def _expiry_months(ctx: Ctx, on: date) -> int | None:
    from .rules import in_force

    found = in_force(ctx, "EarningRules", on)
    return found[0].expiry_months if found else None


def _points_ref(ctx: Ctx, on: date) -> str:
    from .rules import in_force

    found = in_force(ctx, "EarningRules", on)
    return found[0].ref if found else BUILTIN


def _earn_points(ctx: Ctx, event: Event, data: dict, local: date, member: dict) -> dict:
    earned = 0
    for match in evaluate(ctx, "EarningRules", event.type, local, data, member):
        for rule_id in match.rule_ids:
            n = match.rules.earn[rule_id].points_for(match.fact, match.rules.tier_multipliers)
            earned += points.earn(ctx, event.customer_id, n, Posting(event.id, match.rules.ref, rule_id, local),
                                  match.rules.expiry_months)
    return {"earned": earned, "balance": points.balance(ctx, event.customer_id)}


def _notify(ctx: Ctx, event: Event, data: dict, local: date, member: dict, result: dict) -> None:
    for match in evaluate(ctx, "NotificationTriggers", event.type, local, data, member):
        for rule_id in match.rule_ids:
            t = match.rules.triggers[rule_id]
            ctx.session.add(OutboxMessage(
                company_id=ctx.company.id, key=f"notify:{event.key}:{match.rules.ref.split('@')[0]}:{t.id}",
                event_id=event.id, customer_id=event.customer_id, kind="notification", channel=t.channel,
                template=t.template, audience=t.audience, ruleset=match.rules.ref, rule=t.id,
                payload={"event": event.key, "type": event.type, "data": data, "local_date": local.isoformat(),
                         "membership": event.membership_id, "points": result.get("points")},
            ))


def _entries_of(ctx: Ctx, event: Event) -> list[dict]:
    rows = ctx.session.execute(
        sa.select(LedgerEntry, Account.unit, Account.code, Account.owner)
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(LedgerEntry.event_id == event.id)
        .order_by(LedgerEntry.id)
    )
    return [entry_dict(e, unit, code, owner) for e, unit, code, owner in rows]


def entry_dict(e: LedgerEntry, unit: str, code: str, owner: str) -> dict:
    money = unit in ("allowance", "overdraft")
    fmt = format_cents if money else (lambda v: v)
    return {"account": f"{unit}:{code}" if code else unit, "owner": owner, "kind": e.kind, "amount": fmt(e.amount),
            "balance_after": fmt(e.balance_after), "rule": e.rule, "ruleset": e.ruleset,
            "date": e.effective_date.isoformat(), "memo": e.memo}


def find(ctx: Ctx, key: str) -> Event | None:
    return ctx.session.scalar(sa.select(Event).where(Event.company_id == ctx.company.id, Event.key == key))

