"""The Flask app factory: a composition root. It wires the core service into the REST API and the
admin UI (the `admin` package, which depends on the core, never the reverse)."""

from __future__ import annotations

from flask import Flask, jsonify, render_template_string

from . import db
from .config import Settings
from .service import Keepwell

LANDING = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Keepwell</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}</style></head><body>
<h1>Keepwell</h1><p>Memberships and rewards for home-service contractors.</p>
<ul><li><a href="/admin/">Admin</a>: configure plans, rewards and notifications, see members and ledgers</li>
<li><a href="/healthz">Health</a></li><li>REST API: <code>/api/v1</code> with
<code>Authorization: Bearer &lt;key&gt;</code> (<code>keepwell apikeys create</code>)</li></ul></body></html>"""


def create_app(test_config: dict | None = None, service: Keepwell | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(JSON_SORT_KEYS=False)
    if test_config:
        app.config.update(test_config)
    if service is None:
        settings = Settings.from_env(app.config.get("KEEPWELL_ENV"))
        service = Keepwell.from_settings(settings)
    app.extensions["keepwell"] = service
    # Pages and API-key checks that only read use these: on SQLite they take no write lock.
    app.extensions["keepwell_read"] = db.read_sessions(service.engine)

    from .api import bp

    app.register_blueprint(bp)

    from admin import init_admin
    from admin.auth import current_user

    init_admin(app, service)
    app.jinja_env.globals["kw_user"] = current_user

    @app.get("/")
    def index():
        return render_template_string(LANDING)

    @app.get("/healthz")
    def health():
        return jsonify({"ok": True, "schema": db.current_revision(service.engine)})

    return app
