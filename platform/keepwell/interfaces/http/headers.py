"""What every response carries, the API's and the admin's alike: security headers and a
request id (`X-Request-Id`: the client's own when it sends a usable one, else a new one), which
the log line of each API request names too."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, request
from flask.wrappers import Response

log = logging.getLogger("keepwell.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def content_security_policy(nonce: str | None) -> str:
    # The admin runs only its own scripts (Flask-Admin's tags carry this response's nonce);
    # styles may be inline (Bootstrap widgets set them), nothing may frame a page.
    scripts = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    return ("default-src 'self'; "
            f"script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def install(app: Flask, https: bool) -> None:
    @app.before_request
    def request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def secure(response: Response) -> Response:
        h = response.headers
        h["X-Request-Id"] = g.get("request_id") or uuid.uuid4().hex
        if request.path.startswith("/api/"):
            # The path only: a query string may hold what logs must not keep.
            log.info("%s %s %s %s", h["X-Request-Id"], request.method, request.path, response.status_code)
        h["Content-Security-Policy"] = content_security_policy(g.get("csp_nonce"))
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "same-origin"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        if https:
            h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if "Cache-Control" not in h and (response.mimetype == "application/json" or g.get("keepwell_user")):
            h["Cache-Control"] = "no-store"  # balances and pages of a signed-in user: not kept by proxies
        return response
