"""A report prepared as a file in the background (the admin's "Your report files"): what was
asked for, where the job stands, and the file once it is done. Kept for a few days."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


class ReportFileRow(Base):
    __tablename__ = "report_files"
    __table_args__ = (sa.Index("ix_report_files_company_created", "company_id", "created_at"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId)
    report: Mapped[str] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the filters, resolved (Params.shown())
    format: Mapped[str] = mapped_column(sa.String(8))  # csv | xlsx | pdf
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")  # queued | running | done | failed
    progress_done: Mapped[int] = mapped_column(sa.Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(sa.Integer)  # None until the figures are worked out
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)  # runs started (a run is fenced by its number)
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    size: Mapped[int | None] = mapped_column(sa.Integer)
    filename: Mapped[str | None] = mapped_column(sa.String(200))
    created_by: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
