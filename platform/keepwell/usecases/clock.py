"""Test clocks: in a test installation (KEEPWELL_MODE=test) a company's business time can stand
at a moment and be moved on, running what falls due on the way, so that a contractor rehearses a
year of renewals, expiries and reminders in minutes (per company, like Stripe's test clocks)."""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

from ..infra.context import Ctx
from ..kernel.errors import Forbidden, InvalidDocument
from . import due
from .app import Keepwell, reading, use_case

__all__ = ["advance", "reset", "show"]


def _test_mode_only(mode: str) -> None:
    if mode != "test":
        raise Forbidden("test clocks run only in a test installation (KEEPWELL_MODE=test): a production "
                        "company's time is the real time")


@reading
def show(ctx: Ctx) -> dict[str, Any]:
    now = ctx.clock.now()
    return {"company": ctx.company.slug, "now": now.isoformat(), "today": ctx.local_date(now).isoformat(),
            "test_clock": ctx.company.clock_at is not None}


@use_case
def _move(ctx: Ctx, to: date) -> str:
    if ctx.local_date(ctx.clock.now()) >= to:
        raise InvalidDocument.field("to", f"the company's clock is at {ctx.today()} already: a clock only moves on")
    moment = ctx.start_of(to).astimezone(UTC)  # stored in UTC: SQLite keeps no offset
    ctx.company.clock_at = moment
    return moment.isoformat()


def advance(app: Keepwell, company: str, to: date, mode: str) -> dict[str, Any]:
    """Move the company's clock on to the start of `to` (company time) and do everything that
    fell due meanwhile (period ends, renewals, expiries, points expiry, reminders)."""
    _test_mode_only(mode)
    now = _move(app, company, to)
    return {"now": now, "due": due.run(app, company, to).to_dict()}


@use_case
def _real(ctx: Ctx) -> None:
    ctx.company.clock_at = None


def reset(app: Keepwell, company: str, mode: str) -> dict[str, Any]:
    """Back to the real time (events dated after it are then in the future)."""
    _test_mode_only(mode)
    _real(app, company)
    return show(app, company)

