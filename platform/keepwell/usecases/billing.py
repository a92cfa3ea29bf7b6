"""Billing: run what is due to be billed, and read invoices."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..billing import invoices
from ..infra.context import Ctx
from . import due
from .app import Keepwell, reading

__all__ = ["invoice", "invoices_of", "run"]


def run(app: Keepwell, company: str, as_of: date) -> dict[str, Any]:
    """Invoice every billing period begun by `as_of` (the embedded mode's billing; workers do the
    same as due work). Running it twice bills once. Payments come with payment methods."""
    done = due.run(app, company, as_of, kinds={"billing"})
    return {"as_of": as_of.isoformat(), "invoices": done.invoices_issued, "charged": 0, "failed": 0, "retried": 0}


@reading
def invoices_of(ctx: Ctx, membership: str | None = None, customer: str | None = None) -> list[dict[str, Any]]:
    return invoices.listing(ctx, membership, customer)


@reading
def invoice(ctx: Ctx, number: int) -> dict[str, Any]:
    return invoices.by_number(ctx, number)
