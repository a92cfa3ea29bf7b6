"""Sign-in for the admin UI. A signed session cookie holds the user id, the user's session
version and when they signed in; every request reloads the user, so a disabled user, a changed
password or a sign-out elsewhere (each bumps the version) ends the session at once, and a
session older than KEEPWELL_SESSION_HOURS ends too. Failed sign-ins are throttled per account
and per address (Flask-Limiter; only failures count). CSRF protection is global (Flask-WTF)."""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from keepwell.kernel.errors import InvalidDocument, NotFound
from keepwell.usecases import Keepwell, users
from keepwell.usecases.users import SignedIn

bp = Blueprint("keepwell_auth", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/kw-static")


def keepwell() -> Keepwell:
    return current_app.extensions["keepwell"]  # type: ignore[no-any-return]


def current_user() -> SignedIn | None:
    if "keepwell_user" not in g:
        uid = session.get("uid")
        user = None
        if uid is not None:
            user = users.load(keepwell(), uid)
            lifetime = current_app.permanent_session_lifetime.total_seconds()
            if (user is None or session.get("sv") != user.session_version
                    or time.time() - float(session.get("at", 0)) > lifetime):
                user = None
                session.clear()
        g.keepwell_user = user
    return g.keepwell_user  # type: ignore[no-any-return]


def _account() -> str:
    return "account:" + (request.form.get("email") or "").strip().lower()[:254]


def _failed(response) -> bool:
    return response.status_code == 401


def _too_many(limit: RequestLimit):
    minutes = max(1, round((limit.reset_at - time.time()) / 60))
    which = "this account" if "account:" in limit.key else "this address"
    error = (f"Too many failed sign-ins for {which}. Wait {minutes} minute{'s' if minutes != 1 else ''} "
             "and try again, or ask an owner to reset your password.")
    page = render_template("keepwell/login.html", error=error, email=request.form.get("email", ""))
    return make_response(page, 429)  # a Response: Flask-Limiter sends it instead of its own


def throttle_sign_in(app, limiter: Limiter, account_limit: str, address_limit: str) -> None:
    """Throttle failed sign-ins: per account (the email tried) and per client address."""
    view = app.view_functions["keepwell_auth.login"]
    view = limiter.limit(address_limit, key_func=get_remote_address, methods=["POST"], deduct_when=_failed,
                         on_breach=_too_many, scope="signin-address")(view)
    view = limiter.limit(account_limit, key_func=_account, methods=["POST"], deduct_when=_failed,
                         on_breach=_too_many, scope="signin-account")(view)
    app.view_functions["keepwell_auth.login"] = view


def require_editor() -> SignedIn:
    """Owners and managers change rulesets and memberships; staff get 403."""
    user = current_user()
    if user is None:
        abort(401)
    if not user.can_edit:
        abort(403, description="Your role (staff) can look but not change this. Ask an owner or manager.")
    return user


def editor_only(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        require_editor()
        return view(*args, **kwargs)

    return wrapper


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never bounce a signed-in user to another host.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        user = users.authenticate(keepwell(), request.form.get("email", ""), request.form.get("password", ""))
        if user is None:
            error = "That email and password do not match a user."
        else:
            session.clear()
            session["uid"] = user.user_id
            session["sv"] = user.session_version
            session["at"] = time.time()
            session.permanent = True
            flash(f"Signed in as {user.email} ({user.company_name}).", "success")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("keepwell/login.html", error=error, email=request.form.get("email", "")), (
        401 if error else 200)


@bp.route("/link/<token>", methods=["GET", "POST"])
def take_link(token: str):
    """An emailed invitation or password-reset link: choose a password, then sign in."""
    try:
        who = users.link_for(keepwell(), token)
    except NotFound as exc:
        return render_template("keepwell/error.html", title="This link no longer works", message=exc.message), 404
    error = None
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("confirm", ""):
            error = "The two passwords are not the same."
        else:
            try:
                email = users.take_link(keepwell(), token, password)
                session.clear()
                flash(f"Your password is set. Sign in as {email}.", "success")
                return redirect(url_for("keepwell_auth.login"))
            except InvalidDocument as exc:
                error = "Password " + "; ".join(p.message for p in exc.problems)
            except NotFound as exc:
                error = exc.message
    return render_template("keepwell/choose_password.html", who=who, error=error), 400 if error else 200


@bp.post("/logout")
def logout():
    user = current_user()
    if user is not None:  # every session of the user ends, copies of this cookie included
        users.sign_out(keepwell(), user.company_slug, user.user_id)
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("keepwell_auth.login"))
