"""Marketing consent: whether a customer agreed to promotional messages, when and where.

Every agreement and withdrawal is a row of its own (the record a regulator or the customer may
ask for); the latest says what holds now. No row: no consent — marketing is opt-in. Service
messages (renewals, receipts) do not ask for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..kernel.errors import InvalidDocument
from .models import MarketingConsent

SOURCES = ("portal", "admin", "api", "import")


def latest(session: Session, customer_id: str) -> MarketingConsent | None:
    return session.scalar(sa.select(MarketingConsent).where(MarketingConsent.customer_id == customer_id)
                          .order_by(MarketingConsent.at.desc(), MarketingConsent.id.desc()).limit(1))


def agreed(session: Session, customer_id: str) -> bool:
    found = latest(session, customer_id)
    return found is not None and found.granted


def record(session: Session, company_id: int, customer_id: str, granted: bool, source: str, at: datetime) -> None:
    """Note a choice, when it changes what holds (the same choice twice is one row)."""
    if source not in SOURCES:
        raise InvalidDocument.field("source", f"Source must be one of {', '.join(SOURCES)}")
    found = latest(session, customer_id)
    if found is not None and found.granted == granted:
        return
    session.add(MarketingConsent(company_id=company_id, customer_id=customer_id, granted=granted, at=at,
                                 source=source))
    session.flush()


def view(session: Session, customer_id: str) -> dict[str, Any]:
    found = latest(session, customer_id)
    return {"agreed": bool(found and found.granted), "at": found.at.isoformat() if found else None,
            "source": found.source if found else None}
