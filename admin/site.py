"""Mounts the admin UI on a Flask app: secret key, CSRF, sign-in, and the Flask-Admin views."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, redirect, render_template, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFError, CSRFProtect

from keepwell.infra.settings import Settings
from keepwell.interfaces.http.api import bp as api_bp
from keepwell.kernel import calendar_words
from keepwell.usecases import lists, locations

from .auth import bp as auth_bp
from .auth import current_user, keepwell, throttle_sign_in

csrf = CSRFProtect()


def _secret_key(settings: Settings) -> str:
    """The configured key, else one generated once and kept in KEEPWELL_HOME so that restarts and
    several processes on one machine share it (created with O_EXCL: the first writer wins)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.home) / "secret_key"
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

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        return redirect(url_for("keepwell_auth.login", next=request.full_path.rstrip("?")))


class OwnersOnly(SignedInOnly):
    """A view for the company's owners: another signed-in user gets a 403 saying so."""

    refusal = "Only an owner may use this page."

    def is_accessible(self) -> bool:
        user = current_user()
        return user is not None and user.role == "owner"

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if current_user() is not None:
            abort(403, description=self.refusal)
        return super().inaccessible_callback(name, **kwargs)


class Home(SignedInOnly, AdminIndexView):
    @expose("/")
    def index(self) -> Any:
        user = current_user()
        places = locations.list_locations(keepwell(), user.company_slug)
        at = request.args.get("location", "")
        at = at if any(p["id"] == at for p in places) else None
        return self.render("keepwell/home.html", user=user, counts=lists.dashboard(keepwell(), user.company_slug),
                           business=lists.business(keepwell(), user.company_slug, at), places=places)


def csp_nonce() -> str:
    """This response's nonce for the admin's own <script> tags (Content-Security-Policy)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce  # type: ignore[no-any-return]


def init_admin(app: Flask, settings: Settings, limiter: Limiter) -> Admin:
    app.secret_key = app.config.get("SECRET_KEY") or _secret_key(settings)
    # Set for real (Flask defines every one of these, so setdefault would change nothing).
    lifetime = timedelta(hours=settings.session_hours)
    app.config.update(
        SESSION_COOKIE_NAME="keepwell_session", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https, PERMANENT_SESSION_LIFETIME=lifetime,
        # The cookie's lifetime is the session's: refreshing it on each request would let an
        # open tab keep a session forever (current_user also ends it after `lifetime`).
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_TIME_LIMIT=max(60, int(lifetime.total_seconds())), WTF_CSRF_SSL_STRICT=settings.https,
    )
    csrf.init_app(app)
    csrf.exempt(api_bp)  # bearer keys, no cookies: CSRF cannot ride on them
    # The sandbox's card page stands for a payment provider's own page: it changes nothing here
    # (a card becomes a token, handed back to the page that asked, whose form carries the CSRF token).
    csrf.exempt("keepwell.interfaces.http.sandbox.card_page")
    app.register_error_handler(CSRFError, lambda e: (render_template(
        "keepwell/error.html", title="This form has expired",
        message="The page was open too long or came from elsewhere. Go back, reload it and try again."), 400))
    app.register_blueprint(auth_bp)
    throttle_sign_in(app, limiter, settings.signin_limit_account, settings.signin_limit_address)
    app.jinja_env.globals["kw_user"] = current_user
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.filters["day"] = calendar_words.day  # {{ v.effective_from|day }} -> "2 Mar 2025"
    app.jinja_env.filters["since"] = calendar_words.since  # the same, "from the start" for a demo's 1970

    admin = Admin(app, name="Keepwell", url="/admin", csp_nonce_generator=csp_nonce,
                  index_view=Home(name="Home", url="/admin"),
                  theme=Bootstrap4Theme(base_template="keepwell/base.html", fluid=True))
    from .locations import LocationsView
    from .packs import PacksView
    from .records import CustomersView, EventsView, LedgerView, MembershipsView
    from .reports import ReportsView
    from .rewards import CatalogView, EconomyView, RedemptionsView
    from .rulesets import RulesetsView
    from .users import UsersView
    from .webhooks import WebhooksView

    admin.add_view(RulesetsView(name="Plans and rules", endpoint="rulesets", url="/admin/rulesets"))
    admin.add_view(PacksView(name="Template packs", endpoint="packs", url="/admin/packs"))
    admin.add_view(CustomersView(name="Customers", endpoint="customers", url="/admin/customers"))
    admin.add_view(MembershipsView(name="Memberships", endpoint="memberships", url="/admin/memberships"))
    admin.add_view(CatalogView(name="Catalog", category="Rewards", endpoint="rewards_catalog",
                               url="/admin/rewards/catalog"))
    admin.add_view(RedemptionsView(name="Redemptions", category="Rewards", endpoint="redemptions",
                                   url="/admin/rewards/redemptions"))
    admin.add_view(EconomyView(name="Points economy", category="Rewards", endpoint="points_economy",
                               url="/admin/rewards/economy"))
    admin.add_view(ReportsView(name="Reports", endpoint="reports", url="/admin/reports"))
    admin.add_view(LedgerView(name="Ledger", endpoint="ledger", url="/admin/ledger"))
    admin.add_view(EventsView(name="Events", endpoint="events", url="/admin/events"))
    admin.add_view(UsersView(name="Team", category="Company", endpoint="users", url="/admin/users"))
    admin.add_view(LocationsView(name="Locations", category="Company", endpoint="locations", url="/admin/locations"))
    admin.add_view(WebhooksView(name="Webhooks", category="Company", endpoint="webhooks", url="/admin/webhooks"))
    return admin
