"""Reading stored events."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..rulesets.event_types import EVENT_TYPES
from .models import Event


def external_payloads(ctx: Ctx, end: date) -> list[dict[str, Any]]:
    """The events customers' systems sent (not the platform's own), up to `end`, in order."""
    return [e.payload for e in ctx.session.scalars(
        sa.select(Event).where(Event.company_id == ctx.company.id, Event.local_date <= end,
                               Event.type.not_in(EVENT_TYPES.platform_only)).order_by(Event.local_date, Event.id))]
