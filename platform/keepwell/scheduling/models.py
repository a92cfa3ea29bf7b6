"""A member's request for a visit: an included service of their membership (done, it draws the
entitlement down) or extra work, with when suits them; the office answers it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


class VisitRequest(Base):
    __tablename__ = "visit_requests"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    membership_id: Mapped[str | None] = mapped_column(sa.String(40))
    service_code: Mapped[str | None] = mapped_column(sa.String(64))  # None: extra work, described in notes
    service_name: Mapped[str] = mapped_column(sa.String(200))
    included: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    preferred: Mapped[str | None] = mapped_column(sa.String(200))  # "weekday mornings", as the member wrote it
    notes: Mapped[str | None] = mapped_column(sa.String(1000))
    status: Mapped[str] = mapped_column(sa.String(20), default="requested")  # requested | scheduled | done | cancelled
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    changed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
