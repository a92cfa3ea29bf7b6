"""Reading stored events."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.errors import InvalidDocument
from ..rulesets.event_types import EVENT_TYPES
from .models import Event


def external_payloads(ctx: Ctx, end: date) -> list[dict[str, Any]]:
    """The events customers' systems sent (not the platform's own), up to `end`, in order."""
    return [e.payload for e in ctx.session.scalars(
        sa.select(Event).where(Event.company_id == ctx.company.id, Event.local_date <= end,
                               Event.type.not_in(EVENT_TYPES.platform_only)).order_by(Event.local_date, Event.id))]


def page(ctx: Ctx, limit: int, after: str | None = None, customer: str | None = None,
         type_: str | None = None) -> tuple[list[Event], bool]:
    """Stored events in the order they were stored, after the event `after` (a cursor), of one
    customer and/or type; and whether more follow."""
    stmt = sa.select(Event).where(Event.company_id == ctx.company.id)
    if customer:
        stmt = stmt.where(Event.customer_id == customer)
    if type_:
        stmt = stmt.where(Event.type == type_)
    if after:
        mark = ctx.session.scalar(sa.select(Event.id).where(Event.company_id == ctx.company.id, Event.key == after))
        if mark is None:
            raise InvalidDocument.field("starting_after", f"no event {after!r} to start after")
        stmt = stmt.where(Event.id > mark)
    rows = list(ctx.session.scalars(stmt.order_by(Event.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
