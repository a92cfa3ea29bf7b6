"""Calendar feeds: a technician's or a customer's visits as iCalendar (RFC 5545, with the
company's VTIMEZONE, local times with TZID), private by an unguessable token in the address
(calendar apps cannot sign in); rotating the token makes the old address stop working."""

from __future__ import annotations

import secrets
from datetime import UTC, timedelta
from typing import Any

import sqlalchemy as sa
from icalendar import Calendar, Event, Timezone
from sqlalchemy.orm import Session

from ..customers.customers import get_customer
from ..customers.models import Company, Customer
from ..infra.context import Ctx
from ..infra.tables import aware
from ..kernel.errors import InvalidDocument, NotFound
from . import technicians as techs
from . import visits
from .models import CalendarFeed, Technician

KINDS = ("technician", "customer")
PAST_DAYS = 90  # how far back a feed shows visits


def _owner(ctx: Ctx, kind: str, owner_id: str) -> str:
    if kind == "technician":
        return techs.get(ctx, owner_id).id
    if kind == "customer":
        return get_customer(ctx.session, ctx.company.id, owner_id).id
    raise InvalidDocument.field("kind", f"A calendar feed is a technician's or a customer's, not {kind[:20]!r}")


def token_for(ctx: Ctx, kind: str, owner_id: str, rotate: bool = False) -> str:
    owner = _owner(ctx, kind, owner_id)
    row = ctx.session.scalar(sa.select(CalendarFeed).where(CalendarFeed.company_id == ctx.company.id,
                                                           CalendarFeed.owner_kind == kind,
                                                           CalendarFeed.owner_id == owner))
    if row is not None and not rotate:
        return row.token
    if row is not None:
        ctx.session.delete(row)
        ctx.session.flush()
    token = secrets.token_urlsafe(32)
    ctx.session.add(CalendarFeed(token=token, company_id=ctx.company.id, owner_kind=kind, owner_id=owner,
                                 created_at=ctx.clock.now()))
    ctx.session.flush()
    return token


def company_of(session: Session, token: str) -> str:
    """The company slug a feed token belongs to (NotFound for an unknown or rotated token)."""
    slug = session.scalar(sa.select(Company.slug).join(CalendarFeed, CalendarFeed.company_id == Company.id)
                          .where(CalendarFeed.token == token)) if 20 <= len(token) <= 64 else None
    if slug is None:
        raise NotFound("no such calendar feed (its address may have been rotated)")
    return slug


def feed(ctx: Ctx, token: str) -> bytes:
    row = ctx.session.get(CalendarFeed, token)
    if row is None or row.company_id != ctx.company.id:
        raise NotFound("no such calendar feed (its address may have been rotated)")
    since = ctx.today() - timedelta(days=PAST_DAYS)
    if row.owner_kind == "technician":
        found = visits.listing(ctx, technician_id=row.owner_id, first=since)
        title = f"{techs.get(ctx, row.owner_id).name} — visits"
    else:
        found = visits.listing(ctx, customer_id=row.owner_id, first=since)
        title = f"{ctx.company.name} — your visits"
    names = {t.id: t.name for t in ctx.session.scalars(sa.select(Technician).where(
        Technician.company_id == ctx.company.id, Technician.id.in_({v.technician_id for v in found})))}
    customers = {c.id: c.name for c in ctx.session.scalars(sa.select(Customer).where(
        Customer.company_id == ctx.company.id, Customer.id.in_({v.customer_id for v in found})))}
    cal = Calendar()
    cal.add("prodid", "-//Keepwell//Visits//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", title)
    cal.add("x-wr-timezone", ctx.company.timezone)
    if ctx.company.timezone != "UTC":
        cal.add_component(Timezone.from_tzid(ctx.company.timezone))
    tz = ctx.tz
    for v in found:
        e = Event()
        e.add("uid", f"{v.id}@keepwell")
        e.add("dtstamp", aware(v.changed_at or v.created_at).astimezone(UTC))
        e.add("dtstart", aware(v.starts_at).astimezone(tz))
        e.add("dtend", aware(v.ends_at).astimezone(tz))
        who = names.get(v.technician_id, "") if row.owner_kind == "customer" else customers.get(v.customer_id, "")
        e.add("summary", f"{v.service_code}: {who}" if who else v.service_code)
        e.add("status", "CANCELLED" if v.status == "cancelled" else "CONFIRMED")
        e.add("description", _description(v.status, v.cancelled_by))
        cal.add_component(e)
    return cal.to_ical()  # type: ignore[no-any-return]


def _description(status: str, by: str | None) -> str:
    if status == "cancelled":
        return f"Cancelled by the {by or 'contractor'}."
    return "Completed." if status == "completed" else "Scheduled."


def url_path(token: str) -> str:
    return f"/calendar/{token}.ics"


def shown(token: str) -> dict[str, Any]:
    return {"token": token, "path": url_path(token)}
