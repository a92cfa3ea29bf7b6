"""Visits: members' requests, as the office reads them."""

from __future__ import annotations

from typing import Any

from ..customers.customers import get_customer
from ..infra.context import Ctx
from ..scheduling import requests
from .app import reading

__all__ = ["requests_of"]


@reading
def requests_of(ctx: Ctx, customer_id: str) -> list[dict[str, Any]]:
    """A customer's visit requests, newest first."""
    get_customer(ctx.session, ctx.company.id, customer_id)
    return requests.of_customer(ctx, customer_id)
