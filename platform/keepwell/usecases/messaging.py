"""Messages leaving the system: deliver (claim, send outside any transaction, record), the
outbox's listing and replay, and companies' own wording of templates."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..infra.context import Ctx
from ..infra.tables import utcnow
from ..kernel.errors import DeliveryError, InvalidDocument
from ..messaging import outbox, templates, webhooks
from ..messaging.channels import Channel, ChannelSettings, channels_from
from ..messaging.outbox import Claim, Outcome
from .app import Keepwell, reading, use_case

__all__ = [
    "Channel",
    "ChannelSettings",
    "Outcome",
    "channels_from",
    "counts",
    "deliver",
    "deliver_due",
    "due_messages",
    "listing",
    "message_due",
    "remove_template",
    "replay",
    "sent_to",
    "set_template",
    "templates_list",
]


def deliver(app: Keepwell, message_id: int, channels: dict[str, Channel], now: datetime | None = None) -> Outcome:
    """Try one message once. Safe to call twice at once: the claim lets only one of them send."""
    now = (now or app.clock.now()).astimezone(UTC)  # what is stored must be UTC (SQLite drops offsets)
    claimed = app.run_platform(lambda s: outbox.claim(s, message_id, channels, now, app.rules))
    if not isinstance(claimed, Claim):
        return claimed
    # Outside any transaction: the provider may be slow, and the claim holds others off.
    provider_id, error = None, None
    started = time.perf_counter()
    try:
        provider_id = claimed.channel.send(claimed.message)
    except DeliveryError as exc:
        error = exc
    except Exception as exc:  # an adapter bug must not leave the message claimed forever
        error = DeliveryError(f"{type(exc).__name__}: {exc}")
    took_ms = round(1000 * (time.perf_counter() - started))
    return app.run_platform(lambda s: outbox.finish(s, claimed, provider_id, error, now, took_ms))


def due_messages(app: Keepwell, now: datetime | None = None) -> list[tuple[int, int]]:
    """(id, attempts) of every company's messages to try now."""
    return app.run_platform(lambda s: outbox.due(s, now or utcnow()), read_only=True)


def message_due(app: Keepwell, message_id: int) -> tuple[datetime, int]:
    """When a message is next due, and how many attempts it has had."""
    return app.run_platform(lambda s: outbox.due_at(s, message_id), read_only=True)


def deliver_due(app: Keepwell, channels: dict[str, Channel]) -> list[Outcome]:
    """Deliver every message due now, in this process (the embedded mode's worker)."""
    return [deliver(app, mid, channels) for mid, _attempts in due_messages(app)]


def counts(app: Keepwell, company: str | None = None) -> dict[str, int]:
    """Messages by status: one company's, or all (the operator's view)."""
    if company is None:
        return app.run_platform(lambda s: outbox.counts(s), read_only=True)
    return app.run(company, lambda c: outbox.counts(c.session, c.company.id), read_only=True)


@reading
def sent_to(ctx: Ctx, customer_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest messages to a customer (email and SMS), newest first."""
    return outbox.of_customer(ctx.session, ctx.company.id, customer_id, limit)


@reading
def listing(ctx: Ctx, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    return outbox.listing(ctx.session, ctx.company.id, status, limit)


@use_case
def replay(ctx: Ctx, message_id: int) -> int:
    """Put a dead-lettered (or skipped) message back in line."""
    return outbox.replay(ctx.session, ctx.company.id, message_id).id


@use_case
def replay_range(ctx: Ctx, start: date, end: date, channel: str | None = None,
                 endpoint_id: int | None = None) -> list[int]:
    """Put back in line every dead (or skipped) message queued from `start` through `end` (the
    company's days), of one channel (or one webhook endpoint) or all: what a receiver missed
    during an outage."""
    if end < start:
        raise InvalidDocument.field("to", f"the range ends ({end}) before it starts ({start})")
    if endpoint_id is not None:
        webhooks.get(ctx, endpoint_id)  # another company's endpoint: not found
    return outbox.replay_range(ctx.session, ctx.company.id, ctx.start_of(start).astimezone(UTC),
                               ctx.start_of(end + timedelta(days=1)).astimezone(UTC), channel, endpoint_id)


@use_case
def set_template(ctx: Ctx, name: str, channel: str, subject: str | None, body: str) -> None:
    templates.set_override(ctx, name, channel, subject, body)


@reading
def templates_list(ctx: Ctx) -> list[dict[str, str]]:
    return templates.listing(ctx)


@use_case
def remove_template(ctx: Ctx, name: str, channel: str) -> None:
    templates.remove_override(ctx, name, channel)
