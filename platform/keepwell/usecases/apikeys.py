"""API keys for the REST API: create with scopes, list, revoke, and the check of each request."""

from __future__ import annotations

from typing import Any

from ..customers import api_keys
from ..customers.api_keys import DEFAULT_SCOPES, SCOPES, KeyGrant
from ..infra.context import Ctx
from .app import Keepwell, reading, use_case

__all__ = ["DEFAULT_SCOPES", "SCOPES", "KeyGrant", "create", "grant_for", "issue", "list_keys", "revoke"]


@use_case
def create(ctx: Ctx, name: str = "default", scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES) -> str:
    """A new key for the company; the secret is shown once and only its digest is stored."""
    return api_keys.create_api_key(ctx.session, ctx.company, name, scopes)


@use_case
def issue(ctx: Ctx, name: str, scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES) -> dict[str, Any]:
    """A new key as `list_keys` shows it, with its secret (the only time it is seen)."""
    return api_keys.issue_api_key(ctx.session, ctx.company, name, scopes)


@reading
def list_keys(ctx: Ctx) -> list[dict[str, Any]]:
    return api_keys.list_keys(ctx.session, ctx.company)


def revoke(app: Keepwell, company: str, key_id: int) -> None:
    """Revoke a key; this process forgets it at once (others within the key cache's seconds)."""
    digest = app.run(company, lambda ctx: api_keys.revoke(ctx.session, ctx.company, key_id, ctx.clock.now()))
    app.key_cache.forget(digest)


def grant_for(app: Keepwell, secret: str) -> KeyGrant | None:
    """The company and scopes of a key, or None for an unknown or revoked key."""
    digest = api_keys.digest_of(secret)
    grant = app.key_cache.get(digest)
    if grant is None:
        grant = app.run_platform(lambda s: api_keys.grant_for_key(s, digest), read_only=True)
        if grant is not None:
            app.key_cache.put(digest, grant)
    return grant  # type: ignore[no-any-return]
