"""The flow of one event: in (validated, stored once per key), context, rules, apply, explain.

Everything here runs inside the caller's transaction: the event row, its ledger entries and its
outbox rows commit together or not at all. A repeated key returns the first result untouched.
One event and a batch go through the same code (`post_many`; `post` is a batch of one): what a
batch needs is loaded up front in a few queries and its rows are written together at the end.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from ..customers import limits
from ..customers.customers import get_customer, lock_customers
from ..customers.models import Customer
from ..infra import bulk
from ..infra.context import Ctx
from ..infra.memory import collector_paused
from ..infra.sql import chunks, one_of
from ..infra.tables import utcnow
from ..infra.unit import Unit
from ..kernel.cards import REFUSED, find_pan, has_pan
from ..kernel.errors import Declined, InvalidDocument, KeepwellError, Problem
from ..kernel.text import json_may_hold_unstorable, nul_problems
from ..ledger import book
from ..ledger.entries import posted_view
from ..rulesets.documents import canonical_json, content_hash
from ..rulesets.event_types import EVENT_TYPES
from ..rulesets.schemas import fast_event_validator
from ..rulesets.validation import validate_event
from . import registry
from .models import Event
from .registry import PendingEvent

EVENTS: sa.Table = Event.__table__  # type: ignore[assignment]


class Intake:
    """The events' part of a unit of work: which keys are stored already (or were processed
    earlier in this batch), and the customers it has locked."""

    def __init__(self, unit: Unit):
        self.unit = unit
        self.keys: dict[str, Any] = {}  # key -> stored row, pending event, or None: not stored
        self.customers: dict[str, Customer | None] = {}  # id -> locked Customer, or None: no such customer

    def before_flush(self) -> None:
        pass

    def after_flush(self, writes: bulk.Writes) -> None:
        pass


def intake(ctx: Ctx) -> Intake:
    return ctx.part(Intake)


# --- what may come in ---------------------------------------------------------------------------

def check(payload: object, trusted: bool = False) -> list[Problem]:
    """Every problem with an event as it arrives; empty when it may be processed."""
    return _check(payload, trusted)[0]


def _check(payload: object, trusted: bool) -> tuple[list[Problem], str]:
    """The problems, and the event's canonical JSON (what its content hash is made of)."""
    text = ""
    if fast_event_validator().is_valid(payload):
        text = canonical_json(payload)
        # JSON writes a NUL as \u0000: where that (or a lone surrogate) is not in the text, no string holds one
        problems = nul_problems(payload) if json_may_hold_unstorable(text) else []
    else:
        problems = validate_event(payload)
    if problems or not isinstance(payload, dict):
        return problems, text
    if has_pan(text):  # a till that put the card number in a description: refused, never stored
        return [Problem(find_pan(payload) or "(event)", REFUSED)], text
    if payload["type"] in EVENT_TYPES.platform_only and not trusted:
        return [Problem("type", f"{payload['type']!r} events are raised by `keepwell run-due`, not posted")], text
    reserved = EVENT_TYPES.reserved_prefixes
    if not trusted and payload["id"].startswith(reserved):
        # An outside event holding a platform key would stand in for the period end (or expiry)
        # it names: that period would never close and catch-up would loop on it forever.
        reason = f"ids starting with {', '.join(reserved)} are reserved for the platform's own events"
        return [Problem("id", reason)], text
    return problems, text


def rejected(payload: object, exc: KeepwellError) -> dict[str, Any]:
    """The one shape of an event that was not processed (malformed, unknown customer...)."""
    return {"event": payload.get("id") if isinstance(payload, dict) else None, "status": "rejected", **exc.to_dict()}


# --- posting ------------------------------------------------------------------------------------

def post(ctx: Ctx, payload: Any, trusted: bool = False) -> dict[str, Any]:
    """Process one event and return its result (the stored one, for a repeated key). A malformed
    event raises InvalidDocument (NotFound for an unknown customer) and changes nothing."""
    unit = ctx.unit
    if unit.depth:  # a platform event raised while another is processed (a period catch-up)
        return _post(ctx, payload, trusted)
    if isinstance(payload, dict):
        prepare(ctx, [payload])
    with unit.scope():
        return _post(ctx, payload, trusted)


def post_many(ctx: Ctx, payloads: list[Any], trusted: bool = False) -> list[dict[str, Any]]:
    """Process events in order inside the caller's transaction, with exactly the effects of
    posting them one at a time. A malformed event (or one for an unknown customer) is rejected
    alone, with its error (its own effects undone); the others apply."""
    out = []
    with collector_paused():
        prepare(ctx, [p for p in payloads if isinstance(p, dict)])
        with ctx.unit.scope() as unit:
            for payload in payloads:
                try:
                    with unit.scope():
                        out.append(_post(ctx, payload, trusted))
                except KeepwellError as exc:
                    out.append(rejected(payload, exc))
    return out


def post_platform(ctx: Ctx, payload: dict[str, Any]) -> dict[str, Any]:
    """Post an event the platform built itself (`platform_payload`): valid by construction
    (tests/test_due_batch.py checks that against the schema), so not validated again."""
    if ctx.unit.depth:
        return _post(ctx, payload, trusted=True, built=True)
    return post(ctx, payload, trusted=True)


def accepted(result: dict[str, Any]) -> dict[str, Any]:
    """An event's answer, or the refusal it holds as an error (undoing the caller's transaction):
    for a use case that posts an event to do its work."""
    if result["status"] == "declined":
        raise Declined(result.get("reason") or "declined", result.get("message") or "declined")
    return result


def platform_payload(key: str, type_: str, customer: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": key, "type": type_, "customer": customer, "occurred_at": at.isoformat(), "data": data}


def prepare(ctx: Ctx, payloads: list[dict[str, Any]], platform_keys: list[str] | tuple[str, ...] = ()) -> None:
    """Load what a batch of events needs in a few queries: which keys are stored already, the
    customers (locked, in id order, so concurrent batches cannot deadlock), and what the areas
    preload for them (memberships, accounts). Anything not loaded here is still found later,
    one query at a time."""
    keys = [p["id"] for p in payloads if _storable(p.get("id"))] + list(platform_keys)
    lookup_keys(ctx, keys)
    present = lock(ctx, [p["customer"] for p in payloads if _storable(p.get("customer"))])
    registry.run_preload(ctx, present)
    from ..ledger.models import LedgerEntry

    ids = ctx.unit.ids
    ids.want(EVENTS, len(payloads) + len(platform_keys))
    ids.want(LedgerEntry.__table__, 3 * len(payloads) + 4 * len(platform_keys))  # type: ignore[arg-type]


def _storable(value: object) -> bool:
    # Only text a query can carry: PostgreSQL refuses NUL, and validation rejects such an event later.
    return isinstance(value, str) and "\x00" not in value


def lock(ctx: Ctx, customer_ids: list[str]) -> list[str]:
    """Load and lock these customers (in id order); the ids of those that exist."""
    state = intake(ctx)
    todo = [c for c in dict.fromkeys(customer_ids) if c not in state.customers]
    found = lock_customers(ctx.session, ctx.company.id, todo)
    for cid in todo:
        state.customers[cid] = found.get(cid)
    return [c for c in dict.fromkeys(customer_ids) if state.customers.get(c) is not None]


def lookup_keys(ctx: Ctx, keys: list[str]) -> None:
    """Which of these event keys are stored already (one query per 500 keys)."""
    state = intake(ctx)
    todo = [k for k in dict.fromkeys(keys) if k not in state.keys]
    for part in chunks(ctx.session, todo):
        for k in part:
            state.keys[k] = None
        for row in ctx.session.execute(sa.select(EVENTS.c.key, EVENTS.c.payload_hash, EVENTS.c.result).where(
                EVENTS.c.company_id == ctx.company.id, one_of(ctx.session, EVENTS.c.key, part))):
            state.keys[row.key] = row


def stored(ctx: Ctx, key: str) -> Any:
    """The stored (or, earlier in this batch, processed) event with this key, or None."""
    state = intake(ctx)
    if key not in state.keys:
        lookup_keys(ctx, [key])
    return state.keys[key]


def customer(ctx: Ctx, customer_id: str) -> Customer:
    """The event's customer, locked: every effect of an event belongs to one customer."""
    state = intake(ctx)
    c = state.customers.get(customer_id)
    if c is None:
        c = get_customer(ctx.session, ctx.company.id, customer_id, lock=True)  # NotFound when there is none
        state.customers[customer_id] = c
    return c


def _post(ctx: Ctx, payload: Any, trusted: bool, built: bool = False) -> dict[str, Any]:
    problems, text = ([], canonical_json(payload)) if built else _check(payload, trusted)
    if problems:
        raise InvalidDocument(
            f"event {payload.get('id', '?') if isinstance(payload, dict) else '?'} rejected", problems
        )
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()  # = content_hash(payload)
    existing = stored(ctx, payload["id"])
    if existing is not None:
        return _replay(existing, digest)
    occurred = datetime.fromisoformat(payload["occurred_at"])
    if not trusted:
        limits.check_moment(ctx.company, ctx.clock.now(), occurred)
    who = customer(ctx, payload["customer"])
    local = ctx.local_date(occurred)
    event, result = _begin(ctx, payload, digest, who.id, who.name, occurred, local)
    data = payload.get("data") or {}
    registry.run_before(ctx, event, data, local)
    return _apply(ctx, event, data, local, result, registry.handler_of(event.type))


def record_platform(ctx: Ctx, payload: dict[str, Any], customer_name: str,
                    handler: registry.Handler | None = None) -> dict[str, Any]:
    """Post a platform event (`platform_payload`) for a customer the caller has locked and whose
    keys it has looked up (`lookup_keys`), with `handler` doing the type's work when given: what
    set-based due work writes, the same rows and answer as the pipeline's own, without asking the
    database again for what the caller holds. A stored key answers as a replay, as in `post`."""
    digest = content_hash(payload)
    existing = stored(ctx, payload["id"])
    if existing is not None:
        return _replay(existing, digest)
    occurred = datetime.fromisoformat(payload["occurred_at"])
    local = ctx.local_date(occurred)
    event, result = _begin(ctx, payload, digest, payload["customer"], customer_name, occurred, local)
    return _apply(ctx, event, payload["data"], local, result, handler or registry.handler_of(event.type))


def _begin(ctx: Ctx, payload: dict[str, Any], digest: str, customer_id: str, customer_name: str,
           occurred: datetime, local: date) -> tuple[PendingEvent, dict[str, Any]]:
    """The event being processed (its id drawn, its key taken) and the start of its answer."""
    unit = ctx.unit
    data = payload.get("data") or {}
    event = PendingEvent(id=unit.ids.take(EVENTS), key=payload["id"], type=payload["type"], customer_id=customer_id,
                         membership_id=data.get("membership"), occurred_at=occurred.astimezone(UTC),
                         local_date=local, payload=payload, payload_hash=digest)
    state = intake(ctx)
    state.keys[event.key] = event
    unit.on_undo(lambda: state.keys.__setitem__(event.key, None))
    result: dict[str, Any] = {"event": event.key, "type": event.type,
                              "customer": {"id": customer_id, "name": customer_name}, "local_date": local.isoformat()}
    return event, result


def _apply(ctx: Ctx, event: PendingEvent, data: dict[str, Any], local: date, result: dict[str, Any],
           handler: registry.Handler) -> dict[str, Any]:
    """The handler, then the reactions; a decline undoes the handler's effects. The event's row
    is added with its answer, and the entries it posted."""
    unit = ctx.unit
    mark = unit.mark()
    try:
        result.update(handler(ctx, event, data, local))
        registry.run_reactions(ctx, event, data, local, result)
        event.status = "processed"
    except Declined as d:
        unit.rollback(mark)  # the handler's effects go; the period ends before it stay
        event.status = "declined"
        result.update({"reason": d.reason, "message": d.message, **d.details})
    result["status"] = "approved" if event.status == "processed" and event.type == "purchase" else event.status
    result["entries"] = [posted_view(e, acc) for e, acc in book(ctx).entries_of.get(event.id, ())]
    registry.run_after(ctx, event, data, local, result)
    event.result = result
    unit.add_row(EVENTS, {"id": event.id, "company_id": ctx.company.id, "key": event.key, "type": event.type,
                          "customer_id": event.customer_id, "membership_id": event.membership_id,
                          "occurred_at": event.occurred_at, "local_date": local, "payload": event.payload,
                          "payload_hash": event.payload_hash, "status": event.status, "result": result,
                          "received_at": utcnow()})
    return dict(result, duplicate=False)


def _replay(existing: Any, digest: str) -> dict[str, Any]:
    out = dict(copy.deepcopy(existing.result), duplicate=True)
    if existing.payload_hash != digest:
        out["warning"] = "this id was first used with different content; the first result stands"
    return out


def find(ctx: Ctx, key: str) -> Event | None:
    return ctx.session.scalar(sa.select(Event).where(Event.company_id == ctx.company.id, Event.key == key))


def keys_of(ctx: Ctx, event_ids: set[int]) -> dict[int, str]:
    """The keys (the ids people know) of stored events."""
    out: dict[int, str] = {}
    todo = sorted(event_ids)
    for part in chunks(ctx.session, todo):
        out.update(ctx.session.execute(sa.select(Event.id, Event.key).where(
            Event.company_id == ctx.company.id, one_of(ctx.session, Event.id, part))).all())
    return out
