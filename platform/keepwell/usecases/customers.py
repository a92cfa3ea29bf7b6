"""Customers: add, change, choose channels, list."""

from __future__ import annotations

from typing import Any

from ..customers import customers
from ..infra.context import Ctx
from .app import reading, use_case


@use_case
def add_customer(ctx: Ctx, name: str, email: str | None = None, phone: str | None = None,
                 external_id: str | None = None) -> str:
    """Add a customer (with the id another system knows them by, if given); the answer is its id."""
    return customers.add_customer(ctx.session, ctx.company, name, email, phone, external_id).id


@use_case
def update_customer(ctx: Ctx, customer_id: str, name: str | None = None, email: str | None = None,
                    phone: str | None = None, opt_out: tuple[str, ...] = (), opt_in: tuple[str, ...] = (),
                    external_id: str | None = None) -> str:
    """Change contact details, the external id and channel choices, together."""
    customers.update_customer(ctx.session, ctx.company.id, customer_id, name=name, email=email, phone=phone,
                              external_id=external_id)
    for ch in opt_out:
        customers.set_preference(ctx.session, ctx.company.id, customer_id, ch, True)
    for ch in opt_in:
        customers.set_preference(ctx.session, ctx.company.id, customer_id, ch, False)
    return customer_id


@reading
def list_customers(ctx: Ctx, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    return [_shown(x) for x in customers.listing(ctx.session, ctx.company.id, limit, offset)]


@reading
def page(ctx: Ctx, limit: int = 50, after: str | None = None, email: str | None = None, phone: str | None = None,
         q: str | None = None, external_id: str | None = None) -> dict[str, Any]:
    """Customers after a cursor (the last id of the previous page), optionally found by email,
    phone, external id or part of the name; `has_more` says whether another page follows."""
    rows, more = customers.page(ctx.session, ctx.company, limit, after, email, phone, q, external_id)
    return {"customers": [_shown(x) for x in rows], "has_more": more,
            "last": rows[-1].id if rows else None}


def _shown(x: Any) -> dict[str, Any]:
    """A customer as every answer shows one."""
    return {"id": x.id, "name": x.name, "email": x.email, "phone": x.phone, "external_id": x.external_id}


@reading
def get_customer(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    return _shown(customers.get_customer(ctx.session, ctx.company.id, customer_id))
