"""Security headers on every response, the API's and the admin's alike."""

from __future__ import annotations

from flask import Flask, g
from flask.wrappers import Response


def content_security_policy(nonce: str | None) -> str:
    # The admin runs only its own scripts (Flask-Admin's tags carry this response's nonce);
    # styles may be inline (Bootstrap widgets set them), nothing may frame a page.
    scripts = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    return ("default-src 'self'; "
            f"script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def install(app: Flask, https: bool) -> None:
    @app.after_request
    def secure(response: Response) -> Response:
        h = response.headers
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
