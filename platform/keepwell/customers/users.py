"""People who sign in to the admin UI, and what their role lets them do.

Roles: an owner and a manager may change rulesets and memberships; staff only read rulesets and
ledgers (they still see customers and memberships). Passwords are stored as salted scrypt hashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..kernel.errors import Conflict, InvalidDocument, NotFound
from .models import Company, User

ROLES = ("owner", "manager", "staff")
MIN_PASSWORD = 8
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Checked when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


@dataclass(frozen=True)
class SignedIn:
    """What a web session needs to know about its user, without holding an ORM object."""

    user_id: int
    email: str
    role: str
    company_id: int
    company_slug: str
    company_name: str

    @property
    def can_edit(self) -> bool:
        return self.role in ("owner", "manager")


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.match(email):
        raise InvalidDocument.field("email", f"{email!r} is not an email address", f"{email!r} is not an email address")
    return email


def add_user(session: Session, company: Company, email: str, password: str, role: str) -> User:
    if role not in ROLES:
        raise InvalidDocument.field("role", f"unknown role {role!r}: use one of {', '.join(ROLES)}",
                                    f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    check_password(password)
    email = normalize_email(email)
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with email {email} already exists")
    user = User(company_id=company.id, email=email, password_hash=generate_password_hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> SignedIn | None:
    try:
        email = normalize_email(email)
    except InvalidDocument:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    row = session.execute(
        sa.select(User, Company).join(Company, Company.id == User.company_id).where(User.email == email)
    ).first()
    if row is None or row.User.disabled_at is not None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(row.User.password_hash, password or ""):
        return None
    return signed_in(row.User, row.Company)


def load(session: Session, user_id: int) -> SignedIn | None:
    """The user of a web session, or None once the user is gone or disabled."""
    row = session.execute(
        sa.select(User, Company).join(Company, Company.id == User.company_id).where(User.id == user_id)
    ).first()
    if row is None or row.User.disabled_at is not None:
        return None
    return signed_in(row.User, row.Company)


def signed_in(user: User, company: Company) -> SignedIn:
    return SignedIn(user.id, user.email, user.role, company.id, company.slug, company.name)


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == normalize_email(email)))


def list_users(session: Session, company: Company) -> list[dict]:
    rows = session.scalars(sa.select(User).where(User.company_id == company.id).order_by(User.email))
    return [{"email": u.email, "role": u.role, "created_at": u.created_at.isoformat(),
             "disabled": u.disabled_at is not None} for u in rows]


def check_password(password: str | None) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidDocument.field("password", f"must be at least {MIN_PASSWORD} characters",
                                    f"the password must be at least {MIN_PASSWORD} characters")


def set_password(session: Session, company: Company, email: str, password: str) -> User:
    check_password(password)
    user = session.scalar(sa.select(User).where(User.company_id == company.id, User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"no user {email} in company {company.slug}")
    user.password_hash = generate_password_hash(password)
    return user
