"""Starting workers and looking at what they do: `keepwell worker` and `keepwell jobs ...`."""

from __future__ import annotations

from rq import Worker
from rq.job import Job
from rq.registry import (DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry,
                         StartedJobRegistry)

from . import jobs, queues


def work(url: str, burst: bool = False, name: str | None = None) -> bool:
    """Run an RQ worker with its scheduler on every Keepwell queue. A burst worker first
    enqueues what is due now, works until the queues are empty, then returns."""
    conn = queues.connection(url)
    jobs.tick(reschedule=not burst)
    worker = Worker([queues.queue(url, n) for n in queues.QUEUES], connection=conn, name=name)
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def status(url: str, dead_lettered: int) -> dict:
    conn = queues.connection(url)
    out = {"queued": 0, "started": 0, "finished": 0, "failed": 0, "scheduled": 0, "deferred": 0,
           "dead_lettered": dead_lettered, "queues": {}}
    for name in queues.QUEUES:
        q = queues.queue(url, name)
        row = {
            "queued": q.count,
            "started": StartedJobRegistry(queue=q).count,
            "finished": FinishedJobRegistry(queue=q).count,
            "failed": FailedJobRegistry(queue=q).count,
            "scheduled": ScheduledJobRegistry(queue=q).count,
            "deferred": DeferredJobRegistry(queue=q).count,
        }
        out["queues"][name] = row
        for k, v in row.items():
            out[k] += v
    out["workers"] = len(Worker.all(connection=conn))
    return out


def failed(url: str) -> list[dict]:
    rows = []
    for name in queues.QUEUES:
        q = queues.queue(url, name)
        registry = FailedJobRegistry(queue=q)
        for jid in registry.get_job_ids():
            job = Job.fetch(jid, connection=q.connection)
            exc = (job.latest_result().exc_string if job.latest_result() else job.exc_info) or ""
            rows.append({"id": jid, "queue": name, "function": job.func_name, "args": list(job.args),
                         "ended_at": job.ended_at.isoformat() if job.ended_at else None,
                         "error": exc.strip().splitlines()[-1] if exc.strip() else ""})
    return rows


def retry(url: str, job_ids: list[str] | None) -> list[str]:
    """Requeue failed jobs (all of them when no ids are given)."""
    done = []
    for name in queues.QUEUES:
        q = queues.queue(url, name)
        registry = FailedJobRegistry(queue=q)
        for jid in registry.get_job_ids():
            if job_ids is None or jid in job_ids:
                registry.requeue(jid)
                done.append(jid)
    return done


def wait(url: str, job_ids: list[str], timeout: float = 600.0) -> dict[str, str]:
    """Wait until every job has finished or failed; their final statuses."""
    import time

    conn = queues.connection(url)
    deadline = time.monotonic() + timeout
    while True:
        statuses = {}
        for jid in job_ids:
            try:
                statuses[jid] = Job.fetch(jid, connection=conn).get_status(refresh=True).value
            except Exception:
                statuses[jid] = "missing"
        if all(s in ("finished", "failed", "missing", "canceled", "stopped") for s in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            return statuses
        time.sleep(0.2)
