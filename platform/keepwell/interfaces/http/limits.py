"""Rate limits, with Flask-Limiter: one limiter per app, counted in Redis when
KEEPWELL_REDIS_URL is set (every web process shares the count) and in memory otherwise.
The API is limited per key (`KEEPWELL_API_RATE_LIMIT`), with `RateLimit-*` and `Retry-After`
headers; the admin's sign-in per account and per address (admin.auth)."""

from __future__ import annotations

import hashlib

from flask import Blueprint, Flask, request
from flask_limiter import HeaderNames, Limiter
from flask_limiter.util import get_remote_address

from ...infra.settings import Settings

HEADERS = {HeaderNames.LIMIT: "RateLimit-Limit", HeaderNames.REMAINING: "RateLimit-Remaining",
           HeaderNames.RESET: "RateLimit-Reset", HeaderNames.RETRY_AFTER: "Retry-After"}


def make_limiter(app: Flask, settings: Settings) -> Limiter:
    return Limiter(get_remote_address, app=app, storage_uri=settings.redis_url or "memory://",
                   key_prefix="keepwell", default_limits=[], headers_enabled=True, header_name_mapping=HEADERS,
                   retry_after="delta-seconds")


def api_key_of_request() -> str:
    """Whom a request is counted against: its API key (by digest, never the secret), else its address."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip():
        return "key:" + hashlib.sha256(header[7:].strip().encode()).hexdigest()[:32]
    return "address:" + (get_remote_address() or "")


def limit_api(limiter: Limiter, bp: Blueprint, settings: Settings) -> None:
    limiter.limit(settings.api_rate_limit, key_func=api_key_of_request, scope="api")(bp)
