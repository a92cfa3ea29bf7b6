"""The ledger's tables. Entries and lot draws are append-only: the migrations install triggers
that make the database itself refuse UPDATE and DELETE on them."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


class Account(Base):
    """One balance: an allowance, its overdraft, a service entitlement, or a customer's points."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("company_id", "owner", "unit", "code", name="uq_accounts_owner_unit_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    owner: Mapped[str] = mapped_column(sa.String(40))  # membership id or customer id
    unit: Mapped[str] = mapped_column(sa.String(20))  # allowance | overdraft | visits | points
    code: Mapped[str] = mapped_column(sa.String(40), default="")
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # cache of sum(entries), checked by audit
    # Money accounts hold one currency (ISO 4217), set when they open; visits and points none.
    currency: Mapped[str | None] = mapped_column(sa.String(3))


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        # Replaying an event writes nothing: one entry per (event, ruleset, rule, account).
        sa.UniqueConstraint("event_id", "ruleset", "rule", "account_id", name="uq_ledger_entries_event_rule_account"),
        sa.Index("ix_ledger_entries_account_date", "account_id", "effective_date"),
        # The admin's ledger, newest day first: a page read from the index, not a sort of every entry.
        sa.Index("ix_ledger_entries_company_date", "company_id", "effective_date", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    account_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(sa.String(30))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    balance_after: Mapped[int] = mapped_column(sa.BigInteger)
    # The amount's currency (money entries; entries written before migration 0014 have none of
    # their own: their account's applies).
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    event_id: Mapped[int] = mapped_column(BigId)
    ruleset: Mapped[str] = mapped_column(sa.String(120))  # id@version that produced it
    rule: Mapped[str] = mapped_column(sa.String(160))
    period: Mapped[int | None] = mapped_column(sa.Integer)
    effective_date: Mapped[date] = mapped_column(sa.Date)
    memo: Mapped[str | None] = mapped_column(sa.String(400))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class PointsLot(Base):
    """Points earned together, expiring together. `remaining` is a cache of points minus draws."""

    __tablename__ = "points_lots"
    __table_args__ = (sa.Index("ix_points_lots_account_open", "account_id", "remaining"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    account_id: Mapped[int] = mapped_column(BigId)
    entry_id: Mapped[int] = mapped_column(BigId, unique=True)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    remaining: Mapped[int] = mapped_column(sa.BigInteger)
    earned_on: Mapped[date] = mapped_column(sa.Date)
    expires_on: Mapped[date | None] = mapped_column(sa.Date, index=True)
    # Points held for a purchase's return window: not spendable before this day (None: at once).
    unlocks_on: Mapped[date | None] = mapped_column(sa.Date, index=True)


class LotDraw(Base):
    __tablename__ = "lot_draws"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lot_id: Mapped[int] = mapped_column(BigId, index=True)
    entry_id: Mapped[int] = mapped_column(BigId, index=True)
    points: Mapped[int] = mapped_column(sa.BigInteger)
