"""Rewards in the admin: a customer's points panel and the redeem form on the customer page (the
Customers view calls `panel` and `redeem`), and the Rewards menu: the catalog, the queue of
redemptions to fulfil, and the points economy. Every page calls `keepwell.usecases` only."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose

from keepwell.kernel.errors import Declined, InvalidDocument, KeepwellError, NotFound
from keepwell.usecases import Keepwell, companies, lists, memberships, rewards
from keepwell.usecases.lists import ListQuery
from keepwell.usecases.users import SignedIn

from .auth import current_user, editor_only
from .site import SignedInOnly, keepwell

# How the trade says a redemption's status, the step that moves it on, a lot's status and a
# points entry's kind.
STATUS = {"pending": "To fulfil", "ordered": "Ordered, to ship", "shipped": "Shipped", "fulfilled": "Fulfilled",
          "delivered": "Delivered", "cancelled": "Cancelled"}
STATUS_BADGE = {"pending": "warning", "ordered": "warning", "shipped": "info", "fulfilled": "success",
                "delivered": "success", "cancelled": "secondary"}
NEXT_STEP = {"fulfilled": "Fulfil", "shipped": "Ship", "delivered": "Deliver"}
LOT_STATUS = {"pending": "Pending (return window)", "available": "Available", "used": "Used", "expired": "Expired"}
ENTRY_KIND = {"earn": "Earned", "redeem": "Redeemed", "redeem_cancelled": "Given back (redemption cancelled)",
              "expire": "Expired", "adjust": "Adjusted", "clawback": "Taken back (refund)"}
REFERRAL_STATUS = {"pending": "Joined, not yet qualified", "qualified": "Qualified, reward on its way",
                   "rewarded": "Rewarded"}
FILTERS = (("open", "Open (to fulfil or ship)"), ("pending", "To fulfil"), ("ordered", "Ordered, to ship"),
           ("shipped", "Shipped"), ("fulfilled", "Fulfilled"), ("delivered", "Delivered"),
           ("cancelled", "Cancelled"), ("all", "All"))
LIVE = ("active", "past_due", "suspended")  # memberships a reward can be given on
PAGE = 50


def labels() -> dict[str, Any]:
    """The label tables, for the templates."""
    return {"status_label": STATUS, "status_badge": STATUS_BADGE, "next_step": NEXT_STEP, "lot_status": LOT_STATUS,
            "entry_kind": ENTRY_KIND, "referral_status": REFERRAL_STATUS}


def _user() -> SignedIn:
    user = current_user()
    if user is None:
        abort(401)
    return user


# --- the customer page ----------------------------------------------------------------------------

def empty_form() -> dict[str, str]:
    return {"reward": "", "quantity": "1", "membership": "", "ship_to": ""}


def panel(app: Keepwell, company: str, customer_id: str, form: dict[str, str] | None = None,
          errors: dict[str, str] | None = None, referral_code: str | None = None,
          adjust_form: dict[str, str] | None = None, adjust_errors: dict[str, str] | None = None) -> dict[str, Any]:
    """What the customer page's Points panel shows: the balance, tier, lots, points history,
    redemptions, referrals, and the redeem form (as typed, with its errors)."""
    pts = rewards.points(app, company, customer_id)
    catalog = rewards.catalog_list(app, company, customer=customer_id)
    mems = [m for m in memberships.of_customer(app, company, customer_id) if m["status"] in LIVE]
    refs = rewards.referrals_of(app, company, customer_id)["referrals"]
    history = lists.ledger(app, company, ListQuery(filters={"owner": customer_id, "unit": "points"}, sort="id",
                                                   descending=True, page_size=10))
    mine = rewards.list_redemptions(app, company, customer=customer_id, limit=10)
    code = referral_code or next((r["code"] for r in refs), None)
    return {"points": pts, "catalog": catalog, "memberships": mems, "referrals": refs, "referral_code": code,
            "history": history, "redemptions": mine, "redeem_form": form or empty_form(),
            "redeem_errors": errors or {}, "adjust_form": adjust_form or {"amount": "", "reason": ""},
            "adjust_errors": adjust_errors or {}, **labels()}


def redeem_form() -> dict[str, str]:
    return {k: request.form.get(k, "").strip() for k in empty_form()}


def redeem(app: Keepwell, company: str, customer_id: str, form: dict[str, str]) -> dict[str, str]:
    """Redeem what the form asks; flashes what it cost and answers {} when done, else the
    errors to show beside the form's fields."""
    errors: dict[str, str] = {}
    if not form["reward"]:
        errors["reward"] = "Choose a reward."
    try:
        quantity = int(form["quantity"] or "1")
    except ValueError:
        errors["quantity"] = "Enter a whole number."
        quantity = 0
    if errors:
        return errors
    try:
        done = rewards.redeem(app, company, customer_id, form["reward"], quantity,
                              membership=form["membership"] or None, ship_to=form["ship_to"] or None)
    except InvalidDocument as exc:
        return {p.path if p.path in form else "form": p.message for p in exc.problems} or {"form": exc.message}
    except Declined as exc:
        return {"form": _sentence(exc.message)}
    except NotFound as exc:
        return {"reward": _sentence(exc.message)}
    except KeepwellError as exc:
        return {"form": _sentence(exc.message)}
    flash(redeemed_text(app, company, customer_id, done), "success")
    return {}


def adjust_form() -> dict[str, str]:
    return {k: request.form.get(k, "").strip() for k in ("amount", "reason")}


def adjust(app: Keepwell, company: str, customer_id: str, form: dict[str, str], by: str) -> dict[str, str]:
    """A manual points adjustment from the form, in the signed-in user's name; {} when done,
    else the errors to show beside the fields."""
    try:
        amount = int(form["amount"])
    except ValueError:
        return {"amount": "Points must be a whole number, like 50 or -50."}
    try:
        done = rewards.adjust_points(app, company, customer_id, amount, form["reason"], by)
    except InvalidDocument as exc:
        return {p.path if p.path in form else "form": p.message for p in exc.problems} or {"form": exc.message}
    except KeepwellError as exc:
        return {"form": _sentence(exc.message)}
    flash(f"Adjusted {done['adjusted']:+d} points ({done['reason']}). Points balance now {done['balance']}.",
          "success")
    return {}


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else text


def redeemed_text(app: Keepwell, company: str, customer_id: str, done: dict[str, Any]) -> str:
    """"Redeemed 1 × Comfort Club mug for 30 points …": what it cost, from which lots, what it gave."""
    earned = {lot["lot"]: lot["earned_on"] for lot in rewards.points(app, company, customer_id)["lots"]}
    drawn = "; ".join(
        f"{lot['points']} from the points earned {earned.get(lot['lot'], '?')}"
        + (f" (expiring {lot['expires_on']})" if lot.get("expires_on") else "")
        for lot in done.get("lots", []))
    text = (f"Redeemed {done['quantity']} × {done['reward_name']} for {done['points']} points "
            f"(redemption {done['redemption']}, {STATUS.get(done['status'], done['status']).lower()}).")
    if drawn:
        text += f" Points used: {drawn}."
    for code, n in (done.get("visits_added") or {}).items():
        text += f" Adds {n} extra {code} visit{'s' if n != 1 else ''} to the membership."
    if done.get("credit"):
        text += f" Credits {done['credit']} to the membership's allowance."
    return text + f" Points balance now {done['balance']}."


# --- the Rewards menu -----------------------------------------------------------------------------

def _day(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        flash(f"{name.capitalize()}: enter a date (YYYY-MM-DD).", "error")
        return None


class CatalogView(SignedInOnly, BaseView):
    """The rewards of the catalog in force: cost in points, stock left, when each can be redeemed."""

    @expose("/")
    def index(self) -> Any:
        user = _user()
        on = _day("on") or companies.today(keepwell(), user.company_slug)
        rows = rewards.catalog_list(keepwell(), user.company_slug, on)
        return self.render("keepwell/rewards_catalog.html", rows=rows, on=on.isoformat())


def _back(default: str) -> str:
    """Where a button's form asks to go back to: a page of the admin only."""
    target = request.form.get("back", "")
    if target.startswith("/admin/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


class RedemptionsView(SignedInOnly, BaseView):
    """The queue of redemptions: open ones first to fulfil, ship and deliver, or cancel."""

    @expose("/")
    def index(self) -> Any:
        user = _user()
        status = request.args.get("status", "open")
        if status not in dict(FILTERS):
            status = "open"
        customer = request.args.get("customer", "").strip()
        page = max(request.args.get("page", 0, type=int), 0)
        try:
            rows = rewards.list_redemptions(keepwell(), user.company_slug, None if status == "all" else status,
                                            customer or None, PAGE + 1, page * PAGE)
        except KeepwellError as exc:
            flash(exc.message, "error")
            rows = []
        return self.render("keepwell/redemptions.html", rows=rows[:PAGE], more=len(rows) > PAGE, page=page,
                           status=status, customer=customer, filters=FILTERS, user=user, **labels())

    @expose("/<redemption_id>/next", methods=["POST"])
    def move_on(self, redemption_id: str) -> Any:
        """One step on: fulfil what is to fulfil, ship what is ordered, deliver what is shipped."""
        return self._change(redemption_id, "next", lambda d: f"{d['reward_name']} for {d['customer']['name']}: "
                            f"{STATUS.get(d['status'], d['status']).lower()}.",
                            tracking=request.form.get("tracking", "").strip() or None)

    @expose("/<redemption_id>/cancel", methods=["POST"])
    @editor_only
    def cancel(self, redemption_id: str) -> Any:
        """Cancel: the points go back to the lots they came from, stock back on the shelf."""
        return self._change(redemption_id, "cancelled", lambda d: f"{d['reward_name']} for {d['customer']['name']} "
                            f"cancelled: {d.get('points_returned', 0)} points given back.",
                            reason=request.form.get("reason", "").strip() or None)

    def _change(self, redemption_id: str, status: str, said: Any, **details: Any) -> Any:
        """Move a redemption and say what happened (or why not), back on the list it came from."""
        user = _user()
        try:
            done = rewards.change_redemption(keepwell(), user.company_slug, redemption_id, status, **details)
        except NotFound:
            abort(404)
        except KeepwellError as exc:
            flash(f"Not done: {_sentence(exc.message)}", "error")
        else:
            flash(said(done), "success")
        return redirect(_back(url_for(".index")))


class EconomyView(SignedInOnly, BaseView):
    """Points outstanding and what they are worth; earned, redeemed and expired per month; breakage."""

    @expose("/")
    def index(self) -> Any:
        user = _user()
        start, end = _day("from"), _day("to")
        try:
            got = rewards.liability(keepwell(), user.company_slug, start, end)
        except KeepwellError as exc:
            flash(_sentence(exc.message if not isinstance(exc, InvalidDocument) or not exc.problems
                            else exc.problems[0].message), "error")
            got = rewards.liability(keepwell(), user.company_slug)
        rate = got.get("breakage_rate")
        return self.render("keepwell/points_economy.html", e=got,
                           breakage=f"{float(rate) * 100:.1f}%" if rate is not None else None)
