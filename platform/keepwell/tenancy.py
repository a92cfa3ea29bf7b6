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


def add_customer(session: Session, company: Company, name: str, email: str | None = None) -> Customer:
    name = (name or "").strip()
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
