"""The memberships table: a customer on a pinned plan version and tier, period by period."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, utcnow


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
