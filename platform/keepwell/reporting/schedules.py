"""Scheduled reports: a company has a report emailed to people on a cadence — weekly on a
weekday, or monthly on a day from 1 to 28 — for a date range relative to each run ("the
previous month", "the previous 7 days"), with the filters of `keepwell report NAME`.

A schedule whose day has come is due work (`report_schedule`): the unit renders the report with
`reporting.files` for the range of the run's day, queues one email per recipient through the
outbox with the file attached (stored once, `outbox.store_file`), and moves the next run on,
all in the caller's transaction. The outbox keys are the schedule, the run's day and the
recipient, so a run done twice (two workers, a retry after a crash) queues its emails once.
A run day falls at the start of the day, company time; a run late (workers down) still reports
on the range of its own day, and a missed run is caught up, one run at a time."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..customers.contact import clean_email
from ..events import due
from ..events.due import DueUnit
from ..infra.context import Ctx
from ..infra.tables import aware, utcnow
from ..kernel.errors import InvalidDocument, KeepwellError, NotFound, Problem
from ..kernel.text import storable
from ..messaging import outbox
from . import catalog, files
from .models import ReportSchedule

CADENCES = ("weekly", "monthly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FORMATS = ("pdf", "xlsx", "csv")
# The date range a run reports on, relative to the run's day D (its day before is "yesterday").
RANGES = {
    "last-7-days": "the 7 days before the run's day",
    "last-week": "the previous week, Monday to Sunday",
    "last-month": "the previous calendar month",
    "last-quarter": "the previous calendar quarter",
    "last-12-months": "the twelve calendar months before the run's month",
    "month-to-date": "from the first of the month to the day before the run (on the 1st: the previous month)",
    "year-to-date": "from January 1 to the day before the run (on January 1: the previous year)",
}
FILTERS = ("location", "plan", "tier")  # what a schedule may filter by, as `keepwell report` does
MOST_RECIPIENTS = 20
KIND = "report_schedule"


@dataclass(frozen=True)
class ScheduleIn:
    """What a company asks for: a report, how often, for which range and filters, as what file,
    to whom."""

    report: str
    cadence: str
    range: str
    format: str
    recipients: tuple[str, ...]
    weekday: str | None = None  # weekly
    day: int | None = None  # monthly
    location: str | None = None
    plan: str | None = None
    tier: str | None = None
    created_by: str = ""


@dataclass(frozen=True)
class Schedule:
    """A schedule as the CLI, the API and the admin show it."""

    id: int
    report: str
    cadence: str
    weekday: str | None
    day: int | None
    range: str
    filters: dict[str, str]
    format: str
    recipients: tuple[str, ...]
    next_run_on: date
    last_run_at: datetime | None
    last_status: str | None
    created_by: str
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "report": self.report, "cadence": self.cadence, "weekday": self.weekday,
                "day": self.day, "range": self.range, "filters": dict(self.filters), "format": self.format,
                "recipients": list(self.recipients), "next_run_on": self.next_run_on.isoformat(),
                "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
                "last_status": self.last_status, "created_by": self.created_by, "active": self.active}

    @property
    def when(self) -> str:
        """In words: "weekly on Monday", "monthly on day 1"."""
        return f"weekly on {(self.weekday or '').capitalize()}" if self.cadence == "weekly" \
            else f"monthly on day {self.day}"


# --- dates -------------------------------------------------------------------------------------

def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _months_back(d: date, n: int) -> date:
    """The first day of the month n months before d's."""
    months = d.year * 12 + d.month - 1 - n
    return date(months // 12, months % 12 + 1, 1)


def span(range_name: str, run_on: date) -> tuple[date, date]:
    """The first and last day (both included) a run on `run_on` reports on."""
    yesterday = run_on - timedelta(days=1)
    if range_name == "last-7-days":
        return run_on - timedelta(days=7), yesterday
    if range_name == "last-week":
        start = run_on - timedelta(days=run_on.weekday() + 7)
        return start, start + timedelta(days=6)
    if range_name == "last-month":
        start = _months_back(run_on, 1)
        return start, _month_end(start.year, start.month)
    if range_name == "last-quarter":
        this_quarter = date(run_on.year, 3 * ((run_on.month - 1) // 3) + 1, 1)
        start = _months_back(this_quarter, 3)
        end = this_quarter - timedelta(days=1)
        return start, end
    if range_name == "last-12-months":
        start = _months_back(run_on, 12)
        return start, date(run_on.year, run_on.month, 1) - timedelta(days=1)
    if range_name == "month-to-date":
        return yesterday.replace(day=1), yesterday
    if range_name == "year-to-date":
        return date(yesterday.year, 1, 1), yesterday
    raise ValueError(range_name)


def next_run(cadence: str, weekday: int | None, day: int | None, after: date) -> date:
    """The first run day strictly after `after`."""
    if cadence == "weekly":
        assert weekday is not None
        return after + timedelta(days=(weekday - after.weekday()) % 7 or 7)
    assert day is not None
    if after.day < day:
        return after.replace(day=day)
    first = _months_back(after, -1)
    return first.replace(day=day)


def _run_moment(ctx: Ctx, day: date) -> datetime:
    """The start of a run's day, company time, in UTC (as every moment is stored)."""
    return ctx.start_of(day).astimezone(UTC)


def _run_day(ctx: Ctx, s: ReportSchedule) -> date:
    return ctx.local_date(aware(s.next_run_at))


# --- checks ------------------------------------------------------------------------------------

def _recipients(given: tuple[str, ...] | list[str], problems: list[Problem]) -> list[str]:
    if isinstance(given, str) or not isinstance(given, list | tuple):
        problems.append(Problem("recipients", "Recipients must be a list of email addresses", label="Recipients"))
        return []
    out: list[str] = []
    for i, raw in enumerate(given):
        shown = (raw if isinstance(raw, str) else repr(raw))[:80]
        try:
            address = clean_email(raw)
        except InvalidDocument:
            address = None
        if address is None:
            problems.append(Problem(f"recipients[{i}]", f"Recipient {shown!r} is not an email address",
                                    label="Recipient"))
            continue
        if address not in out:
            out.append(address)
    if not given:
        problems.append(Problem("recipients", "Recipients: name at least one email address to send the report to",
                                label="Recipients"))
    elif len(out) > MOST_RECIPIENTS:
        problems.append(Problem("recipients", f"Recipients: at most {MOST_RECIPIENTS} addresses (a mailing list "
                                "address counts as one)", label="Recipients"))
    return out


def check(ctx: Ctx, spec: ScheduleIn) -> tuple[dict[str, Any], list[str]]:
    """Every problem of a schedule, each with its field (InvalidDocument); else the stored
    params (the filters resolved: a location given by name is its id) and the recipients."""
    problems: list[Problem] = []
    names = [s.name for s in catalog.listing()]
    if spec.report not in names:
        problems.append(Problem("report", f"Report: there is no report {str(spec.report)[:60]!r}; the reports are "
                                f"{', '.join(names)}", label="Report"))
    if spec.cadence not in CADENCES:
        problems.append(Problem("cadence", "Cadence must be weekly (on a weekday) or monthly (on a day of the month)",
                                label="Cadence"))
    if spec.cadence == "weekly":
        if spec.weekday not in WEEKDAYS:
            problems.append(Problem("weekday", f"Weekday must be one of {', '.join(WEEKDAYS)}", label="Weekday"))
        if spec.day is not None:
            problems.append(Problem("day", "Day of month is for monthly schedules: a weekly one runs on a weekday",
                                    label="Day of month"))
    if spec.cadence == "monthly":
        if isinstance(spec.day, bool) or not isinstance(spec.day, int) or not 1 <= spec.day <= 28:
            problems.append(Problem("day", "Day of month must be a number from 1 to 28 (every month has those days)",
                                    label="Day of month"))
        if spec.weekday is not None:
            problems.append(Problem("weekday", "Weekday is for weekly schedules: a monthly one runs on a day of the "
                                    "month", label="Weekday"))
    if spec.range not in RANGES:
        problems.append(Problem("range", f"Range must be one of {', '.join(RANGES)}", label="Range"))
    if spec.format not in FORMATS:
        problems.append(Problem("format", f"Format must be one of {', '.join(FORMATS)}", label="Format"))
    recipients = _recipients(spec.recipients, problems)
    given: dict[str, Any] = {}
    for k in FILTERS:
        value = getattr(spec, k)
        if value in (None, ""):
            continue
        try:
            given[k] = storable(k, str(value)[:120])
        except InvalidDocument as exc:
            problems += exc.problems
    params: dict[str, Any] = {"range": spec.range}
    if spec.report in names and spec.range in RANGES and len(given) == len([k for k in FILTERS if getattr(spec, k)]):
        start, end = span(spec.range, ctx.today())
        try:
            p = catalog.params(ctx, spec.report, {"from": start, "to": end, **given})
        except InvalidDocument as exc:
            problems += exc.problems
        else:
            params.update({k: getattr(p, k) for k in FILTERS if getattr(p, k)})
    if problems:
        raise InvalidDocument("the report schedule cannot be saved", problems)
    return params, recipients


# --- the schedules -----------------------------------------------------------------------------

def view(ctx: Ctx, s: ReportSchedule) -> Schedule:
    params = dict(s.params or {})
    return Schedule(s.id, s.report, s.cadence, WEEKDAYS[s.weekday] if s.weekday is not None else None, s.day,
                    str(params.pop("range", "")), {k: str(v) for k, v in params.items() if v},
                    s.format, tuple(s.recipients or ()), _run_day(ctx, s),
                    aware(s.last_run_at) if s.last_run_at else None, s.last_status, s.created_by, s.active)


def add(ctx: Ctx, spec: ScheduleIn) -> ReportSchedule:
    params, recipients = check(ctx, spec)
    weekday = WEEKDAYS.index(spec.weekday) if spec.cadence == "weekly" and spec.weekday else None
    day = spec.day if spec.cadence == "monthly" else None
    # The first run: the first run day after today (today's has begun already).
    first = next_run(spec.cadence, weekday, day, ctx.today())
    s = ReportSchedule(company_id=ctx.company.id, report=spec.report, params=params, format=spec.format,
                       cadence=spec.cadence, weekday=weekday, day=day, recipients=recipients,
                       next_run_at=_run_moment(ctx, first),
                       created_by=storable("created_by", (spec.created_by or "")[:200]) or "",
                       created_at=utcnow(), active=True)
    ctx.session.add(s)
    ctx.session.flush()
    return s


def listing(ctx: Ctx) -> list[ReportSchedule]:
    return list(ctx.session.scalars(sa.select(ReportSchedule).where(ReportSchedule.company_id == ctx.company.id)
                                    .order_by(ReportSchedule.id)))


def get(ctx: Ctx, schedule_id: int, lock: bool = False) -> ReportSchedule:
    q = sa.select(ReportSchedule).where(ReportSchedule.company_id == ctx.company.id,
                                        ReportSchedule.id == schedule_id)
    found = ctx.session.scalar(q.with_for_update() if lock else q)
    if found is None:
        raise NotFound(f"there is no report schedule {schedule_id}")
    return found


def remove(ctx: Ctx, schedule_id: int) -> None:
    ctx.session.delete(get(ctx, schedule_id, lock=True))
    ctx.session.flush()


# --- due work ----------------------------------------------------------------------------------

def _plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    """Active schedules whose run day is `as_of` or before. A report covers the days before its
    run, and the work those days leave due (a period's end, its unused allowance expiring) is
    written by the day's other due work: a schedule waits until that is done — unless its day
    is more than one day gone (then waiting has not helped: other work keeps failing), and it goes."""
    rows = list(ctx.session.execute(sa.select(ReportSchedule.id, ReportSchedule.next_run_at).where(
        ReportSchedule.company_id == ctx.company.id, ReportSchedule.active.is_(True),
        ReportSchedule.next_run_at < _run_moment(ctx, as_of + timedelta(days=1)))
        .order_by(ReportSchedule.next_run_at, ReportSchedule.id)))
    if not rows:
        return []
    waiting = due.other_work_due(ctx, as_of, KIND)
    out = []
    for sid, at in rows:
        on = ctx.local_date(aware(at))
        if waiting and on >= as_of - timedelta(days=1):
            continue
        out.append(DueUnit(KIND, f"due:report:{sid}:{on.isoformat()}", "", str(sid), as_of))
    return out


def _run(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    """One run of a schedule: the report for its run day's range, one email per recipient with
    the file, the next run day; nothing when that run was done already."""
    nothing = {"unit": unit.key, "emails_queued": 0}
    try:
        schedule_id, run_on = int(unit.subject), date.fromisoformat(unit.key.rsplit(":", 1)[1])
        s = get(ctx, schedule_id, lock=True)  # two runs of one schedule wait for each other
    except (ValueError, NotFound):
        return nothing  # removed since it was planned
    if not s.active or _run_day(ctx, s) != run_on or run_on > unit.as_of:
        return nothing  # done already (or not due)
    start, end = span(str((s.params or {}).get("range")), run_on)
    filters = {k: v for k, v in (s.params or {}).items() if k in FILTERS and v}
    queued = 0
    try:
        made = files.render(catalog.run(ctx, s.report, catalog.params(ctx, s.report,
                                                                      {"from": start, "to": end, **filters})),
                            s.format)
    except KeepwellError as exc:  # the schedule's own fault (its plan or location is gone): said, and on to the next
        status = f"failed: {exc.message}"[:300]
    else:
        keys = {r: f"report:{s.id}:{run_on.isoformat()}:{r}" for r in s.recipients or ()}
        sent = outbox.existing_keys(ctx, list(keys.values()))
        todo = [r for r, k in keys.items() if k not in sent]
        if todo:
            digest = outbox.store_file(ctx, made.content)
            title = catalog.spec(s.report).title
            for r in todo:
                outbox.add(ctx, key=keys[r], event_id=None, customer_id=None, kind="notification", channel="email",
                           template="scheduled_report", audience="direct", ruleset=None, rule=None,
                           payload={"to": r, "data": {"schedule": s.id, "report": s.report, "title": title,
                                                      "from": start.isoformat(), "to": end.isoformat(),
                                                      "run_on": run_on.isoformat(), "format": s.format,
                                                      "filename": made.filename, "range": RANGES.get(
                                                          str((s.params or {}).get("range")), "")},
                                    "files": [{"filename": made.filename, "media_type": made.media_type,
                                               "digest": digest}]})
                queued += 1
        status = f"emailed {start.isoformat()} to {end.isoformat()} to {len(keys)} recipient(s)"
    s.last_run_at, s.last_status = utcnow(), status
    s.next_run_at = _run_moment(ctx, next_run(s.cadence, s.weekday, s.day, run_on))
    return {**nothing, "emails_queued": queued, "schedule": s.id, "run_on": run_on.isoformat(),
            "from": start.isoformat(), "to": end.isoformat()}


# After the day's other work (period ends, billing, points), so a report sees the day closed.
due.kind(KIND, 40, _plan, _run, per_customer=False)
