"""A company's locations — the places it serves — each with the sales tax its invoices charge
there; a customer's service address is at one of them."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.errors import Conflict, InvalidDocument
from ..kernel.ids import new_id
from ..kernel.text import storable
from .models import Location

MOST_TAX = Decimal(30)


def clean_rate(rate: object) -> str:
    """A tax rate in percent, "0" to "30" with up to four decimals ("8.25")."""
    try:
        value = Decimal(str(rate).strip())
    except (InvalidOperation, ValueError):
        value = Decimal(-1)
    if not value.is_finite() or not Decimal(0) <= value <= MOST_TAX or value != value.quantize(Decimal("0.0001")):
        raise InvalidDocument.field("tax_rate", "Tax rate must be a percent from 0 to 30, like 8.25")
    return f"{value.normalize():f}"


def view(loc: Location) -> dict[str, Any]:
    return {"id": loc.id, "name": loc.name, "tax_rate": loc.tax_rate, "tax_name": loc.tax_name}


def add(ctx: Ctx, name: str, tax_rate: object = "0", tax_name: str | None = None) -> Location:
    name = (storable("name", (name or "").strip()) or "")
    if not name or len(name) > 120:
        raise InvalidDocument.field("name", "A location needs a name of 1 to 120 characters")
    if ctx.session.scalar(sa.select(Location.id).where(Location.company_id == ctx.company.id, Location.name == name)):
        raise Conflict(f"there is a location called {name!r} already")
    loc = Location(id=new_id("loc"), company_id=ctx.company.id, name=name, tax_rate=clean_rate(tax_rate),
                   tax_name=(storable("tax_name", (tax_name or "").strip()) or "Sales tax")[:60])
    ctx.session.add(loc)
    ctx.session.flush()
    return loc


def listing(ctx: Ctx) -> list[dict[str, Any]]:
    return [view(x) for x in ctx.session.scalars(sa.select(Location).where(Location.company_id == ctx.company.id)
                                                 .order_by(Location.name))]


def find(ctx: Ctx, ref: str) -> Location:
    """A location by id or by name (a customer's `location` field)."""
    ref = storable("location", ref.strip()) or ""
    loc = ctx.session.scalar(sa.select(Location).where(Location.company_id == ctx.company.id,
                                                       sa.or_(Location.id == ref, Location.name == ref)))
    if loc is None:
        known = ", ".join(x["name"] for x in listing(ctx)[:10]) or "none yet (keepwell locations add)"
        raise InvalidDocument.field("location", f"There is no location {ref[:60]!r}: the locations are {known}")
    return loc


def of_customer(ctx: Ctx, location_id: str | None) -> Location | None:
    if not location_id:
        return None
    loc = ctx.session.get(Location, location_id)
    return loc if loc is not None and loc.company_id == ctx.company.id else None
