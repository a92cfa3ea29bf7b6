"""Reports: the numbers a membership business closes its month on, the same from the CLI, the
API, the admin and a scheduled email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..customers import locations
from ..infra.context import Ctx
from ..kernel.errors import InvalidDocument
from ..memberships.terms import tiers
from ..reporting import catalog, files, schedules
from ..reporting.files import ReportFile
from ..reporting.schedules import Schedule, ScheduleIn
from ..rulesets import versions
from .app import reading, use_case

__all__ = ["list_reports", "run", "export", "ReportFile", "FORMATS", "view", "download_now", "form_choices",
           "DOWNLOAD_NOW_ROWS", "Schedule", "ScheduleIn", "SCHEDULE_FORMATS", "CADENCES", "WEEKDAYS", "RANGES",
           "add_schedule", "list_schedules", "get_schedule", "remove_schedule"]

FORMATS = files.FORMATS


@reading
def list_reports(ctx: Ctx) -> list[dict[str, Any]]:
    """Every report with what it shows and the filters it takes."""
    return [s.to_dict() for s in catalog.listing()]


@reading
def run(ctx: Ctx, name: str, **filters: Any) -> dict[str, Any]:
    """A report's figures as JSON: sections of typed columns and rows."""
    return catalog.run(ctx, name, catalog.params(ctx, name, filters)).to_dict()


@reading
def export(ctx: Ctx, name: str, fmt: str, **filters: Any) -> ReportFile:
    """A report as a file: json, csv, xlsx or pdf."""
    if fmt not in FORMATS:
        from ..kernel.errors import InvalidDocument

        raise InvalidDocument.field("format", f"must be one of {', '.join(FORMATS)}")
    return files.render(catalog.run(ctx, name, catalog.params(ctx, name, filters)), fmt)


# --- the admin's Reports page ---------------------------------------------------------------------

# "Download now" makes the file in the request when the report is this small (rows in all its
# sections); a larger one is prepared as a report file by a job (README, Reports).
DOWNLOAD_NOW_ROWS = {"csv": 20_000, "xlsx": 20_000, "pdf": 1_000}


@reading
def view(ctx: Ctx, name: str, **filters: Any) -> dict[str, Any]:
    """A report's figures as `run` gives them, each section with its chart drawn (SVG) where it
    has one, and `rows`: how many rows the sections hold in all."""
    r = catalog.run(ctx, name, catalog.params(ctx, name, filters))
    out = r.to_dict()
    for section, shown in zip(r.sections, out["sections"], strict=True):
        shown["chart"] = files.chart_svg(section.chart) if section.chart else None
    out["rows"] = sum(len(s.rows) for s in r.sections)
    return out


@reading
def download_now(ctx: Ctx, name: str, fmt: str, **filters: Any) -> ReportFile | None:
    """The report as a file made now, or None when it is too large for that (DOWNLOAD_NOW_ROWS):
    then it is to be prepared as a report file."""
    if fmt not in DOWNLOAD_NOW_ROWS:
        raise InvalidDocument.field("format", f"must be one of {', '.join(DOWNLOAD_NOW_ROWS)}")
    r = catalog.run(ctx, name, catalog.params(ctx, name, filters))
    if sum(len(s.rows) for s in r.sections) > DOWNLOAD_NOW_ROWS[fmt]:
        return None
    return files.render(r, fmt)


@reading
def form_choices(ctx: Ctx) -> dict[str, Any]:
    """What the report forms offer: the company's locations, plans and their tiers (from each
    plan's newest version), and the default range — the last full month."""
    plans, tier_names = [], {}
    for rs in versions.of_kind(ctx.session, ctx.company.id, "Plan"):
        latest = versions.latest_version(ctx.session, rs.id)
        if latest is None:
            continue  # only a draft
        content = latest.content
        plans.append((rs.key, rs.name))
        for t in tiers(content):
            tier_names.setdefault(t["id"], []).append(f"{t.get('name', t['id'])} ({rs.name})")
    first_this_month = ctx.today().replace(day=1)
    last_month_end = first_this_month - timedelta(days=1)
    return {"locations": [(x["id"], x["name"]) for x in locations.listing(ctx)], "plans": plans,
            "tiers": [(tid, ", ".join(names)) for tid, names in sorted(tier_names.items())],
            "default_from": last_month_end.replace(day=1).isoformat(), "default_to": last_month_end.isoformat()}


# --- schedules: a report emailed on a cadence (its runs are due work: reporting.schedules) --------

SCHEDULE_FORMATS = schedules.FORMATS
CADENCES = schedules.CADENCES
WEEKDAYS = schedules.WEEKDAYS
RANGES = schedules.RANGES


@use_case
def add_schedule(ctx: Ctx, spec: ScheduleIn) -> Schedule:
    """Email report `spec.report` weekly on a weekday or monthly on a day (1-28), for a range
    relative to each run, to these addresses; every problem is an error naming its field."""
    return schedules.view(ctx, schedules.add(ctx, spec))


@reading
def list_schedules(ctx: Ctx) -> list[Schedule]:
    return [schedules.view(ctx, s) for s in schedules.listing(ctx)]


@reading
def get_schedule(ctx: Ctx, schedule_id: int) -> Schedule:
    return schedules.view(ctx, schedules.get(ctx, schedule_id))


@use_case
def remove_schedule(ctx: Ctx, schedule_id: int) -> None:
    """Stop a schedule (NotFound when the company has none of that id); emails already queued go."""
    schedules.remove(ctx, schedule_id)
