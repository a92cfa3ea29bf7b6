"""Locations: the places a company serves, with their sales tax."""

from __future__ import annotations

from typing import Any

from ..customers import locations
from ..infra.context import Ctx
from .app import reading, use_case

__all__ = ["add_location", "change_location", "list_locations"]


@use_case
def add_location(ctx: Ctx, name: str, tax_rate: str = "0", tax_name: str | None = None, address: str | None = None,
                 timezone: str | None = None) -> dict[str, Any]:
    return locations.view(locations.add(ctx, name, tax_rate, tax_name, address, timezone))


@use_case
def change_location(ctx: Ctx, ref: str, name: str | None = None, tax_rate: str | None = None,
                    tax_name: str | None = None, address: str | None = None,
                    timezone: str | None = None) -> dict[str, Any]:
    """Change a location (by id or name); what is None stays as it is."""
    return locations.view(locations.change(ctx, ref, name=name, tax_rate=tax_rate, tax_name=tax_name,
                                           address=address, timezone=timezone))


@reading
def list_locations(ctx: Ctx) -> list[dict[str, Any]]:
    return locations.listing(ctx)
