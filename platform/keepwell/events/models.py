"""The events table: every event stored once per company and key, with the result it gave."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (sa.UniqueConstraint("company_id", "key", name="uq_events_company_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    key: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    membership_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    local_date: Mapped[date] = mapped_column(sa.Date, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    payload_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(20))  # processed | declined
    result: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
