"""Sign-in for the admin UI: a signed session cookie holds the user id; every request reloads
the user, so a disabled user is out at once. CSRF protection is global (Flask-WTF)."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

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
            if user is None:
                session.clear()
        g.keepwell_user = user
    return g.keepwell_user  # type: ignore[no-any-return]


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
            session.permanent = True
            flash(f"Signed in as {user.email} ({user.company_name}).", "success")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("keepwell/login.html", error=error, email=request.form.get("email", "")), (
        401 if error else 200)


@bp.post("/logout")
def logout():
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("keepwell_auth.login"))
