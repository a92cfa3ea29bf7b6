"""Idempotency keys of API requests (the IETF Idempotency-Key draft): the same key and the same
request get the first answer again; the same key with another request is refused; a request
while the first with its key still runs is told so. Answers are kept KEPT_HOURS; a request
whose run was cut off (its process died) is taken for abandoned after RUNNING_SECONDS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..infra.tables import aware
from ..kernel.errors import Conflict, InvalidDocument
from .models import Company, IdempotentRequest

KEPT_HOURS = 24
RUNNING_SECONDS = 60


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    mimetype: str


def begin(session: Session, company: Company, key: str, fingerprint: str, now: datetime) -> Answer | None:
    """The stored answer to replay, or None after claiming the key for this request."""
    row = session.scalar(sa.select(IdempotentRequest).where(
        IdempotentRequest.company_id == company.id, IdempotentRequest.key == key).with_for_update())
    if row is not None:
        stale = now - aware(row.created_at) > (timedelta(hours=KEPT_HOURS) if row.state == "done"
                                 else timedelta(seconds=RUNNING_SECONDS))
        if stale:
            session.delete(row)
            session.flush()
        elif row.fingerprint != fingerprint:
            raise InvalidDocument.field("Idempotency-Key", "was used with another request; use a new key for a new "
                                        "request", "this Idempotency-Key was used with another request")
        elif row.state == "running":
            raise Conflict("a request with this Idempotency-Key is still running; retry in a moment")
        else:
            return Answer(row.status or 200, row.body or "", row.mimetype or "application/json")
    session.add(IdempotentRequest(company_id=company.id, key=key, fingerprint=fingerprint, state="running",
                                  created_at=now))
    session.flush()
    return None


def finish(session: Session, company: Company, key: str, answer: Answer | None) -> None:
    """Keep the answer (or, with None, let the key go: the request may be tried again)."""
    row = session.scalar(sa.select(IdempotentRequest).where(
        IdempotentRequest.company_id == company.id, IdempotentRequest.key == key))
    if row is None:
        return
    if answer is None:
        session.delete(row)
    else:
        row.state, row.status, row.body, row.mimetype = "done", answer.status, answer.body, answer.mimetype
