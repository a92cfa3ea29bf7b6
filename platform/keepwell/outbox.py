"""Delivering the outbox: messages written in the same transaction as the ledger effects leave
the system after commit, with retries (exponential backoff with jitter), every attempt recorded,
and a dead-letter state an operator can see and replay.

A message is claimed (status `sending`, with a lease) in one transaction, sent outside any
transaction, and marked in another. A worker killed mid-send leaves the claim to expire; the
message is then tried again (at-least-once; the outbox key travels as Message-ID/idempotency key).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

import sqlalchemy as sa

from . import db
from .channels import Channel, DeliveryError
from .models import Company, ContactPreference, OutboxAttempt, OutboxMessage, utcnow
from .notify import build
from .tenancy import Ctx

MAX_ATTEMPTS = 6
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
LEASE = timedelta(minutes=5)
OPEN = ("pending", "retry")


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """Full jitter: a random delay up to base * 2^(attempt-1), capped."""
    ceiling = min(BASE_DELAY * (2 ** max(attempt - 1, 0)), MAX_DELAY)
    return timedelta(seconds=(rng or random).uniform(ceiling.total_seconds() / 2, ceiling.total_seconds()))


@dataclass(frozen=True)
class Outcome:
    message_id: int
    status: str
    detail: str = ""


def due(session, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of messages to try now: open and due, or claimed by a worker whose lease ran out."""
    now = now or utcnow()
    q = (sa.select(OutboxMessage.id)
         .where(sa.or_(sa.and_(OutboxMessage.status.in_(OPEN), OutboxMessage.due_at <= now),
                       sa.and_(OutboxMessage.status == "sending", OutboxMessage.claimed_until < now)))
         .order_by(OutboxMessage.due_at, OutboxMessage.id).limit(limit))
    return list(session.scalars(q))


def _in_quiet_hours(company: Company, now: datetime) -> datetime | None:
    """When quiet hours are on now (company local time), the moment they end; else None."""
    if not (company.quiet_start and company.quiet_end):
        return None
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(company.timezone))
    start, end = time.fromisoformat(company.quiet_start), time.fromisoformat(company.quiet_end)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    # Stored in UTC: SQLite keeps no offset, and every other moment in the table is UTC.
    return datetime.combine(end_day, end, tzinfo=local.tzinfo).astimezone(timezone.utc)


def _record(session, msg: OutboxMessage, status: str, detail: str) -> None:
    session.add(OutboxAttempt(message_id=msg.id, attempt=msg.attempts, status=status, detail=detail[:2000]))


def _inline_templates(ctx: Ctx, msg: OutboxMessage) -> dict:
    if not msg.ruleset:
        return {}
    from .versions import get_version

    try:
        return get_version(ctx.session, ctx.company.id, msg.ruleset)[1].content.get("spec", {}).get("templates") or {}
    except Exception:
        return {}


def deliver(app, message_id: int, channels: dict[str, Channel], now: datetime | None = None) -> Outcome:
    """Try one message once. Safe to call twice at once: the claim lets only one of them send."""
    now = (now or utcnow()).astimezone(timezone.utc)  # what is stored must be UTC (SQLite drops offsets)
    with db.transaction(app.sessions) as session:
        q = sa.select(OutboxMessage).where(OutboxMessage.id == message_id)
        msg = session.scalar(q.with_for_update(skip_locked=True) if db.is_postgres(session) else q)
        if msg is None:
            return Outcome(message_id, "busy")
        claimable = (msg.status in OPEN and _aware(msg.due_at) <= now) or (
            msg.status == "sending" and msg.claimed_until is not None and _aware(msg.claimed_until) < now)
        if not claimable:
            return Outcome(message_id, msg.status, "not due")
        company = session.get(Company, msg.company_id)
        ctx = Ctx(session, company, app.rules)
        if msg.customer_id and msg.audience == "customer":
            pref = session.scalar(sa.select(ContactPreference).where(
                ContactPreference.customer_id == msg.customer_id, ContactPreference.channel == msg.channel))
            if pref is not None and pref.opted_out:
                msg.status = "skipped"
                _record(session, msg, "skipped", f"customer opted out of {msg.channel}")
                return Outcome(message_id, "skipped", "opted out")
            if msg.channel in ("email", "sms"):
                quiet_until = _in_quiet_hours(company, now)
                if quiet_until is not None:
                    msg.due_at = quiet_until
                    _record(session, msg, "deferred", f"quiet hours until {quiet_until.isoformat()}")
                    return Outcome(message_id, msg.status, "quiet hours")
        try:
            rendered = build(ctx, msg, _inline_templates(ctx, msg))
            channel = channels[msg.channel]
            if msg.channel == "webhook" and company.webhook_secret and hasattr(channel, "with_secret"):
                # A company's own secret (`companies set --webhook-secret`) wins over the default.
                channel = channel.with_secret(company.webhook_secret)
        except (DeliveryError, KeyError) as exc:
            msg.attempts += 1
            msg.status, msg.last_error = "dead", str(exc)
            _record(session, msg, "failed", f"{exc} (not retried)")
            return Outcome(message_id, "dead", str(exc))
        msg.status, msg.claimed_until = "sending", now + LEASE
    # Outside any transaction: the provider may be slow, and the claim holds others off.
    try:
        provider_id = channel.send(rendered)
        error = None
    except DeliveryError as exc:
        error = exc
    except Exception as exc:  # an adapter bug must not leave the message claimed forever
        error = DeliveryError(f"{type(exc).__name__}: {exc}")
    with db.transaction(app.sessions) as session:
        msg = session.get(OutboxMessage, message_id)
        msg.attempts += 1
        msg.claimed_until = None
        if error is None:
            msg.status, msg.sent_at, msg.provider_id, msg.last_error = "sent", utcnow(), provider_id, None
            _record(session, msg, "sent", f"to {rendered.to}: {provider_id}")
            return Outcome(message_id, "sent", provider_id)
        msg.last_error = str(error)
        if not error.retryable or msg.attempts >= MAX_ATTEMPTS:
            msg.status = "dead"
            _record(session, msg, "failed", f"{error} (gave up after {msg.attempts} attempt(s))")
        else:
            msg.status, msg.due_at = "retry", now + backoff(msg.attempts)
            _record(session, msg, "failed", f"{error} (next try at {msg.due_at.isoformat()})")
        return Outcome(message_id, msg.status, str(error))


def replay(session, company_id: int, message_id: int) -> OutboxMessage:
    """Put a dead (or skipped) message back in line; its history stays."""
    from .errors import Conflict, NotFound

    msg = session.scalar(sa.select(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.company_id == company_id))
    if msg is None:
        raise NotFound(f"no outbox message {message_id}")
    if msg.status not in ("dead", "skipped"):
        raise Conflict(f"message {message_id} is {msg.status}; only dead or skipped messages are replayed")
    msg.status, msg.due_at, msg.attempts = "pending", utcnow(), 0
    _record(session, msg, "replayed", "put back in line by an operator")
    return msg


def counts(session, company_id: int | None = None) -> dict[str, int]:
    q = sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status)
    if company_id is not None:
        q = q.where(OutboxMessage.company_id == company_id)
    return {status: n for status, n in session.execute(q)}


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC).
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
