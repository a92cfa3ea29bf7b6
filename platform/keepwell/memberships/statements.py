"""A membership's statement: its accounts' entries between two dates, with the membership."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..events.pipeline import keys_of
from ..infra.context import Ctx
from ..ledger.statements import for_owner
from . import memberships


def statement(ctx: Ctx, membership_id: str, start: date, end: date) -> dict[str, Any]:
    m = memberships.get(ctx, membership_id)
    out = for_owner(ctx, m.id, start, end, keys_of)
    out["membership"] = memberships.view(ctx, m)
    return out
