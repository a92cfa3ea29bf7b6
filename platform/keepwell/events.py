"""The flow of one event: in (validated, stored once per key), context, rules, apply, explain.

Everything here runs inside the caller's transaction: the event row, its ledger entries and its
outbox rows commit together or not at all. A repeated key returns the first result untouched.
"""

from __future__ import annotations

import copy
from typing import Callable
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from . import allowance, entitlements, memberships, points
from .documents import content_hash
from .errors import InvalidDocument, NotFound, Problem
from .ledger import Posting, book
from .models import Customer, Event, LedgerEntry, OutboxMessage
from .money import format_cents, to_cents
from .outcomes import Declined
from .rules import evaluate
from .tenancy import Ctx, get_customer
from .validation import nul_problems, validate_event

# Raised only by the platform's own due work, never accepted from outside.
_E = Event.__table__
PLATFORM_ONLY = frozenset({"period_ended", "renewed", "expired", "points_expired", "migrated"})
BUILTIN = "keepwell@1"
# Keys of the platform's own events (close_period_event, due.run_unit): never accepted from outside.
RESERVED_KEYS = ("period_ended:", "renewed:", "expired:", "points_expired:", "migrated:")


def check(payload: object, trusted: bool = False) -> list[Problem]:
    # The fast path answers "valid" only where validate_event would (NUL text is its one extra check).
    problems = [] if _valid_event(payload) and not nul_problems(payload) else validate_event(payload)
    if not problems and payload["type"] in PLATFORM_ONLY and not trusted:
        problems = [Problem("type", f"{payload['type']!r} events are raised by `keepwell run-due`, not posted")]
    elif not problems and not trusted and payload["id"].startswith(RESERVED_KEYS):
        # An outside event holding a platform key would stand in for the period end (or expiry)
        # it names: that period would never close and catch_up would loop on it forever.
        problems = [Problem("id", f"ids starting with {', '.join(RESERVED_KEYS)} are reserved for the platform's own events")]
    return problems


# --- validation: a fast path for valid events ------------------------------------------------
# The event schema (schemas/event.schema.json) is compiled once into plain Python checks that
# answer "valid" only when the JSON Schema validator would report no problem; anything else (an
# invalid event, or a schema using a keyword the compiler does not know) goes to the full
# validator, which reports every problem with its path. tests/test_batch_ingest.py compares the
# two on generated events.

_FAST_IGNORED = {"$schema", "$id", "$comment", "title", "description", "examples", "default"}


class _Unsupported(Exception):
    pass


def _true(_x) -> bool:
    return True


def _all(checks: list) -> "Callable[[object], bool]":
    checks = tuple(checks)
    if not checks:
        return _true
    if len(checks) == 1:
        return checks[0]

    def f(x) -> bool:
        for check in checks:
            if not check(x):
                return False
        return True

    return f


_BOUNDS = {"minimum": lambda x, m: x >= m, "maximum": lambda x, m: x <= m,
           "exclusiveMinimum": lambda x, m: x > m, "exclusiveMaximum": lambda x, m: x < m}
_TYPES = {"string": str, "object": dict, "array": list, "boolean": bool}


def _type_check(name: str):
    if name in _TYPES:
        t = _TYPES[name]
        return lambda x: isinstance(x, t)
    if name == "integer":
        return lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())
    if name == "null":
        return lambda x: x is None
    raise _Unsupported(name)


def _compile_schema(schema: dict, resolve) -> "Callable[[object], bool]":
    import re

    from .validation import Draft202012Validator

    if not isinstance(schema, dict):
        raise _Unsupported(schema)
    checks = []
    for kw, arg in schema.items():
        if kw in _FAST_IGNORED or kw not in Draft202012Validator.VALIDATORS:
            continue  # annotations: the validator ignores them too
        if kw == "type":
            fs = [_type_check(t) for t in ([arg] if isinstance(arg, str) else arg)]
            checks.append(fs[0] if len(fs) == 1 else (lambda x, fs=tuple(fs): any(f(x) for f in fs)))
        elif kw == "required":
            keys = tuple(arg)

            def required(x, keys=keys) -> bool:
                if isinstance(x, dict):
                    for k in keys:
                        if k not in x:
                            return False
                return True

            checks.append(required)
        elif kw == "properties":
            items = tuple((k, _compile_schema(v, resolve)) for k, v in arg.items())

            def properties(x, items=items) -> bool:
                if isinstance(x, dict):
                    for k, f in items:
                        if k in x and not f(x[k]):
                            return False
                return True

            checks.append(properties)
        elif kw == "additionalProperties":
            if arg is not False or "patternProperties" in schema:
                raise _Unsupported(kw)
            allowed = frozenset(schema.get("properties", {}))
            checks.append(lambda x, allowed=allowed: not isinstance(x, dict) or allowed.issuperset(x))
        elif kw == "minLength":
            checks.append(lambda x, n=int(arg): not isinstance(x, str) or len(x) >= n)
        elif kw == "maxLength":
            checks.append(lambda x, n=int(arg): not isinstance(x, str) or len(x) <= n)
        elif kw == "pattern":
            rx = re.compile(arg)
            checks.append(lambda x, rx=rx: not isinstance(x, str) or rx.search(x) is not None)
        elif kw == "format":
            fc = Draft202012Validator.FORMAT_CHECKER
            checks.append(lambda x, fmt=arg, fc=fc: fc.conforms(x, fmt))
        elif kw in ("enum", "const"):
            values = list(arg) if kw == "enum" else [arg]
            if not all(type(v) is str for v in values):
                raise _Unsupported(kw)
            allowed = frozenset(values)
            checks.append(lambda x, allowed=allowed: type(x) is str and x in allowed)
        elif kw in _BOUNDS:
            if isinstance(arg, bool) or not isinstance(arg, (int, float)):
                raise _Unsupported(kw)
            checks.append(lambda x, m=arg, ok=_BOUNDS[kw]: isinstance(x, bool) or not isinstance(x, (int, float)) or ok(x, m))
        elif kw == "allOf":
            checks.append(_all([_compile_schema(sub, resolve) for sub in arg]))
        elif kw == "if":
            cond = _compile_schema(arg, resolve)
            then = _compile_schema(schema.get("then", {}), resolve)
            other = _compile_schema(schema.get("else", {}), resolve)
            checks.append(lambda x, cond=cond, then=then, other=other: then(x) if cond(x) else other(x))
        elif kw in ("then", "else"):
            continue  # with "if" (above), or ignored without it
        elif kw == "$ref":
            checks.append(_compile_schema(resolve(arg), resolve))
        else:
            raise _Unsupported(kw)
    return _all(checks)


def _fast_validator():
    from .validation import schema

    def resolve(ref: str) -> dict:
        uri, _, fragment = ref.partition("#")
        name = uri.rsplit("/", 1)[-1]
        doc = schema(name)
        if doc.get("$id", "").rsplit("/", 1)[-1] != name:
            raise _Unsupported(ref)
        for part in [p for p in fragment.split("/") if p]:
            doc = doc[part.replace("~1", "/").replace("~0", "~")]
        return doc

    try:
        return _compile_schema(schema("event.schema.json"), resolve)
    except (_Unsupported, KeyError, TypeError, ValueError):
        return lambda _x: False  # the full validator for every event


_fast = None


def _valid_event(payload: object) -> bool:
    """True only when the event schema holds no problem for `payload` (False: ask the full
    validator)."""
    global _fast
    if _fast is None:
        _fast = _fast_validator()
    return _fast(payload)


def post(ctx: Ctx, payload: dict, trusted: bool = False) -> dict:
    """Process one event and return its result (the stored one, for a repeated key). A malformed
    event raises InvalidDocument (NotFound for an unknown customer) and changes nothing."""
    b = book(ctx)
    if b.depth:  # a platform event raised while another event is processed (catch_up)
        return _post(ctx, b, payload, trusted)
    if isinstance(payload, dict):
        prepare(ctx, [payload])
    mark = b.mark()
    b.depth += 1
    try:
        result = _post(ctx, b, payload, trusted)
    except BaseException:
        b.rollback(mark)
        raise
    finally:
        b.depth -= 1
    b.flush()
    return result


def post_many(ctx: Ctx, payloads: list, trusted: bool = False) -> list[dict]:
    """Process events in order inside the caller's transaction, with exactly the effects of
    posting them one at a time: what they need is loaded (and locked) up front in a few
    queries, their rows are written together at the end. A malformed event (or one for an
    unknown customer) is rejected alone, with its error; the others apply."""
    b = book(ctx)
    prepare(ctx, [p for p in payloads if isinstance(p, dict)])
    out = []
    b.depth += 1
    try:
        for payload in payloads:
            mark = b.mark()
            try:
                out.append(_post(ctx, b, payload, trusted))
            except (InvalidDocument, NotFound) as exc:
                b.rollback(mark)
                out.append(rejected(payload, exc))
    except BaseException:
        b.rollback(0)
        raise
    finally:
        b.depth -= 1
    b.flush()
    return out


def rejected(payload: object, exc) -> dict:
    return {"event": payload.get("id") if isinstance(payload, dict) else None, "status": "rejected", **exc.to_dict()}


def prepare(ctx: Ctx, payloads: list[dict], platform_keys: list[str] = ()) -> None:
    """Load what a batch of events needs in a few queries: which keys are stored already, the
    customers (locked, in id order, so concurrent batches cannot deadlock), their memberships
    and accounts. Anything not loaded here is still found, one query at a time."""
    b = book(ctx)
    keys = [p["id"] for p in payloads if _storable(p.get("id"))] + list(platform_keys)
    lookup_keys(ctx, keys)
    customers = lock_customers(ctx, [p["customer"] for p in payloads if _storable(p.get("customer"))])
    present = [c for c in customers if b.customers.get(c) is not None]
    memberships.load(ctx, present)
    b.load_owners(present + [m.id for c in present for m in b.members.get(c, ())])
    b.ids.want(Event.__table__, len(payloads) + len(platform_keys))
    b.ids.want(LedgerEntry.__table__, 3 * len(payloads) + 4 * len(platform_keys))
    b.ids.want(OutboxMessage.__table__, len(payloads))


def _storable(value: object) -> bool:
    # Only text a query can carry: PostgreSQL refuses NUL, and validation rejects such an event later.
    return isinstance(value, str) and "\x00" not in value


def lock_customers(ctx: Ctx, ids: list[str]) -> list[str]:
    """Load and lock these customers, in id order (concurrent batches cannot deadlock)."""
    b = book(ctx)
    customers = sorted(set(ids) - set(b.customers))
    for i in range(0, len(customers), 500):
        part = customers[i:i + 500]
        found = {c.id: c for c in ctx.session.scalars(
            sa.select(Customer).where(Customer.company_id == ctx.company.id, Customer.id.in_(part))
            .order_by(Customer.id).with_for_update())}
        for cid in part:
            b.customers[cid] = found.get(cid)
    return customers


def lookup_keys(ctx: Ctx, keys: list[str]) -> None:
    """Which of these event keys are stored already (one query per 500 keys)."""
    b = book(ctx)
    todo = [k for k in dict.fromkeys(keys) if k not in b.event_keys]
    for i in range(0, len(todo), 500):
        part = todo[i:i + 500]
        for k in part:
            b.event_keys[k] = None
        for row in ctx.session.execute(sa.select(_E.c.key, _E.c.payload_hash, _E.c.result)
                                       .where(_E.c.company_id == ctx.company.id, _E.c.key.in_(part))):
            b.event_keys[row.key] = row


def _stored(ctx: Ctx, b, key: str):
    """The stored (or, earlier in this batch, processed) event with this key, or None."""
    if key not in b.event_keys:
        lookup_keys(ctx, [key])
    return b.event_keys[key]


def customer(ctx: Ctx, customer_id: str) -> Customer:
    return _customer(ctx, book(ctx), customer_id)


def _customer(ctx: Ctx, b, customer_id: str) -> Customer:
    """The event's customer, locked: every effect of an event belongs to one customer."""
    c = b.customers.get(customer_id)
    if c is None:
        c = get_customer(ctx.session, ctx.company, customer_id, lock=True)  # NotFound when there is none
        b.customers[customer_id] = c
    return c


class _Pending:
    """An event being processed; its row is written when the book is flushed."""

    __slots__ = ("id", "key", "type", "customer_id", "membership_id", "occurred_at", "local_date", "payload",
                 "payload_hash", "status", "result")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def _post(ctx: Ctx, b, payload: dict, trusted: bool, built: bool = False) -> dict:
    """`built`: a platform event made by `_platform_payload` from stored values, valid by
    construction (tests/test_due_batch.py checks that against the schema)."""
    problems = [] if built else check(payload, trusted)
    if problems:
        raise InvalidDocument(f"event {payload.get('id', '?') if isinstance(payload, dict) else '?'} rejected", problems)
    digest = content_hash(payload)
    existing = _stored(ctx, b, payload["id"])
    if existing is not None:
        return _replay(existing, digest)
    customer = _customer(ctx, b, payload["customer"])
    occurred = datetime.fromisoformat(payload["occurred_at"])
    local = ctx.local_date(occurred)
    data = payload.get("data") or {}
    event = _Pending(
        id=b.ids.take(_E), key=payload["id"], type=payload["type"], customer_id=customer.id,
        membership_id=data.get("membership"), occurred_at=occurred.astimezone(timezone.utc), local_date=local, payload=payload,
        payload_hash=digest, status="processing", result={},
    )
    b.event_keys[event.key] = event
    b.undo.append(lambda: b.event_keys.__setitem__(event.key, None))
    result = {"event": event.key, "type": event.type, "customer": {"id": customer.id, "name": customer.name},
              "local_date": local.isoformat()}
    handler = HANDLERS[event.type]
    if event.type not in PLATFORM_ONLY:
        _close_ended_periods(ctx, event, data, local)
    mark = b.mark()
    try:
        result.update(handler(ctx, event, data, local))
        member = _lazy(lambda: _member_snapshot(ctx, event))  # taken now, read only if some rule may fire
        result["points"] = _earn_points(ctx, event, data, local, member)
        _notify(ctx, event, data, local, member, result)
        event.status = "processed"
    except Declined as d:
        b.rollback(mark)  # the handler's effects go; the period ends before it stay
        event.status = "declined"
        result.update({"reason": d.reason, "message": d.message, **d.details})
    result["status"] = "approved" if event.status == "processed" and event.type == "purchase" else event.status
    result["entries"] = _entries_of(ctx, event)
    event.result = result
    b.add_row("events", {"id": event.id, "company_id": ctx.company.id, "key": event.key, "type": event.type,
                         "customer_id": event.customer_id, "membership_id": event.membership_id,
                         "occurred_at": event.occurred_at, "local_date": local, "payload": payload,
                         "payload_hash": digest, "status": event.status, "result": result})
    return dict(result, duplicate=False)


def _replay(existing, digest: str) -> dict:
    out = dict(copy.deepcopy(existing.result), duplicate=True)
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
        book(ctx).set(event, "membership_id", m.id)
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
    customer = _customer(ctx, book(ctx), event.customer_id)
    m = memberships.enroll(ctx, customer, data["plan"], data.get("tier"), local, event.id)
    book(ctx).set(event, "membership_id", m.id)
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
    at = ctx.start_of(m.expires_on + _ONE_DAY)
    res = post_platform(ctx, _platform_payload(f"period_ended:{m.id}:{k}", "period_ended", m.customer_id, at, {"membership": m.id}))
    if m.status == "active":
        post_platform(ctx, _platform_payload(f"renewed:{m.id}:{k + 1}", "renewed", m.customer_id, at, {"membership": m.id}))
    elif m.status == "expired":
        post_platform(ctx, _platform_payload(f"expired:{m.id}", "expired", m.customer_id, at, {"membership": m.id}))
    return res


def period_keys(m) -> list[str]:
    """The keys of the events that close `m`'s current period (to look them up in bulk)."""
    k = m.current_period
    return [f"period_ended:{m.id}:{k}", f"renewed:{m.id}:{k + 1}", f"expired:{m.id}"]


def post_platform(ctx: Ctx, payload: dict) -> dict:
    """Post an event the platform built itself (`_platform_payload`)."""
    b = book(ctx)
    if b.depth:
        return _post(ctx, b, payload, trusted=True, built=True)
    return post(ctx, payload, trusted=True)


def _platform_payload(key: str, type_: str, customer: str, at: datetime, data: dict) -> dict:
    return {"id": key, "type": type_, "customer": customer, "occurred_at": at.isoformat(), "data": data}


_ONE_DAY = timedelta(days=1)


# --- rules: points earned and notifications intended --------------------------------------

def _lazy(make):
    box: list = []

    def get():
        if not box:
            box.append(make())
        return box[0]

    return get


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
            add_outbox(ctx, key=f"notify:{event.key}:{match.rules.ref.split('@')[0]}:{t.id}",
                       event_id=event.id, customer_id=event.customer_id, kind="notification", channel=t.channel,
                       template=t.template, audience=t.audience, ruleset=match.rules.ref, rule=t.id,
                       payload={"event": event.key, "type": event.type, "data": data, "local_date": local.isoformat(),
                                "membership": event.membership_id, "points": result.get("points")})


def add_outbox(ctx: Ctx, **row) -> None:
    """An outbox message, written with the event's other rows (in the same transaction)."""
    b = book(ctx)
    row.update(id=b.ids.take(OutboxMessage.__table__), company_id=ctx.company.id, status="pending", attempts=0)
    b.add_row("outbox", row)
    b.outbox_keys.add(row["key"])
    b.undo.append(lambda: b.outbox_keys.discard(row["key"]))


def _entries_of(ctx: Ctx, event) -> list[dict]:
    """The entries the event wrote (in this transaction's book, in the order they were posted)."""
    out = []
    for e, acc in book(ctx).entries_of.get(event.id, ()):
        money = acc.unit in ("allowance", "overdraft")
        fmt = format_cents if money else _same
        out.append({"account": f"{acc.unit}:{acc.code}" if acc.code else acc.unit, "owner": acc.owner, "kind": e["kind"],
                    "amount": fmt(e["amount"]), "balance_after": fmt(e["balance_after"]), "rule": e["rule"],
                    "ruleset": e["ruleset"], "date": e["effective_date"].isoformat(), "memo": e["memo"]})
    return out


def _same(v):
    return v


def entry_dict(e: LedgerEntry, unit: str, code: str, owner: str) -> dict:
    money = unit in ("allowance", "overdraft")
    fmt = format_cents if money else (lambda v: v)
    return {"account": f"{unit}:{code}" if code else unit, "owner": owner, "kind": e.kind, "amount": fmt(e.amount),
            "balance_after": fmt(e.balance_after), "rule": e.rule, "ruleset": e.ruleset,
            "date": e.effective_date.isoformat(), "memo": e.memo}


def find(ctx: Ctx, key: str) -> Event | None:
    return ctx.session.scalar(sa.select(Event).where(Event.company_id == ctx.company.id, Event.key == key))

