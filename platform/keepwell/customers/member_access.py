"""How members get into the portal: a one-time link sent to the email the company has for them.

Asking for a link answers the same whether or not the email is a member's (nobody learns who
the company's customers are); a link is 32 random bytes of which only the SHA-256 is kept, works
once, for `LINK_MINUTES`, and only for the company it was asked at. Asking again does not end an
earlier link that is still unused: a member who asked twice may use either."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..infra.tables import aware
from ..kernel.errors import InvalidDocument, NotFound
from .api_keys import digest_of
from .contact import clean_email
from .models import Company, Customer, MemberLink

LINK_MINUTES = 30
# A member asking for many links: at most this many unused ones at a time (the oldest stop).
MOST_OPEN_LINKS = 3



def member_by_email(session: Session, company: Company, email: str) -> Customer | None:
    """The company's customer with this email (the earliest added, should two share one)."""
    try:
        wanted = clean_email(email)
    except InvalidDocument:  # a typo is nobody, and the answer is the same
        return None
    if not wanted:
        return None
    return session.scalar(sa.select(Customer).where(Customer.company_id == company.id,
                                                    sa.func.lower(Customer.email) == wanted.lower())
                          .order_by(Customer.created_at, Customer.id).limit(1))


def new_link(session: Session, company: Company, customer: Customer, now: datetime) -> tuple[MemberLink, str]:
    """A fresh link for the member; the token goes in the email, only its digest is kept."""
    open_links = list(session.scalars(sa.select(MemberLink).where(
        MemberLink.customer_id == customer.id, MemberLink.used_at.is_(None), MemberLink.expires_at > now)
        .order_by(MemberLink.created_at.desc(), MemberLink.id.desc())))
    for old in open_links[MOST_OPEN_LINKS - 1:]:
        old.expires_at = now
    token = secrets.token_urlsafe(32)
    link = MemberLink(company_id=company.id, customer_id=customer.id, digest=digest_of(token), created_at=now,
                      expires_at=now + timedelta(minutes=LINK_MINUTES))
    session.add(link)
    session.flush()
    return link, token


def take_link(session: Session, company: Company, token: str, now: datetime) -> Customer:
    """The member a link signs in, marking it used; NotFound when it is not this company's, has
    expired or has been used."""
    link = session.scalar(sa.select(MemberLink).where(MemberLink.digest == digest_of(token or ""))
                          .with_for_update())
    if link is None or link.company_id != company.id or link.used_at is not None or aware(link.expires_at) <= now:
        raise NotFound("This sign-in link has expired or has been used. Ask for a new one below.")
    link.used_at = now
    customer = session.get(Customer, link.customer_id)
    assert customer is not None
    return customer
