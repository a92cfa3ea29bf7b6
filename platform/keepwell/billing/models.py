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


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))  # membership_fee | proration
    description: Mapped[str] = mapped_column(sa.String(300))
    amount_cents: Mapped[int] = mapped_column(sa.BigInteger)
    period_start: Mapped[date] = mapped_column(sa.Date)
    period_end: Mapped[date] = mapped_column(sa.Date)


class InvoiceCounter(Base):
    """The last invoice number a company gave: taken under a row lock, in the transaction that
    finalises, so numbers have no gaps and no repeats."""

    __tablename__ = "invoice_counters"
    company_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    last_number: Mapped[int] = mapped_column(sa.Integer, default=0)
