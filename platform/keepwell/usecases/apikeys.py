"""API keys for the REST API."""

from __future__ import annotations

from ..customers import api_keys
from ..infra.context import Ctx
from .app import Keepwell, use_case


@use_case
def create(ctx: Ctx, name: str = "default") -> str:
    """A new key for the company; the secret is shown once and only its digest is stored."""
    return api_keys.create_api_key(ctx.session, ctx.company, name)


def company_for_key(app: Keepwell, secret: str) -> str | None:
    """The slug of the company a key belongs to, or None for an unknown or revoked key."""
    digest = api_keys.digest_of(secret)
    slug = app.key_cache.get(digest)
    if slug is None:
        slug = app.run_platform(lambda s: api_keys.company_for_key(s, digest), read_only=True)
        if slug is not None:
            app.key_cache.put(digest, slug)
    return slug
