"""Event types and the stages of the pipeline, declared by the areas that own them.

An area declares each event type it handles once, with its handler:

    @event_type("purchase", data={...JSON Schema of data...}, title="Purchase")
    def purchase(ctx, event, data, local): ...        # returns what the answer says, or raises Declined

The declaration gives the catalog (`keepwell.rulesets.event_types`) the type's schema and
flags, and the pipeline its handler. Around the handlers, areas hook into the stages of an event:

- `before_each`: runs first, outside the handler's undo (memberships close the periods that
  ended before the event's date: a declined purchase must not undo a period end);
- `member_snapshot`: what the rules may know of the member (tier, plan, status);
- `react(order)`: after the handler, with the snapshot: the rules (rewards earn points, then
  messaging queues notifications); what a reaction returns joins the answer;
- `after_each`: last, with the event's final answer, whether it was processed or declined
  (messaging queues the webhooks subscribed to what happened, a decline included);
- `preload`: what a batch of events needs, loaded for all its customers at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..infra.context import Ctx
from ..rulesets.event_types import EVENT_TYPES, EventDecl


class PendingEvent:
    """An event being processed; its row is written when the unit of work flushes."""

    __slots__ = ("id", "key", "type", "customer_id", "membership_id", "occurred_at", "local_date", "payload",
                 "payload_hash", "status", "result")

    def __init__(self, *, id: int, key: str, type: str, customer_id: str, membership_id: str | None,
                 occurred_at: datetime, local_date: date, payload: dict[str, Any], payload_hash: str):
        self.id, self.key, self.type, self.customer_id = id, key, type, customer_id
        self.membership_id, self.occurred_at, self.local_date = membership_id, occurred_at, local_date
        self.payload, self.payload_hash = payload, payload_hash
        self.status = "processing"
        self.result: dict[str, Any] = {}


Handler = Callable[[Ctx, PendingEvent, dict, date], dict]
Before = Callable[[Ctx, PendingEvent, dict, date], None]
Snapshot = Callable[[Ctx, PendingEvent], dict]
Reaction = Callable[[Ctx, PendingEvent, dict, date, Callable[[], dict], dict], dict | None]
Preload = Callable[[Ctx, list[str]], None]
After = Callable[[Ctx, PendingEvent, dict, date, dict], None]


@dataclass(frozen=True)
class EventType:
    decl: EventDecl
    handler: Handler

    @property
    def name(self) -> str:
        return self.decl.name


_types: dict[str, EventType] = {}
_before: list[Before] = []
_reactions: list[tuple[int, Reaction]] = []
_snapshot: list[Snapshot] = []
_preload: list[Preload] = []
_after: list[After] = []


def event_type(name: str, *, data: dict[str, Any], title: str = "", description: str = "",
               platform_only: bool = False, key_prefix: str | None = None) -> Callable[[Handler], Handler]:
    """Declare an event type and its handler (see the module docstring)."""

    def register(handler: Handler) -> Handler:
        decl = EVENT_TYPES.declare(name, data, title=title, description=description, platform_only=platform_only,
                               key_prefix=key_prefix)
        _types[name] = EventType(decl, handler)
        return handler

    return register


def handler_of(name: str) -> Handler:
    return _types[name].handler


def types() -> dict[str, EventType]:
    return dict(_types)


def before_each(fn: Before) -> Before:
    if fn not in _before:
        _before.append(fn)
    return fn


def react(order: int) -> Callable[[Reaction], Reaction]:
    """A reaction after every handler; reactions run by `order` (points are earned before the
    notifications that mention them are queued)."""

    def register(fn: Reaction) -> Reaction:
        if all(f is not fn for _o, f in _reactions):
            _reactions.append((order, fn))
            _reactions.sort(key=lambda r: r[0])
        return fn

    return register


def member_snapshot(fn: Snapshot) -> Snapshot:
    """What an area tells the rules of the member (memberships: tier, plan, status; rewards:
    the loyalty tier); the snapshot is all of them together."""
    if fn not in _snapshot:
        _snapshot.append(fn)
    return fn


def snapshot_of(ctx: Ctx, event: PendingEvent) -> dict:
    out: dict = {}
    for fn in _snapshot:
        out.update(fn(ctx, event))
    return out


def after_each(fn: After) -> After:
    if fn not in _after:
        _after.append(fn)
    return fn


def run_after(ctx: Ctx, event: PendingEvent, data: dict, local: date, result: dict) -> None:
    for fn in _after:
        fn(ctx, event, data, local, result)


def preload(fn: Preload) -> Preload:
    if fn not in _preload:
        _preload.append(fn)
    return fn


def run_before(ctx: Ctx, event: PendingEvent, data: dict, local: date) -> None:
    for fn in _before:
        fn(ctx, event, data, local)


def run_reactions(ctx: Ctx, event: PendingEvent, data: dict, local: date, result: dict) -> None:
    box: list[dict] = []

    def member() -> dict:  # taken once, and only if some reaction asks (some rule may fire)
        if not box:
            box.append(snapshot_of(ctx, event))
        return box[0]

    for _order, fn in _reactions:
        out = fn(ctx, event, data, local, member, result)
        if out:
            result.update(out)


def run_preload(ctx: Ctx, customer_ids: list[str]) -> None:
    for fn in _preload:
        fn(ctx, customer_ids)
