"""Mounts the admin UI on a Flask app: secret key, CSRF, sign-in, and the Flask-Admin views."""

from __future__ import annotations

import os
import secrets
import warnings
from datetime import timedelta
from pathlib import Path

from flask import Flask, redirect, render_template, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_wtf.csrf import CSRFError, CSRFProtect
from keepwell import db
from keepwell.api import bp as api_bp
from sqlalchemy.orm import scoped_session

from .auth import bp as auth_bp
from .auth import current_user

csrf = CSRFProtect()


def _secret_key(configured: str | None) -> str:
    """The configured key, else one generated once and kept in instance/ so that restarts and
    several processes on one machine share it (created with O_EXCL: the first writer wins)."""
    if configured:
        return configured
    path = Path("instance") / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return path.read_text().strip()


class SignedInOnly:
    """Every admin view: only for a signed-in user; others go to the sign-in page."""

    def is_accessible(self) -> bool:
        return current_user() is not None

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("keepwell_auth.login", next=request.full_path.rstrip("?")))


class Home(SignedInOnly, AdminIndexView):
    @expose("/")
    def index(self):
        from .records import dashboard

        return self.render("keepwell/home.html", user=current_user(), **dashboard(current_user()))


def init_admin(app: Flask, service) -> Admin:
    app.secret_key = app.config.get("SECRET_KEY") or _secret_key(service.settings.secret_key)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=12))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the session's lifetime bounds it
    csrf.init_app(app)
    csrf.exempt(api_bp)  # bearer keys, no cookies: CSRF cannot ride on them
    app.register_error_handler(CSRFError, lambda e: (render_template(
        "keepwell/error.html", title="This form has expired",
        message="The page was open too long or came from elsewhere. Go back, reload it and try again."), 400))
    app.register_blueprint(auth_bp)

    # Flask-Admin's list views read through a session per request thread.
    readers = app.extensions.setdefault("keepwell_read", db.read_sessions(service.engine))
    db_session = scoped_session(readers)
    app.teardown_appcontext(lambda _exc: db_session.remove())

    admin = Admin(app, name="Keepwell", url="/admin",
                  index_view=Home(name="Home", url="/admin"),
                  theme=Bootstrap4Theme(base_template="keepwell/base.html", fluid=True))
    from .packs import PacksView
    from .records import CustomersView, EventsView, LedgerView, MembershipsView
    from .rulesets import RulesetsView

    admin.add_view(RulesetsView(name="Rulesets", endpoint="rulesets", url="/admin/rulesets"))
    admin.add_view(PacksView(name="Template packs", endpoint="packs", url="/admin/packs"))
    with warnings.catch_warnings():
        # Flask-Admin 2.x would like a Flask-SQLAlchemy object; our sessions come from the core.
        # The plain session keeps working until Flask-Admin 3, which pyproject does not allow.
        warnings.filterwarnings("ignore", "Passing a session object directly", DeprecationWarning)
        admin.add_view(CustomersView(db_session, name="Customers", endpoint="customers"))
        admin.add_view(MembershipsView(db_session, name="Memberships", endpoint="memberships"))
        admin.add_view(LedgerView(db_session, name="Ledger", endpoint="ledger"))
        admin.add_view(EventsView(db_session, name="Events", endpoint="events"))
    return admin
