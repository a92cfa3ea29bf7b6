"""A company's locations — the places it serves — each with its address, its time zone (when
not the company's: its customers' quiet hours follow it) and the sales tax its invoices charge
there; a customer's service address is at one of them, and lists and the dashboard can be
narrowed to one location."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.errors import Conflict, InvalidDocument, NotFound
from ..kernel.ids import new_id
from ..kernel.text import storable
from .companies import check_timezone
from .models import Company, Location

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
    return {"id": loc.id, "name": loc.name, "tax_rate": loc.tax_rate, "tax_name": loc.tax_name,
            "address": loc.address or "", "timezone": loc.timezone or ""}


def _name(ctx: Ctx, name: str | None, other_than: str | None = None) -> str:
    name = (storable("name", (name or "").strip()) or "")
    if not name or len(name) > 120:
        raise InvalidDocument.field("name", "A location needs a name of 1 to 120 characters")
    if ctx.session.scalar(sa.select(Location.id).where(Location.company_id == ctx.company.id, Location.name == name,
                                                       Location.id != (other_than or ""))):
        raise Conflict(f"there is a location called {name!r} already")
    return name


def _address(address: str | None) -> str | None:
    text = " ".join((storable("address", address or "") or "").split())
    if len(text) > 300:
        raise InvalidDocument.field("address", "Address must be at most 300 characters")
    return text or None


def _timezone(name: str | None) -> str | None:
    """An IANA time zone ("America/Denver"), or None: the company's."""
    name = (name or "").strip()
    if not name:
        return None
    check_timezone(name)
    return name


def add(ctx: Ctx, name: str, tax_rate: object = "0", tax_name: str | None = None, address: str | None = None,
        timezone: str | None = None) -> Location:
    loc = Location(id=new_id("loc"), company_id=ctx.company.id, name=_name(ctx, name), tax_rate=clean_rate(tax_rate),
                   tax_name=(storable("tax_name", (tax_name or "").strip()) or "Sales tax")[:60],
                   address=_address(address), timezone=_timezone(timezone))
    ctx.session.add(loc)
    ctx.session.flush()
    return loc


def change(ctx: Ctx, ref: str, **fields: Any) -> Location:
    """Change what is given (None leaves a field as it is; "" clears the address or time zone).
    A new tax rate applies to invoices issued from now on; issued ones keep theirs."""
    loc = _lookup(ctx, ref)
    if loc is None:
        raise NotFound(f"no location {ref[:60]!r}")
    if fields.get("name") is not None:
        loc.name = _name(ctx, fields["name"], other_than=loc.id)
    if fields.get("tax_rate") is not None:
        loc.tax_rate = clean_rate(fields["tax_rate"])
    if fields.get("tax_name") is not None:
        loc.tax_name = (storable("tax_name", fields["tax_name"].strip()) or "Sales tax")[:60]
    if fields.get("address") is not None:
        loc.address = _address(fields["address"])
    if fields.get("timezone") is not None:
        loc.timezone = _timezone(fields["timezone"])
    ctx.session.flush()
    return loc


def timezone_of(session: Any, company: Company, location_id: str | None) -> str:
    """The time zone a customer at this location lives in: the location's, else the company's."""
    if location_id:
        tz = session.scalar(sa.select(Location.timezone).where(Location.company_id == company.id,
                                                               Location.id == location_id))
        if tz:
            return str(tz)
    return company.timezone


def listing(ctx: Ctx) -> list[dict[str, Any]]:
    return [view(x) for x in ctx.session.scalars(sa.select(Location).where(Location.company_id == ctx.company.id)
                                                 .order_by(Location.name))]


def _lookup(ctx: Ctx, ref: str) -> Location | None:
    ref = storable("location", ref.strip()) or ""
    return ctx.session.scalar(sa.select(Location).where(Location.company_id == ctx.company.id,
                                                        sa.or_(Location.id == ref, Location.name == ref)))


def find(ctx: Ctx, ref: str) -> Location:
    """A location by id or by name (a customer's `location` field)."""
    loc = _lookup(ctx, ref)
    if loc is None:
        known = ", ".join(x["name"] for x in listing(ctx)[:10]) or "none yet (keepwell locations add)"
        raise InvalidDocument.field("location", f"There is no location {ref[:60]!r}: the locations are {known}")
    return loc


def of_customer(ctx: Ctx, location_id: str | None) -> Location | None:
    if not location_id:
        return None
    loc = ctx.session.get(Location, location_id)
    return loc if loc is not None and loc.company_id == ctx.company.id else None
