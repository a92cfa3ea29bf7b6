"""Report files: a report prepared as a CSV, Excel or PDF file by a job (an RQ worker, or a
thread of the web process in the embedded default), with its progress on the row, so that the
admin can show "Your report files" and a Download button once the file is ready.

A run is fenced by its attempt number: `claim` starts attempt n, and only attempt n may report
progress, store the file or fail it. The file is stored in the same transaction that marks the
row done, so a job that crashes leaves the row running (taken up again: `claim` accepts it) or
failed, never half-written. Rows expire `KEEP_DAYS` after they were asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, undefer

from ..infra.context import Ctx
from ..infra.tables import aware, utcnow
from ..kernel.errors import InvalidDocument, NotFound
from ..kernel.ids import new_id
from . import catalog, files
from .models import ReportFileRow

FORMATS = ("csv", "xlsx", "pdf")
FORMAT_NAMES = {"csv": "CSV", "xlsx": "Excel", "pdf": "PDF"}
KEEP_DAYS = 7
MAX_ATTEMPTS = 3  # a job that keeps stopping part way (its worker killed each time) gives up after this
STALE = timedelta(minutes=5)  # running with no word for this long: its worker is taken for gone
LISTED = 20


@dataclass(frozen=True)
class Claim:
    file_id: str
    attempt: int
    report: str
    params: dict[str, Any]
    format: str


def _now() -> datetime:
    return utcnow()


def queue(ctx: Ctx, name: str, fmt: str, given: dict[str, Any], by: str) -> ReportFileRow:
    """A report file to prepare: the filters checked now (an error names its field), the row
    queued; expired rows of the company go."""
    if fmt not in FORMATS:
        raise InvalidDocument.field("format", f"must be one of {', '.join(FORMATS)}")
    p = catalog.params(ctx, name, given)
    purge(ctx)
    now = _now()
    row = ReportFileRow(id=new_id("rpf"), company_id=ctx.company.id, report=name, params=p.shown(), format=fmt,
                        status="queued", progress_done=0, progress_total=None, attempts=0, created_by=by[:254],
                        created_at=now, updated_at=now, expires_at=now + timedelta(days=KEEP_DAYS))
    ctx.session.add(row)
    ctx.session.flush()
    return row


def purge(ctx: Ctx) -> int:
    """Delete the company's expired report files."""
    result = ctx.session.execute(sa.delete(ReportFileRow).where(ReportFileRow.company_id == ctx.company.id,
                                                                ReportFileRow.expires_at < _now()))
    return int(getattr(result, "rowcount", 0) or 0)


def get(ctx: Ctx, file_id: str, with_content: bool = False) -> ReportFileRow:
    """One of the company's report files; another company's, or an expired one, is not found."""
    q = sa.select(ReportFileRow).where(ReportFileRow.company_id == ctx.company.id, ReportFileRow.id == file_id,
                                       ReportFileRow.expires_at >= _now())
    if with_content:
        q = q.options(undefer(ReportFileRow.content))
    found = ctx.session.scalar(q)
    if found is None:
        raise NotFound(f"there is no report file {file_id[:60]!r}")
    return found


def listing(ctx: Ctx, by: str | None = None, ids: list[str] | None = None, limit: int = LISTED) -> list[dict[str, Any]]:
    """The company's report files (of one user, or these ids), newest first."""
    q = sa.select(ReportFileRow).where(ReportFileRow.company_id == ctx.company.id, ReportFileRow.expires_at >= _now())
    if by is not None:
        q = q.where(ReportFileRow.created_by == by)
    if ids is not None:
        q = q.where(ReportFileRow.id.in_(ids[:100]))
    rows = ctx.session.scalars(q.order_by(ReportFileRow.created_at.desc(), ReportFileRow.id.desc()).limit(limit))
    return [to_dict(r) for r in rows]


def to_dict(row: ReportFileRow) -> dict[str, Any]:
    spec = catalog.spec(row.report) if _known(row.report) else None
    stalled = row.status == "running" and _now() - aware(row.updated_at) > STALE
    return {"id": row.id, "report": row.report, "title": spec.title if spec else row.report, "params": row.params,
            "format": row.format, "format_name": FORMAT_NAMES.get(row.format, row.format), "status": row.status,
            "stalled": stalled,
            "progress": {"done": row.progress_done, "total": row.progress_total}, "error": row.error,
            "filename": row.filename, "size": row.size, "created_by": row.created_by,
            "created_at": aware(row.created_at).isoformat(timespec="seconds"),
            "finished_at": aware(row.finished_at).isoformat(timespec="seconds") if row.finished_at else None,
            "expires_at": aware(row.expires_at).isoformat(timespec="seconds")}


def _known(name: str) -> bool:
    try:
        catalog.spec(name)
    except NotFound:
        return False
    return True


def content(ctx: Ctx, file_id: str) -> files.ReportFile:
    """The file of a report file that is done."""
    row = get(ctx, file_id, with_content=True)
    if row.status != "done" or row.content is None:
        raise NotFound(f"the report file {file_id} is not ready")
    return files.ReportFile(row.content, files.MEDIA_TYPES[row.format], row.filename or f"{row.report}.{row.format}")


# --- the job's steps, each in a transaction of its own ------------------------------------------

def claim(ctx: Ctx, file_id: str) -> Claim | None:
    """Start a run: a queued row, or a running one whose run stopped (a worker that died), is
    running again under the next attempt number. None: nothing to do (done, failed, expired or
    tried too often — then it is failed, saying so)."""
    row = ctx.session.scalar(sa.select(ReportFileRow).where(
        ReportFileRow.company_id == ctx.company.id, ReportFileRow.id == file_id).with_for_update())
    if row is None or row.status not in ("queued", "running") or aware(row.expires_at) < _now():
        return None
    if row.attempts >= MAX_ATTEMPTS:
        row.status, row.finished_at, row.updated_at = "failed", _now(), _now()
        row.error = (f"It stopped before it finished {row.attempts} times, so it was given up. "
                     "Try a shorter range, or prepare it again later.")
        return None
    row.status, row.attempts, row.updated_at = "running", row.attempts + 1, _now()
    row.progress_done, row.progress_total, row.error = 0, None, None
    return Claim(row.id, row.attempts, row.report, dict(row.params), row.format)


def _running(ctx: Ctx, c: Claim) -> ReportFileRow | None:
    row = ctx.session.scalar(sa.select(ReportFileRow).where(
        ReportFileRow.company_id == ctx.company.id, ReportFileRow.id == c.file_id).with_for_update())
    if row is None or row.status != "running" or row.attempts != c.attempt:
        return None  # taken over by a later attempt, or gone: this run writes nothing more
    return row


def progress(ctx: Ctx, c: Claim, done: int, total: int | None) -> bool:
    row = _running(ctx, c)
    if row is None:
        return False
    row.progress_done, row.progress_total, row.updated_at = done, total, _now()
    return True


def finish(ctx: Ctx, c: Claim, made: files.ReportFile, total: int) -> bool:
    """Store the file and mark the row done, together."""
    row = _running(ctx, c)
    if row is None:
        return False
    now = _now()
    row.content, row.size, row.filename = made.content, len(made.content), made.filename
    row.status, row.progress_done, row.progress_total = "done", total, total
    row.finished_at = row.updated_at = now
    return True


def fail(ctx: Ctx, c: Claim, reason: str) -> bool:
    row = _running(ctx, c)
    if row is None:
        return False
    row.status, row.error = "failed", reason[:1000]
    row.finished_at = row.updated_at = _now()
    return True


def build(ctx: Ctx, c: Claim) -> Any:
    """The report's figures for what the row asked (checked again: a plan removed meanwhile is an
    error naming it)."""
    return catalog.run(ctx, c.report, catalog.params(ctx, c.report, c.params))


def waiting(session: Session, limit: int = 500) -> list[tuple[str, str]]:
    """(company slug, file id) of every company's report files that a job should take up: queued
    ones, and running ones whose run stopped giving word (the platform's tick enqueues them)."""
    from ..customers.models import Company

    stale = _now() - STALE
    rows = session.execute(
        sa.select(Company.slug, ReportFileRow.id).join(Company, Company.id == ReportFileRow.company_id)
        .where(ReportFileRow.expires_at >= _now(),
               sa.or_(ReportFileRow.status == "queued",
                      sa.and_(ReportFileRow.status == "running", ReportFileRow.updated_at < stale)))
        .order_by(ReportFileRow.created_at).limit(limit))
    return [(slug, fid) for slug, fid in rows]
