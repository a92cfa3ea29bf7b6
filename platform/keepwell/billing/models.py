"""The billing tables: each billed membership's schedule, invoices with their lines, and the
per-company counter that numbers finalised invoices without gaps."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


class BillingSchedule(Base):
    """How a membership is billed: every `cadence` from its anchor, in advance."""

    __tablename__ = "billing_schedules"
    membership_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    cadence: Mapped[str] = mapped_column(sa.String(20))  # monthly | quarterly | yearly
    starts_on: Mapped[date] = mapped_column(sa.Date)  # the enrolment day
    anchor_on: Mapped[date] = mapped_column(sa.Date)  # the first full billing period's first day
    anchor_day: Mapped[int] = mapped_column(sa.Integer)  # kept across short months (31 -> Feb 28 -> Mar 31)
    price_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    proration: Mapped[str] = mapped_column(sa.String(20))  # daily | full_period | none
    next_bill_on: Mapped[date] = mapped_column(sa.Date, index=True)
    ruleset: Mapped[str] = mapped_column(sa.String(120))  # the plan version whose price it is
    payment_method_id: Mapped[str | None] = mapped_column(sa.String(40))  # None: the customer's default
    # Asked for at the billing period's end: a change of tier, or the membership's end (its last day).
    change_to_tier: Mapped[str | None] = mapped_column(sa.String(64))
    replaces: Mapped[str | None] = mapped_column(sa.String(40))  # the membership a change of tier ended
    ends_on: Mapped[date | None] = mapped_column(sa.Date)
    ends_refund: Mapped[str | None] = mapped_column(sa.String(20))  # policy | none: what ending on ends_on refunds


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (sa.UniqueConstraint("company_id", "number", name="uq_invoices_company_number"),
                      sa.UniqueConstraint("company_id", "key", name="uq_invoices_company_key"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    key: Mapped[str] = mapped_column(sa.String(200))  # what it bills: one invoice per membership and period
    number: Mapped[int | None] = mapped_column(sa.Integer)  # given at finalisation; drafts have none
    membership_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    status: Mapped[str] = mapped_column(sa.String(20))  # draft | open | paid | void | uncollectible
    currency: Mapped[str] = mapped_column(sa.String(3))
    issued_on: Mapped[date | None] = mapped_column(sa.Date)
    period_start: Mapped[date] = mapped_column(sa.Date)
    period_end: Mapped[date] = mapped_column(sa.Date)
    subtotal_cents: Mapped[int] = mapped_column(sa.BigInteger)
    tax_cents: Mapped[int] = mapped_column(sa.BigInteger)
    total_cents: Mapped[int] = mapped_column(sa.BigInteger)
    amount_due_cents: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    # Collecting it: the attempts made, the day the next step is due (a charge, a retry, a
    # change of the membership's standing), the day the first attempt failed, the day it was paid.
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_on: Mapped[date | None] = mapped_column(sa.Date, index=True)
    failed_on: Mapped[date | None] = mapped_column(sa.Date)
    paid_on: Mapped[date | None] = mapped_column(sa.Date)
    refunded_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    tax_rate: Mapped[str | None] = mapped_column(sa.String(12))  # percent, at the member's location (None: untaxed)
    tax_name: Mapped[str | None] = mapped_column(sa.String(60))


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))  # membership_fee | proration
    description: Mapped[str] = mapped_column(sa.String(300))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    period_start: Mapped[date] = mapped_column(sa.Date)
    period_end: Mapped[date] = mapped_column(sa.Date)
    tax_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # the line's tax, rounded on its own


class InvoiceCounter(Base):
    """The last invoice number a company gave: taken under a row lock, in the transaction that
    finalises, so numbers have no gaps and no repeats."""

    __tablename__ = "invoice_counters"
    company_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    last_number: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_credit_note: Mapped[int] = mapped_column(sa.Integer, default=0)  # credit notes: a series of their own


class PaymentMethod(Base):
    """A card kept by its gateway: only its token and what a member recognises it by (brand, last
    four digits, expiry). No card number, security code or track data is ever held here."""

    __tablename__ = "payment_methods"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    gateway: Mapped[str] = mapped_column(sa.String(20))  # sandbox | stripe
    reference: Mapped[str] = mapped_column(sa.String(200))  # the gateway's token for the card
    brand: Mapped[str] = mapped_column(sa.String(20))
    last4: Mapped[str] = mapped_column(sa.String(4))
    exp_month: Mapped[int] = mapped_column(sa.Integer)
    exp_year: Mapped[int] = mapped_column(sa.Integer)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    status: Mapped[str] = mapped_column(sa.String(20), default="active")  # active | removed
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Payment(Base):
    """One charge or refund asked of a gateway, with its idempotency key (a retry of the same
    attempt sends the same key: the gateway answers with the first result)."""

    __tablename__ = "payments"
    __table_args__ = (sa.UniqueConstraint("company_id", "key", name="uq_payments_company_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    key: Mapped[str] = mapped_column(sa.String(200))  # the idempotency key sent to the gateway
    kind: Mapped[str] = mapped_column(sa.String(20))  # charge | refund
    invoice_id: Mapped[int] = mapped_column(BigId, index=True)
    payment_method_id: Mapped[str] = mapped_column(sa.String(40))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(20))  # succeeded | failed | unknown (no answer)
    reference: Mapped[str | None] = mapped_column(sa.String(200))  # the gateway's id of the charge
    decline_code: Mapped[str | None] = mapped_column(sa.String(40))
    retryable: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    attempted_on: Mapped[date] = mapped_column(sa.Date)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class CreditNote(Base):
    """A correction of a finalised invoice (invoices are never edited): what is given back, and
    why; numbered without gaps in the company's credit-note series."""

    __tablename__ = "credit_notes"
    __table_args__ = (sa.UniqueConstraint("company_id", "number", name="uq_credit_notes_company_number"),
                      sa.UniqueConstraint("company_id", "key", name="uq_credit_notes_company_key"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    key: Mapped[str] = mapped_column(sa.String(200))
    number: Mapped[int] = mapped_column(sa.Integer)
    invoice_id: Mapped[int] = mapped_column(BigId, index=True)
    membership_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    issued_on: Mapped[date] = mapped_column(sa.Date)
    reason: Mapped[str] = mapped_column(sa.String(300))
    currency: Mapped[str] = mapped_column(sa.String(3))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    refunded_cents: Mapped[int] = mapped_column(sa.BigInteger)  # paid back to the card (the rest was not yet paid)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class SandboxCharge(Base):
    """The sandbox gateway's own books: what it charged and refunded, by idempotency key (what a
    real gateway keeps on its side; Keepwell's tables never read it)."""

    __tablename__ = "sandbox_charges"
    key: Mapped[str] = mapped_column(sa.String(240), primary_key=True)  # company id + idempotency key
    reference: Mapped[str] = mapped_column(sa.String(60), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # charge | refund
    token: Mapped[str] = mapped_column(sa.String(200))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(20))
    decline_code: Mapped[str | None] = mapped_column(sa.String(40))
