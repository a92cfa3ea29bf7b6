"""Customers of a company, their contact details and their choice of channels."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..infra.sql import chunks, one_of
from ..kernel.errors import Conflict, InvalidDocument, NotFound
from ..kernel.ids import new_id
from ..kernel.text import storable
from .contact import clean_email, clean_name, clean_phone
from .models import Company, ContactPreference, Customer

CHANNELS = ("email", "sms", "webhook")


def same_contact(session: Session, company: Company, email: str | None, phone: str | None,
                 other_than: str | None = None, limit: int = 5) -> list[Customer]:
    """Customers who already have this email (in any case) or phone number, as stored: most
    likely the same person added twice. Invalid values find nobody (the form reports them)."""
    found = []
    if email:
        found.append(sa.func.lower(Customer.email) == (_lookup(clean_email, email) or "").lower())
    if phone:
        found.append(Customer.phone == _lookup(clean_phone, phone, company.phone_region))
    if not found:
        return []
    stmt = sa.select(Customer).where(Customer.company_id == company.id, sa.or_(*found))
    if other_than:
        stmt = stmt.where(Customer.id != other_than)
    return list(session.scalars(stmt.order_by(Customer.created_at, Customer.id).limit(limit)))


def add_customer(session: Session, company: Company, name: str, email: str | None = None,
                 phone: str | None = None, external_id: str | None = None) -> Customer:
    customer = Customer(id=new_id("cus"), company_id=company.id, name=clean_name(name), email=clean_email(email),
                        phone=clean_phone(phone, company.phone_region),
                        external_id=_free_external_id(session, company.id, external_id))
    session.add(customer)
    session.flush()
    return customer


def find_customer(session: Session, company_id: int, customer_id: str, lock: bool = False) -> Customer | None:
    q = sa.select(Customer).where(Customer.company_id == company_id, Customer.id == customer_id)
    if lock:
        # Every effect of an event belongs to one customer: locking the customer row serialises
        # writers per customer (PostgreSQL), so two processes can never both spend the last dollar.
        q = q.with_for_update()
    return session.scalar(q)


def get_customer(session: Session, company_id: int, customer_id: str, lock: bool = False) -> Customer:
    customer = find_customer(session, company_id, customer_id, lock)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return customer


def lock_customers(session: Session, company_id: int, customer_ids: list[str]) -> dict[str, Customer]:
    """Lock (PostgreSQL) and load many customers, in id order so that two batches can never
    deadlock; the ones that do not exist are simply missing from the answer."""
    out: dict[str, Customer] = {}
    todo = sorted(set(customer_ids))
    for part in chunks(session, todo):
        q = (sa.select(Customer).where(Customer.company_id == company_id, one_of(session, Customer.id, part))
             .order_by(Customer.id).with_for_update())
        for c in session.scalars(q):
            out[c.id] = c
    return out


def lock_names(session: Session, company_id: int, customer_ids: list[str]) -> dict[str, str]:
    """Lock (PostgreSQL) these customers, in id order as `lock_customers` does; their names."""
    out: dict[str, str] = {}
    todo = sorted(set(customer_ids))
    for part in chunks(session, todo):
        q = (sa.select(Customer.id, Customer.name).where(Customer.company_id == company_id,
                                                         one_of(session, Customer.id, part))
             .order_by(Customer.id).with_for_update())
        out.update((cid, name) for cid, name in session.execute(q))
    return out


def _free_external_id(session: Session, company_id: int, external_id: str | None,
                      customer_id: str | None = None) -> str | None:
    """An external id, checked: text another customer of the company does not have already."""
    if external_id is None:
        return None
    text = storable("external_id", external_id.strip())
    if not text or len(text) > 100:
        raise InvalidDocument.field("external_id", "must be 1 to 100 characters")
    holder = session.scalar(sa.select(Customer.id).where(Customer.company_id == company_id,
                                                         Customer.external_id == text))
    if holder is not None and holder != customer_id:
        raise Conflict(f"customer {holder} has the external id {text!r} already", customer=holder)
    return text


def update_customer(session: Session, company_id: int, customer_id: str, **fields: Any) -> Customer:
    customer = get_customer(session, company_id, customer_id)
    if fields.get("external_id") is not None:
        customer.external_id = _free_external_id(session, company_id, fields["external_id"], customer_id)
    if fields.get("name") is not None:
        customer.name = clean_name(fields["name"])
    if fields.get("email") is not None:
        customer.email = clean_email(fields["email"])
    if fields.get("phone") is not None:
        company = session.get(Company, company_id)
        customer.phone = clean_phone(fields["phone"], company.phone_region if company else "US")
    return customer


def set_preference(session: Session, company_id: int, customer_id: str, channel: str, opted_out: bool) -> None:
    if channel not in CHANNELS:
        raise InvalidDocument.field("channel", f"unknown channel {channel!r} ({', '.join(CHANNELS)})",
                                    f"unknown channel {channel!r} ({', '.join(CHANNELS)})")
    get_customer(session, company_id, customer_id)
    pref = session.scalar(sa.select(ContactPreference).where(
        ContactPreference.customer_id == customer_id, ContactPreference.channel == channel))
    if pref is None:
        session.add(ContactPreference(company_id=company_id, customer_id=customer_id, channel=channel,
                                      opted_out=opted_out))
    else:
        pref.opted_out = opted_out


def opted_out(session: Session, customer_id: str, channel: str) -> bool:
    pref = session.scalar(sa.select(ContactPreference).where(
        ContactPreference.customer_id == customer_id, ContactPreference.channel == channel))
    return pref is not None and pref.opted_out


def names(session: Session, company_id: int, customer_ids: set[str]) -> dict[str, str]:
    """Names of these customers (for lists that show names, not ids)."""
    out: dict[str, str] = {}
    todo = sorted(customer_ids)
    for part in chunks(session, todo):
        out.update(session.execute(sa.select(Customer.id, Customer.name).where(
            Customer.company_id == company_id, one_of(session, Customer.id, part))).all())
    return out


def listing(session: Session, company_id: int, limit: int, offset: int) -> list[Customer]:
    """Customers in the order they were added."""
    return list(session.scalars(sa.select(Customer).where(Customer.company_id == company_id)
                                .order_by(Customer.created_at, Customer.id).limit(limit).offset(offset)))


def _lookup(clean: Any, *args: Any) -> str | None:
    """A lookup value as stored; one that could never be stored finds nobody (not an error:
    nobody has that email)."""
    try:
        return clean(*args)  # type: ignore[no-any-return]
    except InvalidDocument:
        return "\x01 nobody"


def page(session: Session, company: Company, limit: int, after: str | None = None, email: str | None = None,
         phone: str | None = None, q: str | None = None,
         external_id: str | None = None) -> tuple[list[Customer], bool]:
    """A page of customers in the order they were added, after the customer `after` (a cursor:
    stable while others are added), found by exact email or phone (normalised as they are
    stored) or by a part of the name; and whether more follow."""
    stmt = sa.select(Customer).where(Customer.company_id == company.id)
    if email:
        # Mailboxes are case-insensitive in practice: Ann@… and ann@… are one customer to look up.
        stmt = stmt.where(sa.func.lower(Customer.email) == (_lookup(clean_email, email) or "").lower())
    if phone:
        stmt = stmt.where(Customer.phone == _lookup(clean_phone, phone, company.phone_region))
    if external_id:
        stmt = stmt.where(Customer.external_id == _lookup(lambda t: storable("external_id", t), external_id.strip()))
    if q:
        text = (_lookup(lambda t: storable("q", t), q.strip()) or "").lower()
        needle = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")  # literal, not wildcards
        stmt = stmt.where(sa.func.lower(Customer.name).like(f"%{needle}%", escape="\\"))
    if after:
        mark = find_customer(session, company.id, after)
        if mark is None:
            raise InvalidDocument.field("starting_after", f"no customer {after!r} to start after")
        stmt = stmt.where(sa.tuple_(Customer.created_at, Customer.id) > sa.tuple_(
            sa.literal(mark.created_at, Customer.created_at.type), sa.literal(mark.id)))
    rows = list(session.scalars(stmt.order_by(Customer.created_at, Customer.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def copy_rows(session: Session, company_id: int) -> list[dict[str, Any]]:
    """Every customer of a company as plain values (to replay its history elsewhere)."""
    return [{"id": x.id, "name": x.name, "email": x.email, "phone": x.phone, "external_id": x.external_id} for x in
            session.scalars(sa.select(Customer).where(Customer.company_id == company_id).order_by(Customer.id))]


def restore(session: Session, company_id: int, rows: list[dict[str, Any]]) -> None:
    """Customers copied by `copy_rows`, with their ids, into (another database's) company."""
    session.add_all([Customer(company_id=company_id, **row) for row in rows])
