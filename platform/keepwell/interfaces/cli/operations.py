"""Operations: workers, the jobs on Redis, the outbox, and the company's wording of messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ...kernel.errors import InvalidDocument
from ...usecases import clock, messaging, webhooks
from ..wiring import channels
from .common import Obj, emit, handled, json_option, parse_date
from .events import redis_url

CHANNELS = click.Choice(["email", "sms", "webhook"])


@click.command()
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.option("--name", default=None, help="Worker name (default: RQ's).")
@click.pass_obj
@handled
def worker(obj: Obj, burst: bool, name: str | None) -> None:
    """Run an RQ worker (with its scheduler) on KEEPWELL_REDIS_URL. Run as many as you like."""
    from ..jobs import worker as w

    redis_url(obj)
    w.work(obj.settings, burst=burst, name=name)


@click.group()
def jobs() -> None:
    """Background jobs on Redis: status, failures, retries."""


@jobs.command("status")
@json_option
@click.pass_obj
@handled
def jobs_status(obj: Obj, as_json: bool) -> None:
    """Counts of queued, started, finished, failed, scheduled and dead-lettered jobs."""
    from ..jobs import worker as w

    url = redis_url(obj)
    data = w.status(url, messaging.counts(obj.app).get("dead", 0))
    emit(data, as_json, lambda d: click.echo(
        "  ".join(f"{k} {d[k]}" for k in ("queued", "started", "finished", "failed", "scheduled", "dead_lettered",
                                           "workers"))))


@jobs.command("failed")
@json_option
@click.pass_obj
@handled
def jobs_failed(obj: Obj, as_json: bool) -> None:
    """Failed jobs with the reason."""
    from ..jobs import worker as w

    rows = w.failed(redis_url(obj))
    emit(rows, as_json, lambda rows: [click.echo(f"{r['id']}  {r['function']}  {r['error']}") for r in rows])


@jobs.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Requeue every failed job.")
@click.pass_obj
@handled
def jobs_retry(obj: Obj, job_ids: tuple[str, ...], all_: bool) -> None:
    """Requeue failed jobs."""
    from ..jobs import worker as w

    if not job_ids and not all_:
        raise InvalidDocument.field("JOB_IDS", "name job ids, or pass --all", "name job ids, or pass --all")
    for jid in w.retry(redis_url(obj), None if all_ else list(job_ids)):
        click.echo(jid)


@click.group()
def outbox() -> None:
    """Messages leaving the system: email, SMS, webhooks."""


@outbox.command("list")
@click.option("--status", default=None, help="pending, retry, sending, sent, skipped or dead.")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_obj
@handled
def outbox_list(obj: Obj, status: str | None, limit: int, as_json: bool) -> None:
    rows = messaging.listing(obj.app, obj.company, status, limit)
    emit(rows, as_json, lambda rows: [click.echo(
        f"{r['id']:>6} {r['status']:<8} {r['channel']:<7} {r['template'] or '':<28} tries {r['attempts']}  "
        f"{r['last_error'] or ''}") for r in rows])


@outbox.command("replay")
@click.argument("message_ids", nargs=-1, type=int)
@click.option("--from", "start", callback=parse_date, default=None,
              help="With --to: every dead or skipped message queued from this day (YYYY-MM-DD, company time).")
@click.option("--to", "end", callback=parse_date, default=None, help="The last day of the range (included).")
@click.option("--channel", type=click.Choice(["email", "sms", "webhook"]), default=None,
              help="Only this channel's messages (with --from/--to).")
@click.pass_obj
@handled
def outbox_replay(obj: Obj, message_ids: tuple[int, ...], start: Any, end: Any, channel: str | None) -> None:
    """Put dead-lettered (or skipped) messages back in line: the ones named, or all of a time
    range (after a receiver's outage)."""
    if bool(start) != bool(end) or (start is None and not message_ids) or (start is not None and message_ids):
        raise click.UsageError("name the messages (IDS...), or give a range with both --from and --to")
    if start is not None:
        ids = messaging.replay_range(obj.app, obj.company, start, end, channel)
        click.echo(f"{len(ids)} message(s) put back in line" + (f": {', '.join(map(str, ids))}" if ids else ""))
        return
    for mid in message_ids:
        messaging.replay(obj.app, obj.company, mid)
        click.echo(f"{mid} pending")


@outbox.command("deliver")
@json_option
@click.pass_obj
@handled
def outbox_deliver(obj: Obj, as_json: bool) -> None:
    """Deliver every message due now, in this process (the embedded mode's worker)."""
    results = [o.__dict__ for o in messaging.deliver_due(obj.app, channels(obj.settings))]
    emit(results, as_json, lambda rows: [click.echo(f"{r['message_id']:>6} {r['status']} {r['detail']}") for r in rows])


@click.group()
def templates() -> None:
    """The company's own wording of notification templates (overrides the shipped and ruleset ones)."""


@templates.command("set")
@click.argument("name")
@click.option("--channel", type=CHANNELS, default="email", show_default=True)
@click.option("--subject", default=None, help="Email subject (Jinja2).")
@click.option("--body-file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="File with the body (Jinja2).")
@click.pass_obj
@handled
def templates_set(obj: Obj, name: str, channel: str, subject: str | None, body_file: str) -> None:
    """Set the company's own wording for template NAME on a channel; checked by rendering it."""
    messaging.set_template(obj.app, obj.company, name, channel, subject, Path(body_file).read_text(encoding="utf-8"))
    click.echo(f"{name} ({channel})")


@templates.command("list")
@json_option
@click.pass_obj
@handled
def templates_list(obj: Obj, as_json: bool) -> None:
    """Shipped templates and the company's overrides."""
    rows: list[dict[str, Any]] = messaging.templates_list(obj.app, obj.company)
    emit(rows, as_json, lambda rows: [click.echo(f"{r['name']:<28} {r['channel']:<8} {r['source']}") for r in rows])


@templates.command("remove")
@click.argument("name")
@click.option("--channel", type=CHANNELS, default="email", show_default=True)
@click.pass_obj
@handled
def templates_remove(obj: Obj, name: str, channel: str) -> None:
    """Go back to the shipped (or ruleset) wording."""
    messaging.remove_template(obj.app, obj.company, name, channel)
    click.echo(f"{name} ({channel}) removed")


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook endpoints: URLs your integrations receive events at (membership.enrolled,
    allowance.charged...), signed with the company's webhook secret."""


def _types(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def _endpoint_line(e: dict[str, Any]) -> None:
    state = "on " if e["enabled"] else "OFF"
    click.echo(f"{e['id']:>5} {state} {e['url']}  {', '.join(e['event_types'])}"
               + (f"  ({e['disabled_reason']})" if e["disabled_reason"] else ""))


@webhooks_group.command("add")
@click.argument("url")
@click.option("--events", "event_types", required=True,
              help=f"Comma-separated event types: {', '.join(webhooks.TYPES)}.")
@click.option("--description", default=None, help="What receives them (\"bookkeeping sync\").")
@json_option
@click.pass_obj
@handled
def webhooks_add(obj: Obj, url: str, event_types: str, description: str | None, as_json: bool) -> None:
    """Send events of these types to URL."""
    emit(webhooks.add(obj.app, obj.company, url, _types(event_types), description), as_json, _endpoint_line)


@webhooks_group.command("list")
@json_option
@click.pass_obj
@handled
def webhooks_list(obj: Obj, as_json: bool) -> None:
    emit(webhooks.listing(obj.app, obj.company), as_json, lambda rows: [_endpoint_line(e) for e in rows])


@webhooks_group.command("update")
@click.argument("endpoint_id", type=int)
@click.option("--url", default=None)
@click.option("--events", "event_types", default=None, help="Comma-separated event types (replaces the list).")
@click.option("--description", default=None)
@click.option("--enable/--disable", "enabled", default=None,
              help="Turn the endpoint back on (after a 410 or days of failures), or off.")
@json_option
@click.pass_obj
@handled
def webhooks_update(obj: Obj, endpoint_id: int, url: str | None, event_types: str | None, description: str | None,
                    enabled: bool | None, as_json: bool) -> None:
    """Change an endpoint. What it missed while off is replayed with `outbox replay --from --to`."""
    emit(webhooks.update(obj.app, obj.company, endpoint_id, url, _types(event_types) if event_types is not None
                         else None, description, enabled), as_json, _endpoint_line)


@webhooks_group.command("remove")
@click.argument("endpoint_id", type=int)
@click.pass_obj
@handled
def webhooks_remove(obj: Obj, endpoint_id: int) -> None:
    webhooks.remove(obj.app, obj.company, endpoint_id)
    click.echo(f"{endpoint_id} removed")


@webhooks_group.command("deliveries")
@click.argument("endpoint_id", type=int)
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_obj
@handled
def webhooks_deliveries(obj: Obj, endpoint_id: int, limit: int, as_json: bool) -> None:
    """The endpoint's delivery log: each message and every attempt (outcome, time taken)."""
    rows = webhooks.deliveries(obj.app, obj.company, endpoint_id, limit)
    emit(rows, as_json, lambda rows: [click.echo(
        f"{r['id']:>6} {r['status']:<8} {r['type']:<22} tries {r['attempts']}  "
        f"{(r['history'][-1]['detail'] if r['history'] else '')}") for r in rows])


@click.group("clock")
def clock_group() -> None:
    """The company's test clock (a test installation only, KEEPWELL_MODE=test): rehearse months of
    renewals, expiries and reminders in minutes."""


def _clock_line(d: dict[str, Any]) -> None:
    click.echo(f"{d['company']}: {d['now']} ({'test clock' if d['test_clock'] else 'real time'})")


@clock_group.command("show")
@json_option
@click.pass_obj
@handled
def clock_show(obj: Obj, as_json: bool) -> None:
    emit(clock.show(obj.app, obj.company), as_json, _clock_line)


@clock_group.command("advance")
@click.option("--to", "to", callback=parse_date, required=True, help="The day to move on to (company time).")
@json_option
@click.pass_obj
@handled
def clock_advance(obj: Obj, to: Any, as_json: bool) -> None:
    """Move the company's clock on to the start of a day, doing everything that fell due meanwhile."""
    out = clock.advance(obj.app, obj.company, to, obj.settings.mode)
    emit(out, as_json, lambda d: click.echo(f"{obj.company}: {d['now']}; due work: {d['due']}"))


@clock_group.command("reset")
@json_option
@click.pass_obj
@handled
def clock_reset(obj: Obj, as_json: bool) -> None:
    """Back to the real time."""
    emit(clock.reset(obj.app, obj.company, obj.settings.mode), as_json, _clock_line)


COMMANDS = [worker, jobs, outbox, templates, webhooks_group, clock_group]
