"""Webhook endpoints: subscribe a URL to event types, list, change (turn back on), remove, and
read an endpoint's delivery log."""

from __future__ import annotations

from typing import Any

from ..infra.context import Ctx
from ..messaging import webhooks
from ..messaging.webhooks import TYPES
from .app import reading, use_case

__all__ = ["TYPES", "add", "deliveries", "get", "listing", "remove", "update"]


@use_case
def add(ctx: Ctx, url: str, event_types: list[str], description: str | None = None) -> dict[str, Any]:
    """Subscribe `url` to these event types (signed with the company's webhook secret)."""
    return webhooks.view(webhooks.add(ctx, url, event_types, description))


@reading
def listing(ctx: Ctx) -> list[dict[str, Any]]:
    return [webhooks.view(e) for e in webhooks.listing(ctx)]


@reading
def get(ctx: Ctx, endpoint_id: int) -> dict[str, Any]:
    return webhooks.view(webhooks.get(ctx, endpoint_id))


@use_case
def update(ctx: Ctx, endpoint_id: int, url: str | None = None, event_types: list[str] | None = None,
           description: str | None = None, enabled: bool | None = None) -> dict[str, Any]:
    """Change an endpoint; `enabled=True` turns one that was turned off back on."""
    return webhooks.view(webhooks.update(ctx, endpoint_id, url, event_types, description, enabled))


@use_case
def remove(ctx: Ctx, endpoint_id: int) -> None:
    webhooks.remove(ctx, endpoint_id)


@reading
def deliveries(ctx: Ctx, endpoint_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The endpoint's messages, newest first, each with every attempt (when, outcome, time taken)."""
    return webhooks.deliveries(ctx, endpoint_id, limit)
