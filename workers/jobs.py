"""The jobs. Each takes plain values (company slug, ids, a due unit as a dict) and calls the core.

Every unit of due work is its own job with a deterministic id, and the work itself is keyed in
SQL (event keys), so a tick that runs twice, or two workers racing, change balances once.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import date, datetime, timedelta

from rq import Retry
from rq.job import Job, JobStatus

from keepwell.config import Settings
from keepwell.due import DueUnit

from . import queues

log = logging.getLogger("keepwell.workers")
DUE_RETRY = Retry(max=3, interval=[10, 30, 60])
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}

_app = None
_app_pid = None


def service():
    """One service (database pool, rules engine) per worker process, built after the fork."""
    global _app, _app_pid
    if _app is None or _app_pid != os.getpid():
        from keepwell.service import Keepwell

        _app, _app_pid = Keepwell.from_settings(Settings.from_env()), os.getpid()
    return _app


def channels():
    from keepwell.channels import ChannelSettings, channels_from

    return channels_from(ChannelSettings.from_env(), os.environ.get("KEEPWELL_WEBHOOK_SECRET", ""))


# --- the jobs ----------------------------------------------------------------------------------

def run_due_unit(company: str, unit: dict) -> dict:
    result = service().run_due_unit(DueUnit(**{**unit, "as_of": date.fromisoformat(unit["as_of"])}), company=company)
    enqueue_outbox(Settings.from_env().redis_url)
    return result


def deliver(message_id: int) -> dict:
    from keepwell import outbox

    outcome = outbox.deliver(service(), message_id, channels())
    if outcome.status == "retry":
        _schedule_retry(message_id)
    return {"message": message_id, "status": outcome.status, "detail": outcome.detail}


def tick(reschedule: bool = True) -> dict:
    """Enqueue everything due now for every company, and the outbox; then book the next tick."""
    url = Settings.from_env().redis_url
    enqueued = enqueue_due(url, None)
    sent = enqueue_outbox(url)
    if reschedule:
        seconds = int(os.environ.get("KEEPWELL_TICK_SECONDS", "60"))
        slot = int(datetime.now().timestamp()) // seconds + 1
        _enqueue_once(queues.queue(url, queues.DUE), tick, f"keepwell-tick-{slot}", at=timedelta(seconds=seconds))
    return {"due_jobs": enqueued, "outbox_jobs": sent}


# --- enqueueing --------------------------------------------------------------------------------

def job_id(kind: str, key: str) -> str:
    return f"{kind}-{hashlib.sha1(key.encode()).hexdigest()}"


def _enqueue_once(q, func, jid: str, *args, at: timedelta | None = None, retry: Retry | None = None, **kwargs) -> bool:
    """Enqueue under a deterministic id unless a live job has it already. A SET NX guard makes
    two tickers racing for the same id enqueue it once; were both to get through, the work
    itself is idempotent."""
    conn = q.connection
    if not conn.set(f"keepwell:enqueue:{jid}", 1, nx=True, ex=30):
        return False
    try:
        existing = Job.fetch(jid, connection=conn)
        if existing.get_status(refresh=True) in LIVE:
            return False
    except Exception:
        pass  # no such job (or expired): enqueue afresh
    options = {"job_id": jid, "retry": retry, "result_ttl": 86400, "failure_ttl": 7 * 86400, "description": jid}
    if at is not None:
        q.enqueue_in(at, func, *args, **options, **kwargs)
    else:
        q.enqueue(func, *args, **options, **kwargs)
    return True


def enqueue_due(url: str, as_of: date | None, companies: list[str] | None = None) -> list[str]:
    """One job per due unit per company (as of each company's local today when not given)."""
    app = service()
    q = queues.queue(url, queues.DUE)
    ids = []
    for slug in companies if companies is not None else app.company_slugs():
        day = as_of or app.run(slug, lambda c: c.local_date(datetime.now().astimezone()))
        for unit in app.due_plan(day, company=slug):
            jid = job_id("due", f"{slug}:{unit.key}")
            _enqueue_once(q, run_due_unit, jid, slug, unit.to_dict(), retry=DUE_RETRY)
            ids.append(jid)
    return ids


def enqueue_outbox(url: str) -> list[str]:
    from keepwell import db, outbox
    from keepwell.models import OutboxMessage

    app = service()
    with db.transaction(app.sessions) as session:
        due = [(mid, session.get(OutboxMessage, mid).attempts) for mid in outbox.due(session)]
    q = queues.queue(url, queues.OUTBOX)
    ids = []
    for mid, attempts in due:
        jid = f"deliver-{mid}-{attempts}"
        _enqueue_once(q, deliver, jid, mid)
        ids.append(jid)
    return ids


def _schedule_retry(message_id: int) -> None:
    from keepwell import db
    from keepwell.models import OutboxMessage

    url = Settings.from_env().redis_url
    if not url:
        return
    with db.transaction(service().sessions) as session:
        msg = session.get(OutboxMessage, message_id)
        due_at, attempts = msg.due_at, msg.attempts
    from datetime import timezone

    delay = (due_at if due_at.tzinfo else due_at.replace(tzinfo=timezone.utc)) - datetime.now(timezone.utc)
    _enqueue_once(queues.queue(url, queues.OUTBOX), deliver, f"deliver-{message_id}-{attempts}", message_id,
                  at=max(delay, timedelta(seconds=1)))
