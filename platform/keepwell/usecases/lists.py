"""The lists of the admin (and their CSV exports): customers, memberships, ledger, events."""

from __future__ import annotations

from typing import Any

from ..infra.context import Ctx
from ..infra.paging import ListQuery
from ..reporting import lists
from ..reporting.lists import Page
from .app import reading

__all__ = ["ListQuery", "Page", "customer", "customers", "dashboard", "event", "events", "ledger", "memberships"]


@reading
def customers(ctx: Ctx, q: ListQuery) -> Page:
    return lists.customers(ctx, q)


@reading
def customer(ctx: Ctx, customer_id: str) -> dict[str, str]:
    return lists.customer(ctx, customer_id)


@reading
def memberships(ctx: Ctx, q: ListQuery) -> Page:
    return lists.memberships(ctx, q)


@reading
def ledger(ctx: Ctx, q: ListQuery) -> Page:
    return lists.ledger(ctx, q)


@reading
def events(ctx: Ctx, q: ListQuery) -> Page:
    return lists.events(ctx, q)


@reading
def event(ctx: Ctx, event_id: int) -> dict[str, Any]:
    return lists.event(ctx, event_id)


@reading
def dashboard(ctx: Ctx) -> dict[str, int]:
    return lists.dashboard(ctx)
