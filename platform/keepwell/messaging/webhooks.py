"""Webhook endpoints: a company's integrations (a POS, a bookkeeping sync) subscribe URLs to the
event types they care about, and every event of those types is queued for them in the outbox,
in the event's own transaction, then sent by the workers with Standard Webhooks signatures.

The types are declared here, once, with what raises each: `TYPES`. An event of a type no
endpoint of the company subscribes to costs nothing (the company row says which types are
subscribed: `Company.webhook_event_types`, kept with the endpoints).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from ..customers.models import Company
from ..events.registry import PendingEvent, after_each
from ..infra.context import Ctx
from ..infra.tables import utcnow
from ..kernel.errors import InvalidDocument, NotFound, Problem
from . import outbox
from .models import WebhookEndpoint

TYPES: dict[str, str] = {
    "membership.enrolled": "A customer was enrolled in a plan.",
    "membership.renewed": "A membership renewed into its next period.",
    "membership.expired": "A membership ended at the end of its last period.",
    "membership.cancelled": "A membership was cancelled.",
    "allowance.reset": "A period ended: the unused allowance expired or carried forward and the new one was granted.",
    "allowance.charged": "A purchase was paid from the membership's allowance (and overdraft).",
    "allowance.declined": "A purchase paid with the membership was declined (the answer says why, and what is left).",
    "points.earned": "Points were earned (the answer names the rule behind each entry).",
    "points.redeemed": "Points were redeemed.",
    "points.expired": "Points expired.",
    "payment.succeeded": "A membership invoice was paid by card (after failures, the membership is active again).",
    "payment.failed": "Charging a membership invoice failed: when it is tried again, and the membership's standing.",
    "membership.suspended": "A membership unpaid past its plan's grace days is on hold until the invoice is paid.",
    "redemption.changed": "A catalog redemption was fulfilled, shipped, delivered or cancelled (points given back).",
    "points.clawed_back": "A refunded purchase's points were taken back (or its pending points cancelled).",
    "referral.rewarded": "A referral paid out: one for the referrer and one for the referee (data.role).",
    "loyalty.tier_changed": "A customer's loyalty status tier changed (up at once, or down at the review).",
}
_SIMPLE = {"enrolled": "membership.enrolled", "renewed": "membership.renewed", "expired": "membership.expired",
           "cancelled": "membership.cancelled", "redemption": "points.redeemed",
           "payment_succeeded": "payment.succeeded", "payment_failed": "payment.failed",
           "membership_suspended": "membership.suspended", "redemption_changed": "redemption.changed",
           "purchase_refunded": "points.clawed_back", "referral_rewarded": "referral.rewarded",
           "loyalty_tier_changed": "loyalty.tier_changed"}


def types_of(event: PendingEvent, data: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """The webhook event types an event raised, given how it went."""
    if event.status == "declined":
        return ["allowance.declined"] if event.type == "purchase" and data.get("pay_with") == "membership" else []
    out = [t] if (t := _SIMPLE.get(event.type)) else []
    if event.type == "period_ended" and any(e["account"] == "allowance" for e in result.get("entries", ())):
        out.append("allowance.reset")
    if event.type == "purchase" and "from_allowance" in result:
        out.append("allowance.charged")
    if event.type == "points_expired" and result.get("expired_points"):
        out.append("points.expired")
    if (result.get("points") or {}).get("earned"):
        out.append("points.earned")
    return out


@after_each
def queue(ctx: Ctx, event: PendingEvent, data: dict, local: date, result: dict) -> None:
    wanted = ctx.company.webhook_event_types
    if not wanted:
        return
    raised = [t for t in types_of(event, data, result) if t in wanted]
    if not raised:
        return
    body = {"event": {"id": event.key, "type": event.type, "occurred_at": event.occurred_at.isoformat(),
                      "local_date": local.isoformat(), "status": result.get("status")},
            "customer": result.get("customer"), "membership": event.membership_id, "result": result}
    for endpoint_id, types in _endpoints(ctx):
        for t in raised:
            if t in types:
                outbox.add(ctx, key=f"webhook:{endpoint_id}:{t}:{event.key}", event_id=event.id,
                           customer_id=event.customer_id, kind="webhook", channel="webhook", audience="company",
                           rule=t, endpoint_id=endpoint_id, payload={"type": t, "data": body})


def _endpoints(ctx: Ctx) -> list[tuple[int, set[str]]]:
    """The company's endpoints and their types, read once per transaction. One that is turned
    off gets its messages too: they are skipped when due, and kept, so that what it missed can
    be replayed once it is back on."""
    memo = ctx.unit.memo
    found = memo.get("messaging.webhook_endpoints")
    if found is None:
        found = memo["messaging.webhook_endpoints"] = [
            (eid, set(types)) for eid, types in ctx.session.execute(
                sa.select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
                    WebhookEndpoint.company_id == ctx.company.id).order_by(WebhookEndpoint.id))]
    return found  # type: ignore[no-any-return]


# --- the endpoints ----------------------------------------------------------------------------------

def _checked(url: Any, types: Any, description: Any) -> list[Problem]:
    problems = []
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
            problems.append(Problem("url", "must be an http(s) address such as https://pos.example.com/keepwell, "
                                    "at most 500 characters"))
    if types is not None:
        unknown = [t for t in types if t not in TYPES] if isinstance(types, list) else None
        if not types or unknown:
            problems.append(Problem("event_types", (f"unknown event type(s): {', '.join(map(str, unknown))}; "
                                                    if unknown else "name at least one event type; ")
                                    + f"the types are {', '.join(TYPES)}"))
    if description is not None and (not isinstance(description, str) or len(description) > 300):
        problems.append(Problem("description", "must be text of at most 300 characters"))
    return problems


def view(e: WebhookEndpoint) -> dict[str, Any]:
    return {"id": e.id, "url": e.url, "event_types": list(e.event_types), "description": e.description,
            "enabled": e.disabled_at is None, "disabled_reason": e.disabled_reason,
            "created_at": e.created_at.isoformat() if e.created_at else None}


def add(ctx: Ctx, url: str, event_types: list[str], description: str | None) -> WebhookEndpoint:
    problems = _checked(url, event_types, description)
    if problems:
        raise InvalidDocument("webhook endpoint not added", problems)
    e = WebhookEndpoint(company_id=ctx.company.id, url=url, event_types=list(dict.fromkeys(event_types)),
                        description=description, created_at=utcnow())
    ctx.session.add(e)
    ctx.session.flush()
    refresh_types(ctx.session, ctx.company)
    return e


def get(ctx: Ctx, endpoint_id: int) -> WebhookEndpoint:
    e = ctx.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.company_id == ctx.company.id,
                                                            WebhookEndpoint.id == endpoint_id))
    if e is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return e


def listing(ctx: Ctx) -> list[WebhookEndpoint]:
    return list(ctx.session.scalars(sa.select(WebhookEndpoint).where(WebhookEndpoint.company_id == ctx.company.id)
                                    .order_by(WebhookEndpoint.id)))


def update(ctx: Ctx, endpoint_id: int, url: str | None = None, event_types: list[str] | None = None,
           description: str | None = None, enabled: bool | None = None) -> WebhookEndpoint:
    """Change an endpoint; `enabled=True` turns a disabled one back on (what it missed meanwhile
    is replayed with `outbox replay`)."""
    e = get(ctx, endpoint_id)
    problems = _checked(url, event_types, description)
    if problems:
        raise InvalidDocument("webhook endpoint not changed", problems)
    if url is not None:
        e.url = url
    if event_types is not None:
        e.event_types = list(dict.fromkeys(event_types))
    if description is not None:
        e.description = description
    if enabled is True:
        e.disabled_at = e.disabled_reason = None
    elif enabled is False and e.disabled_at is None:
        e.disabled_at, e.disabled_reason = utcnow(), "turned off by the company"
    ctx.session.flush()
    refresh_types(ctx.session, ctx.company)
    return e


def remove(ctx: Ctx, endpoint_id: int) -> None:
    e = get(ctx, endpoint_id)
    ctx.session.delete(e)
    ctx.session.flush()
    refresh_types(ctx.session, ctx.company)


def refresh_types(session: Any, company: Company) -> None:
    """Keep the company's list of subscribed types (what events check) with its endpoints."""
    found: set[str] = set()
    for (types,) in session.execute(sa.select(WebhookEndpoint.event_types).where(
            WebhookEndpoint.company_id == company.id)):
        found.update(types)
    company.webhook_event_types = sorted(found) or None


def turn_off(session: Any, endpoint_id: int, reason: str, now: datetime) -> WebhookEndpoint | None:
    """Turn an endpoint off (the outbox does, after a 410 or days of failures); None if it is
    gone or off already."""
    e = session.get(WebhookEndpoint, endpoint_id)
    if e is None or e.disabled_at is not None:
        return None
    e.disabled_at, e.disabled_reason = now, reason[:300]
    return e


def deliveries(ctx: Ctx, endpoint_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The endpoint's delivery log: each message, newest first, with every attempt."""
    get(ctx, endpoint_id)
    return outbox.listing(ctx.session, ctx.company.id, None, limit, endpoint_id=endpoint_id)
