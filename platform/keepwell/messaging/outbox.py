"""The outbox: messages written in the same transaction as the ledger effects leave the system
after commit, with retries (exponential backoff with jitter), every attempt recorded, and a
dead-letter state an operator can see and replay.

A message is claimed (status `sending`, with a lease) in one transaction (`claim`), sent
outside any transaction, and marked in another (`finish`). A worker killed mid-send leaves the
claim to expire; the message is then tried again (at-least-once; the outbox key travels as
Message-ID/idempotency key).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..customers import consent
from ..customers.companies import webhook_secrets
from ..customers.customers import opted_out
from ..customers.locations import timezone_of
from ..customers.models import Company, Customer
from ..infra.context import Ctx
from ..infra.database import is_postgres
from ..infra.sql import chunks, one_of
from ..infra.tables import aware, utcnow
from ..kernel.errors import Conflict, DeliveryError, NotFound
from ..rulesets.versions import get_version
from .channels import Channel, Message
from .models import OutboxAttempt, OutboxFile, OutboxMessage
from .templates import build

MAX_ATTEMPTS = 6
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
# Webhooks: the receiver is another business's system, which may be down for a weekend's
# deploy; the waits after each failed attempt add up to about three days (Standard Webhooks'
# advice, stretched), each one up to a fifth shorter at random so that retries do not arrive
# in step. After the last, the message is dead, and an endpoint that took nothing all that time
# is turned off.
WEBHOOK_WAITS = (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                 timedelta(hours=5), timedelta(hours=10), timedelta(hours=14), timedelta(hours=20),
                 timedelta(hours=20))
WEBHOOK_ATTEMPTS = len(WEBHOOK_WAITS) + 1
LEASE = timedelta(minutes=5)
OPEN = ("pending", "retry")
_OUTBOX: sa.Table = OutboxMessage.__table__  # type: ignore[assignment]
__all__ = ["BASE_DELAY", "LEASE", "MAX_ATTEMPTS", "MAX_DELAY", "WEBHOOK_ATTEMPTS", "WEBHOOK_WAITS", "Claim", "Outcome",
           "add", "attempts_allowed", "aware", "backoff", "claim", "counts", "due", "finish", "replay", "replay_range",
           "store_file", "utcnow", "webhook_backoff"]


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """Full jitter: a random delay up to base * 2^(attempt-1), capped."""
    ceiling = min(BASE_DELAY * (2 ** max(attempt - 1, 0)), MAX_DELAY)
    return timedelta(seconds=(rng or random).uniform(ceiling.total_seconds() / 2, ceiling.total_seconds()))


def webhook_backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """The wait after a webhook's `attempt`-th failed attempt (see WEBHOOK_WAITS)."""
    wait = WEBHOOK_WAITS[min(max(attempt, 1), len(WEBHOOK_WAITS)) - 1].total_seconds()
    return timedelta(seconds=(rng or random).uniform(wait * 0.8, wait))


def attempts_allowed(channel: str) -> int:
    return WEBHOOK_ATTEMPTS if channel == "webhook" else MAX_ATTEMPTS


@dataclass(frozen=True)
class Outcome:
    message_id: int
    status: str
    detail: str = ""


@dataclass(frozen=True)
class Claim:
    """A message claimed for sending: what to send, and through which channel."""

    message_id: int
    message: Message
    channel: Channel


def add(ctx: Ctx, **row: Any) -> None:
    """An outbox message, written with the event's other rows (in the same transaction)."""
    now = utcnow()
    row.update(id=ctx.unit.ids.take(_OUTBOX), company_id=ctx.company.id, status="pending", attempts=0)
    row.setdefault("due_at", now)
    row.setdefault("created_at", now)
    ctx.unit.add_row(_OUTBOX, row)
    queued(ctx).add(row["key"])
    ctx.unit.on_undo(lambda: queued(ctx).discard(row["key"]))


def store_file(ctx: Ctx, content: bytes) -> str:
    """Keep a file that messages of this transaction attach (payload `files`: [{"filename",
    "media_type", "digest"}]); stored once per company and content. Its digest."""
    digest = hashlib.sha256(content).hexdigest()
    memo = ctx.unit.memo
    stored: set[str] = memo.setdefault("messaging.outbox_files", set())  # type: ignore[assignment]
    if digest in stored:
        return digest
    exists = ctx.session.scalar(sa.select(OutboxFile.id).where(OutboxFile.company_id == ctx.company.id,
                                                                OutboxFile.digest == digest))
    if exists is None:
        ctx.unit.add(OutboxFile(company_id=ctx.company.id, digest=digest, content=content, created_at=utcnow()))
        ctx.session.flush()
    stored.add(digest)
    ctx.unit.on_undo(lambda: stored.discard(digest))
    return digest


def queued(ctx: Ctx) -> set[str]:
    """Outbox keys written in this unit of work, not flushed yet (or flushed, in this transaction)."""
    memo = ctx.unit.memo
    found = memo.get("messaging.outbox_keys")
    if found is None:
        found = memo["messaging.outbox_keys"] = set()
    return found  # type: ignore[no-any-return]


def existing_keys(ctx: Ctx, keys: list[str]) -> set[str]:
    """Which of these outbox keys exist already (written, or pending in this transaction)."""
    mine = queued(ctx)
    found = {k for k in keys if k in mine}
    todo = [k for k in dict.fromkeys(keys) if k not in found]
    for part in chunks(ctx.session, todo):
        found.update(ctx.session.scalars(sa.select(OutboxMessage.key).where(
            OutboxMessage.company_id == ctx.company.id, one_of(ctx.session, OutboxMessage.key, part))))
    return found


def due(session: Session, now: datetime | None = None, limit: int = 500) -> list[tuple[int, int]]:
    """(id, attempts) of messages to try now: open and due, or claimed by a worker whose lease
    ran out. Every company's: delivery is the platform's work, not one tenant's, taken in turns."""
    now = now or utcnow()
    # Companies take turns: each one's oldest message first, then each one's second..., so a
    # company with ten thousand messages due cannot hold back another company's one.
    turn = sa.func.row_number().over(partition_by=OutboxMessage.company_id,
                                     order_by=(OutboxMessage.due_at, OutboxMessage.id)).label("turn")
    ready = (sa.select(OutboxMessage.id, OutboxMessage.attempts, OutboxMessage.due_at, turn)
             .where(sa.or_(sa.and_(OutboxMessage.status.in_(OPEN), OutboxMessage.due_at <= now),
                           sa.and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until < now)))
             .subquery())
    q = sa.select(ready.c.id, ready.c.attempts).order_by(ready.c.turn, ready.c.due_at, ready.c.id).limit(limit)
    return [(mid, attempts) for mid, attempts in session.execute(q)]


def quiet_until(company: Company, now: datetime, timezone: str | None = None,
                hours: tuple[str, str] | None = None) -> datetime | None:
    """When quiet hours are on now, the moment they end; else None. The hours are the
    customer's own (`hours`) when they set them, else the company's, in local time: the
    customer's location's time zone (`timezone`) when it has one, else the company's."""
    start_at, end_at = hours or (company.quiet_start, company.quiet_end)
    if not (start_at and end_at):
        return None
    local = now.astimezone(ZoneInfo(timezone or company.timezone))
    start, end = time.fromisoformat(start_at), time.fromisoformat(end_at)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    # Stored in UTC: SQLite keeps no offset, and every other moment in the table is UTC.
    return datetime.combine(end_day, end, tzinfo=local.tzinfo).astimezone(UTC)


def _record(session: Session, msg: OutboxMessage, status: str, detail: str) -> None:
    session.add(OutboxAttempt(message_id=msg.id, attempt=msg.attempts, status=status, detail=detail[:2000]))


def _inline_templates(ctx: Ctx, msg: OutboxMessage) -> dict[str, Any]:
    if not msg.ruleset:
        return {}
    try:
        return get_version(ctx.session, ctx.company.id, msg.ruleset)[1].content.get("spec", {}).get("templates") or {}
    except NotFound:
        return {}


def claim(session: Session, message_id: int, channels: dict[str, Channel], now: datetime,
          rules: Any = None) -> Claim | Outcome:
    """Take a message for sending, in the caller's transaction: a `Claim` to send, or the
    `Outcome` when there is nothing to send (not due, opted out, quiet hours, unrenderable)."""
    q = sa.select(OutboxMessage).where(OutboxMessage.id == message_id)
    msg = session.scalar(q.with_for_update(skip_locked=True) if is_postgres(session) else q)
    if msg is None:
        return Outcome(message_id, "busy")
    claimable = (msg.status in OPEN and aware(msg.due_at) <= now) or (
        msg.status == "sending" and msg.claimed_until is not None and aware(msg.claimed_until) < now)
    if not claimable:
        return Outcome(message_id, msg.status, "not due")
    company = session.get(Company, msg.company_id)
    assert company is not None
    ctx = Ctx(session, company, rules)
    if msg.customer_id and msg.audience == "customer":
        if opted_out(session, msg.customer_id, msg.channel):
            msg.status = "skipped"
            _record(session, msg, "skipped", f"customer opted out of {msg.channel}")
            return Outcome(message_id, "skipped", "opted out")
        if (msg.payload or {}).get("marketing") and not consent.agreed(session, msg.customer_id):
            msg.status = "skipped"
            _record(session, msg, "skipped", "a marketing message, and the customer has not agreed to them")
            return Outcome(message_id, "skipped", "no marketing consent")
        if msg.channel in ("email", "sms"):
            customer = session.get(Customer, msg.customer_id)
            own = (customer.quiet_start, customer.quiet_end) if customer and customer.quiet_start else None
            until = quiet_until(company, now, timezone_of(session, company, customer.location_id if customer else None),
                                own)
            if until is not None:
                msg.due_at = until
                _record(session, msg, "deferred", f"quiet hours until {until.isoformat()}")
                return Outcome(message_id, msg.status, "quiet hours")
    if msg.endpoint_id is not None:
        return _claim_endpoint_message(session, msg, company, channels, now)
    if msg.channel == "webhook" and company.webhook_disabled_at is not None:
        msg.status = "skipped"
        _record(session, msg, "skipped", f"the webhook endpoint is turned off: {company.webhook_disabled_reason} "
                "(set the URL again with `keepwell companies set --webhook-url` to turn it back on)")
        return Outcome(message_id, "skipped", "webhook endpoint turned off")
    try:
        rendered = build(ctx, msg, _inline_templates(ctx, msg))
        channel = channels[msg.channel]
        if msg.channel == "webhook" and company.webhook_secret and hasattr(channel, "with_secret"):
            # A company's own secret (`companies set --webhook-secret`, `rotate-webhook-secret`)
            # wins over the default; during a rotation the previous one signs too.
            current, *previous = webhook_secrets(company, now)
            channel = channel.with_secret(current, tuple(previous))
    except (DeliveryError, KeyError) as exc:
        msg.attempts += 1
        msg.status, msg.last_error = "dead", str(exc)
        _record(session, msg, "failed", f"{exc} (not retried)")
        return Outcome(message_id, "dead", str(exc))
    msg.status, msg.claimed_until = "sending", now + LEASE
    return Claim(message_id, rendered, channel)


def _claim_endpoint_message(session: Session, msg: OutboxMessage, company: Company, channels: dict[str, Channel],
                            now: datetime) -> Claim | Outcome:
    """A message for a subscribed endpoint: its own URL, the event's type and data as queued."""
    from .models import WebhookEndpoint

    endpoint = session.get(WebhookEndpoint, msg.endpoint_id)
    if endpoint is None or endpoint.disabled_at is not None:
        msg.status = "skipped"
        why = "removed" if endpoint is None else f"turned off: {endpoint.disabled_reason}"
        _record(session, msg, "skipped", f"webhook endpoint {msg.endpoint_id} is {why} (replay the message once "
                "it is back on)")
        return Outcome(msg.id, "skipped", f"webhook endpoint {why}")
    channel = channels["webhook"]
    if company.webhook_secret and hasattr(channel, "with_secret"):
        current, *previous = webhook_secrets(company, now)
        channel = channel.with_secret(current, tuple(previous))
    message = Message(key=msg.key, channel="webhook", to=endpoint.url, subject="", body="",
                      data=msg.payload.get("data") or {}, created_at=msg.created_at, type=msg.payload.get("type"))
    msg.status, msg.claimed_until = "sending", now + LEASE
    return Claim(msg.id, message, channel)


def finish(session: Session, claimed: Claim, provider_id: str | None, error: DeliveryError | None,
           now: datetime, took_ms: int | None = None) -> Outcome:
    """Record how the send of a claimed message went (and how long the receiver took): sent, to
    retry later, or dead."""
    msg = session.get(OutboxMessage, claimed.message_id)
    assert msg is not None
    msg.attempts += 1
    msg.claimed_until = None
    took = f" in {took_ms} ms" if took_ms is not None else ""
    if error is None:
        msg.status, msg.sent_at, msg.provider_id, msg.last_error = "sent", utcnow(), provider_id, None
        _record(session, msg, "sent", f"to {claimed.message.to}{took}: {provider_id}")
        return Outcome(claimed.message_id, "sent", provider_id or "")
    msg.last_error = str(error)
    webhook = msg.channel == "webhook"
    if webhook and error.http_status == 410:
        _turn_off_webhook(session, msg, claimed.message.to, now, "gone")
    if not error.retryable or msg.attempts >= attempts_allowed(msg.channel):
        msg.status = "dead"
        _record(session, msg, "failed", f"{error}{took} (gave up after {msg.attempts} attempt(s))")
        if webhook and error.retryable and not _delivered_since(session, msg):
            _turn_off_webhook(session, msg, claimed.message.to, now, "failing", str(error))
    else:
        wait = webhook_backoff(msg.attempts) if webhook else backoff(msg.attempts)
        msg.status, msg.due_at = "retry", now + wait
        _record(session, msg, "failed", f"{error}{took} (next try at {msg.due_at.isoformat()})")
    return Outcome(claimed.message_id, msg.status, str(error))


def _delivered_since(session: Session, msg: OutboxMessage) -> bool:
    """Whether any webhook of the company got through since this message was queued: one
    message the receiver keeps refusing is that message's problem; nothing at all getting through
    for as long as its retries lasted is the endpoint's."""
    same = (OutboxMessage.endpoint_id == msg.endpoint_id if msg.endpoint_id is not None
            else OutboxMessage.endpoint_id.is_(None))
    return session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.company_id == msg.company_id, OutboxMessage.channel == "webhook", same,
        OutboxMessage.status == "sent", OutboxMessage.sent_at >= msg.created_at)) > 0


def _turn_off_webhook(session: Session, msg: OutboxMessage, url: str, now: datetime, why: str,
                      error: str = "") -> None:
    """The endpoint is gone (`why` "gone": it answered 410), or has taken nothing for days
    ("failing"): stop sending to it (the subscribed endpoint, or the company's notification
    URL), and tell the company by email."""
    from . import webhooks

    company = session.get(Company, msg.company_id)
    said = ("answered 410 Gone" if why == "gone"
            else f"accepted no webhook since {aware(msg.created_at).date().isoformat()}")
    reason = f"{url[:200]} {said} on {now.date().isoformat()}"[:300]
    if company is None:
        return
    if msg.endpoint_id is not None:
        if webhooks.turn_off(session, msg.endpoint_id, reason, now) is None:
            return
    elif company.webhook_disabled_at is not None:
        return
    else:
        company.webhook_disabled_at, company.webhook_disabled_reason = now, reason
    session.add(OutboxMessage(company_id=company.id, key=f"webhook-disabled:{msg.id}", kind="notification",
                              channel="email", template="webhook_disabled", audience="company",
                              payload={"url": url[:500], "reason": reason,
                                       "data": {"url": url[:500], "why": why, "error": error[:300]}},
                              due_at=now, created_at=now))


def due_at(session: Session, message_id: int) -> tuple[datetime, int]:
    msg = session.get(OutboxMessage, message_id)
    assert msg is not None
    return aware(msg.due_at), msg.attempts


def replay(session: Session, company_id: int, message_id: int) -> OutboxMessage:
    """Put a dead (or skipped) message back in line; its history stays."""
    msg = session.scalar(sa.select(OutboxMessage).where(OutboxMessage.id == message_id,
                                                        OutboxMessage.company_id == company_id))
    if msg is None:
        raise NotFound(f"no outbox message {message_id}")
    if msg.status not in ("dead", "skipped"):
        raise Conflict(f"message {message_id} is {msg.status}; only dead or skipped messages are replayed")
    msg.status, msg.due_at, msg.attempts = "pending", utcnow(), 0
    _record(session, msg, "replayed", "put back in line by an operator")
    return msg


def replay_range(session: Session, company_id: int, start: datetime, end: datetime,
                 channel: str | None = None, endpoint_id: int | None = None) -> list[int]:
    """Put back in line every dead (or skipped) message queued from `start` to before `end`
    (of one channel, or all): after a receiver's outage, what it missed, in the order it
    happened. The ids put back."""
    q = (sa.select(OutboxMessage).where(OutboxMessage.company_id == company_id,
                                        OutboxMessage.status.in_(("dead", "skipped")),
                                        OutboxMessage.created_at >= start, OutboxMessage.created_at < end)
         .order_by(OutboxMessage.created_at, OutboxMessage.id))
    if channel:
        q = q.where(OutboxMessage.channel == channel)
    if endpoint_id is not None:
        q = q.where(OutboxMessage.endpoint_id == endpoint_id)
    out = []
    for msg in session.scalars(q):
        msg.status, msg.due_at, msg.attempts = "pending", utcnow(), 0
        _record(session, msg, "replayed", f"put back in line by an operator (messages from {start.isoformat()} "
                f"to {end.isoformat()})")
        out.append(msg.id)
    return out


def counts(session: Session, company_id: int | None = None) -> dict[str, int]:
    q = sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status)
    if company_id is not None:
        q = q.where(OutboxMessage.company_id == company_id)
    return {status: n for status, n in session.execute(q)}


def listing(session: Session, company_id: int, status: str | None, limit: int,
            endpoint_id: int | None = None) -> list[dict[str, Any]]:
    q = sa.select(OutboxMessage).where(OutboxMessage.company_id == company_id)
    if status:
        q = q.where(OutboxMessage.status == status)
    if endpoint_id is not None:
        q = q.where(OutboxMessage.endpoint_id == endpoint_id)
    messages = list(session.scalars(q.order_by(OutboxMessage.id.desc()).limit(limit)))
    # Every attempt of the page's messages in one query (not one per message).
    tried: dict[int, list[OutboxAttempt]] = {}
    if messages:
        for a in session.scalars(sa.select(OutboxAttempt).where(OutboxAttempt.message_id.in_([m.id for m in messages]))
                                 .order_by(OutboxAttempt.id)):
            tried.setdefault(a.message_id, []).append(a)
    rows = []
    for m in messages:
        attempts = tried.get(m.id, [])
        rows.append({"id": m.id, "key": m.key, "channel": m.channel, "template": m.template, "status": m.status,
                     "type": m.rule if m.endpoint_id is not None else None, "endpoint": m.endpoint_id,
                     "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                     "attempts": m.attempts, "customer": m.customer_id, "last_error": m.last_error,
                     "due_at": m.due_at.isoformat() if m.due_at else None,
                     "history": [{"at": a.at.isoformat(), "status": a.status, "detail": a.detail} for a in attempts]})
    return rows



def of_customer(session: Session, company_id: int, customer_id: str, limit: int) -> list[dict[str, Any]]:
    """The messages written to one customer, newest first, as the customer page lists them:
    when, how, which message, and what became of it (with the last reason it was not sent)."""
    q = (sa.select(OutboxMessage).where(OutboxMessage.company_id == company_id,
                                        OutboxMessage.customer_id == customer_id,
                                        OutboxMessage.audience == "customer", OutboxMessage.channel != "webhook")
         .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit))
    return [{"id": m.id, "created_at": m.created_at.isoformat(),
             "sent_at": m.sent_at.isoformat() if m.sent_at else None, "channel": m.channel,
             "template": m.template or "", "what": (m.template or "message").replace("_", " ").capitalize(),
             "status": m.status, "why": m.last_error or ""} for m in session.scalars(q)]
