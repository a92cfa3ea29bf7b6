"""The tables. Ledger entries, lot draws and published ruleset versions are append-only:
the migrations install triggers that make the database itself refuse UPDATE and DELETE on them.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# BIGINT ids on PostgreSQL; SQLite only auto-increments a column declared INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

APPEND_ONLY_TABLES = ("ledger_entries", "lot_draws", "ruleset_versions")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Company(Base):
    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # Where company-audience notifications go, and when customers must not be disturbed.
    email: Mapped[str | None] = mapped_column(sa.String(254))
    webhook_url: Mapped[str | None] = mapped_column(sa.String(500))
    webhook_secret: Mapped[str | None] = mapped_column(sa.String(100))
    quiet_start: Mapped[str | None] = mapped_column(sa.String(5))  # "21:00", company local time
    quiet_end: Mapped[str | None] = mapped_column(sa.String(5))  # "08:00"


class ApiKey(Base):
    """A company's key for the REST API. Only a SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class User(Base):
    """A person who signs in to the admin UI. Belongs to one company; the email signs in, so it
    is unique across companies. Only a salted hash of the password is stored."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(300))
    role: Mapped[str] = mapped_column(sa.String(20))  # owner | manager | staff
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class ContactPreference(Base):
    """A customer's choice per channel; no row means the channel is allowed."""

    __tablename__ = "contact_preferences"
    __table_args__ = (sa.UniqueConstraint("customer_id", "channel", name="uq_contact_preferences_customer_channel"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(sa.String(20))
    opted_out: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class MessageTemplate(Base):
    """A company's own wording for a notification template, overriding the shipped one."""

    __tablename__ = "message_templates"
    __table_args__ = (sa.UniqueConstraint("company_id", "name", "channel", name="uq_message_templates_name_channel"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(20))
    subject: Mapped[str | None] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Ruleset(Base):
    __tablename__ = "rulesets"
    __table_args__ = (sa.UniqueConstraint("company_id", "key", name="uq_rulesets_company_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    key: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(40))
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class RulesetVersion(Base):
    __tablename__ = "ruleset_versions"
    __table_args__ = (sa.UniqueConstraint("ruleset_id", "version", name="uq_ruleset_versions_ruleset_version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ruleset_id: Mapped[int] = mapped_column(sa.ForeignKey("rulesets.id"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    content: Mapped[dict] = mapped_column(sa.JSON)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    author: Mapped[str] = mapped_column(sa.String(200))
    effective_from: Mapped[date] = mapped_column(sa.Date)
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    ruleset: Mapped["Ruleset"] = relationship(viewonly=True)


class RulesetDraft(Base):
    __tablename__ = "ruleset_drafts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ruleset_id: Mapped[int] = mapped_column(sa.ForeignKey("rulesets.id"), unique=True)
    content: Mapped[dict] = mapped_column(sa.JSON)
    author: Mapped[str] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Membership(Base):
    __tablename__ = "memberships"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("ruleset_versions.id"))
    tier: Mapped[str] = mapped_column(sa.String(64))
    period: Mapped[str] = mapped_column(sa.String(20))
    issued_on: Mapped[date] = mapped_column(sa.Date)
    current_period: Mapped[int] = mapped_column(sa.Integer, default=0)
    expires_on: Mapped[date] = mapped_column(sa.Date, index=True)
    auto_renewal: Mapped[bool] = mapped_column(sa.Boolean)
    status: Mapped[str] = mapped_column(sa.String(20), default="active", index=True)
    ended_on: Mapped[date | None] = mapped_column(sa.Date)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # Read-only navigation for list views (admin); the core writes ids, never through these.
    customer: Mapped["Customer"] = relationship(viewonly=True)
    plan_version: Mapped["RulesetVersion"] = relationship(viewonly=True)


class Account(Base):
    """One balance: an allowance, its overdraft, a service entitlement, or a customer's points."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("company_id", "owner", "unit", "code", name="uq_accounts_owner_unit_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    owner: Mapped[str] = mapped_column(sa.String(40), index=True)  # membership id or customer id
    unit: Mapped[str] = mapped_column(sa.String(20))  # allowance | overdraft | visits | points
    code: Mapped[str] = mapped_column(sa.String(40), default="")
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # cache of sum(entries), checked by audit


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (sa.UniqueConstraint("company_id", "key", name="uq_events_company_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    key: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    membership_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    local_date: Mapped[date] = mapped_column(sa.Date, index=True)
    payload: Mapped[dict] = mapped_column(sa.JSON)
    payload_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(20))  # processed | declined
    result: Mapped[dict] = mapped_column(sa.JSON)
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        # Replaying an event writes nothing: one entry per (event, ruleset, rule, account).
        sa.UniqueConstraint("event_id", "ruleset", "rule", "account_id", name="uq_ledger_entries_event_rule_account"),
        sa.Index("ix_ledger_entries_account_date", "account_id", "effective_date"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(sa.String(30))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    balance_after: Mapped[int] = mapped_column(sa.BigInteger)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id"), index=True)
    ruleset: Mapped[str] = mapped_column(sa.String(120))  # id@version that produced it
    rule: Mapped[str] = mapped_column(sa.String(160))
    period: Mapped[int | None] = mapped_column(sa.Integer)
    effective_date: Mapped[date] = mapped_column(sa.Date)
    memo: Mapped[str | None] = mapped_column(sa.String(400))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    account: Mapped["Account"] = relationship(viewonly=True)
    event: Mapped["Event"] = relationship(viewonly=True)


class PointsLot(Base):
    """Points earned together, expiring together. `remaining` is a cache of points minus draws."""

    __tablename__ = "points_lots"
    __table_args__ = (sa.Index("ix_points_lots_account_open", "account_id", "remaining"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_entries.id"), unique=True)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    remaining: Mapped[int] = mapped_column(sa.BigInteger)
    earned_on: Mapped[date] = mapped_column(sa.Date)
    expires_on: Mapped[date | None] = mapped_column(sa.Date, index=True)


class LotDraw(Base):
    __tablename__ = "lot_draws"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("points_lots.id"), index=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_entries.id"), index=True)
    points: Mapped[int] = mapped_column(sa.BigInteger)


class OutboxMessage(Base):
    """Effects that leave the system, written in the same transaction as the ledger effects."""

    __tablename__ = "outbox"
    __table_args__ = (sa.UniqueConstraint("company_id", "key", name="uq_outbox_company_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    key: Mapped[str] = mapped_column(sa.String(300))
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id"))
    customer_id: Mapped[str | None] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(20))  # notification | webhook
    channel: Mapped[str] = mapped_column(sa.String(20))
    template: Mapped[str | None] = mapped_column(sa.String(64))
    audience: Mapped[str] = mapped_column(sa.String(20), default="customer")
    ruleset: Mapped[str | None] = mapped_column(sa.String(120))
    rule: Mapped[str | None] = mapped_column(sa.String(160))
    payload: Mapped[dict] = mapped_column(sa.JSON)
    # pending -> sending -> sent | retry (backoff) -> ... -> dead; skipped when opted out.
    status: Mapped[str] = mapped_column(sa.String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    provider_id: Mapped[str | None] = mapped_column(sa.String(200))


class OutboxAttempt(Base):
    """Every delivery attempt, with its outcome: what an operator reads to see why."""

    __tablename__ = "outbox_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("outbox.id"), index=True)
    attempt: Mapped[int] = mapped_column(sa.Integer)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(20))  # sent | failed | skipped | deferred
    detail: Mapped[str | None] = mapped_column(sa.Text)
