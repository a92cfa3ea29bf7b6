"""Events in, due work, and the audit."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import date
from typing import IO, Any

import click

from ...kernel.errors import InvalidDocument, NotConfigured, Problem
from ...usecases import audit as audit_uc
from ...usecases import due, imports
from ...usecases import events as events_uc
from ...usecases.imports import Line
from .common import Obj, emit, handled, json_option, parse_date


def _lines(stream: IO[str]) -> Iterator[Line]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield Line(number, json.loads(line))
        except json.JSONDecodeError as exc:
            problem = Problem("(line)", f"not JSON: {exc.msg}")
            yield Line(number, error={"event": None, "status": "rejected",
                                       **InvalidDocument(f"line {number} is not JSON", [problem]).to_dict()})


@click.group("events")
def events() -> None:
    """Events: purchases, services, referrals..."""


@events.command("post")
@click.argument("source", default="-")
@click.pass_obj
@handled
def events_post(obj: Obj, source: str) -> None:
    """Post events from a file of JSON lines (or - for stdin) through the batched path (500 per
    transaction); prints one JSON result per line, in order. Exit status 1 when any event was
    rejected as malformed (it changes nothing; the others apply)."""
    stream = _open(source)
    bad = 0
    with stream:
        for block in _blocks(_lines(stream), events_uc.BATCH):
            results = iter(
                events_uc.post_events(obj.app, obj.company, [ln.payload for ln in block if ln.error is None])
            )
            for line in block:
                result = line.error if line.error is not None else next(results)
                if result.get("status") in ("rejected", "error"):
                    bad += 1
                    result = {"line": line.number, **result}
                click.echo(json.dumps(result))
    sys.exit(1 if bad else 0)


def _open(source: str) -> IO[str]:
    try:
        return sys.stdin if source == "-" else open(source, encoding="utf-8")
    except OSError as exc:
        raise InvalidDocument.field("SOURCE", f"cannot read {source}: {exc.strerror or exc}",
                                    f"cannot read {source}: {exc.strerror or exc}") from None


@events.command("list")
@click.option("--customer", default=None, help="Only this customer's events.")
@click.option("--type", "type_", default=None, help="Only events of this type.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--after", default=None, help="The last event id of the previous page.")
@json_option
@click.pass_obj
@handled
def events_list(obj: Obj, customer: str | None, type_: str | None, limit: int, after: str | None,
                as_json: bool) -> None:
    """Stored events, oldest first, a page at a time."""

    def human(d: dict[str, Any]) -> None:
        for e in d["events"]:
            click.echo(f"{e['local_date']}  {e['type']:<22} {e['status']:<10} {e['id']}")
        if d["has_more"]:
            click.echo(f"(more: --after {d['last']})")

    emit(events_uc.list_events(obj.app, obj.company, limit, after, customer, type_), as_json, human)


@events.command("import")
@click.argument("source")
@click.option("--parts", type=click.IntRange(1, 256), default=8, show_default=True,
              help="With KEEPWELL_REDIS_URL: split the file into this many parts by customer, one job each, "
                   "for as many workers as there are parts.")
@json_option
@click.pass_obj
@handled
def events_import(obj: Obj, source: str, parts: int, as_json: bool) -> None:
    """Import a file of events (JSON lines, or - for stdin) and print a summary. With
    KEEPWELL_REDIS_URL set, the file is split by customer and the parts run on the workers at
    once (each customer's events in the file's order); else it runs here. The lines refused are
    listed with their numbers, and the exit status is 1 when there is any. Importing a file again
    is safe: events already imported come back as duplicates and change nothing."""
    with _open(source) as stream:
        lines = list(_lines(stream))
    failures: dict[str, str] = {}
    if obj.settings.redis_url:
        from ..jobs import enqueue

        ids = enqueue.import_parts(obj.settings.redis_url, obj.company, imports.split(lines, parts))
        progress = None if as_json else (lambda done, total: click.echo(f"parts done: {done} of {total}", err=True))
        summary, failures = enqueue.import_results(obj.settings.redis_url, ids, progress)
    else:
        summary = imports.import_part(obj.app, obj.company, lines)
    report = {**summary.to_dict(), "failed_parts": failures}
    emit(report, as_json, _say_imported)
    if not as_json:
        for problem in summary.problems:
            click.echo(json.dumps(problem), err=True)
    sys.exit(1 if summary.failed or failures else 0)


def _say_imported(r: dict[str, Any]) -> None:
    outcomes = ", ".join(f"{n} {what}" for what, n in r["outcomes"].items()) or "nothing"
    click.echo(f"{r['events']} line(s) in {r['parts']} part(s): {outcomes}")
    for jid, why in r["failed_parts"].items():
        click.echo(f"part {jid} failed: {why}; import the file again to finish it (what it did stays, once)")


def _blocks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    block: list[Line] = []
    for line in lines:
        block.append(line)
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block


@click.command("run-due")
@click.option("--as-of", callback=parse_date, required=True, help="Run everything due up to this date.")
@click.option("--wait", is_flag=True, help="With KEEPWELL_REDIS_URL: wait for the jobs to finish.")
@json_option
@click.pass_obj
@handled
def run_due(obj: Obj, as_of: date, wait: bool, as_json: bool) -> None:
    """Period ends and resets, renewals, expiries, points expiry and reminders due by a date.
    Running it twice for the same date does nothing the second time. With KEEPWELL_REDIS_URL set
    the work is enqueued as RQ jobs (one per unit, deterministic ids) and this returns at once."""
    if obj.settings.redis_url:
        from ..jobs import enqueue

        summary = enqueue.run_due(obj.app, obj.settings, obj.company, as_of, wait)
        emit(summary, as_json, lambda s: click.echo(
            f"as of {s['as_of']}: {s['enqueued']} job(s) enqueued, {s['already_queued']} already queued"
            + (f", {len(s['failed'])} failed" if wait else "")))
        if summary["failed"]:
            sys.exit(1)
        return
    summary = due.run(obj.app, obj.company, as_of).to_dict()
    emit(summary, as_json, lambda s: click.echo(
        f"as of {s['as_of']}: {s['periods_closed']} period(s) closed, {s['points_expired']} point(s) expired, "
        f"{s['reminders_queued']} reminder(s) queued"))


@click.command()
@json_option
@click.pass_obj
@handled
def audit(obj: Obj, as_json: bool) -> None:
    """Recompute every balance from its ledger and check every reference between ledger rows;
    exit 1 on any drift."""
    report = audit_uc.audit(obj.app, obj.company)
    emit(report, as_json, lambda r: click.echo(
        f"{r['accounts_checked']} accounts, {r['lots_checked']} lots and their references checked: "
        + ("no drift" if r["ok"] else f"{len(r['drift'])} problem(s)")))
    if not report["ok"]:
        if not as_json:
            for d in report["drift"]:
                click.echo(json.dumps(d), err=True)
        sys.exit(1)


def redis_url(obj: Obj) -> str:
    if not obj.settings.redis_url:
        raise NotConfigured("KEEPWELL_REDIS_URL is not set: jobs run in-process (use `keepwell outbox deliver`)")
    return obj.settings.redis_url


COMMANDS = [events, run_due, audit]
