"""The member portal, served per company at /portal/<company>/: a homeowner signs in with a
one-time link emailed to them and sees their membership and rewards, on a phone first. Pages
are server-rendered and work without JavaScript. A member session holds the company and the
customer it signed in as; every page asks the use cases for that customer's records only, so
there is no id of anyone else's to try. Asking for links is throttled per address and per email."""

from __future__ import annotations

import time
from functools import wraps
from typing import Any

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
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from ...kernel import calendar_words
from ...kernel.errors import NotFound
from ...usecases import Keepwell, companies, portal

bp = Blueprint("portal", __name__, url_prefix="/portal/<company>", template_folder="templates")


def keepwell() -> Keepwell:
    return current_app.extensions["keepwell"]  # type: ignore[no-any-return]


@bp.url_value_preprocessor
def _company(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    slug = (values or {}).pop("company", "")
    if not companies.exists(keepwell(), slug):
        abort(404)
    g.portal_company = slug


@bp.url_defaults
def _with_company(_endpoint: str, values: dict[str, Any]) -> None:
    values.setdefault("company", g.get("portal_company"))


def member() -> str | None:
    """The customer id this browser is signed in as, at this company (None: not signed in, or
    signed in elsewhere, or the session has run its course)."""
    held = session.get("member")
    if not isinstance(held, dict) or held.get("company") != g.portal_company:
        return None
    if time.time() - float(held.get("at", 0)) > current_app.permanent_session_lifetime.total_seconds():
        session.pop("member", None)
        return None
    return str(held.get("customer") or "") or None


def members_only(view: Any) -> Any:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if member() is None:
            return redirect(url_for("portal.sign_in"))
        return view(*args, **kwargs)
    return wrapper


@bp.get("/")
@members_only
def home() -> ResponseReturnValue:
    return render_template("portal/home.html", h=portal.home(keepwell(), g.portal_company, member()))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    name = _company_name()
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        portal.request_link(keepwell(), g.portal_company, email, url_for("portal.home", _external=True).rstrip("/"))
        return render_template("portal/link_sent.html", company_name=name, email=email[:254])
    return render_template("portal/sign_in.html", company_name=name)


@bp.get("/link/<token>")
def take_link(token: str) -> ResponseReturnValue:
    try:
        who = portal.sign_in(keepwell(), g.portal_company, token)
    except NotFound as exc:
        return render_template("portal/sign_in.html", company_name=_company_name(), error=exc.message), 404
    session["member"] = {"company": g.portal_company, "customer": who["customer"], "at": time.time()}
    session.permanent = True
    return redirect(url_for("portal.home"))


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    session.pop("member", None)
    flash("You are signed out.", "info")
    return redirect(url_for("portal.sign_in"))


def _company_name() -> str:
    return str(companies.details(keepwell(), g.portal_company)["name"])


def _email() -> str:
    return "member-email:" + (request.form.get("email") or "").strip().lower()[:254]


def _too_many(limit: RequestLimit) -> Any:
    minutes = max(1, round((limit.reset_at - time.time()) / 60))
    page = render_template("portal/sign_in.html", company_name=_company_name(),
                           too_many=f"Too many sign-in links asked for. Wait {minutes} minute"
                           f"{'s' if minutes != 1 else ''}, then ask again (or use a link already sent).")
    return make_response(page, 429)


def install(app: Any, limiter: Limiter, per_email: str = "5 per hour", per_address: str = "30 per hour") -> None:
    """Mount the portal; asking for sign-in links is limited per email and per address."""
    app.jinja_env.filters.setdefault("day", calendar_words.day)
    app.register_blueprint(bp)
    view = app.view_functions["portal.sign_in"]
    view = limiter.limit(per_address, key_func=get_remote_address, methods=["POST"], scope="portal-address",
                         on_breach=_too_many)(view)
    view = limiter.limit(per_email, key_func=_email, methods=["POST"], scope="portal-email",
                         on_breach=_too_many)(view)
    app.view_functions["portal.sign_in"] = view
