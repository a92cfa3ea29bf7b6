"""Visits: a service for a customer at a time, by a technician.

Booking locks the technician's row (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer
at a time), then checks the technician's skill and certification, hours, time off, capacity for
the day and the visits already booked: two bookings of the same slot can never both succeed.
A visit draws its entitlement only when it is completed (a `service_completed` event through the
event pipeline), so cancelling one — by the member, the contractor or the technician — leaves
the member's included visits as they were."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..customers.customers import get_customer
from ..events import pipeline
from ..infra.context import Ctx
from ..infra.tables import aware
from ..kernel.errors import Declined, InvalidDocument, NotFound
from ..kernel.ids import new_id
from ..kernel.text import storable
from ..memberships import memberships
from . import technicians as techs
from .models import Technician, Visit, VisitRequest

BOOKED = ("scheduled", "completed")
STATUSES = ("scheduled", "completed", "cancelled")
WHO = ("member", "contractor", "technician")


def moment(ctx: Ctx, value: object, field: str = "start") -> datetime:
    """A time as ISO text or a datetime: with an offset as given, without one in the company's
    time zone. Answered in UTC."""
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(str(value or "").strip())
        except ValueError:
            raise InvalidDocument.field(field, f"Start must be a date and time like 2026-10-30T09:00 (company time) "
                                        f"or with an offset (got {str(value)[:40]!r})") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ctx.tz)
    return at.astimezone(UTC)


def _day_bounds(ctx: Ctx, day: date) -> tuple[datetime, datetime]:
    return ctx.start_of(day).astimezone(UTC), ctx.start_of(day + timedelta(days=1)).astimezone(UTC)


def _duration(ctx: Ctx, code: str) -> timedelta:
    minutes = techs.duration_of(ctx, code)
    if minutes is None:
        raise Declined("no_duration", f"service {code} has no duration set, so a visit of it cannot be booked "
                       f"without risking overbooking: set one with `keepwell services duration {code} MINUTES`",
                       field="service")
    return timedelta(minutes=minutes)


def _problem(ctx: Ctx, t: Technician, skills: dict[str, date | None], code: str, start: datetime, end: datetime,
             ignore: str | None = None) -> tuple[str, str] | None:
    """Why this technician cannot take this visit, or None: (reason, message)."""
    day = ctx.local_date(start)
    local_start, local_end = start.astimezone(ctx.tz), end.astimezone(ctx.tz)
    if not t.active:
        return "technician_inactive", f"technician {t.name} no longer takes visits"
    if code not in skills:
        return "no_skill", f"technician {t.name} is not qualified for {code}"
    expiry = skills[code]
    if expiry is not None and expiry < day:
        return "certification_expired", (f"technician {t.name}'s certification for {code} expired on "
                                         f"{expiry.isoformat()}, before the visit on {day.isoformat()}")
    for off in techs.time_off_of(ctx, t.id):
        if off.first_day <= day <= off.last_day:
            return "time_off", (f"technician {t.name} is off from {off.first_day.isoformat()} to "
                                f"{off.last_day.isoformat()}")
    span = techs.span_of(t, day)
    if span is None:
        return "outside_hours", f"technician {t.name} does not work on {day.strftime('%A')}s"
    if local_end.date() != day or local_start.time() < span[0] or local_end.time() > span[1]:
        hours = t.hours[techs.DAYS[day.weekday()]]
        return "outside_hours", (f"the visit ({local_start:%H:%M}-{local_end:%H:%M}) is outside technician "
                                 f"{t.name}'s hours on {day.strftime('%A')}s ({hours})")
    first, after = _day_bounds(ctx, day)
    booked = _booked(ctx, t.id, first, after, ignore)
    if len(booked) >= t.capacity:
        return "capacity", (f"technician {t.name} already has {len(booked)} visits on {day.isoformat()} "
                            f"(their capacity is {t.capacity} a day)")
    clash = next((v for v in _booked(ctx, t.id, start - timedelta(days=1), end, ignore)
                  if aware(v.starts_at) < end and aware(v.ends_at) > start), None)
    if clash is not None:
        s, e = aware(clash.starts_at).astimezone(ctx.tz), aware(clash.ends_at).astimezone(ctx.tz)
        return "overlap", (f"technician {t.name} is already booked from {s:%H:%M} to {e:%H:%M} on "
                           f"{day.isoformat()} (visit {clash.id})")
    return None


def _booked(ctx: Ctx, technician_id: str, first: datetime, before: datetime, ignore: str | None) -> list[Visit]:
    q = sa.select(Visit).where(Visit.company_id == ctx.company.id, Visit.technician_id == technician_id,
                               Visit.status.in_(BOOKED), Visit.starts_at >= first, Visit.starts_at < before)
    if ignore:
        q = q.where(Visit.id != ignore)
    return list(ctx.session.scalars(q))


def _assign(ctx: Ctx, code: str, start: datetime, end: datetime, technician_id: str | None,
            ignore: str | None = None) -> Technician:
    """The technician named (refused with the reason when they cannot take it), or the
    least-loaded qualified, available one. Candidates are locked in id order (no deadlock)."""
    if technician_id:
        t = techs.get(ctx, technician_id, lock=True)
        found = _problem(ctx, t, techs.skills_of(ctx, [t.id])[t.id], code, start, end, ignore)
        if found is not None:
            raise Declined(found[0], found[1], field="technician")
        return t
    ids = list(ctx.session.scalars(sa.select(Technician.id).where(Technician.company_id == ctx.company.id,
                                                                  Technician.active.is_(True))
                                   .order_by(Technician.id)))
    skills = techs.skills_of(ctx, ids)
    qualified = [i for i in ids if code in skills[i]]
    if not qualified:
        raise Declined("no_technician", f"no technician is qualified for {code}: add the skill to one "
                       "(`keepwell technicians add --skill`)", field="service")
    candidates = [techs.get(ctx, i, lock=True) for i in qualified]
    first, after = _day_bounds(ctx, ctx.local_date(start))
    free = [t for t in candidates if _problem(ctx, t, skills[t.id], code, start, end, ignore) is None]
    if not free:
        local = start.astimezone(ctx.tz)
        raise Declined("no_technician_free", f"no technician qualified for {code} is free at "
                       f"{local:%Y-%m-%d %H:%M}: choose another time", field="start")
    return min(free, key=lambda t: (len(_booked(ctx, t.id, first, after, ignore)), t.id))


def schedule(ctx: Ctx, customer_id: str, code: str, start: object, technician_id: str | None = None,
             membership_id: str | None = None, request_id: str | None = None) -> Visit:
    customer = get_customer(ctx.session, ctx.company.id, customer_id)
    code = techs.service_code(code)
    begins = moment(ctx, start)
    ends = begins + _duration(ctx, code)
    if membership_id:
        m = memberships.get(ctx, membership_id)
        if m.customer_id != customer.id:
            raise NotFound(f"no membership {membership_id!r} for customer {customer.id}")
    request = None
    if request_id:
        request = ctx.session.get(VisitRequest, request_id)
        if request is None or request.company_id != ctx.company.id or request.customer_id != customer.id:
            raise NotFound(f"no visit request {request_id!r} for customer {customer.id}")
        if request.status not in ("requested", "scheduled"):
            raise Declined("request_closed", f"visit request {request_id} is {request.status}")
        membership_id = membership_id or request.membership_id
    t = _assign(ctx, code, begins, ends, technician_id)
    v = Visit(id=new_id("vis"), company_id=ctx.company.id, customer_id=customer.id, membership_id=membership_id,
              service_code=code, starts_at=begins, ends_at=ends, technician_id=t.id, status="scheduled",
              request_id=request.id if request else None, created_at=ctx.clock.now())
    ctx.session.add(v)
    if request is not None:
        request.status, request.changed_at = "scheduled", ctx.clock.now()
    ctx.session.flush()
    return v


def get(ctx: Ctx, visit_id: str) -> Visit:
    v = ctx.session.scalar(sa.select(Visit).where(Visit.company_id == ctx.company.id, Visit.id == visit_id))
    if v is None:
        raise NotFound(f"no visit {visit_id!r}")
    return v


def _open(v: Visit, doing: str) -> None:
    if v.status != "scheduled":
        raise Declined(f"visit_{v.status}", f"visit {v.id} is {v.status}: it cannot be {doing}")


def reschedule(ctx: Ctx, visit_id: str, start: object, technician_id: str | None = None) -> Visit:
    v = get(ctx, visit_id)
    _open(v, "rescheduled")
    begins = moment(ctx, start)
    ends = begins + _duration(ctx, v.service_code)
    t = _assign(ctx, v.service_code, begins, ends, technician_id or v.technician_id, ignore=v.id)
    v.starts_at, v.ends_at, v.technician_id, v.changed_at = begins, ends, t.id, ctx.clock.now()
    ctx.session.flush()
    return v


def cancel(ctx: Ctx, visit_id: str, by: str, reason: str | None = None) -> Visit:
    if by not in WHO:
        raise InvalidDocument.field("by", f"Cancelled by must be one of {', '.join(WHO)}")
    v = get(ctx, visit_id)
    _open(v, "cancelled")
    v.status, v.cancelled_by, v.changed_at = "cancelled", by, ctx.clock.now()
    v.cancel_reason = " ".join((storable("reason", reason or "") or "").split())[:300] or None
    if v.request_id:  # the request is open again: the office answers it with another visit
        r = ctx.session.get(VisitRequest, v.request_id)
        if r is not None and r.status == "scheduled":
            r.status, r.changed_at = "requested", ctx.clock.now()
    return v


def complete(ctx: Ctx, visit_id: str, amount: str | None = None) -> tuple[Visit, dict[str, Any] | None]:
    """Mark the visit done and post its `service_completed` event (key visit:<id>) through the
    pipeline: the entitlement is drawn and points earned by the rules. Again: nothing changes."""
    v = get(ctx, visit_id)
    if v.status == "completed":
        return v, None
    _open(v, "completed")
    now = ctx.clock.now()
    done_at = min(aware(v.ends_at), now)
    data: dict[str, Any] = {"service_code": v.service_code, "technician": v.technician_id}
    if v.membership_id:
        data["membership"] = v.membership_id
    if amount:
        data["amount"] = amount
    key = f"visit:{v.id}"
    result = pipeline.post(ctx, {"id": key, "type": "service_completed", "customer": v.customer_id,
                                 "occurred_at": done_at.isoformat(), "data": data})
    if result.get("status") == "declined":
        raise Declined(str(result.get("reason") or "declined"), str(result.get("message") or "declined"))
    v.status, v.event_key, v.changed_at = "completed", key, now
    if v.request_id:
        r = ctx.session.get(VisitRequest, v.request_id)
        if r is not None and r.status in ("requested", "scheduled"):
            r.status, r.changed_at = "done", now
    ctx.session.flush()
    return v, result


def listing(ctx: Ctx, technician_id: str | None = None, customer_id: str | None = None, first: date | None = None,
            last: date | None = None, status: str | None = None) -> list[Visit]:
    if status and status not in STATUSES:
        raise InvalidDocument.field("status", f"Status must be one of {', '.join(STATUSES)}")
    if first and last and last < first:
        raise InvalidDocument.field("to", f"To must be on or after from ({first.isoformat()})")
    q = sa.select(Visit).where(Visit.company_id == ctx.company.id)
    if technician_id:
        techs.get(ctx, technician_id)
        q = q.where(Visit.technician_id == technician_id)
    if customer_id:
        get_customer(ctx.session, ctx.company.id, customer_id)
        q = q.where(Visit.customer_id == customer_id)
    if first:
        q = q.where(Visit.starts_at >= _day_bounds(ctx, first)[0])
    if last:
        q = q.where(Visit.starts_at < _day_bounds(ctx, last)[1])
    if status:
        q = q.where(Visit.status == status)
    return list(ctx.session.scalars(q.order_by(Visit.starts_at, Visit.id).limit(1000)))


def view(ctx: Ctx, v: Visit) -> dict[str, Any]:
    s, e = aware(v.starts_at), aware(v.ends_at)
    return {"id": v.id, "customer": v.customer_id, "membership": v.membership_id, "service_code": v.service_code,
            "technician": v.technician_id, "status": v.status,
            "start": s.astimezone(ctx.tz).isoformat(), "end": e.astimezone(ctx.tz).isoformat(),
            "start_utc": s.astimezone(UTC).isoformat(), "end_utc": e.astimezone(UTC).isoformat(),
            "timezone": ctx.company.timezone, "cancelled_by": v.cancelled_by, "cancel_reason": v.cancel_reason,
            "request": v.request_id, "event": v.event_key}


def upcoming(ctx: Ctx, customer_id: str, most: int = 10) -> list[dict[str, Any]]:
    """A member's booked visits still to come, soonest first, as the member reads them: the
    service by its plan's name for it, the technician by name, local times."""
    q = (sa.select(Visit, Technician.name)
         .join(Technician, sa.and_(Technician.company_id == Visit.company_id, Technician.id == Visit.technician_id))
         .where(Visit.company_id == ctx.company.id, Visit.customer_id == customer_id, Visit.status == "scheduled",
                Visit.ends_at > ctx.clock.now())
         .order_by(Visit.starts_at, Visit.id).limit(most))
    names: dict[str, str] = {}
    out = []
    for v, technician in ctx.session.execute(q):
        if v.membership_id and v.membership_id not in names:
            terms = memberships.plan_of(ctx, memberships.get(ctx, v.membership_id))[1]
            names.update({f"{v.membership_id}:{s.code}": s.name for s in terms.included_services})
        out.append({**view(ctx, v), "technician_name": technician,
                    "service": names.get(f"{v.membership_id}:{v.service_code}", v.service_code)})
    return out
