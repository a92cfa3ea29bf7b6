"""Customers: add, change, choose channels, list."""

from __future__ import annotations

from typing import Any

from ..customers import customers, locations
from ..infra.context import Ctx
from ..kernel.errors import InvalidDocument
from ..kernel.text import storable
from .app import reading, use_case


@use_case
def add_customer(ctx: Ctx, name: str, email: str | None = None, phone: str | None = None,
                 external_id: str | None = None, location: str | None = None,
                 service_address: str | None = None) -> str:
    """Add a customer (with the id another system knows them by, and the location and address
    they are served at, if given); the answer is its id."""
    c = customers.add_customer(ctx.session, ctx.company, name, email, phone, external_id)
    _served_at(ctx, c, location, service_address)
    return c.id


def _served_at(ctx: Ctx, c: Any, location: str | None, service_address: str | None) -> None:
    if location is not None:
        c.location_id = locations.find(ctx, location).id if location else None
    if service_address is not None:
        text = storable("service_address", service_address.strip()) or None
        if text and len(text) > 300:
            raise InvalidDocument.field("service_address", "The service address must be at most 300 characters")
        c.service_address = text


@use_case
def update_customer(ctx: Ctx, customer_id: str, name: str | None = None, email: str | None = None,
                    phone: str | None = None, opt_out: tuple[str, ...] = (), opt_in: tuple[str, ...] = (),
                    external_id: str | None = None, location: str | None = None,
                    service_address: str | None = None) -> str:
    """Change contact details, the external id, where they are served and channel choices, together."""
    c = customers.update_customer(ctx.session, ctx.company.id, customer_id, name=name, email=email, phone=phone,
                                  external_id=external_id)
    _served_at(ctx, c, location, service_address)
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
    return {"id": x.id, "name": x.name, "email": x.email, "phone": x.phone, "external_id": x.external_id,
            "location": x.location_id, "service_address": x.service_address}


@reading
def look_alikes(ctx: Ctx, email: str | None, phone: str | None, other_than: str | None = None) -> list[dict[str, Any]]:
    """Customers with the same email or phone: the admin asks before adding a second one."""
    return [_shown(x) for x in customers.same_contact(ctx.session, ctx.company, email, phone, other_than)]


@reading
def get_customer(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    return _shown(customers.get_customer(ctx.session, ctx.company.id, customer_id))
