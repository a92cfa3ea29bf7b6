"""A member's request for a visit: an included service of their membership (done, it draws the
entitlement down) or extra work, with when suits them; the office answers it."""

from __future__ import annotations

from datetime import date, datetime

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


class ServiceDuration(Base):
    """How long a visit of one service code takes at this company (a visit of a code without one
    is refused: the most common cause of overbooking)."""

    __tablename__ = "service_durations"
    __table_args__ = (sa.UniqueConstraint("company_id", "service_code", name="uq_service_durations_company_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    service_code: Mapped[str] = mapped_column(sa.String(64))
    minutes: Mapped[int] = mapped_column(sa.Integer)
    set_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Technician(Base):
    """Who does the visits: weekly hours (per weekday "08:00-17:00", company time), a capacity of
    visits per day, a home location. Booking a visit locks this row (writers to one technician
    are serialised: no double-booking)."""

    __tablename__ = "technicians"
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    hours: Mapped[dict[str, str]] = mapped_column(sa.JSON)  # {"mon": "08:00-17:00", ...}: days absent are off
    capacity: Mapped[int] = mapped_column(sa.Integer, default=6)
    home_location_id: Mapped[str | None] = mapped_column(sa.String(40))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class TechnicianSkill(Base):
    """A service code a technician may do, with the day their certification for it expires."""

    __tablename__ = "technician_skills"
    __table_args__ = (sa.UniqueConstraint("technician_id", "service_code", name="uq_technician_skills_tech_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    technician_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    service_code: Mapped[str] = mapped_column(sa.String(64))
    expires_on: Mapped[date | None] = mapped_column(sa.Date)


class TimeOff(Base):
    """Days a technician is away, first and last included (company time)."""

    __tablename__ = "technician_time_off"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    technician_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    first_day: Mapped[date] = mapped_column(sa.Date)
    last_day: Mapped[date] = mapped_column(sa.Date)
    reason: Mapped[str | None] = mapped_column(sa.String(200))


class Visit(Base):
    """A planned visit: a service for a customer (and their membership), at a time (UTC, shown in
    the company's time zone), by a technician. Its entitlement is drawn only when it is completed."""

    __tablename__ = "visits"
    __table_args__ = (sa.Index("ix_visits_technician_starts", "technician_id", "starts_at"),)
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    membership_id: Mapped[str | None] = mapped_column(sa.String(40))
    service_code: Mapped[str] = mapped_column(sa.String(64))
    starts_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    technician_id: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20), default="scheduled")  # scheduled | completed | cancelled
    cancelled_by: Mapped[str | None] = mapped_column(sa.String(20))  # member | contractor | technician
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(300))
    request_id: Mapped[str | None] = mapped_column(sa.String(40))  # the visit request it answers
    event_key: Mapped[str | None] = mapped_column(sa.String(255))  # its service_completed event
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    changed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class CalendarFeed(Base):
    """A private iCalendar feed of a technician's or a customer's visits: whoever has the token
    reads it (calendar apps cannot sign in); rotating it makes the old address stop working."""

    __tablename__ = "calendar_feeds"
    __table_args__ = (sa.UniqueConstraint("company_id", "owner_kind", "owner_id", name="uq_calendar_feeds_owner"),)
    token: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    company_id: Mapped[int] = mapped_column(BigId, index=True)
    owner_kind: Mapped[str] = mapped_column(sa.String(20))  # technician | customer
    owner_id: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
