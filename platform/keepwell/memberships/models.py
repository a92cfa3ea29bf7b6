"""The memberships table: a customer on a pinned plan version and tier, period by period."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, utcnow


class Membership(Base):
    __tablename__ = "memberships"
    # The admin's list, newest first: a page read from the index, not a sort of every membership.
    __table_args__ = (sa.Index("ix_memberships_company_issued", "company_id", "issued_on", "id"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"))
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
    # Billing's say while it is active: None (in good standing), past_due or suspended.
    standing: Mapped[str | None] = mapped_column(sa.String(20))
    # A membership started by a change of tier: the one it replaces (which ended that day).
    replaces: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class MembershipRow:
    """A membership read without the ORM, for set-based due work: the columns a period end reads
    and changes (the same names as `Membership`'s, so the period's code serves both)."""

    __slots__ = ("id", "customer_id", "plan_version_id", "tier", "period", "issued_on", "current_period",
                 "expires_on", "auto_renewal", "status", "ended_on")
    id: str
    customer_id: str
    plan_version_id: int
    tier: str
    period: str
    issued_on: date
    current_period: int
    expires_on: date
    auto_renewal: bool
    status: str
    ended_on: date | None

    def __init__(self, *values: Any):
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)


AnyMembership = Membership | MembershipRow
