"""The lists of the admin (and their CSV exports): customers, memberships, ledger, events."""

from __future__ import annotations

from typing import Any

from ..infra.context import Ctx
from ..infra.paging import ListQuery
from ..reporting import charts, lists
from ..reporting import dashboard as business_dashboard
from ..reporting.lists import Page
from .app import reading

__all__ = ["ListQuery", "Page", "business", "customer", "customers", "dashboard", "event", "events", "ledger",
           "memberships"]


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


@reading
def business(ctx: Ctx, location: str | None = None) -> dict[str, Any]:
    """The home page's figures (reporting.dashboard) and its charts, as SVG, as of today; for
    one location's customers when it is given (its id)."""
    figures = business_dashboard.dashboard(ctx, ctx.today(), location or None)
    months = [m["month"] for m in figures["over_time"]]
    figures["charts"] = {"over_time": charts.line("Members at the end of each month", [m[2:] for m in months],
                                                   {"Members": [m["members"] for m in figures["over_time"]]})}
    plans = sorted({(r["plan"], r["plan_name"]) for r in figures["by_plan"]})
    if plans:
        tiers = sorted({r["tier"] for r in figures["by_plan"]})
        counts = {(r["plan"], r["tier"]): r["members"] for r in figures["by_plan"]}
        figures["charts"]["by_plan"] = charts.bars("Active members by plan and tier", [name for _k, name in plans],
                                                   {t: [counts.get((k, t), 0) for k, _n in plans] for t in tiers})
    return figures
