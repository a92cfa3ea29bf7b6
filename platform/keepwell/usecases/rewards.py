"""Rewards: a customer's points and lots."""

from __future__ import annotations

from typing import Any

from ..customers.customers import get_customer
from ..infra.context import Ctx
from ..rewards import points as points_area
from .app import reading


@reading
def points(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """A customer's points balance and lots, with their expiry."""
    cust = get_customer(ctx.session, ctx.company.id, customer_id)
    return {"customer": {"id": cust.id, "name": cust.name}, "balance": points_area.balance(ctx, cust.id),
            "lots": points_area.lots(ctx, cust.id)}
