"""The messaging tables: the outbox (effects that leave the system, written in the same
transaction as the ledger effects), every delivery attempt, and companies' own wording."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


class MessageTemplate(Base):
    """A company's own wording for a notification template, overriding the shipped one."""

    __tablename__ = "message_templates"
    __table_args__ = (sa.UniqueConstraint("company_id", "name", "channel", name="uq_message_templates_name_channel"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"))
    name: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(20))
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    # The customer page lists a customer's messages, newest first.
    __table_args__ = (sa.UniqueConstraint("company_id", "key", name="uq_outbox_company_key"),
                      sa.Index("ix_outbox_customer", "company_id", "customer_id", "created_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    key: Mapped[str] = mapped_column(sa.String(300))
    event_id: Mapped[int | None] = mapped_column(BigId)
    customer_id: Mapped[str | None] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(20))  # notification | webhook
    channel: Mapped[str] = mapped_column(sa.String(20))
    template: Mapped[str | None] = mapped_column(sa.String(64))
    audience: Mapped[str] = mapped_column(sa.String(20), default="customer")
    ruleset: Mapped[str | None] = mapped_column(sa.String(120))
    rule: Mapped[str | None] = mapped_column(sa.String(160))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # pending -> sending -> sent | retry (backoff) -> ... -> dead; skipped when opted out.
    status: Mapped[str] = mapped_column(sa.String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    provider_id: Mapped[str | None] = mapped_column(sa.String(200))
    endpoint_id: Mapped[int | None] = mapped_column(BigId)  # a subscribed webhook endpoint's message


class OutboxAttempt(Base):
    """Every delivery attempt, with its outcome: what an operator reads to see why."""

    __tablename__ = "outbox_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("outbox.id"), index=True)
    attempt: Mapped[int] = mapped_column(sa.Integer)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(20))  # sent | failed | skipped | deferred
    detail: Mapped[str | None] = mapped_column(sa.Text)


class WebhookEndpoint(Base):
    """Where a company's integration receives webhooks of the event types it subscribed to."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    url: Mapped[str] = mapped_column(sa.String(500))
    event_types: Mapped[list[str]] = mapped_column(sa.JSON)
    description: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # Turned off after a 410 Gone or days without a delivery; enabling again clears them.
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(300))


class OutboxFile(Base):
    """A file an email carries (a scheduled report), stored once per company and content: the
    messages that attach it name it by digest in their payload (`files`), with its file name and
    media type, so every recipient's message shares one copy and a resend attaches the same bytes."""

    __tablename__ = "outbox_files"
    __table_args__ = (sa.UniqueConstraint("company_id", "digest", name="uq_outbox_files_company_digest"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    digest: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of the content, hex
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
