"""People who sign in to the admin: add, list, sign in, the user behind a session."""

from __future__ import annotations

import secrets
from typing import Any

from ..customers import users
from ..customers.users import ROLES, SignedIn
from ..infra.context import Ctx
from .app import Keepwell, reading, use_case

__all__ = ["ROLES", "SignedIn", "add_user", "authenticate", "disable", "enable", "list_users", "load",
           "set_password", "sign_out"]


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
