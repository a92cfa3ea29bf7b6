"""Report files: a report prepared as a CSV, Excel or PDF file by a job, for the admin's "Your
report files" list (its progress, then Download).

`queue` is one transaction; `run` — what the job does — orchestrates several on purpose: it
claims the row, works out the figures, reports its progress per section as it writes the
file, and stores the file together with marking the row done. With Redis the job runs on an RQ
worker (keepwell-reports queue; the workers' tick also takes up queued rows a lost job left
behind); in the embedded default it runs in a thread of the web process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..infra.context import Ctx
from ..kernel.errors import KeepwellError
from ..reporting import files
from ..reporting import report_files as rf
from ..reporting.files import ReportFile
from .app import Keepwell, reading, use_case

__all__ = ["queue", "listing", "get", "content", "run", "waiting", "FORMATS", "KEEP_DAYS"]

FORMATS = rf.FORMATS
KEEP_DAYS = rf.KEEP_DAYS
PROGRESS_EVERY = 0.5  # seconds between two progress writes of one run (the last always written)
log = logging.getLogger("keepwell.reports")


@use_case
def queue(ctx: Ctx, name: str, fmt: str, by: str, **filters: Any) -> dict[str, Any]:
    """Ask for report `name` as a file (csv, xlsx or pdf) for these filters, in `by`'s name;
    the filters are checked now. The row is queued: a job prepares it (`run`)."""
    return rf.to_dict(rf.queue(ctx, name, fmt, filters, by))


@use_case
def again(ctx: Ctx, file_id: str, by: str) -> dict[str, Any]:
    """The same report file asked for again (one that failed, say)."""
    old = rf.get(ctx, file_id)
    return rf.to_dict(rf.queue(ctx, old.report, old.format, dict(old.params), by))


@reading
def listing(ctx: Ctx, by: str | None = None, ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The company's report files (one user's, or these ids), newest first; expired ones are gone."""
    return rf.listing(ctx, by, ids)


@reading
def get(ctx: Ctx, file_id: str) -> dict[str, Any]:
    return rf.to_dict(rf.get(ctx, file_id))


@reading
def content(ctx: Ctx, file_id: str) -> ReportFile:
    """The file of a report file that is done (NotFound otherwise, and for another company's)."""
    return rf.content(ctx, file_id)


def waiting(app: Keepwell) -> list[tuple[str, str]]:
    """(company, file id) of the report files a job should take up, every company's."""
    return app.run_platform(rf.waiting, read_only=True)


def run(app: Keepwell, company: str, file_id: str, clock: Callable[[], float] = time.monotonic,
        stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Prepare a queued report file (the job). Running it again for a file that is done changes
    nothing; for one whose run stopped part way, it starts again. A reason of the report's (a
    plan removed since it was asked for) fails the row saying so; any other error fails it too
    and is raised, for the worker's record. `stage` is told "report:written" when the file is
    made and not yet stored (the jobs' test hooks)."""
    claimed = app.run(company, lambda ctx: rf.claim(ctx, file_id))
    if claimed is None:
        return _status(app, company, file_id)
    c: rf.Claim = claimed
    try:
        report = app.run(company, lambda ctx: rf.build(ctx, c), read_only=True)
        total = files.steps(report)
        app.run(company, lambda ctx: rf.progress(ctx, c, 0, total))
        last = [clock()]

        def progress(done: int, steps: int) -> None:
            if done < steps and clock() - last[0] < PROGRESS_EVERY:
                return
            last[0] = clock()
            app.run(company, lambda ctx: rf.progress(ctx, c, done, steps))

        made = files.render(report, c.format, progress)
        if stage is not None:
            stage("report:written")
        app.run(company, lambda ctx: rf.finish(ctx, c, made, total))
    except KeepwellError as exc:
        said = _sentence(exc)
        app.run(company, lambda ctx: rf.fail(ctx, c, said))
    except Exception as exc:
        said = (f"Something went wrong while preparing the file ({type(exc).__name__}). Prepare it again; "
                "if it fails again, tell your Keepwell administrator.")
        try:
            app.run(company, lambda ctx: rf.fail(ctx, c, said))
        except Exception:  # the database away too: the row stays running, and is taken up again
            log.exception("report file %s: could not record the failure", file_id)
        raise
    return _status(app, company, file_id)


def _status(app: Keepwell, company: str, file_id: str) -> dict[str, Any]:
    try:
        return get(app, company, file_id)
    except KeepwellError:
        return {"id": file_id, "status": "gone"}


def _sentence(exc: KeepwellError) -> str:
    problems = getattr(exc, "problems", None)
    text = "; ".join(f"{p.path}: {p.message}" for p in problems) if problems else exc.message
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else "It could not be made."
