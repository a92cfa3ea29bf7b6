"""Events in: one, or many through the batched path, each answered with its own result.

An event's result is the JSON document stored with the event (a repeated id gets it back
byte for byte), so it stays a dict rather than becoming a class of its own."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from ..events import pipeline, queries
from ..infra.context import Ctx
from ..kernel.errors import KeepwellError, NotFound
from .app import Keepwell, reading, use_case

BATCH = 500  # events per transaction in batches
log = logging.getLogger("keepwell.events")


@use_case
def post_event(ctx: Ctx, payload: Any, trusted: bool = False) -> dict[str, Any]:
    """One event in one transaction. A malformed event raises InvalidDocument (NotFound for an
    unknown customer) and changes nothing; a declined one is stored with its reason."""
    return pipeline.post(ctx, payload, trusted)


def post_events(app: Keepwell, company: str, payloads: Iterable[Any], chunk: int = BATCH) -> list[dict[str, Any]]:
    """Many events, in order, with exactly the effects of posting them one at a time."""
    return list(stream_events(app, company, payloads, chunk))


def stream_events(app: Keepwell, company: str, payloads: Iterable[Any], chunk: int = BATCH) -> Iterator[dict[str, Any]]:
    """Results of many events, in order, one per event, as each chunk commits: chunks of `chunk`
    events, one transaction each, their rows written in bulk. A malformed event is rejected
    alone, with its path; a repeated id gives the first result. Should a chunk fail for an
    unexpected reason, it is undone and its events are posted again one per transaction, so the
    others still apply and the one that fails gets a result saying so."""
    part: list[Any] = []
    for payload in payloads:
        part.append(payload)
        if len(part) >= chunk:
            yield from _chunk(app, company, part)
            part = []
    if part:
        yield from _chunk(app, company, part)


def _chunk(app: Keepwell, company: str, part: list[Any]) -> list[dict[str, Any]]:
    try:
        return app.run(company, lambda c: pipeline.post_many(c, part))
    except Exception:
        log.exception("a batch of %d events failed; posting them one at a time", len(part))
    out = []
    for payload in part:
        try:
            out.append(app.run(company, lambda c, p=payload: pipeline.post(c, p)))
        except KeepwellError as exc:
            out.append(pipeline.rejected(payload, exc))
        except Exception as exc:  # a fault of ours: this event is not applied, and says so
            log.exception("event %r failed", payload.get("id") if isinstance(payload, dict) else None)
            out.append(failed(payload, exc))
    return out


def failed(payload: object, exc: Exception) -> dict[str, Any]:
    """The result of an event that could not be processed for a reason of ours, not the event's."""
    return {"event": payload.get("id") if isinstance(payload, dict) else None, "status": "error",
            "code": "internal_error", "message": f"not processed: {type(exc).__name__} (nothing was applied; "
                                                 "post it again, or ask support)"}


@reading
def list_events(ctx: Ctx, limit: int = 50, after: str | None = None, customer: str | None = None,
                type_: str | None = None) -> dict[str, Any]:
    """Stored events, oldest first, a page after a cursor (the last event id of the previous page)."""
    rows, more = queries.page(ctx, limit, after, customer, type_)
    return {"events": [_shown(e) for e in rows], "has_more": more, "last": rows[-1].key if rows else None}


@reading
def get_event(ctx: Ctx, key: str) -> dict[str, Any]:
    """A stored event by its id (the client's key): what was sent, its status and its result."""
    e = pipeline.find(ctx, key)
    if e is None:
        raise NotFound(f"no event {key!r}")
    return _shown(e)


def _shown(e: Any) -> dict[str, Any]:
    return {"id": e.key, "type": e.type, "customer": e.customer_id, "membership": e.membership_id,
            "occurred_at": e.occurred_at.isoformat(), "local_date": e.local_date.isoformat(), "status": e.status,
            "payload": e.payload, "result": e.result}
