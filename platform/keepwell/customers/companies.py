"""Companies: the tenants. Every query of Keepwell is scoped to one of them."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..infra.tables import aware
from ..kernel.errors import Conflict, InvalidDocument, NotFound
from ..kernel.money import to_cents
from . import branding
from .limits import LIMITS, check_limit
from .models import Company


def check_timezone(name: str, field: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidDocument.field(field, f"unknown time zone {name!r} (use an IANA name such as America/Denver)",
                                    f"unknown time zone {name!r} (use an IANA name such as America/Denver)") from None


def create_company(session: Session, slug: str, name: str, timezone: str = "UTC") -> Company:
    check_timezone(timezone)
    if session.scalar(sa.select(Company).where(Company.slug == slug)):
        raise Conflict(f"company {slug!r} exists already")
    company = Company(slug=slug, name=name, timezone=timezone)
    session.add(company)
    session.flush()
    return company


def get_company(session: Session, slug: str) -> Company:
    company = session.scalar(sa.select(Company).where(Company.slug == slug))
    if company is None:
        raise NotFound(f"no company {slug!r} (run `keepwell init`, or `keepwell companies add`)")
    return company


def find_company(session: Session, slug: str) -> Company | None:
    return session.scalar(sa.select(Company).where(Company.slug == slug))


def company_by_id(session: Session, company_id: int) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound(f"no company {company_id}")
    return company


def slugs(session: Session) -> list[str]:
    return list(session.scalars(sa.select(Company.slug).order_by(Company.slug)))


def quiet_hours(text: str) -> tuple[str | None, str | None]:
    """"21:00-08:00" as (start, end); "" as no quiet hours."""
    if text.strip() == "":
        return None, None
    try:
        start, end = text.strip().split("-")
        time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError:
        raise InvalidDocument.field("quiet_hours", f"{text!r}: use HH:MM-HH:MM, e.g. 21:00-08:00",
                                    f"quiet hours {text!r}: use HH:MM-HH:MM, e.g. 21:00-08:00") from None
    return start.strip(), end.strip()


def update_company(company: Company, **fields: Any) -> None:
    """Contact settings and quiet hours ("21:00-08:00", company local time; "" turns them off)."""
    quiet = fields.pop("quiet_hours", None)
    if quiet is not None:
        company.quiet_start, company.quiet_end = quiet_hours(quiet)
    if fields.get("timezone"):
        check_timezone(fields["timezone"])
    if fields.get("adjustment_limit") is not None:
        fields["adjustment_limit_cents"] = to_cents(fields.pop("adjustment_limit"))
    for name in LIMITS:
        if fields.get(name) is not None:
            setattr(company, name, check_limit(name, fields[name]))
    if fields.get("phone_region") is not None:
        region = str(fields["phone_region"]).upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidDocument.field("phone_region", f"{region!r} is not a country code such as US, CA or GB")
        company.phone_region = region
    if fields.get("brand_color") is not None:
        company.brand_color = branding.clean_color(fields["brand_color"])
    if fields.get("logo") is not None:
        data = fields["logo"]
        company.logo, company.logo_type = (data, branding.logo_type(data)) if data else (None, None)
    if fields.get("receipt_shows_balance") is not None:
        company.receipt_shows_balance = bool(fields["receipt_shows_balance"])
    if fields.get("webhook_url") is not None:  # a URL set again is a working endpoint again
        company.webhook_disabled_at = company.webhook_disabled_reason = None
    for k in ("name", "email", "webhook_url", "webhook_secret", "timezone"):
        if fields.get(k) is not None:
            setattr(company, k, fields[k])


def rotate_webhook_secret(company: Company, now: datetime, keep_old_hours: float) -> str:
    """A new Standard Webhooks secret (`whsec_` and 32 random bytes, base64); the one it replaces
    keeps signing, beside it, for `keep_old_hours`, so receivers can switch without a gap."""
    if not 0 <= keep_old_hours <= 24 * 30:
        raise InvalidDocument.field("keep_old_hours", "from 0 to 720 hours")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    if company.webhook_secret and keep_old_hours > 0:
        company.webhook_secret_previous = company.webhook_secret
        company.webhook_secret_previous_until = now + timedelta(hours=keep_old_hours)
    else:
        company.webhook_secret_previous = company.webhook_secret_previous_until = None
    company.webhook_secret = secret
    return secret


def webhook_secrets(company: Company, now: datetime) -> tuple[str, ...]:
    """The secrets a webhook to this company is signed with now: its own, then the previous one
    while its rotation window lasts."""
    out = tuple(s for s in (company.webhook_secret,) if s)
    until = company.webhook_secret_previous_until
    if company.webhook_secret_previous and until is not None and aware(until) > now:
        out += (company.webhook_secret_previous,)
    return out
