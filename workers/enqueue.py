"""Enqueueing: one job per unit of due work and per message to deliver, each under a
deterministic id, and the periodic tick that does it."""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from keepwell.infra.settings import Settings
from keepwell.usecases import Keepwell, companies, due, imports, messaging, report_files

from . import queues, tasks

LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def job_id(kind: str, key: str) -> str:
    return f"{kind}-{hashlib.sha1(key.encode()).hexdigest()}"


def due_retry(settings: Settings) -> Retry:
    """Retries of a failed unit of due work: one wait per retry (RQ repeats the last one)."""
    waits = list(settings.due_retry_seconds) or [10]
    return Retry(max=len(waits), interval=waits)


def enqueue_once(q: Queue, func: Callable[..., Any], jid: str, *args: Any, at: timedelta | None = None,
                 retry: Retry | None = None, timeout: int | None = None) -> bool:
    """Enqueue under a deterministic id unless a live job has it already. A SET NX guard makes
    two tickers racing for the same id enqueue it once; were both to get through, the work
    itself is idempotent.

    The guard is held only while deciding (were it to stay, work whose job had just failed
    could not be enqueued again, even by an operator's `run-due`). A failed job enqueued again
    leaves the failed registry: it is no longer a failure to report or to retry."""
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
        if status == JobStatus.SCHEDULED and existing is not None and _overdue(q, existing):
            # A retry whose time has come, left waiting because no scheduler is running (a
            # worker killed with SIGKILL keeps its scheduler lock for a while): run it now.
            ScheduledJobRegistry(queue=q).requeue(existing)
            return True
        if status in LIVE:
            return False
        if status == JobStatus.FAILED:
            FailedJobRegistry(queue=q).remove(existing)
        options: dict[str, Any] = {"job_id": jid, "retry": retry, "result_ttl": 86400, "failure_ttl": 7 * 86400,
                                   "description": jid}
        if timeout is not None:
            options["job_timeout"] = timeout
        if at is not None:
            q.enqueue_in(at, func, *args, **options)
        else:
            q.enqueue(func, *args, **options)
        return True
    finally:
        conn.delete(guard)


def _overdue(q: Queue, job: Job) -> bool:
    try:
        when = ScheduledJobRegistry(queue=q).get_scheduled_time(job)
    except Exception:  # no longer scheduled (taken meanwhile)
        return False
    return when <= datetime.now(UTC)


def enqueue_due(app: Keepwell, settings: Settings, url: str, as_of: date | None, only: list[str] | None = None,
                added: list[str] | None = None) -> list[str]:
    """One job per due unit per company (as of each company's local today when not given).
    Returns the ids of every job doing that work; `added`, when given, collects the ids that
    this call enqueued (the others were already queued or running)."""
    q = queues.queue(url, queues.DUE)
    retry = due_retry(settings)
    ids = []
    for slug in only if only is not None else companies.slugs(app):
        day = as_of or companies.today(app, slug)
        for unit in due.plan(app, slug, day):
            jid = job_id("due", f"{slug}:{unit.key}")
            if enqueue_once(q, tasks.run_due_unit, jid, slug, unit.to_dict(), retry=retry) and added is not None:
                added.append(jid)
            ids.append(jid)
    return ids


def enqueue_outbox(app: Keepwell, url: str) -> list[str]:
    q = queues.queue(url, queues.OUTBOX)
    ids = []
    for mid, attempts in messaging.due_messages(app):
        jid = f"deliver-{mid}-{attempts}"
        enqueue_once(q, tasks.deliver, jid, mid)
        ids.append(jid)
    return ids


def schedule_retry(app: Keepwell, settings: Settings, message_id: int) -> None:
    if not settings.redis_url:
        return
    due_at, attempts = messaging.message_due(app, message_id)
    delay = due_at - datetime.now(UTC)
    enqueue_once(queues.queue(settings.redis_url, queues.OUTBOX), tasks.deliver, f"deliver-{message_id}-{attempts}",
                 message_id, at=max(delay, timedelta(seconds=1)))


def ensure_tick(settings: Settings, url: str) -> bool:
    """Enqueue this time slot's tick (one per KEEPWELL_TICK_SECONDS, whichever worker is first).

    Every long-running worker calls this from its maintenance, so the ticks depend neither on a
    chain of scheduled jobs (lost with Redis's data) nor on RQ's scheduler (a worker killed with
    SIGKILL keeps its scheduler lock for a while)."""
    seconds = max(settings.tick_seconds, 1)
    slot = int(datetime.now().timestamp()) // seconds
    q = queues.queue(url, queues.DUE)
    if not q.connection.set(f"keepwell:tick:{slot}", 1, nx=True, ex=max(2 * seconds, 60)):
        return False
    jid = f"keepwell-tick-{slot}"
    q.enqueue(tasks.tick, job_id=jid, description=jid, result_ttl=max(10 * seconds, 600), failure_ttl=7 * 86400)
    return True


def run_due(app: Keepwell, settings: Settings, company: str, as_of: date, wait: bool) -> dict[str, Any]:
    """`keepwell run-due` with Redis: enqueue the company's due work (again, until nothing new is
    due, when waiting), and with `wait` wait for the jobs."""
    from .worker import wait as wait_for

    url = settings.redis_url
    assert url is not None
    summary: dict[str, Any] = {"as_of": as_of.isoformat(), "enqueued": 0, "already_queued": 0, "jobs": {}}
    while True:
        added: list[str] = []
        ids = enqueue_due(app, settings, url, as_of, [company], added)
        summary["enqueued"] += len(added)
        summary["already_queued"] += len(ids) - len(added)
        if not wait or not ids:
            break
        statuses = wait_for(url, ids)
        summary["jobs"].update(statuses)
        if any(s != "finished" for s in statuses.values()):
            break  # failed work stays due: do not spin on it
    summary["failed"] = sorted(j for j, s in summary["jobs"].items() if s != "finished")
    return summary


def import_parts(url: str, company: str, parts: list[list[imports.Line]]) -> list[str]:
    """One job per non-empty part of an import, each with time for its size. A part that fails
    is retried: the events it committed before failing come back as duplicates, with their
    first results, and change nothing."""
    q = queues.queue(url, queues.IMPORT)
    batch = uuid.uuid4().hex[:12]
    ids = []
    for n, part in enumerate(parts):
        if not part:
            continue
        jid = f"import-{batch}-{n}"
        q.enqueue(tasks.import_part, company, [ln.to_list() for ln in part], job_id=jid, description=jid,
                  job_timeout=IMPORT_SECONDS_BASE + len(part) // IMPORT_EVENTS_PER_SECOND_FLOOR,
                  retry=Retry(max=2, interval=[1, 5]), result_ttl=86400, failure_ttl=7 * 86400)
        ids.append(jid)
    return ids


IMPORT_SECONDS_BASE = 120  # a part's time limit: this, plus its size at the slowest rate we accept
IMPORT_EVENTS_PER_SECOND_FLOOR = 100


def import_results(url: str, job_ids: list[str], progress: Callable[[int, int], None] | None = None,
                   timeout: float | None = None) -> tuple[imports.ImportSummary, dict[str, str]]:
    """Wait for an import's jobs (reporting progress as parts finish); their summaries merged,
    and the reason of each part that failed for good."""
    import time

    conn = queues.connection(url)
    deadline = None if timeout is None else time.monotonic() + timeout
    done: dict[str, Job] = {}
    reported = -1
    while len(done) < len(job_ids):
        for jid in job_ids:
            if jid in done:
                continue
            job = Job.fetch(jid, connection=conn)
            if job.get_status(refresh=True) in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED,
                                                JobStatus.STOPPED):
                done[jid] = job
        if progress is not None and len(done) != reported:
            reported = len(done)
            progress(reported, len(job_ids))
        if len(done) < len(job_ids):
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(0.2)
    summary = imports.ImportSummary(parts=len(job_ids))
    failures = {}
    for jid in job_ids:
        job = done.get(jid)
        if job is None:
            failures[jid] = "still running (the wait timed out)"
        elif job.get_status() == JobStatus.FINISHED:
            summary.merge(imports.ImportSummary.from_dict(job.return_value()))
        else:
            from .worker import reason

            result = job.latest_result()
            failures[jid] = reason((result.exc_string if result else None) or job.exc_info or "") or "failed"
    return summary, failures


SIMULATION_SECONDS = 3600


def enqueue_simulation(url: str, company: str, drafts: list[dict[str, Any]], start: date, end: date,
                       stream: list[dict[str, Any]] | None) -> str:
    """A simulation as a background job; its id is what the company follows it by."""
    jid = f"sim-{uuid.uuid4().hex[:16]}"
    job = queues.queue(url, queues.SIMULATE).enqueue(
        tasks.simulate, company, drafts, start.isoformat(), end.isoformat(), stream, job_id=jid, description=jid,
        job_timeout=SIMULATION_SECONDS, result_ttl=86400, failure_ttl=86400,
        meta={"company": company, "progress": {"done": 0, "total": None}})
    return job.id


def simulation_status(url: str, company: str, jid: str) -> dict[str, Any] | None:
    """Where a background simulation stands, or None when there is no such job of this company."""
    from rq.exceptions import NoSuchJobError

    if not jid.startswith("sim-"):
        return None
    try:
        job = Job.fetch(jid, connection=queues.connection(url))
    except NoSuchJobError:
        return None
    if job.meta.get("company") != company:
        return None  # another company's job is no job of this one
    status = job.get_status(refresh=True)
    out: dict[str, Any] = {"id": jid, "status": str(status.value if hasattr(status, "value") else status),
                           "progress": job.meta.get("progress")}
    if status == JobStatus.FINISHED:
        answer = job.return_value() or {}
        if "error" in answer:
            out.update(status="failed", error=answer["error"])
        else:
            out["result"] = answer.get("report")
    elif status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        from .worker import reason

        result = job.latest_result()
        out["error"] = {"code": "internal_error", "message": reason(result.exc_string if result is not None else "")}
    return out


REPORT_FILE_SECONDS = 3600


def enqueue_report_file(url: str, company: str, file_id: str) -> bool:
    """The job that prepares a report file, under the file's id (once, however often asked)."""
    return enqueue_once(queues.queue(url, queues.REPORTS), tasks.report_file, f"report-file-{file_id}", company,
                        file_id, timeout=REPORT_FILE_SECONDS)


def enqueue_report_files(app: Keepwell, url: str) -> list[str]:
    """The tick's part: a job for every report file waiting (queued, or whose run stopped: a
    job lost with Redis's data, a worker killed), unless one is queued or running already."""
    ids = []
    for company, file_id in report_files.waiting(app):
        enqueue_report_file(url, company, file_id)
        ids.append(f"report-file-{file_id}")
    return ids


def prepare_report_file(app: Keepwell, redis_url: str | None, company: str, file_id: str) -> None:
    """Start preparing a report file the admin queued: a job on the workers when Redis is
    configured, else (the embedded default) a thread of this process, on its service."""
    if redis_url:
        enqueue_report_file(redis_url, company, file_id)
        return
    threading.Thread(target=_prepare_here, args=(app, company, file_id), name=f"report-file-{file_id}",
                     daemon=True).start()


def _prepare_here(app: Keepwell, company: str, file_id: str) -> None:
    try:
        report_files.run(app, company, file_id)
    except Exception:  # the row says it failed; the log says why
        logging.getLogger("keepwell.reports").exception("report file %s failed", file_id)
