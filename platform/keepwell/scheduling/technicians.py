"""Technicians and the durations of services: who may do which service (a skill per service
code, with the day its certification expires), when they work (weekly hours in the company's
time zone, time off), how many visits a day they take, where they start from. A company's
default duration per service code is kept here too: a visit of a code without one is refused."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any

import sqlalchemy as sa

from ..customers.contact import clean_email
from ..customers.models import Location
from ..infra.context import Ctx
from ..kernel.errors import InvalidDocument, NotFound
from ..kernel.ids import new_id
from ..kernel.text import storable
from .models import ServiceDuration, Technician, TechnicianSkill, TimeOff

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CODE = re.compile(r"^[A-Z0-9_]{1,40}$")
_SPAN = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
MOST_MINUTES = 24 * 60


def service_code(code: object, field: str = "service") -> str:
    text = str(code or "").strip().upper()
    if not CODE.match(text):
        raise InvalidDocument.field(field, "Service code must be uppercase letters, digits and '_', at most 40 "
                                    f"characters, like AC_TUNE (got {str(code)[:40]!r})")
    return text


# Durations ----------------------------------------------------------------------------------

def set_duration(ctx: Ctx, code: str, minutes: int) -> dict[str, Any]:
    code = service_code(code)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 5 <= minutes <= MOST_MINUTES:
        raise InvalidDocument.field("minutes", "Duration must be a whole number of minutes from 5 to 1440")
    row = ctx.session.scalar(sa.select(ServiceDuration).where(ServiceDuration.company_id == ctx.company.id,
                                                              ServiceDuration.service_code == code))
    if row is None:
        row = ServiceDuration(company_id=ctx.company.id, service_code=code, minutes=minutes)
        ctx.session.add(row)
    row.minutes, row.set_at = minutes, ctx.clock.now()
    ctx.session.flush()
    return {"service_code": code, "minutes": minutes}


def durations(ctx: Ctx) -> list[dict[str, Any]]:
    rows = ctx.session.scalars(sa.select(ServiceDuration).where(ServiceDuration.company_id == ctx.company.id)
                               .order_by(ServiceDuration.service_code))
    return [{"service_code": r.service_code, "minutes": r.minutes} for r in rows]


def duration_of(ctx: Ctx, code: str) -> int | None:
    return ctx.session.scalar(sa.select(ServiceDuration.minutes).where(ServiceDuration.company_id == ctx.company.id,
                                                                       ServiceDuration.service_code == code))


# Technicians --------------------------------------------------------------------------------

def parse_hours(hours: object) -> dict[str, str]:
    """Weekly hours: {"mon": "08:00-17:00", ...} (a day left out is a day off); "mon-fri" names
    a run of days."""
    if not isinstance(hours, dict) or not hours:
        raise InvalidDocument.field("hours", "Working hours are needed: a day and its hours, like mon-fri=08:00-17:00")
    out: dict[str, str] = {}
    for key, span in hours.items():
        days = _days(str(key))
        m = _SPAN.match(str(span or "").strip())
        if m is None or (int(m[3]), int(m[4])) > (24, 0) or (int(m[1]), int(m[2])) >= (int(m[3]), int(m[4])):
            raise InvalidDocument.field(f"hours.{key}", f"Working hours for {key} must be a start and an end the "
                                        f"same day, like 08:00-17:00 (got {str(span)[:20]!r})")
        for d in days:
            out[d] = m[0]
    return {d: out[d] for d in DAYS if d in out}


def _days(key: str) -> list[str]:
    first, _, last = key.strip().lower().partition("-")
    if first not in DAYS or (last and last not in DAYS) or (last and DAYS.index(last) < DAYS.index(first)):
        raise InvalidDocument.field("hours", f"{key[:20]!r} is not a weekday: use mon, tue, wed, thu, fri, sat, sun "
                                    "or a run like mon-fri")
    return list(DAYS[DAYS.index(first):DAYS.index(last or first) + 1])


def span_of(t: Technician, day: date) -> tuple[time, time] | None:
    """The technician's working hours on a day (company time), or None: not a working day."""
    span = (t.hours or {}).get(DAYS[day.weekday()])
    if not span:
        return None
    start, end = span.split("-")
    return time.fromisoformat(start), (time.max if end == "24:00" else time.fromisoformat(end))


def parse_skills(skills: object) -> dict[str, date | None]:
    """[{"service_code": "AC_TUNE", "expires_on": "2027-06-30"}] (or "AC_TUNE:2027-06-30" strings)."""
    if skills is None:
        return {}
    if not isinstance(skills, list):
        raise InvalidDocument.field("skills", "Skills must be a list of service codes")
    out: dict[str, date | None] = {}
    for n, s in enumerate(skills):
        if isinstance(s, str):
            code, _, until = s.partition(":")
        elif isinstance(s, dict):
            code, until = str(s.get("service_code") or ""), str(s.get("expires_on") or "")
        else:
            raise InvalidDocument.field(f"skills[{n}]", "Each skill is a service code and an optional expiry")
        try:
            expiry = date.fromisoformat(until) if until else None
        except ValueError:
            raise InvalidDocument.field(f"skills[{n}].expires_on", "Certification expiry must be a date like "
                                        f"2027-06-30 (got {until[:20]!r})") from None
        out[service_code(code, f"skills[{n}].service_code")] = expiry
    return out


def add(ctx: Ctx, name: str, email: str | None, hours: object, capacity: int = 6, skills: object = None,
        home_location: str | None = None) -> Technician:
    clean = " ".join((storable("name", name or "") or "").split())
    if not clean or len(clean) > 200:
        raise InvalidDocument.field("name", "A technician needs a name of 1 to 200 characters")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 50:
        raise InvalidDocument.field("capacity", "Capacity must be a number of visits per day from 1 to 50")
    location = None
    if home_location:
        location = ctx.session.scalar(sa.select(Location.id).where(
            Location.company_id == ctx.company.id,
            sa.or_(Location.id == home_location, Location.name == home_location)))
        if location is None:
            raise InvalidDocument.field("home_location", f"Home location: there is no location {home_location!r}")
    t = Technician(id=new_id("tech"), company_id=ctx.company.id, name=clean,
                   email=clean_email(email) if email else None, hours=parse_hours(hours), capacity=capacity,
                   home_location_id=location, active=True)
    ctx.session.add(t)
    for code, expiry in parse_skills(skills).items():
        ctx.session.add(TechnicianSkill(company_id=ctx.company.id, technician_id=t.id, service_code=code,
                                        expires_on=expiry))
    ctx.session.flush()
    return t


def get(ctx: Ctx, technician_id: str, lock: bool = False) -> Technician:
    q = sa.select(Technician).where(Technician.company_id == ctx.company.id, Technician.id == technician_id)
    if lock:  # booking: writers to one technician's day are serialised (PostgreSQL; SQLite has one writer)
        q = q.with_for_update()
    t = ctx.session.scalar(q)
    if t is None:
        raise NotFound(f"no technician {technician_id!r}")
    return t


def skills_of(ctx: Ctx, technician_ids: list[str]) -> dict[str, dict[str, date | None]]:
    out: dict[str, dict[str, date | None]] = {t: {} for t in technician_ids}
    if technician_ids:
        rows = ctx.session.execute(sa.select(TechnicianSkill.technician_id, TechnicianSkill.service_code,
                                             TechnicianSkill.expires_on)
                                   .where(TechnicianSkill.company_id == ctx.company.id,
                                          TechnicianSkill.technician_id.in_(technician_ids)))
        for tid, code, expiry in rows:
            out[tid][code] = expiry
    return out


def time_off_of(ctx: Ctx, technician_id: str) -> list[TimeOff]:
    return list(ctx.session.scalars(sa.select(TimeOff).where(TimeOff.company_id == ctx.company.id,
                                                             TimeOff.technician_id == technician_id)
                                    .order_by(TimeOff.first_day)))


def add_time_off(ctx: Ctx, technician_id: str, first: date, last: date | None, reason: str | None) -> TimeOff:
    t = get(ctx, technician_id)
    last = last or first
    if last < first:
        raise InvalidDocument.field("to", f"Time off must end on or after its first day ({first.isoformat()})")
    text = " ".join((storable("reason", reason or "") or "").split())[:200] or None
    row = TimeOff(company_id=ctx.company.id, technician_id=t.id, first_day=first, last_day=last, reason=text)
    ctx.session.add(row)
    ctx.session.flush()
    return row


def listing(ctx: Ctx) -> list[Technician]:
    return list(ctx.session.scalars(sa.select(Technician).where(Technician.company_id == ctx.company.id)
                                    .order_by(Technician.name, Technician.id)))


def view(ctx: Ctx, t: Technician) -> dict[str, Any]:
    skills = skills_of(ctx, [t.id])[t.id]
    return {"id": t.id, "name": t.name, "email": t.email, "capacity": t.capacity, "hours": dict(t.hours or {}),
            "home_location": t.home_location_id, "active": t.active,
            "skills": [{"service_code": c, "expires_on": e.isoformat() if e else None}
                       for c, e in sorted(skills.items())],
            "time_off": [{"from": o.first_day.isoformat(), "to": o.last_day.isoformat(), "reason": o.reason}
                         for o in time_off_of(ctx, t.id)]}
