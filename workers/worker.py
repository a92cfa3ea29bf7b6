"""Starting workers and looking at what they do: `keepwell worker` and `keepwell jobs ...`."""

from __future__ import annotations

from typing import Any

from rq import Worker
from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from keepwell.infra.logs import mask_card_numbers
from keepwell.infra.settings import Settings

from . import enqueue, queues, tasks


class KeepwellWorker(Worker):
    """RQ's worker, with two differences:

    - its maintenance also keeps Keepwell's periodic tick going (`enqueue.ensure_tick`), and
      runs every tick interval rather than RQ's ten minutes, so a scheduler whose lock a crashed
      worker held is started again soon;
    - a job's heartbeat lasts the monitoring interval plus a grace that is a setting
      (KEEPWELL_JOB_HEARTBEAT_GRACE_SECONDS; RQ fixes it at 60 s): the job of a worker that died
      is taken for abandoned, and given back, that long after its last heartbeat."""

    def __init__(self, *args: Any, settings: Settings, tick_url: str | None = None, **kwargs: Any):
        super().__init__(*args, job_monitoring_interval=settings.job_monitoring_seconds, **kwargs)
        self.settings = settings
        self.tick_url = tick_url

    def subscribe(self) -> None:
        # RQ listens for its commands with a 60 s wait; once it has unsubscribed at shutdown, that
        # wait runs to its end before the listener stops, so a stopped worker could take a minute
        # to exit (seen when `systemctl stop` or a benchmark sends SIGTERM). A 1 s wait ends it at once.
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=1, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)

    def get_heartbeat_ttl(self, job: Job) -> int:
        grace = max(self.settings.job_heartbeat_grace_seconds, 1)
        if job.timeout and job.timeout > 0:
            remaining = job.timeout - self.current_job_working_time
            return int(min(remaining, self.job_monitoring_interval)) + grace
        return self.job_monitoring_interval + grace

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        if self.tick_url:
            try:
                enqueue.ensure_tick(self.settings, self.tick_url)
            except Exception:  # the database or Redis away for a moment: the next maintenance tries again
                self.log.exception("Worker %s: could not enqueue the tick", self.name)


def work(settings: Settings, burst: bool = False, name: str | None = None) -> bool:
    """Run an RQ worker with its scheduler on every Keepwell queue. A burst worker first
    enqueues what is due now, works until the queues are empty, then returns; a long-running
    one enqueues a tick every KEEPWELL_TICK_SECONDS from its maintenance."""
    mask_card_numbers()
    url = settings.redis_url
    assert url is not None
    conn = queues.connection(url)
    qs = [queues.queue(url, n) for n in queues.QUEUES]
    if burst:
        tasks.tick()
        worker = KeepwellWorker(qs, connection=conn, name=name, settings=settings)
    else:
        seconds = max(settings.tick_seconds, 1)
        # Maintenance runs between dequeues: wait for jobs at most half a tick at a time.
        worker = KeepwellWorker(qs, connection=conn, name=name, settings=settings, tick_url=url,
                                maintenance_interval=seconds, worker_ttl=15 + max(seconds // 2, 1))
    return bool(worker.work(burst=burst, with_scheduler=True, logging_level="INFO"))


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
                         "error": reason(exc)})
    return rows


def reason(exc_string: str) -> str:
    """The exception line of a job's traceback ("Type: message"). Not simply the last line: a
    multi-line message (SQLAlchemy's ends with "(Background on this error at: ...)") would hide it."""
    lines = exc_string.strip().splitlines()
    last_tb = max(
        (i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")), default=-1
    )
    for line in lines[last_tb + 1:]:
        if line.strip() and not line[0].isspace():
            return line
    return lines[-1] if lines else ""


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
