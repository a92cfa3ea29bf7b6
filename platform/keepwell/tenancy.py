"""Companies and customers. Every lookup is scoped to one company: ids of another company's
records are simply not found."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .engine import Engine
from .errors import Conflict, KeepwellError, NotFound
from .models import Company, Customer


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise KeepwellError(f"unknown time zone {name!r} (use an IANA name such as America/Denver)") from None


@dataclass
class Ctx:
    """What one unit of work needs: its transaction, its company and the rules engine."""

    session: Session
    company: Company
    engine: Engine

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.company.timezone)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.tz)


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


def _text(field: str, value: str | None) -> str | None:
    """Free text as stored: PostgreSQL cannot hold a NUL character, so none gets this far."""
    if value is not None and "\x00" in value:
        raise KeepwellError(f"the {field} contains a NUL character (\\u0000)")
    return value


def add_customer(session: Session, company: Company, name: str, email: str | None = None) -> Customer:
    name = _text("name", (name or "").strip())
    email = _text("email", email)
    if not name:
        raise KeepwellError("a customer needs a name")
    customer = Customer(id=new_id("cus"), company_id=company.id, name=name, email=email)
    session.add(customer)
    session.flush()
    return customer


def get_customer(session: Session, company: Company, customer_id: str, lock: bool = False) -> Customer:
    q = sa.select(Customer).where(Customer.company_id == company.id, Customer.id == customer_id)
    if lock:
        # Every effect of an event belongs to one customer: locking the customer row serialises
        # writers per customer (PostgreSQL), so two processes can never both spend the last dollar.
        q = q.with_for_update()
    customer = session.scalar(q)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return customer


def create_api_key(session: Session, company: Company, name: str) -> str:
    """A new API key; the secret is shown once and only its digest is stored."""
    import hashlib

    from .models import ApiKey

    secret = f"kw_{company.slug}_{secrets.token_urlsafe(24)}"
    session.add(ApiKey(company_id=company.id, name=name, digest=hashlib.sha256(secret.encode()).hexdigest()))
    session.flush()
    return secret


def company_for_key(session: Session, secret: str) -> Company | None:
    import hashlib

    from .models import ApiKey

    key = session.scalar(sa.select(ApiKey).where(ApiKey.digest == hashlib.sha256(secret.encode()).hexdigest(),
                                                 ApiKey.revoked_at.is_(None)))
    return session.get(Company, key.company_id) if key else None


def update_customer(session: Session, company: Company, customer_id: str, **fields) -> Customer:
    customer = get_customer(session, company, customer_id)
    for k in ("name", "email", "phone"):
        if fields.get(k) is not None:
            setattr(customer, k, _text(k, fields[k]))
    return customer


def set_preference(session: Session, company: Company, customer_id: str, channel: str, opted_out: bool) -> None:
    from .models import ContactPreference

    if channel not in ("email", "sms", "webhook"):
        raise KeepwellError(f"unknown channel {channel!r} (email, sms, webhook)")
    get_customer(session, company, customer_id)
    pref = session.scalar(sa.select(ContactPreference).where(
        ContactPreference.customer_id == customer_id, ContactPreference.channel == channel))
    if pref is None:
        session.add(ContactPreference(company_id=company.id, customer_id=customer_id, channel=channel, opted_out=opted_out))
    else:
        pref.opted_out = opted_out


def update_company(company: Company, **fields) -> None:
    """Contact settings and quiet hours ("21:00-08:00", company local time; "" turns them off)."""
    quiet = fields.pop("quiet_hours", None)
    if quiet is not None:
        if quiet == "":
            company.quiet_start = company.quiet_end = None
        else:
            try:
                start, end = quiet.split("-")
                time.fromisoformat(start), time.fromisoformat(end)
            except ValueError:
                raise KeepwellError(f"quiet hours {quiet!r}: use HH:MM-HH:MM, e.g. 21:00-08:00") from None
            company.quiet_start, company.quiet_end = start, end
    if fields.get("timezone"):
        check_timezone(fields["timezone"])
    for k in ("name", "email", "webhook_url", "webhook_secret", "timezone"):
        if fields.get(k) is not None:
            setattr(company, k, fields[k])
