"""Visits: members' requests, as the office reads them; service durations; technicians (skills,
hours, time off, capacity); visits scheduled, rescheduled, cancelled and completed (completion
posts a `service_completed` event: the entitlement is drawn then, and only then); calendar feeds."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..customers.customers import get_customer
from ..infra.context import Ctx
from ..scheduling import calendar, requests, technicians, visits
from .app import Keepwell, reading, use_case

__all__ = ["add_technician", "add_time_off", "calendar_feed", "calendar_token", "cancel_visit", "complete_visit",
           "get_technician", "get_visit", "list_durations", "list_technicians", "list_visits", "requests_of",
           "reschedule_visit", "schedule_visit", "set_duration"]


@reading
def requests_of(ctx: Ctx, customer_id: str) -> list[dict[str, Any]]:
    """A customer's visit requests, newest first."""
    get_customer(ctx.session, ctx.company.id, customer_id)
    return requests.of_customer(ctx, customer_id)


@use_case
def set_duration(ctx: Ctx, service_code: str, minutes: int) -> dict[str, Any]:
    """The company's default duration of a visit of this service code, in minutes."""
    return technicians.set_duration(ctx, service_code, minutes)


@reading
def list_durations(ctx: Ctx) -> list[dict[str, Any]]:
    return technicians.durations(ctx)


@use_case
def add_technician(ctx: Ctx, name: str, hours: dict[str, str], email: str | None = None, capacity: int = 6,
                   skills: list[Any] | None = None, home_location: str | None = None) -> dict[str, Any]:
    """A technician: weekly hours ({"mon-fri": "08:00-17:00"}, company time), visits a day,
    skills per service code (with an optional certification expiry), home location (id or name)."""
    t = technicians.add(ctx, name, email, hours, capacity, skills, home_location)
    return technicians.view(ctx, t)


@reading
def list_technicians(ctx: Ctx) -> list[dict[str, Any]]:
    return [technicians.view(ctx, t) for t in technicians.listing(ctx)]


@reading
def get_technician(ctx: Ctx, technician_id: str) -> dict[str, Any]:
    return technicians.view(ctx, technicians.get(ctx, technician_id))


@use_case
def add_time_off(ctx: Ctx, technician_id: str, first: date, last: date | None = None,
                 reason: str | None = None) -> dict[str, Any]:
    """Days a technician is away (first and last included): no visit is booked on them."""
    technicians.add_time_off(ctx, technician_id, first, last, reason)
    return technicians.view(ctx, technicians.get(ctx, technician_id))


@use_case
def schedule_visit(ctx: Ctx, customer_id: str, service_code: str, start: Any, technician_id: str | None = None,
                   membership_id: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    """Book a visit (start: ISO, company time unless it has an offset). The technician named, or
    the least-loaded qualified and free one; refused (Declined, with the reason) when the
    technician lacks the skill or its certification, is outside their hours or off, is full that
    day or already booked then, or when the service has no duration."""
    return visits.view(ctx, visits.schedule(ctx, customer_id, service_code, start, technician_id, membership_id,
                                            request_id))


@use_case
def reschedule_visit(ctx: Ctx, visit_id: str, start: Any, technician_id: str | None = None) -> dict[str, Any]:
    return visits.view(ctx, visits.reschedule(ctx, visit_id, start, technician_id))


@use_case
def cancel_visit(ctx: Ctx, visit_id: str, by: str, reason: str | None = None) -> dict[str, Any]:
    """Cancel a scheduled visit (by member, contractor or technician). Entitlements are drawn
    only when a visit is completed, so a cancelled visit leaves the member's included visits as
    they were."""
    return visits.view(ctx, visits.cancel(ctx, visit_id, by, reason))


@use_case
def complete_visit(ctx: Ctx, visit_id: str, amount: str | None = None) -> dict[str, Any]:
    """Mark a visit done and post its service_completed event (the entitlement drawn, points
    earned by the rules). Completing it again changes nothing and answers the same visit."""
    v, result = visits.complete(ctx, visit_id, amount)
    return {**visits.view(ctx, v), "result": result, "already_completed": result is None}


@reading
def get_visit(ctx: Ctx, visit_id: str) -> dict[str, Any]:
    return visits.view(ctx, visits.get(ctx, visit_id))


@reading
def list_visits(ctx: Ctx, technician_id: str | None = None, customer_id: str | None = None,
                first: date | None = None, last: date | None = None, status: str | None = None) -> list[dict[str, Any]]:
    return [visits.view(ctx, v) for v in visits.listing(ctx, technician_id, customer_id, first, last, status)]


@use_case
def calendar_token(ctx: Ctx, kind: str, owner_id: str, rotate: bool = False) -> dict[str, Any]:
    """The private calendar feed of a technician or a customer: {"token", "path"}; with rotate, a
    new token (the old address stops working)."""
    return calendar.shown(calendar.token_for(ctx, kind, owner_id, rotate))


def calendar_feed(app: Keepwell, token: str) -> bytes:
    """The iCalendar document of a feed token (NotFound for an unknown or rotated one)."""
    company = app.run_platform(lambda s: calendar.company_of(s, token), read_only=True)
    return app.run(company, lambda ctx: calendar.feed(ctx, token), read_only=True)
