"""Companies (tenants) and the people in them: customers, users of the admin, API keys."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


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
    # During a rotation the old secret still signs, beside the new one, until this moment.
    webhook_secret_previous: Mapped[str | None] = mapped_column(sa.String(100))
    webhook_secret_previous_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Set when the endpoint said 410 Gone: webhooks wait (skipped) until the URL is set again.
    webhook_disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    webhook_disabled_reason: Mapped[str | None] = mapped_column(sa.String(300))
    # The webhook event types some endpoint of the company subscribes to (kept by
    # messaging.webhooks with the endpoints): an event of no such type costs no query.
    webhook_event_types: Mapped[list[str] | None] = mapped_column(sa.JSON)
    # A test clock (test mode only: `keepwell clock advance`): the company's business time stands
    # at this moment until moved on; unset, it is the real time.
    clock_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    quiet_start: Mapped[str | None] = mapped_column(sa.String(5))  # "21:00", company local time
    quiet_end: Mapped[str | None] = mapped_column(sa.String(5))  # "08:00"
    # What the company's clients may send (see customers.limits): how far ahead and back an
    # event may be dated, how many periods one event may close, the largest manual adjustment.
    phone_region: Mapped[str] = mapped_column(sa.String(2), default="US", server_default="US")  # ISO country
    future_hours: Mapped[int] = mapped_column(sa.Integer, default=24, server_default="24")
    backdate_days: Mapped[int] = mapped_column(sa.Integer, default=3650, server_default="3650")
    max_periods_per_event: Mapped[int] = mapped_column(sa.Integer, default=120, server_default="120")
    adjustment_limit_cents: Mapped[int] = mapped_column(sa.BigInteger, default=100_000, server_default="100000")
    adjustment_limit_points: Mapped[int] = mapped_column(sa.BigInteger, default=100_000, server_default="100000")
    # Whether what a POS prints for a member (memberships.handlers.receipt) shows the allowance
    # left and the overdraft: some contractors hand receipts to a tenant, not the member.
    receipt_shows_balance: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())
    # The member portal's look (customers.branding): a colour dark enough for white text, a logo.
    brand_color: Mapped[str | None] = mapped_column(sa.String(7))
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    logo_type: Mapped[str | None] = mapped_column(sa.String(20))


class ApiKey(Base):
    """A company's key for the REST API. Only a SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Space-separated (customers.api_keys.SCOPES); what the key may do.
    scopes: Mapped[str] = mapped_column(sa.String(200), default="read events:write customers:write memberships:write",
                                        server_default="read events:write customers:write memberships:write")
    hint: Mapped[str | None] = mapped_column(sa.String(16))  # the secret's first characters, to tell keys apart
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
    # A session holds the version it signed in under; bumping it ends every session of the user.
    session_version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # An emailed link (an invitation, or a password reset an owner sent): only its SHA-256 is
    # kept, it works once, until `link_expires_at`.
    link_digest: Mapped[str | None] = mapped_column(sa.String(64), unique=True, index=True)
    link_expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    invited_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    joined_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))  # an invitation taken up


class Customer(Base):
    __tablename__ = "customers"
    # The id another system (a POS, the bookkeeping) knows the customer by: one customer each.
    __table_args__ = (sa.UniqueConstraint("company_id", "external_id", name="uq_customers_external_id"),
                      sa.Index("ix_customers_location_id", "company_id", "location_id"))
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    external_id: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # Where the work is done: the service address, at one of the company's locations (its tax).
    location_id: Mapped[str | None] = mapped_column(sa.String(40))
    service_address: Mapped[str | None] = mapped_column(sa.String(300))
    # The member's own quiet hours ("21:00", "08:00", their local time), over the company's.
    quiet_start: Mapped[str | None] = mapped_column(sa.String(5))
    quiet_end: Mapped[str | None] = mapped_column(sa.String(5))


class MarketingConsent(Base):
    """Each time a customer agreed to marketing messages or withdrew, when and where (portal,
    admin, API): appended, never changed; the latest row is their choice now."""

    __tablename__ = "marketing_consents"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    granted: Mapped[bool] = mapped_column(sa.Boolean)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    source: Mapped[str] = mapped_column(sa.String(60))


class MemberLink(Base):
    """A one-time sign-in link to the member portal, emailed to a customer: only its SHA-256 is
    kept; it works once (`used_at`), until `expires_at`, for its own company only."""

    __tablename__ = "member_links"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class MemberPassword(Base):
    """A member's own portal password (a salted scrypt hash), for members who would rather not
    wait for an emailed link; and the version of their portal sessions, moved on when the
    password changes so that every other session ends."""

    __tablename__ = "member_passwords"
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"), primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    session_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    set_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Location(Base):
    """A place a company serves, with the sales tax its invoices charge there (none: no tax)."""

    __tablename__ = "locations"
    __table_args__ = (sa.UniqueConstraint("company_id", "name", name="uq_locations_company_name"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    tax_rate: Mapped[str] = mapped_column(sa.String(12), default="0")  # percent, e.g. "8.25"
    tax_name: Mapped[str] = mapped_column(sa.String(60), default="Sales tax")
    address: Mapped[str | None] = mapped_column(sa.String(300))
    # The location's own time zone, when it is not the company's: quiet hours of its customers.
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
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


class IdempotentRequest(Base):
    """A request made with an Idempotency-Key: while it runs (`state` running) and, once done,
    its first answer, which a retry with the same key and body gets again."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (sa.UniqueConstraint("company_id", "key", name="uq_idempotent_requests_company_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of method, path and body
    state: Mapped[str] = mapped_column(sa.String(10))  # running | done
    status: Mapped[int | None] = mapped_column(sa.Integer)
    body: Mapped[str | None] = mapped_column(sa.Text)
    mimetype: Mapped[str | None] = mapped_column(sa.String(80))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
