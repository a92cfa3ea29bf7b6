"""People who sign in to the admin: add, list, sign in, the user behind a session."""

from __future__ import annotations

import secrets
from typing import Any

from ..customers import users
from ..customers.models import User
from ..customers.users import ROLES, SignedIn
from ..infra.context import Ctx
from ..messaging import outbox
from .app import Keepwell, reading, use_case

__all__ = ["ROLES", "SignedIn", "add_user", "authenticate", "change_role", "disable", "enable", "invite",
           "link_for", "list_users", "load", "send_link", "set_password", "sign_out", "take_link"]


@use_case
def add_user(ctx: Ctx, email: str, password: str, role: str) -> str:
    """Create a user of the company; the answer is the email as stored (lower case)."""
    return users.add_user(ctx.session, ctx.company, email, password, role).email


@reading
def list_users(ctx: Ctx) -> list[dict[str, Any]]:
    return users.list_users(ctx.session, ctx.company)


@use_case
def set_password(ctx: Ctx, email: str, password: str) -> None:
    """A new password; every session of the user ends."""
    users.set_password(ctx.session, ctx.company, email, password)


@use_case
def disable(ctx: Ctx, email: str) -> None:
    """The user can no longer sign in, and every session of theirs ends now."""
    users.set_disabled(ctx.session, ctx.company, email, True, ctx.clock.now())


@use_case
def enable(ctx: Ctx, email: str) -> None:
    users.set_disabled(ctx.session, ctx.company, email, False, ctx.clock.now())


@use_case
def sign_out(ctx: Ctx, user_id: int) -> None:
    """Signing out ends every session of the user, in every browser."""
    users.sign_out(ctx.session, ctx.company, user_id)


@use_case
def change_role(ctx: Ctx, email: str, role: str) -> None:
    users.set_role(ctx.session, ctx.company, email, role)


@use_case
def invite(ctx: Ctx, email: str, role: str, link_base: str) -> dict[str, Any]:
    """Add a user who chooses their own password: an email with a link (72 hours, once) goes
    through the outbox. `link_base` is where the admin is served, e.g. https://acme.example/admin."""
    user, token = users.invite(ctx.session, ctx.company, email, role, ctx.clock.now())
    return _send(ctx, user, "invite", token, link_base)


@use_case
def send_link(ctx: Ctx, email: str, link_base: str) -> dict[str, Any]:
    """Email the user a new link: the invitation again if they have not joined, else a link to
    set a new password (2 hours, once). Any earlier link stops working."""
    user, purpose, token = users.reissue(ctx.session, ctx.company, email, ctx.clock.now())
    return _send(ctx, user, purpose, token, link_base)


def _send(ctx: Ctx, user: User, purpose: str, token: str, link_base: str) -> dict[str, Any]:
    assert user.link_expires_at is not None
    link = f"{link_base.rstrip('/')}/link/{token}"
    expires = user.link_expires_at.isoformat()
    with ctx.unit.scope():  # the outbox row is written when the scope ends, in this transaction
        outbox.add(ctx, key=f"user-link:{user.link_digest}", event_id=None, customer_id=None, kind="notification",
                   channel="email", template="user_invite" if purpose == "invite" else "user_password_reset",
                   audience="direct", ruleset=None, rule=None,
                   payload={"to": user.email, "data": {"link": link, "role": user.role, "email": user.email,
                                                       "expires_at": expires}})
    return {"email": user.email, "role": user.role, "purpose": purpose, "expires_at": expires}


def link_for(app: Keepwell, token: str) -> dict[str, Any]:
    """Who an emailed link is for (NotFound once it has expired or been used)."""
    def work(s: Any) -> dict[str, Any]:
        user = users.link_user(s, token, app.clock.now())
        company = users.company_of(s, user)
        return {"email": user.email, "company": company.name, "purpose": users.link_purpose(user)}
    return app.run_platform(work, read_only=True)


def take_link(app: Keepwell, token: str, password: str) -> str:
    """Set the password from an emailed link; the answer is the email to sign in with."""
    return app.run_platform(lambda s: users.take_link(s, token, password, app.clock.now()).email)


def generated_password() -> str:
    """A password that passes the policy: 16 random URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


def authenticate(app: Keepwell, email: str, password: str) -> SignedIn | None:
    """The user these credentials belong to, or None (in the same time either way)."""
    return app.run_platform(lambda s: users.authenticate(s, email, password), read_only=True)


def load(app: Keepwell, user_id: int) -> SignedIn | None:
    """The user of a web session, or None once the user is gone or disabled."""
    return app.run_platform(lambda s: users.load(s, user_id), read_only=True)


def exists(app: Keepwell, email: str) -> bool:
    return app.run_platform(lambda s: users.find_user(s, email) is not None, read_only=True)
