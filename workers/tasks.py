"""The jobs. Each takes plain values (company slug, ids, a due unit as a dict) and calls one use
case. Every unit of due work is its own job with a deterministic id, and the work itself is
keyed in SQL (event keys), so a tick that runs twice, or two workers racing, change balances
once.

The worker process is a composition root: it reads the settings when a job runs (after the
fork) and keeps one service (database pool, rules engine) per process and database.
"""

from __future__ import annotations

import os
import threading
from contextlib import nullcontext
from typing import Any

from keepwell.infra.settings import Settings
from keepwell.interfaces.wiring import channels as channels_for
from keepwell.interfaces.wiring import open_app
from keepwell.kernel.errors import KeepwellError
from keepwell.usecases import Keepwell, due, imports, messaging, report_files
from keepwell.usecases.due import DueUnit

from . import hooks

_app: Keepwell | None = None
_app_key: tuple[int, str] | None = None
_lock = threading.Lock()  # threads of one process (an in-process caller) share the one service


def settings() -> Settings:
    return Settings.from_env()


def keepwell() -> Keepwell:
    """One service per worker process, built after the fork, and for the database the settings
    name now (a process that runs `run-due` for one database and then another must not plan the
    second from the first)."""
    global _app, _app_key
    key = (os.getpid(), settings().database_url)
    with _lock:
        if _app is None or _app_key != key:
            if _app is not None and _app_key is not None and _app_key[0] == key[0]:
                _app.close()  # same process, another database: the old pool is ours to close
            _app, _app_key = open_app(settings()), key
        return _app


def close() -> None:
    """Close this process's service (its database pool), e.g. when an in-process caller is done."""
    global _app, _app_key
    with _lock:
        if _app is not None and _app_key is not None and _app_key[0] == os.getpid():
            _app.close()
        _app = _app_key = None


def run_due_unit(company: str, unit: dict[str, str]) -> dict[str, Any]:
    hooks.stage("due:before_work")
    app = keepwell()
    hold = app.database.before_commit(lambda: hooks.stage("due:before_commit")) if hooks.installed() else nullcontext()
    with hold:
        result = due.run_unit(app, company, DueUnit.from_dict(unit))
    hooks.stage("due:after_commit")
    url = settings().redis_url
    if url:
        from .enqueue import enqueue_outbox

        enqueue_outbox(app, url)
    return result


def import_part(company: str, lines: list[list[Any]]) -> dict[str, Any]:
    """One part of `keepwell events import`: its customers' events, in the file's order."""
    summary = imports.import_part(keepwell(), company, [imports.Line.from_list(v) for v in lines])
    return summary.to_dict()


def simulate(company: str, drafts: list[dict[str, Any]], start: str, end: str,
             stream: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A simulation too large for a web request; its progress is kept in the job's meta."""
    from datetime import date

    from rq import get_current_job

    from keepwell.usecases import simulation

    job = get_current_job()

    def progress(done: int, total: int) -> None:
        if job is not None:
            job.meta["progress"] = {"done": done, "total": total}
            job.save_meta()

    try:
        return {"report": simulation.simulate(keepwell(), company, drafts, date.fromisoformat(start),
                                              date.fromisoformat(end), stream, simulation.BACKGROUND_LIMITS, progress)}
    except KeepwellError as exc:  # the request's fault (an event that cannot be replayed): said, not retried
        return {"error": exc.to_dict()}


def report_file(company: str, file_id: str) -> dict[str, Any]:
    """Prepare a report file the admin asked for; its progress goes to its row."""
    return report_files.run(keepwell(), company, file_id, stage=hooks.stage)


def deliver(message_id: int) -> dict[str, Any]:
    app = keepwell()
    outcome = messaging.deliver(app, message_id, _staged(channels_for(settings())))
    if outcome.status == "retry":
        from .enqueue import schedule_retry

        schedule_retry(app, settings(), message_id)
    return {"message": message_id, "status": outcome.status, "detail": outcome.detail}


def tick() -> dict[str, Any]:
    """Enqueue everything due now for every company, the outbox, and the report files waiting."""
    from .enqueue import enqueue_due, enqueue_outbox, enqueue_report_files

    app, url = keepwell(), settings().redis_url
    assert url is not None
    return {"due_jobs": enqueue_due(app, settings(), url, None), "outbox_jobs": enqueue_outbox(app, url),
            "report_jobs": enqueue_report_files(app, url)}


def _staged(chans: dict[str, Any]) -> dict[str, Any]:
    """The channels, with the deliver stages around `send` when a hook looks in."""
    if not hooks.installed():
        return chans
    return {name: _StagedChannel(ch) for name, ch in chans.items()}


class _StagedChannel:
    def __init__(self, inner: Any):
        self.inner = inner
        self.name = inner.name

    def with_secret(self, secret: str) -> Any:
        return _StagedChannel(self.inner.with_secret(secret)) if hasattr(self.inner, "with_secret") else self

    def send(self, message: Any) -> str:
        hooks.stage("deliver:before_send")
        receipt: str = self.inner.send(message)
        hooks.stage("deliver:after_send")
        return receipt
