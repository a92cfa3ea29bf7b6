"""The reporting area's tables: a report prepared as a file in the background (the admin's "Your
report files": what was asked for, where the job stands, and the file once it is done; kept for a
few days), and report schedules — a report a company has emailed to people on a cadence (weekly
on a weekday, or monthly on a day), for a date range relative to each run."""

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


class ReportSchedule(Base):
    __tablename__ = "report_schedules"
    # Due work looks for active schedules whose next run has come, company by company.
    __table_args__ = (sa.Index("ix_report_schedules_due", "company_id", "active", "next_run_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"))
    report: Mapped[str] = mapped_column(sa.String(64))
    # The filters of `keepwell report NAME`, with a relative range instead of dates:
    # {"range": "last-month", "location": ..., "plan": ..., "tier": ...}
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    format: Mapped[str] = mapped_column(sa.String(10))  # pdf | xlsx | csv
    cadence: Mapped[str] = mapped_column(sa.String(10))  # weekly | monthly
    weekday: Mapped[int | None] = mapped_column(sa.Integer)  # weekly: 0 = Monday ... 6 = Sunday
    day: Mapped[int | None] = mapped_column(sa.Integer)  # monthly: 1-28
    recipients: Mapped[list[str]] = mapped_column(sa.JSON)
    # The start of the next run's day (company time), stored in UTC.
    next_run_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_status: Mapped[str | None] = mapped_column(sa.String(300))
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
