"""`keepwell report NAME`: a report's figures on the terminal, as JSON, or as a CSV, Excel or PDF
file; `keepwell report list` names them all with their filters; `keepwell report schedule
add|list|remove`: reports emailed on a cadence (the workers send them as due work)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ...usecases import reports
from .common import Obj, handled, json_option

FILTERS = ("from", "to", "location", "plan", "tier", "membership", "customer")


class ReportGroup(click.Group):
    """`keepwell report` takes a report's NAME (and `list`) as it always has, and has the
    `schedule` commands too: any first word that is not one of its commands runs a report (the
    hidden `run` command), so `keepwell report statement --plan club` keeps working."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """`keepwell report --help` lists the options of running a report, then the commands."""
        run = self.commands["run"]
        run.format_options(click.Context(run, info_name=ctx.info_name, parent=ctx.parent), formatter)
        self.format_commands(ctx, formatter)


class _RunReport(click.Command):
    """The hidden `run`: its usage reads `keepwell report [OPTIONS] NAME`, as it always did."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        path = ctx.parent.command_path if ctx.parent is not None else ctx.command_path
        formatter.write_usage(path, " ".join(self.collect_usage_pieces(ctx)))


@click.group("report", cls=ReportGroup, invoke_without_command=False, options_metavar="",
             subcommand_metavar="NAME [OPTIONS] | list | schedule add|list|remove",
             context_settings={"help_option_names": ["--help"]})
def report_group() -> None:
    """Reports: `keepwell report NAME [--from D --to D] [--location L] [--plan P] [--tier T]
    [--json|--csv|--xlsx|--pdf]` runs one; `keepwell report list` names them with their filters;
    `keepwell report schedule add|list|remove` emails one on a cadence."""


@report_group.command("run", cls=_RunReport, hidden=True)
@click.argument("name")
@click.option("--from", "start", default=None, help="First day (YYYY-MM-DD; default: twelve months to --to).")
@click.option("--to", "end", default=None, help="Last day (YYYY-MM-DD; default: today, company time).")
@click.option("--location", default=None, help="Only the customers of this location (id or name).")
@click.option("--plan", default=None, help="Only memberships of this plan (its id).")
@click.option("--tier", default=None, help="Only memberships on this tier (its id).")
@click.option("--membership", default=None, help="One membership (statement).")
@click.option("--customer", default=None, help="One customer's memberships (statement).")
@click.option("--json", "fmt", flag_value="json", help="The figures as JSON.")
@click.option("--csv", "fmt", flag_value="csv", help="As CSV (to --output, or printed).")
@click.option("--xlsx", "fmt", flag_value="xlsx", help="As an Excel workbook, one sheet per section.")
@click.option("--pdf", "fmt", flag_value="pdf", help="As a PDF with the charts.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="The file to write (default for --xlsx and --pdf: the report's name and dates, here).")
@click.pass_obj
@handled
def report(obj: Obj, name: str, start: str | None, end: str | None, location: str | None, plan: str | None,
           tier: str | None, membership: str | None, customer: str | None, fmt: str | None,
           output: str | None) -> None:
    """Run report NAME (`keepwell report list` shows them and the filters each takes)."""
    if name == "list":
        _list(obj, fmt == "json")
        return
    given = {"from": start, "to": end, "location": location, "plan": plan, "tier": tier, "membership": membership,
             "customer": customer}
    filters = {k: v for k, v in given.items() if v}
    if fmt is None:
        _show(reports.run(obj.app, obj.company, name, **filters))
        return
    made = reports.export(obj.app, obj.company, name, fmt, **filters)
    if output is None and fmt in ("json", "csv"):
        sys.stdout.write(made.content.decode("utf-8"))
        return
    path = Path(output or made.filename)
    path.write_bytes(made.content)
    click.echo(f"wrote {path} ({len(made.content):,} bytes)")


def _list(obj: Obj, as_json: bool) -> None:
    found = reports.list_reports(obj.app, obj.company)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for r in found:
        click.echo(f"{r['name']:<20} {r['title']}")
        click.echo(f"{'':<20} filters: {', '.join('--' + f['name'] for f in r['filters'])}")


def _show(data: dict[str, Any]) -> None:
    """The report as aligned text tables, one per section."""
    click.echo(f"{data['title']} — {data['company']}  ({', '.join(f'{k} {v}' for k, v in data['filters'].items())}; "
               f"amounts in {data['currency']})")
    for s in data["sections"]:
        click.echo(f"\n{s['title']}")
        cols = s["columns"]
        cells = [[c["title"] for c in cols]] + [["" if r[c["key"]] is None else str(r[c["key"]]) for c in cols]
                                                 for r in s["rows"]]
        widths = [min(40, max(len(row[i]) for row in cells)) for i in range(len(cols))]
        for n, row in enumerate(cells):
            click.echo("  ".join(v[:40].rjust(w) if cols[i]["kind"] not in ("text", "date") else v[:40].ljust(w)
                                 for i, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip())
            if n == 0:
                click.echo("  ".join("-" * w for w in widths))
        if not s["rows"]:
            click.echo("  (nothing in this range)")
        if s.get("note"):
            click.echo(f"  {s['note']}")


@report_group.group("schedule")
def schedule() -> None:
    """Reports emailed on a cadence: weekly on a weekday or monthly on a day (1-28), for a range
    relative to each run (last-month, last-week, last-7-days...), as PDF, Excel or CSV. Workers
    (or `keepwell run-due`) render and send them through the outbox."""


@schedule.command("add")
@click.argument("report_name", metavar="REPORT")
@click.option("--every", "cadence", required=True, help="weekly or monthly.")
@click.option("--on", "weekday", default=None, help="Weekly: the weekday it runs on (monday ... sunday).")
@click.option("--day", default=None, help="Monthly: the day of the month it runs on, 1 to 28.")
@click.option("--range", "range_name", default=None,
              help="What each run covers: " + ", ".join(reports.RANGES) + " (default: last-week weekly, "
                   "last-month monthly).")
@click.option("--format", "fmt", default="pdf", show_default=True, help="pdf, xlsx or csv.")
@click.option("--to", "recipients", multiple=True, help="An email address to send it to (repeat for more).")
@click.option("--location", default=None, help="Only the customers of this location (id or name).")
@click.option("--plan", default=None, help="Only memberships of this plan (its id).")
@click.option("--tier", default=None, help="Only memberships on this tier (its id).")
@click.option("--by", "created_by", default="CLI", show_default=True, help="Who set it up (shown in the list).")
@json_option
@click.pass_obj
@handled
def schedule_add(obj: Obj, report_name: str, cadence: str, weekday: str | None, day: str | None,
                 range_name: str | None, fmt: str, recipients: tuple[str, ...], location: str | None,
                 plan: str | None, tier: str | None, created_by: str, as_json: bool) -> None:
    """Email report REPORT on a cadence: `keepwell report schedule add churn --every monthly --day 1
    --range last-month --format xlsx --to owner@example.com`."""
    cadence = cadence.strip().lower()
    default_range = {"weekly": "last-week", "monthly": "last-month"}.get(cadence, "last-month")
    spec = reports.ScheduleIn(
        report=report_name, cadence=cadence, range=(range_name or default_range).strip().lower(),
        format=fmt.strip().lower(), recipients=tuple(recipients),
        weekday=weekday.strip().lower() if weekday is not None else None, day=_day(day), location=location,
        plan=plan, tier=tier, created_by=created_by)
    made = reports.add_schedule(obj.app, obj.company, spec)
    if as_json:
        click.echo(json.dumps(made.to_dict(), indent=2))
        return
    click.echo(f"schedule {made.id}: {_line(made)}")


def _day(raw: str | None) -> int | None:
    """--day as a number; anything else is 0, which the use case refuses with its message."""
    if raw is None:
        return None
    text = raw.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 4 else 0


def _line(s: reports.Schedule) -> str:
    filters = "".join(f" --{k} {v}" for k, v in s.filters.items())
    return (f"{s.report}{filters} {s.when}, {s.range}, as {s.format} to {', '.join(s.recipients)}; "
            f"next run {s.next_run_on.isoformat()}")


@schedule.command("list")
@json_option
@click.pass_obj
@handled
def schedule_list(obj: Obj, as_json: bool) -> None:
    """The company's report schedules, with their next run and how the last one went."""
    found = reports.list_schedules(obj.app, obj.company)
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in found], indent=2))
        return
    if not found:
        click.echo("no report schedules (keepwell report schedule add REPORT --every monthly --day 1 --to ...)")
    for s in found:
        click.echo(f"{s.id:>4}  {_line(s)}")
        if s.last_status:
            click.echo(f"      last run {s.last_run_at.date().isoformat() if s.last_run_at else ''}: {s.last_status}")


@schedule.command("remove")
@click.argument("schedule_id", metavar="ID", type=int)
@click.pass_obj
@handled
def schedule_remove(obj: Obj, schedule_id: int) -> None:
    """Stop a schedule (emails already queued still go)."""
    reports.remove_schedule(obj.app, obj.company, schedule_id)
    click.echo(f"removed report schedule {schedule_id}")


COMMANDS = [report_group]
