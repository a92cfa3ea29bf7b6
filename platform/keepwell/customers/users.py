"""People who sign in to the admin UI, and what their role lets them do.

Roles: an owner and a manager may change rulesets and memberships; staff only read rulesets and
ledgers (they still see customers and memberships). Passwords are stored as salted scrypt hashes,
and must not be guessable: zxcvbn (a maintained estimator with the common-password lists built
in) scores each one, and anything below "safely unguessable" (3 of 4) is refused with its advice.

A session belongs to a user's `session_version`: signing out, a password change and disabling
the user bump it, so every session of that user ends at once, copied cookies included.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from ..infra.tables import aware
from ..kernel.errors import Conflict, InvalidDocument, NotFound
from .api_keys import digest_of
from .models import Company, User

ROLES = ("owner", "manager", "staff")
MIN_PASSWORD = 10
MAX_PASSWORD = 200  # zxcvbn's time grows with length; nobody types more
MIN_STRENGTH = 3  # zxcvbn's "safely unguessable"
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
    session_version: int = 0

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
    email = normalize_email(email)
    check_password(password, email, company.name)
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
    return SignedIn(user.id, user.email, user.role, company.id, company.slug, company.name, user.session_version)


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == normalize_email(email)))


def list_users(session: Session, company: Company) -> list[dict]:
    rows = session.scalars(sa.select(User).where(User.company_id == company.id).order_by(User.email))
    return [{"email": u.email, "role": u.role, "created_at": u.created_at.isoformat(),
             "disabled": u.disabled_at is not None, "status": _status(u),
             "invited_at": u.invited_at.isoformat() if u.invited_at else None} for u in rows]


def _status(user: User) -> str:
    if user.disabled_at is not None:
        return "disabled"
    return "invited" if link_purpose(user) == "invite" else "active"


def check_password(password: str | None, *context: str) -> None:
    """Refuse a password that is short or easy to guess (a common password, a keyboard walk,
    the user's email or company name), with zxcvbn's advice."""
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise InvalidDocument.field("password", f"must be at least {MIN_PASSWORD} characters",
                                    f"the password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidDocument.field("password", f"must be at most {MAX_PASSWORD} characters",
                                    f"the password must be at most {MAX_PASSWORD} characters")
    words = [w for c in context if c for w in re.split(r"[^a-z0-9]+", c.lower()) if len(w) > 2]
    verdict = zxcvbn(password, user_inputs=words)
    if verdict["score"] < MIN_STRENGTH:
        feedback = verdict["feedback"]
        advice = " ".join(filter(None, [feedback.get("warning"), *feedback.get("suggestions", [])]))
        message = "is too easy to guess" + (f": {advice}" if advice else "; use a few uncommon words")
        raise InvalidDocument.field("password", message, f"the password {message}")


def _user(session: Session, company: Company, email: str) -> User:
    user = session.scalar(sa.select(User).where(User.company_id == company.id, User.email == normalize_email(email)))
    if user is None:
        raise NotFound(f"no user {email} in company {company.slug}")
    return user


def end_sessions(user: User) -> None:
    """Every session of this user ends (the ones in other browsers too)."""
    user.session_version = (user.session_version or 0) + 1


def set_password(session: Session, company: Company, email: str, password: str) -> User:
    user = _user(session, company, email)
    check_password(password, user.email, company.name)
    user.password_hash = generate_password_hash(password)
    end_sessions(user)
    return user


def sign_out(session: Session, company: Company, user_id: int) -> None:
    user = session.scalar(sa.select(User).where(User.company_id == company.id, User.id == user_id))
    if user is not None:
        end_sessions(user)


def _last_owner(session: Session, company: Company, user: User) -> bool:
    """Whether the user is the company's only enabled owner: nobody else could manage users."""
    if user.role != "owner" or user.disabled_at is not None:
        return False
    return session.scalar(sa.select(sa.func.count()).select_from(User).where(
        User.company_id == company.id, User.role == "owner", User.disabled_at.is_(None))) == 1


def set_disabled(session: Session, company: Company, email: str, disabled: bool, at: datetime) -> User:
    """Disable a user (every session ends; they cannot sign in) or enable them again. The last
    enabled owner of a company cannot be disabled: nobody could manage its users any more."""
    user = _user(session, company, email)
    if disabled and _last_owner(session, company, user):
        raise Conflict(f"{user.email} is the company's last owner: add another owner first")
    if disabled:
        if user.disabled_at is None:
            user.disabled_at = at
        end_sessions(user)
    else:
        user.disabled_at = None
    return user


# --- emailed links: invitations and password resets --------------------------------------------

LINK_HOURS = {"invite": 72, "reset": 2}



def _new_link(user: User, purpose: str, now: datetime) -> str:
    """A fresh single-use link token for the user (any earlier one stops working)."""
    token = secrets.token_urlsafe(32)
    user.link_digest = digest_of(token)
    user.link_expires_at = now + timedelta(hours=LINK_HOURS[purpose])
    return token


def invite(session: Session, company: Company, email: str, role: str, now: datetime) -> tuple[User, str]:
    """A user who sets their own password from an emailed link; until then nobody can sign in
    as them (the stored hash is of a random secret nobody knows). The answer's token goes in
    the link; only its digest is kept."""
    user = add_user(session, company, email, secrets.token_urlsafe(24) + "-Aa1!", role)
    user.invited_at = now
    return user, _new_link(user, "invite", now)


def reissue(session: Session, company: Company, email: str, now: datetime) -> tuple[User, str, str]:
    """A new link for a user: the invitation again for one who has not joined yet, else a
    password reset (their sessions go on until the new password is set)."""
    user = _user(session, company, email)
    if user.disabled_at is not None:
        raise Conflict(f"{user.email} is disabled: enable them first")
    purpose = link_purpose(user)
    return user, purpose, _new_link(user, purpose, now)


def link_purpose(user: User) -> str:
    """What a user's emailed link is: the invitation, until they have joined; then a reset."""
    return "invite" if user.invited_at is not None and user.joined_at is None else "reset"


def link_user(session: Session, token: str, now: datetime) -> User:
    """The user an emailed link is for, while it works."""
    user = session.scalar(sa.select(User).where(User.link_digest == digest_of(token or "")))
    if user is None or user.disabled_at is not None or user.link_expires_at is None \
            or aware(user.link_expires_at) <= now:
        raise NotFound("This link has expired or has been used. Ask an owner of your company for a new one.")
    return user


def company_of(session: Session, user: User) -> Company:
    company = session.get(Company, user.company_id)
    assert company is not None
    return company


def take_link(session: Session, token: str, password: str, now: datetime) -> User:
    """Set the password from an emailed link; the link stops working and other sessions end."""
    user = link_user(session, token, now)
    check_password(password, user.email, company_of(session, user).name)
    user.password_hash = generate_password_hash(password)
    user.link_digest = user.link_expires_at = None
    if user.joined_at is None:
        user.joined_at = now
    end_sessions(user)
    return user


def set_role(session: Session, company: Company, email: str, role: str) -> User:
    """Another role, in effect on the user's next page (the role is read on every request). The
    company's last enabled owner keeps the owner role."""
    if role not in ROLES:
        raise InvalidDocument.field("role", f"Role must be one of {', '.join(ROLES)}")
    user = _user(session, company, email)
    if role != "owner" and _last_owner(session, company, user):
        raise Conflict(f"{user.email} is the company's last owner: make someone else an owner first")
    user.role = role
    return user
