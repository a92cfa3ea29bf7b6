"""Companies: set up the database and a company, change a company's settings."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..customers import companies
from ..infra.context import Ctx
from ..kernel.errors import NotFound
from ..kernel.money import format_cents
from .app import Keepwell, reading, use_case


def init(app: Keepwell, company: str = "default", name: str = "Default company", timezone: str = "UTC") -> bool:
    """Create or upgrade the schema, and the company if it is missing. Idempotent: True when the
    company was created."""
    app.database.upgrade()

    def work(session: Any) -> bool:
        if companies.find_company(session, company) is not None:
            return False
        companies.create_company(session, company, name, timezone)
        return True

    created = app.run_platform(work)
    app.database.analyze()
    return created


def add_company(app: Keepwell, slug: str, name: str, timezone: str = "UTC") -> str:
    app.run_platform(lambda s: companies.create_company(s, slug, name, timezone))
    return slug


def slugs(app: Keepwell) -> list[str]:
    return app.run_platform(companies.slugs, read_only=True)


def exists(app: Keepwell, slug: str) -> bool:
    return app.run_platform(lambda s: companies.find_company(s, slug) is not None, read_only=True)


@use_case
def update(ctx: Ctx, **fields: Any) -> None:
    """Contact settings, time zone and quiet hours of the company."""
    companies.update_company(ctx.company, **fields)


@reading
def logo(ctx: Ctx) -> tuple[bytes, str] | None:
    """The company's logo and its media type, if it has one."""
    c = ctx.company
    return (c.logo, c.logo_type) if c.logo and c.logo_type else None


@use_case
def rotate_webhook_secret(ctx: Ctx, keep_old_hours: float = 24) -> str:
    """A new webhook secret (shown once); the old one still signs for `keep_old_hours`."""
    return companies.rotate_webhook_secret(ctx.company, ctx.clock.now(), keep_old_hours)


@reading
def today(ctx: Ctx) -> date:
    """Today in the company's time zone, by the clock."""
    return ctx.today()


@reading
def details(ctx: Ctx) -> dict[str, Any]:
    c = ctx.company
    return {"slug": c.slug, "name": c.name, "timezone": c.timezone, "email": c.email, "webhook_url": c.webhook_url,
            "quiet_hours": f"{c.quiet_start}-{c.quiet_end}" if c.quiet_start else None,
            "webhook_secret_set": bool(c.webhook_secret),
            # Set when webhooks were turned off (410 Gone, or days without one delivered)
            "webhook_disabled_reason": c.webhook_disabled_reason, "phone_region": c.phone_region,
            "future_hours": c.future_hours, "backdate_days": c.backdate_days,
            "max_periods_per_event": c.max_periods_per_event,
            "adjustment_limit": format_cents(c.adjustment_limit_cents),
            "adjustment_limit_points": c.adjustment_limit_points, "receipt_shows_balance": c.receipt_shows_balance,
            "brand_color": c.brand_color, "logo": c.logo_type is not None}


__all__ = ["NotFound", "add_company", "details", "exists", "init", "rotate_webhook_secret", "slugs", "today",
           "update"]
