"""The member portal, served per company at /portal/<company>/: a homeowner signs in with a
one-time link emailed to them (or a password they set) and sees their membership and rewards, on a phone first. Pages
are server-rendered and work without JavaScript. A member session holds the company and the
customer it signed in as; every page asks the use cases for that customer's records only, so
there is no id of anyone else's to try. Asking for links is throttled per address and per email."""

from __future__ import annotations

import json
import secrets
import time
from datetime import date
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
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
from ...kernel.errors import InvalidDocument, KeepwellError, NotFound
from ...kernel.exports import csv_text
from ...usecases import Keepwell, companies, portal

bp = Blueprint("portal", __name__, url_prefix="/portal/<company>", template_folder="templates")


def keepwell() -> Keepwell:
    return current_app.extensions["keepwell"]  # type: ignore[no-any-return]


@bp.url_value_preprocessor
def _company(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    slug = (values or {}).pop("company", "")
    try:  # read once: every page shows its name and look
        g.portal_shown = companies.details(keepwell(), slug)
    except NotFound:
        abort(404)
    g.portal_company = slug


@bp.url_defaults
def _with_company(_endpoint: str, values: dict[str, Any]) -> None:
    values.setdefault("company", g.get("portal_company"))


def member() -> str | None:
    """The customer id this browser is signed in as, at this company (None: not signed in, or
    signed in elsewhere, or the session has run its course, or the member has set a password
    since: that ends their other sessions)."""
    if "portal_member" not in g:
        g.portal_member = _signed_in()
    return g.portal_member  # type: ignore[no-any-return]


def _signed_in() -> str | None:
    held = session.get("member")
    if not isinstance(held, dict) or held.get("company") != g.portal_company:
        return None
    customer = str(held.get("customer") or "")
    if (not customer or time.time() - float(held.get("at", 0)) > current_app.permanent_session_lifetime.total_seconds()
            or not portal.session_current(keepwell(), g.portal_company, customer, int(held.get("v") or 0))):
        session.pop("member", None)
        return None
    return customer


def _start_session(who: dict[str, Any]) -> None:
    session["member"] = {"company": g.portal_company, "customer": who["customer"], "at": time.time(),
                         "v": who["version"]}
    session.permanent = True


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
    return _page("portal/home.html", h=portal.home(keepwell(), g.portal_company, member()))


def _page(template: str, **values: Any) -> ResponseReturnValue:
    return render_template(template, company_name=_company_name(), **values)


@bp.get("/logo")
def logo() -> ResponseReturnValue:
    found = companies.logo(keepwell(), g.portal_company)
    if found is None:
        abort(404)
    return Response(found[0], mimetype=found[1], headers={"Cache-Control": "public, max-age=3600"})


@bp.app_context_processor
def _brand() -> dict[str, Any]:
    """The company's look on every portal page: its colour and whether it has a logo."""
    shown = g.get("portal_shown")
    if not shown:
        return {}
    return {"brand": {"color": shown.get("brand_color") or "#0b5cad", "logo": shown.get("logo")}}


@bp.get("/history")
@members_only
def history() -> ResponseReturnValue:
    return _page("portal/history.html", h=portal.history(keepwell(), g.portal_company, member()))


@bp.get("/statement/<membership_id>.pdf")
@members_only
def statement_pdf(membership_id: str) -> ResponseReturnValue:
    start, end = _day("from"), _day("to")
    if start is None or end is None:
        abort(404)
    try:
        pdf = portal.statement_pdf(keepwell(), g.portal_company, member(), membership_id, start, end)
    except NotFound:
        abort(404)
    return _pdf(pdf, f"statement-{start}-{end}.pdf")


@bp.get("/invoices/<int:number>.pdf")
@members_only
def invoice_pdf(number: int) -> ResponseReturnValue:
    try:
        return _pdf(portal.invoice_pdf(keepwell(), g.portal_company, member(), number), f"invoice-{number}.pdf")
    except NotFound:
        abort(404)


@bp.get("/rewards")
@members_only
def rewards() -> ResponseReturnValue:
    return _page("portal/rewards.html", r=portal.rewards(keepwell(), g.portal_company, member()),
                 confirm=request.args.get("reward"), key=secrets.token_hex(8))


@bp.post("/rewards")
@members_only
def redeem() -> ResponseReturnValue:
    reward = request.form.get("reward", "")
    try:
        done = portal.redeem(keepwell(), g.portal_company, member(), reward, 1,
                             "portal-" + request.form.get("key", "")[:40])
    except KeepwellError as exc:
        flash(f"Not redeemed: {exc.message}", "error")
        return redirect(url_for("portal.rewards"))
    if done.get("status") == "declined":
        flash(f"Not redeemed: {done.get('message') or done.get('reason')}", "error")
    else:
        flash(f"Redeemed for {done.get('points', '')} points. We will let you know when it is on its way.", "info")
    return redirect(url_for("portal.rewards"))


@bp.post("/redemptions/<redemption_id>/cancel")
@members_only
def cancel_redemption(redemption_id: str) -> ResponseReturnValue:
    try:
        portal.cancel_redemption(keepwell(), g.portal_company, member(), redemption_id)
        flash("Cancelled: your points are back.", "info")
    except NotFound:
        abort(404)
    except KeepwellError as exc:
        flash(exc.message, "error")
    return redirect(url_for("portal.rewards"))


@bp.route("/visits", methods=["GET", "POST"])
@members_only
def visits() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    form = {k: request.form.get(k, "") for k in ("service", "preferred", "notes")}
    if request.method == "POST":
        try:
            done = portal.request_visit(keepwell(), g.portal_company, member(), form["service"], form["preferred"],
                                        form["notes"])
        except InvalidDocument as exc:
            errors = {p.path: p.message for p in exc.problems}
        except KeepwellError as exc:
            errors = {"service": exc.message}
        else:
            flash(f"Asked for: {done['service']}. We will call or email you to book a time.", "info")
            return redirect(url_for("portal.visits"))
    return _page("portal/visits.html", v=portal.visits(keepwell(), g.portal_company, member()), form=form,
                 errors=errors), 400 if errors else 200


@bp.post("/visits/<request_id>/cancel")
@members_only
def cancel_visit(request_id: str) -> ResponseReturnValue:
    try:
        portal.cancel_visit_request(keepwell(), g.portal_company, member(), request_id)
        flash("Your request is called off.", "info")
    except NotFound:
        abort(404)
    except KeepwellError as exc:
        flash(exc.message, "error")
    return redirect(url_for("portal.visits"))


@bp.get("/referrals")
@members_only
def referrals() -> ResponseReturnValue:
    return _page("portal/referrals.html", r=portal.referrals(keepwell(), g.portal_company, member()))


@bp.route("/preferences", methods=["GET", "POST"])
@members_only
def preferences() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            portal.set_channels(keepwell(), g.portal_company, member(),
                                {ch: request.form.get(ch) == "on" for ch in ("email", "sms")},
                                marketing=request.form.get("marketing") == "on",
                                quiet=request.form.get("quiet_hours", ""))
        except InvalidDocument as exc:
            errors = {p.path: p.message for p in exc.problems}
        else:
            flash("Saved: we will contact you only the ways you chose.", "info")
            return redirect(url_for("portal.preferences"))
    return _page("portal/preferences.html", p=portal.preferences(keepwell(), g.portal_company, member()),
                 errors=errors, typed=request.form.get("quiet_hours")), 400 if errors else 200


@bp.route("/membership/<membership_id>/cancel", methods=["GET", "POST"])
@members_only
def cancel(membership_id: str) -> ResponseReturnValue:
    try:
        if request.method == "POST":
            portal.cancel(keepwell(), g.portal_company, member(), membership_id)
            flash("Your membership is cancelled. Any refund goes back to your card.", "info")
            return redirect(url_for("portal.home"))
        preview = portal.cancel_preview(keepwell(), g.portal_company, member(), membership_id)
    except NotFound:
        abort(404)
    except KeepwellError as exc:
        flash(exc.message, "error")
        return redirect(url_for("portal.home"))
    return _page("portal/cancel.html", p=preview, membership_id=membership_id)


@bp.post("/membership/<membership_id>/renewal")
@members_only
def renewal(membership_id: str) -> ResponseReturnValue:
    on = request.form.get("auto_renewal") == "on"
    try:
        done = portal.set_renewal(keepwell(), g.portal_company, member(), membership_id, on)
    except NotFound:
        abort(404)
    except KeepwellError as exc:
        flash(f"Not changed: {exc.message}", "error")
    else:
        flash(f"Your membership renews automatically after {calendar_words.day(done['expires_on'])}."
              if done["auto_renewal"] else f"Your membership will not renew: it ends on "
              f"{calendar_words.day(done['expires_on'])}. You can turn renewal back on until then.", "info")
    return redirect(url_for("portal.home"))


@bp.get("/my-data.<fmt>")
@members_only
def my_data(fmt: str) -> ResponseReturnValue:
    """Everything we hold about the member: JSON, or the statement lines as CSV."""
    data = portal.export(keepwell(), g.portal_company, member())
    stamp = data["exported_on"]
    if fmt == "json":
        return Response(json.dumps(data, indent=2, default=str), mimetype="application/json",
                        headers={"Content-Disposition": f"attachment; filename=my-data-{stamp}.json"})
    if fmt == "csv":
        return Response(csv_text(portal.EXPORT_COLUMNS, portal.export_rows(data)), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=my-statement-lines-{stamp}.csv"})
    abort(404)


@bp.route("/membership/<membership_id>/tier", methods=["GET", "POST"])
@members_only
def tier(membership_id: str) -> ResponseReturnValue:
    """Choose another tier, see what it costs now, confirm."""
    wanted = request.values.get("tier", "")
    try:
        if request.method == "POST":
            done = portal.change_tier(keepwell(), g.portal_company, member(), membership_id, wanted)
            flash(f"Your membership is now on the {done['tier']} tier"
                  + (f"; {done['due_now']} is charged to your card" if done.get("due_now") not in (None, "0.00")
                     else "") + ".", "info")
            return redirect(url_for("portal.home"))
        choices = portal.tiers(keepwell(), g.portal_company, member(), membership_id)
        preview = portal.change_tier_preview(keepwell(), g.portal_company, member(), membership_id, wanted) \
            if wanted else None
    except NotFound:
        abort(404)
    except KeepwellError as exc:
        flash(exc.message, "error")
        return redirect(url_for("portal.home"))
    return _page("portal/tier.html", choices=choices, p=preview, wanted=wanted, membership_id=membership_id,
                 tier_names=dict(choices))


@bp.get("/billing")
@members_only
def billing() -> ResponseReturnValue:
    return _page("portal/billing.html", b=portal.billing(keepwell(), g.portal_company, member()))


@bp.post("/billing/cards")
@members_only
def cards() -> ResponseReturnValue:
    action, who = request.form.get("action", ""), member()
    try:
        if action == "token":  # back from the card page, with its token (no number comes here)
            card = portal.add_card(keepwell(), g.portal_company, who, request.form.get("token", ""))
            flash(f"Card added: {card['label']}. It pays any invoice that was waiting.", "info")
        elif action == "default":
            card = portal.set_default_card(keepwell(), g.portal_company, who, request.form.get("pm", ""))
            flash(f"{card['label']} now pays your membership.", "info")
        elif action == "remove":
            card = portal.remove_card(keepwell(), g.portal_company, who, request.form.get("pm", ""))
            flash(f"{card['label']} removed.", "info")
        else:
            abort(404)
    except NotFound:
        abort(404)
    except KeepwellError as exc:
        flash(f"Not done: {exc.message}", "error")
    return redirect(url_for("portal.billing"))


@bp.post("/invoices/<int:number>/pay")
@members_only
def pay_invoice(number: int) -> ResponseReturnValue:
    try:
        inv = portal.pay_invoice(keepwell(), g.portal_company, member(), number)
    except NotFound:
        abort(404)
    except KeepwellError as exc:
        flash(f"Not paid: {exc.message}", "error")
        return redirect(url_for("portal.billing"))
    if inv["status"] == "paid":
        flash(f"Paid: invoice {number}, {inv['total']} {inv['currency']}. Thank you!", "info")
    else:
        flash(f"Your card was declined for invoice {number}. Try another card, or call us.", "error")
    return redirect(url_for("portal.billing"))


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def _pdf(data: bytes, filename: str) -> ResponseReturnValue:
    return Response(data, mimetype="application/pdf", headers={"Content-Disposition": f"inline; filename={filename}"})


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
    _start_session(who)
    return redirect(url_for("portal.home"))


@bp.post("/sign-in/password")
def sign_in_password() -> ResponseReturnValue:
    email = request.form.get("email", "").strip()[:254]
    who = portal.sign_in_password(keepwell(), g.portal_company, email, request.form.get("password", ""))
    if who is None:  # 401: the failures the throttle counts
        return render_template("portal/sign_in.html", company_name=_company_name(), email=email,
                               password_error="That email and password do not match. Try again, or ask for a "
                               "sign-in link above."), 401
    _start_session(who)
    return redirect(url_for("portal.home"))


@bp.post("/password")
@members_only
def password() -> ResponseReturnValue:
    """The signed-in member sets their password; this session goes on, every other one ends."""
    errors: dict[str, str] = {}
    chosen = request.form.get("password", "")
    if chosen != request.form.get("confirm", ""):
        errors["confirm"] = "The two passwords differ: type the same one twice."
    else:
        try:
            version = portal.set_password(keepwell(), g.portal_company, member(), chosen)
        except InvalidDocument as exc:
            errors = {p.path: p.message for p in exc.problems}
        else:
            session["member"] = {**session["member"], "v": version}
            flash("Password set: next time, sign in with your email and password (or with a link, as before).", "info")
            return redirect(url_for("portal.preferences"))
    return _page("portal/preferences.html", p=portal.preferences(keepwell(), g.portal_company, member()),
                 errors=errors, typed=None), 400


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    session.pop("member", None)
    flash("You are signed out.", "info")
    return redirect(url_for("portal.sign_in"))


def _company_name() -> str:
    return str(g.portal_shown["name"])


def _email() -> str:
    return "member-email:" + (request.form.get("email") or "").strip().lower()[:254]


def _too_many(limit: RequestLimit) -> Any:
    minutes = max(1, round((limit.reset_at - time.time()) / 60))
    page = render_template("portal/sign_in.html", company_name=_company_name(),
                           too_many=f"Too many sign-in links asked for. Wait {minutes} minute"
                           f"{'s' if minutes != 1 else ''}, then ask again (or use a link already sent).")
    return make_response(page, 429)


def _failed(response: Any) -> bool:
    return response.status_code == 401  # type: ignore[no-any-return]


def _too_many_failures(limit: RequestLimit) -> Any:
    minutes = max(1, round((limit.reset_at - time.time()) / 60))
    page = render_template("portal/sign_in.html", company_name=_company_name(), email=request.form.get("email", ""),
                           password_error=f"Too many wrong passwords. Wait {minutes} minute"
                           f"{'s' if minutes != 1 else ''} and try again, or sign in with an emailed link.")
    return make_response(page, 429)


def install(app: Any, limiter: Limiter, per_email: str = "5 per hour", per_address: str = "30 per hour",
            failures_per_account: str = "5 per 15 minutes", failures_per_address: str = "20 per 15 minutes") -> None:
    """Mount the portal; asking for sign-in links is limited per email and per address, and so
    are failed password sign-ins (only failures count, as in the admin)."""
    app.jinja_env.filters.setdefault("day", calendar_words.day)
    app.jinja_env.filters.setdefault("day_and_time", calendar_words.day_and_time)
    app.register_blueprint(bp)
    view = app.view_functions["portal.sign_in_password"]
    view = limiter.limit(failures_per_address, key_func=get_remote_address, methods=["POST"], deduct_when=_failed,
                         scope="portal-password-address", on_breach=_too_many_failures)(view)
    view = limiter.limit(failures_per_account, key_func=_email, methods=["POST"], deduct_when=_failed,
                         scope="portal-password-account", on_breach=_too_many_failures)(view)
    app.view_functions["portal.sign_in_password"] = view
    view = app.view_functions["portal.sign_in"]
    view = limiter.limit(per_address, key_func=get_remote_address, methods=["POST"], scope="portal-address",
                         on_breach=_too_many)(view)
    view = limiter.limit(per_email, key_func=_email, methods=["POST"], scope="portal-email",
                         on_breach=_too_many)(view)
    app.view_functions["portal.sign_in"] = view
