"""The Flask app factory: a composition root. It reads the settings (unless handed them), opens
the service, and mounts the REST API and the admin UI on one app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui_bundle
from flask import Flask, jsonify, render_template, render_template_string, request, send_from_directory
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from ...infra.logs import mask_card_numbers
from ...infra.settings import Settings
from ...usecases import Keepwell, system
from ..wiring import open_app

LANDING = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Keepwell</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}</style></head><body>
<h1>Keepwell</h1><p>Memberships and rewards for home-service contractors.</p>
<ul><li><a href="/admin/">Admin</a>: configure plans, rewards and notifications, see members and ledgers</li>
<li><a href="/healthz">Health</a></li><li>REST API: <code>/api/v1</code> with
<code>Authorization: Bearer &lt;key&gt;</code> (<code>keepwell apikeys create</code>)</li></ul></body></html>"""


DOCS = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Keepwell API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head><body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script><script src="/api/docs/docs.js"></script></body></html>"""


# The admin's own pages for these (Werkzeug's stock text unless the view said more).
ADMIN_ERRORS = {
    403: ("Not allowed", "Your role does not allow this page. Ask an owner of your company."),
    404: ("Page not found", "There is nothing at this address: it may have been removed, or the link is mistyped."),
}


def create_app(test_config: dict[str, Any] | None = None, service: Keepwell | None = None,
               settings: Settings | None = None) -> Flask:
    mask_card_numbers()  # no card number in any log line (access logs quote URLs)
    app = Flask(__name__)
    app.config.from_mapping(JSON_SORT_KEYS=False)
    if test_config:
        app.config.update(test_config)
    if settings is None:
        settings = Settings.from_env(app.config.get("KEEPWELL_ENV"))
    if service is None:
        service = open_app(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["keepwell"] = service
    app.extensions["keepwell_settings"] = settings

    from . import api_visits, errors, headers, limits, openapi  # noqa: F401  (api_visits: views on the API's bp)
    from .api import bp

    headers.install(app, settings.https)
    limiter = limits.make_limiter(app, settings)
    limits.limit_api(limiter, bp, settings)
    app.register_blueprint(bp)
    from .sandbox import bp as sandbox_bp

    app.register_blueprint(sandbox_bp)
    from .calendar_feed import bp as calendar_bp

    app.register_blueprint(calendar_bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        # Under /api/ every error is problem details (unknown paths and methods included); the
        # admin keeps its pages: what is not there or not allowed says so on a page of its own.
        if request.path.startswith("/api/"):
            return errors.from_http(exc)
        if request.path.startswith("/admin") and exc.code in ADMIN_ERRORS:
            title, default = ADMIN_ERRORS[exc.code]
            plain = exc.description in (None, type(exc).description)
            return render_template("keepwell/error.html", title=title,
                                   message=default if plain else exc.description), exc.code
        return exc

    from ..admin import init_admin

    init_admin(app, settings, limiter)
    from . import portal

    portal.install(app, limiter, failures_per_account=settings.signin_limit_account,
                   failures_per_address=settings.signin_limit_address)

    @app.get("/")
    def index() -> ResponseReturnValue:
        return render_template_string(LANDING)

    @app.get("/api/v1/openapi.json")
    def openapi_document() -> ResponseReturnValue:
        return jsonify(openapi.document())

    @app.get("/api/docs/")
    def api_docs() -> ResponseReturnValue:
        return render_template_string(DOCS)

    @app.get("/api/docs/<path:name>")
    def api_docs_file(name: str) -> ResponseReturnValue:
        if name == "docs.js":
            return send_from_directory(Path(__file__).parent / "static", "docs.js")
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, name)

    @app.get("/healthz")
    def health() -> ResponseReturnValue:
        return jsonify(system.health(service))

    return app
