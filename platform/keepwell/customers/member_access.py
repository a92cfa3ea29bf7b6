"""How members get into the portal: a one-time link sent to the email the company has for them,
or a password of their own (set once they are signed in, by a link: the link proves the email).

Asking for a link answers the same whether or not the email is a member's (nobody learns who
the company's customers are); a link is 32 random bytes of which only the SHA-256 is kept, works
once, for `LINK_MINUTES`, and only for the company it was asked at. Asking again does not end an
earlier link that is still unused: a member who asked twice may use either."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..infra.tables import aware
from ..kernel.errors import InvalidDocument, NotFound
from .api_keys import digest_of
from .contact import clean_email
from .models import Company, Customer, MemberLink, MemberPassword
from .users import check_password

# Checked when nobody has that email or password, so that a wrong email costs what a wrong password does.
_DUMMY_HASH = generate_password_hash("not-a-member-password")

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


def session_version(session: Session, customer_id: str) -> int:
    """The version a member's portal sessions must hold (0 until they set a password)."""
    found = session.scalar(sa.select(MemberPassword.session_version)
                           .where(MemberPassword.customer_id == customer_id))
    return int(found or 0)


def set_password(session: Session, company: Company, customer: Customer, password: str, now: datetime) -> int:
    """Set (or change) the member's portal password; their other sessions end. The answer is the
    new session version, for the session that set it."""
    check_password(password, customer.email or "", customer.name, company.name)
    held = session.get(MemberPassword, customer.id, with_for_update=True)
    if held is None:
        held = MemberPassword(customer_id=customer.id, company_id=company.id, session_version=0)
        session.add(held)
    held.password_hash = generate_password_hash(password)
    held.session_version = (held.session_version or 0) + 1
    held.set_at = now
    session.flush()
    return held.session_version


def has_password(session: Session, customer_id: str) -> bool:
    return session.get(MemberPassword, customer_id) is not None


def authenticate(session: Session, company: Company, email: str, password: str) -> tuple[Customer, int] | None:
    """The member (and their session version) whose email and password these are, at this
    company; None otherwise, after the same work either way."""
    member = member_by_email(session, company, email)
    held = session.get(MemberPassword, member.id) if member is not None else None
    if held is None or held.company_id != company.id:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(held.password_hash, password or ""):
        return None
    assert member is not None
    return member, held.session_version
