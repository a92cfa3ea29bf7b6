"""`keepwell services duration`, `keepwell technicians add|list|time-off|calendar` and
`keepwell visits schedule|list|reschedule|cancel|complete|calendar`: durations of services,
technicians, and the visits they make. A visit draws its entitlement only when completed."""

from __future__ import annotations

from datetime import date
from typing import Any

import click

from ...kernel.errors import InvalidDocument
from ...usecases import scheduling
from .common import Obj, emit, handled, json_option, parse_date


@click.group("services")
def services_group() -> None:
    """Services: how long a visit of each takes."""


@services_group.command("duration")
@click.argument("service", required=False)
@click.argument("minutes", type=int, required=False)
@json_option
@click.pass_obj
@handled
def services_duration(obj: Obj, service: str | None, minutes: int | None, as_json: bool) -> None:
    """Set SERVICE's default visit duration in MINUTES (a visit of a service without one is
    refused); without them, list every service's duration."""
    if service is None or minutes is None:
        emit(scheduling.list_durations(obj.app, obj.company), as_json,
             lambda rows: [click.echo(f"{r['service_code']:<20} {r['minutes']} min") for r in rows])
        return
    emit(scheduling.set_duration(obj.app, obj.company, service, minutes), as_json,
         lambda d: click.echo(f"{d['service_code']}: {d['minutes']} minutes a visit"))


def _hours(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        days, sep, span = item.partition("=")
        if not sep:
            raise InvalidDocument.field("--hours", f"{item!r}: use DAYS=HH:MM-HH:MM, like mon-fri=08:00-17:00")
        out[days.strip()] = span.strip()
    return out


def _tech_line(t: dict[str, Any]) -> None:
    skills = ", ".join(s["service_code"] + (f" (until {s['expires_on']})" if s["expires_on"] else "")
                       for s in t["skills"]) or "no skills"
    hours = ", ".join(f"{d} {h}" for d, h in t["hours"].items())
    click.echo(f"{t['id']}  {t['name']:<24} {t['capacity']}/day  {skills}  [{hours}]")
    for off in t["time_off"]:
        click.echo(f"{'':<22}off {off['from']} to {off['to']}" + (f": {off['reason']}" if off["reason"] else ""))


@click.group("technicians")
def technicians_group() -> None:
    """Technicians: skills, working hours, time off, capacity."""


@technicians_group.command("add")
@click.option("--name", required=True)
@click.option("--email", default=None)
@click.option("--skill", "skills", multiple=True, help="A service code, with an optional certification expiry: "
              "AC_TUNE or AC_TUNE:2027-06-30 (repeatable).")
@click.option("--hours", multiple=True, required=True, help="Working hours, company time: mon-fri=08:00-17:00 "
              "(repeatable; days left out are days off).")
@click.option("--capacity", type=int, default=6, show_default=True, help="Most visits a day.")
@click.option("--home-location", default=None, help="Where they start from (a location's id or name).")
@json_option
@click.pass_obj
@handled
def technicians_add(obj: Obj, name: str, email: str | None, skills: tuple[str, ...], hours: tuple[str, ...],
                    capacity: int, home_location: str | None, as_json: bool) -> None:
    t = scheduling.add_technician(obj.app, obj.company, name, _hours(hours), email=email, capacity=capacity,
                                  skills=list(skills), home_location=home_location)
    emit(t, as_json, lambda t: click.echo(t["id"]))


@technicians_group.command("list")
@json_option
@click.pass_obj
@handled
def technicians_list(obj: Obj, as_json: bool) -> None:
    emit(scheduling.list_technicians(obj.app, obj.company), as_json, lambda rows: [_tech_line(t) for t in rows])


@technicians_group.command("time-off")
@click.argument("technician")
@click.option("--from", "first", required=True, callback=parse_date, help="First day off (YYYY-MM-DD).")
@click.option("--to", "last", default=None, callback=parse_date, help="Last day off (default: the first).")
@click.option("--reason", default=None)
@json_option
@click.pass_obj
@handled
def technicians_time_off(obj: Obj, technician: str, first: date, last: date | None, reason: str | None,
                         as_json: bool) -> None:
    """Days TECHNICIAN is away: no visit is booked on them."""
    emit(scheduling.add_time_off(obj.app, obj.company, technician, first, last, reason), as_json, _tech_line)


def _feed(obj: Obj, kind: str, owner: str, rotate: bool, as_json: bool) -> None:
    emit(scheduling.calendar_token(obj.app, obj.company, kind, owner, rotate), as_json,
         lambda f: click.echo(f"{f['path']}  (served by `keepwell serve`; keep it private)"))


@technicians_group.command("calendar")
@click.argument("technician")
@click.option("--rotate", is_flag=True, help="A new address: the old one stops working.")
@json_option
@click.pass_obj
@handled
def technicians_calendar(obj: Obj, technician: str, rotate: bool, as_json: bool) -> None:
    """The private iCalendar feed of TECHNICIAN's visits."""
    _feed(obj, "technician", technician, rotate, as_json)


def _visit_line(v: dict[str, Any]) -> None:
    why = f" by {v['cancelled_by']}" + (f": {v['cancel_reason']}" if v["cancel_reason"] else "") \
        if v["status"] == "cancelled" else ""
    click.echo(f"{v['id']}  {v['start'][:16].replace('T', ' ')}-{v['end'][11:16]}  {v['service_code']:<12} "
               f"{v['customer']}  {v['technician']}  {v['status']}{why}")


@click.group("visits")
def visits_group() -> None:
    """Visits: scheduled, rescheduled, cancelled, completed (the entitlement is drawn on completion)."""


@visits_group.command("schedule")
@click.argument("customer")
@click.argument("service")
@click.option("--at", "start", required=True, help="Start: 2026-10-30T09:00 (company time) or with an offset.")
@click.option("--technician", default=None, help="Who (default: the least-loaded qualified technician free then).")
@click.option("--membership", default=None, help="The membership whose included visit it is.")
@click.option("--request", "request_id", default=None, help="The member's visit request it answers.")
@json_option
@click.pass_obj
@handled
def visits_schedule(obj: Obj, customer: str, service: str, start: str, technician: str | None,
                    membership: str | None, request_id: str | None, as_json: bool) -> None:
    """Book a visit of SERVICE for CUSTOMER."""
    emit(scheduling.schedule_visit(obj.app, obj.company, customer, service, start, technician, membership,
                                   request_id), as_json, _visit_line)


@visits_group.command("list")
@click.option("--technician", default=None)
@click.option("--customer", default=None)
@click.option("--from", "first", default=None, callback=parse_date, help="First day (company time).")
@click.option("--to", "last", default=None, callback=parse_date, help="Last day.")
@click.option("--status", type=click.Choice(["scheduled", "completed", "cancelled"]), default=None)
@json_option
@click.pass_obj
@handled
def visits_list(obj: Obj, technician: str | None, customer: str | None, first: date | None, last: date | None,
                status: str | None, as_json: bool) -> None:
    emit(scheduling.list_visits(obj.app, obj.company, technician, customer, first, last, status), as_json,
         lambda rows: [_visit_line(v) for v in rows] or click.echo("no visits"))


@visits_group.command("reschedule")
@click.argument("visit")
@click.option("--at", "start", required=True, help="The new start (company time, or with an offset).")
@click.option("--technician", default=None, help="Another technician (default: the same one).")
@json_option
@click.pass_obj
@handled
def visits_reschedule(obj: Obj, visit: str, start: str, technician: str | None, as_json: bool) -> None:
    emit(scheduling.reschedule_visit(obj.app, obj.company, visit, start, technician), as_json, _visit_line)


@visits_group.command("cancel")
@click.argument("visit")
@click.option("--by", type=click.Choice(["member", "contractor", "technician"]), required=True)
@click.option("--reason", default=None)
@json_option
@click.pass_obj
@handled
def visits_cancel(obj: Obj, visit: str, by: str, reason: str | None, as_json: bool) -> None:
    """Cancel a scheduled visit. The member's included visit is not used: entitlements are drawn
    only when a visit is completed."""
    emit(scheduling.cancel_visit(obj.app, obj.company, visit, by, reason), as_json, _visit_line)


@visits_group.command("complete")
@click.argument("visit")
@click.option("--amount", default=None, help="What the work is charged when not covered (250.00).")
@json_option
@click.pass_obj
@handled
def visits_complete(obj: Obj, visit: str, amount: str | None, as_json: bool) -> None:
    """Mark VISIT done: its service_completed event draws the entitlement and earns points (once)."""
    done = scheduling.complete_visit(obj.app, obj.company, visit, amount)

    def human(v: dict[str, Any]) -> None:
        if v["already_completed"]:
            click.echo(f"{v['id']} was completed already: nothing changed")
            return
        covered = "covered by the membership" if v["result"].get("covered") else "not covered"
        click.echo(f"{v['id']} completed ({covered})")

    emit(done, as_json, human)


@visits_group.command("calendar")
@click.argument("customer")
@click.option("--rotate", is_flag=True, help="A new address: the old one stops working.")
@json_option
@click.pass_obj
@handled
def visits_calendar(obj: Obj, customer: str, rotate: bool, as_json: bool) -> None:
    """The private iCalendar feed of CUSTOMER's visits."""
    _feed(obj, "customer", customer, rotate, as_json)


COMMANDS = [services_group, technicians_group, visits_group]
