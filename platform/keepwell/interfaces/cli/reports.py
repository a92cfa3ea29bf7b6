"""`keepwell report NAME`: a report's figures on the terminal, as JSON, or as a CSV, Excel or PDF
file; `keepwell report list` names them all with their filters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ...usecases import reports
from .common import Obj, handled

FILTERS = ("from", "to", "location", "plan", "tier", "membership", "customer")


@click.command("report")
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


COMMANDS = [report]
