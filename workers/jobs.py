"""The jobs. Each takes plain values (company slug, ids, a due unit as a dict) and calls the core.

Every unit of due work is its own job with a deterministic id, and the work itself is keyed in
SQL (event keys), so a tick that runs twice, or two workers racing, change balances once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from rq import Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from keepwell.config import Settings
from keepwell.due import DueUnit

from . import queues

log = logging.getLogger("keepwell.workers")
DUE_RETRY = Retry(max=3, interval=[10, 30, 60])
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}

_app = None
_app_key = None


def service():
    """One service (database pool, rules engine) per worker process, built after the fork, and
    for the database the environment names now (a process that runs `run-due` for one database
    and then another must not plan the second from the first)."""
    global _app, _app_key
    settings = Settings.from_env()
    key = (os.getpid(), settings.database_url)
    if _app is None or _app_key != key:
        from keepwell.service import Keepwell

        if _app is not None and _app_key[0] == key[0]:
            _app.close()  # same process, another database: the old pool is ours to close
        _app, _app_key = Keepwell.from_settings(settings), key
    return _app


def close_service() -> None:
    """Close this process's service (its database pool), e.g. when an in-process caller is done."""
    global _app, _app_key
    if _app is not None and _app_key[0] == os.getpid():
        _app.close()
    _app = _app_key = None


def channels():
    from keepwell.channels import ChannelSettings, channels_from

    return channels_from(ChannelSettings.from_env(), os.environ.get("KEEPWELL_WEBHOOK_SECRET", ""))


# --- the jobs ----------------------------------------------------------------------------------

def run_due_unit(company: str, unit: dict) -> dict:
    _fault("due:before_work")
    app = service()
    with _fault_before_commit(app, "due:before_commit"):
        result = app.run_due_unit(DueUnit(**{**unit, "as_of": date.fromisoformat(unit["as_of"])}), company=company)
    _fault("due:after_commit")
    enqueue_outbox(Settings.from_env().redis_url)
    return result


def deliver(message_id: int) -> dict:
    from keepwell import outbox

    outcome = outbox.deliver(service(), message_id, _with_fault_hooks(channels()))
    if outcome.status == "retry":
        _schedule_retry(message_id)
    return {"message": message_id, "status": outcome.status, "detail": outcome.detail}


def tick() -> dict:
    """Enqueue everything due now for every company, and the outbox."""
    url = Settings.from_env().redis_url
    enqueued = enqueue_due(url, None)
    sent = enqueue_outbox(url)
    return {"due_jobs": enqueued, "outbox_jobs": sent}


def tick_seconds() -> int:
    return max(int(os.environ.get("KEEPWELL_TICK_SECONDS", "60")), 1)


def ensure_tick(url: str) -> bool:
    """Enqueue this time slot's tick (one per KEEPWELL_TICK_SECONDS, whichever worker is first).

    Every long-running worker calls this from its maintenance, so the ticks depend neither on a
    chain of scheduled jobs (lost with Redis's data: after a Redis restart ticks stopped for
    good) nor on RQ's scheduler (a worker killed with SIGKILL keeps its scheduler lock for a
    minute, and a restarted worker only tries again at its next maintenance, ten minutes on)."""
    seconds = tick_seconds()
    slot = int(datetime.now().timestamp()) // seconds
    q = queues.queue(url, queues.DUE)
    if not q.connection.set(f"keepwell:tick:{slot}", 1, nx=True, ex=max(2 * seconds, 60)):
        return False
    jid = f"keepwell-tick-{slot}"
    q.enqueue(tick, job_id=jid, description=jid, result_ttl=max(10 * seconds, 600), failure_ttl=7 * 86400)
    return True


# --- fault injection (tests only) ----------------------------------------------------------------
#
# The reliability tests kill a worker at each stage of a job (tests/test_reliability_faults.py).
# To reach a stage deterministically, KEEPWELL_FAULT_STAGE names one of FAULT_STAGES and
# KEEPWELL_FAULT_FILE a file that does not exist yet: the first work horse to reach that stage
# creates the file (so only one job, once, is affected) and then waits there, holding whatever it
# holds (an open transaction, a claimed message), until the test SIGKILLs it with its worker.
# Unset (always, outside those tests), the hooks do nothing.

FAULT_STAGES = (
    "due:before_work",     # a due job taken from the queue, nothing done yet
    "due:before_commit",   # its work done and flushed, the transaction still open
    "due:after_commit",    # committed; the outbox not enqueued, the job not marked finished
    "deliver:before_send",  # a message claimed (committed as `sending`), not sent yet
    "deliver:after_send",  # sent to the channel, not yet marked sent
)


def _fault(stage: str) -> bool:
    if os.environ.get("KEEPWELL_FAULT_STAGE") != stage or not os.environ.get("KEEPWELL_FAULT_FILE"):
        return False
    try:
        fd = os.open(os.environ["KEEPWELL_FAULT_FILE"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False  # fired once already
    os.write(fd, f"{os.getpid()} {stage}\n".encode())
    os.close(fd)
    log.warning("fault injection: stopped at %s, waiting to be killed", stage)
    while True:
        time.sleep(3600)


@contextmanager
def _fault_before_commit(app, stage: str):
    if os.environ.get("KEEPWELL_FAULT_STAGE") != stage:
        yield
        return
    import sqlalchemy as sa

    def before_commit(session):
        session.flush()
        _fault(stage)

    sa.event.listen(app.sessions, "before_commit", before_commit)
    try:
        yield
    finally:
        sa.event.remove(app.sessions, "before_commit", before_commit)


def _with_fault_hooks(chans: dict) -> dict:
    """The channels, with the deliver:before_send / deliver:after_send hooks around `send`."""
    if not os.environ.get("KEEPWELL_FAULT_STAGE", "").startswith("deliver:"):
        return chans
    return {name: _FaultyChannel(ch) for name, ch in chans.items()}


class _FaultyChannel:
    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name

    def with_secret(self, secret: str):
        return _FaultyChannel(self.inner.with_secret(secret)) if hasattr(self.inner, "with_secret") else self

    def send(self, message):
        _fault("deliver:before_send")
        receipt = self.inner.send(message)
        _fault("deliver:after_send")
        return receipt


# --- enqueueing --------------------------------------------------------------------------------

def job_id(kind: str, key: str) -> str:
    return f"{kind}-{hashlib.sha1(key.encode()).hexdigest()}"


def _enqueue_once(q, func, jid: str, *args, at: timedelta | None = None, retry: Retry | None = None, **kwargs) -> bool:
    """Enqueue under a deterministic id unless a live job has it already. A SET NX guard makes
    two tickers racing for the same id enqueue it once; were both to get through, the work
    itself is idempotent.

    The guard is held only while deciding (it used to stay for 30 s, so work whose job had just
    failed could not be enqueued again, even by an operator's `run-due`, which then reported
    the old failure). A failed job enqueued again leaves the failed registry: it is no longer a
    failure to report or to retry."""
    conn = q.connection
    guard = f"keepwell:enqueue:{jid}"
    if not conn.set(guard, 1, nx=True, ex=30):
        return False
    try:
        try:
            existing = Job.fetch(jid, connection=conn)
            status = existing.get_status(refresh=True)
        except Exception:
            existing = status = None  # no such job (or expired): enqueue afresh
        if status in LIVE:
            return False
        if status == JobStatus.FAILED:
            FailedJobRegistry(queue=q).remove(existing)
        options = {"job_id": jid, "retry": retry, "result_ttl": 86400, "failure_ttl": 7 * 86400, "description": jid}
        if at is not None:
            q.enqueue_in(at, func, *args, **options, **kwargs)
        else:
            q.enqueue(func, *args, **options, **kwargs)
        return True
    finally:
        conn.delete(guard)


def enqueue_due(url: str, as_of: date | None, companies: list[str] | None = None, added: list[str] | None = None) -> list[str]:
    """One job per due unit per company (as of each company's local today when not given).
    Returns the ids of every job doing that work; `added`, when given, collects the ids that
    this call enqueued (the others were already queued or running)."""
    app = service()
    q = queues.queue(url, queues.DUE)
    ids = []
    for slug in companies if companies is not None else app.company_slugs():
        day = as_of or app.run(slug, lambda c: c.local_date(datetime.now().astimezone()))
        for unit in app.due_plan(day, company=slug):
            jid = job_id("due", f"{slug}:{unit.key}")
            if _enqueue_once(q, run_due_unit, jid, slug, unit.to_dict(), retry=DUE_RETRY) and added is not None:
                added.append(jid)
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
