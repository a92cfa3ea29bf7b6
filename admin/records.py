"""The company's records — customers, memberships, ledger, events — as searchable, filterable,
paginated lists with CSV export, and the pages and actions behind them. Every list and page
calls a use case, scoped to the signed-in user's company: another company's ids are not found.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Response, abort, flash, jsonify, redirect, request, url_for
from flask_admin import BaseView, expose
from markupsafe import Markup

from keepwell.kernel.errors import InvalidDocument, KeepwellError, NotFound
from keepwell.kernel.exports import csv_text
from keepwell.usecases import (
    Keepwell,
    billing,
    companies,
    customers,
    lists,
    locations,
    memberships,
    messaging,
    portal,
    rewards,
    scheduling,
)
from keepwell.usecases.lists import ListQuery, Page
from keepwell.usecases.users import SignedIn

from . import rewards as rewards_admin
from .auth import current_user, editor_only, require_editor
from .site import SignedInOnly, keepwell

PAGE_SIZES = (20, 50, 100, 200)


@dataclass(frozen=True)
class Filter:
    name: str
    label: str
    kind: str = "text"  # text | date (a from/to pair) | location (the company's locations)
    choices: tuple[str, ...] = ()


BY_LOCATION = Filter("location", "Location", "location")


class ListView(SignedInOnly, BaseView):
    """A list of records: search, filters, sort, pages, CSV export of everything it matches."""

    title = ""
    fetch: Callable[[Keepwell, str, ListQuery], Page] | None = None
    filters: tuple[Filter, ...] = ()
    # Filter names as Flask-Admin spelled them in links (flt0_status_equals=...), kept working.
    aliases: dict[str, str] = {}
    export_name = "export"
    actions: tuple[tuple[str, str], ...] = ()  # (endpoint, label) links above the list

    def user(self) -> SignedIn:
        user = current_user()
        if user is None:  # is_accessible redirected already; never serve an unscoped query
            abort(401)
        return user

    def query(self, export: bool = False) -> ListQuery:
        args = request.args
        filters = {}
        for key, value in args.items():
            name = key
            if key.startswith("flt") and key.endswith("_equals"):
                name = self.aliases.get(key.split("_", 1)[1].removesuffix("_equals"), "")
            if name and (any(name == f.name for f in self.filters) or any(
                    f.kind == "date" and name in (f"{f.name}_from", f"{f.name}_to") for f in self.filters)):
                filters[name] = value
        size = args.get("page_size", type=int) or 50
        return ListQuery(search=args.get("q", ""), filters=filters, sort=args.get("sort", ""),
                         descending=args.get("desc", "1") != "0", page=max(args.get("page", 0, type=int), 0),
                         page_size=0 if export else min(size, max(PAGE_SIZES)))

    def page(self, export: bool = False) -> Page:
        assert self.fetch is not None
        try:
            return self.fetch(keepwell(), self.user().company_slug, self.query(export))
        except KeepwellError as exc:
            flash(exc.message, "error")
            return self.fetch(keepwell(), self.user().company_slug, ListQuery(page_size=0 if export else 50))

    def cell(self, key: str, row: dict[str, Any]) -> Any:
        """How a cell shows (a link, say); plain text unless a view says otherwise."""
        return row.get(key, "")

    @expose("/")
    def index_view(self) -> Any:
        q = self.query()
        page = self.page()
        args = {k: v for k, v in request.args.items() if k != "page"}
        places = locations.list_locations(keepwell(), self.user().company_slug) \
            if any(f.kind == "location" for f in self.filters) else []
        return self.render("keepwell/list.html", view=self, page=page, q=q, args=args, sizes=PAGE_SIZES,
                           user=self.user(), places=places)

    @expose("/export/csv/")
    def export(self) -> Any:
        page = self.page(export=True)
        text = csv_text([label for _k, label in page.columns],
                        ([row.get(k, "") for k, _label in page.columns] for row in page.rows))
        return Response(text, mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename={self.export_name}.csv"})


def _link(endpoint: str, text: str, **values: Any) -> Markup:
    return Markup('<a href="{}">{}</a>').format(url_for(endpoint, **values), text)


TEST_CARDS = (("success", "Always succeeds (4242)"), ("decline", "Declined, retried (0002)"),
              ("insufficient_funds", "Insufficient funds, retried (9995)"),
              ("expired", "Expired, never retried (0069)"),
              ("hard_decline", "Stolen card, never retried (0019)"),
              ("network_error", "Charged, answer lost (0259)"))


class CustomersView(ListView):
    title = "Customers"
    fetch = staticmethod(lists.customers)
    filters = (Filter("name", "Name"), Filter("email", "Email"), BY_LOCATION, Filter("created_at", "Added", "date"))
    export_name = "customers"
    actions = (("customers.create_view", "Add a customer"),)

    def cell(self, key: str, row: dict[str, Any]) -> Any:
        if key == "id":
            return _link("memberships.index_view", row["id"], customer=row["id"])
        if key == "name":
            return _link(".details_view", row["name"], id=row["id"])
        return row.get(key, "")

    def _customer(self, customer_id: str) -> dict[str, str]:
        try:
            return lists.customer(keepwell(), self.user().company_slug, customer_id)
        except NotFound:
            abort(404)

    @expose("/details/")
    def details_view(self) -> Any:
        return self._details(request.args.get("id", ""))

    def _details(self, customer_id: str, **points: Any) -> Any:
        """The customer page; `points` are the Points panel's form as typed, its errors, a code."""
        found = self._customer(customer_id)
        user = self.user()
        cards = billing.payment_methods_of(keepwell(), user.company_slug, found["id"])
        invoices = billing.invoices_of(keepwell(), user.company_slug, customer=found["id"])
        panel = rewards_admin.panel(keepwell(), user.company_slug, found["id"], **points)
        held = memberships.of_customer(keepwell(), user.company_slug, found["id"])
        sent = messaging.sent_to(keepwell(), user.company_slug, found["id"])
        asked = scheduling.requests_of(keepwell(), user.company_slug, found["id"])
        shown = {k: v for k, v in found.items() if k != "location_id"}
        return self.render("keepwell/customer.html", title="Customers", record=shown, name=found["name"],
                           back=url_for(".index_view"), cards=cards, invoices=invoices, user=user, held=held,
                           test_cards=TEST_CARDS, p=panel, sent=sent, asked=asked,
                           today=companies.today(keepwell(), user.company_slug).isoformat(),
                           links=[("Memberships", url_for("memberships.index_view", customer=found["id"])),
                                  ("Points", "#points")],
                           edit=url_for(".edit_view", id=found["id"]) if user.can_edit else None)

    @expose("/redeem/<customer_id>", methods=["POST"])
    def redeem(self, customer_id: str) -> Any:
        """Redeem a catalog reward at the counter: done, back to the page with what it cost;
        declined, the page again with why beside the form."""
        self._customer(customer_id)
        form = rewards_admin.redeem_form()
        errors = rewards_admin.redeem(keepwell(), self.user().company_slug, customer_id, form)
        if not errors:
            return redirect(url_for(".details_view", id=customer_id, _anchor="points"))
        return self._details(customer_id, form=form, errors=errors)

    @expose("/adjust-points/<customer_id>", methods=["POST"])
    @editor_only
    def adjust_points(self, customer_id: str) -> Any:
        """A manual points adjustment with its reason, recorded in the signed-in user's name."""
        self._customer(customer_id)
        form = rewards_admin.adjust_form()
        user = self.user()
        errors = rewards_admin.adjust(keepwell(), user.company_slug, customer_id, form, f"{user.email} (admin)")
        if not errors:
            return redirect(url_for(".details_view", id=customer_id, _anchor="points"))
        return self._details(customer_id, adjust_form=form, adjust_errors=errors)

    @expose("/portal-invite/<customer_id>", methods=["POST"])
    def portal_invite(self, customer_id: str) -> Any:
        """Email the customer a link that signs them in to the member portal."""
        self._customer(customer_id)
        _invite_to_portal(self.user(), customer_id)
        return redirect(url_for(".details_view", id=customer_id))

    @expose("/referral-code/<customer_id>", methods=["POST"])
    def referral_code(self, customer_id: str) -> Any:
        """The customer's referral code, made the first time it is asked for."""
        self._customer(customer_id)
        code = rewards.referral_code(keepwell(), self.user().company_slug, customer_id)
        return self._details(customer_id, referral_code=code)

    @expose("/cards/<customer_id>", methods=["POST"])
    @editor_only
    def cards(self, customer_id: str) -> Any:
        """Add a sandbox test card, make a card the default, or remove one."""
        user, action = self.user(), request.form.get("action", "")
        try:
            if action == "add":
                pm = billing.add_test_card(keepwell(), user.company_slug, customer_id, request.form.get("card", ""),
                                           bool(request.form.get("default")))
                flash(f"Card added: {pm['label']}.", "success")
            elif action == "token":  # back from the sandbox's card page, with its token
                pm = billing.add_card_token(keepwell(), user.company_slug, customer_id, "sandbox",
                                            request.form.get("token", ""))
                flash(f"Card added: {pm['label']}.", "success")
            elif action == "default":
                pm = billing.set_default_payment_method(keepwell(), user.company_slug, request.form.get("pm", ""))
                flash(f"{pm['label']} is the default card.", "success")
            elif action == "remove":
                pm = billing.remove_payment_method(keepwell(), user.company_slug, request.form.get("pm", ""))
                flash(f"{pm['label']} removed.", "success")
        except NotFound:
            abort(404)
        except KeepwellError as exc:
            flash(f"Not done: {exc.message}", "error")
        return redirect(url_for(".details_view", id=customer_id))

    @expose("/lookup")
    def lookup(self) -> Any:
        """Customers matching what is typed (name, email or phone), for the enrolment picker."""
        return jsonify([{"id": c["id"], "label": _picked(c)} for c in _matches(self.user(), request.args.get("q", ""))])

    @expose("/new/", methods=["GET", "POST"])
    def create_view(self) -> Any:
        user = self.user()  # staff add customers at the counter too
        form, errors = _customer_form(), {}
        alike: list[dict[str, Any]] = []
        if request.method == "POST":
            # Someone with this email or phone is there already: most likely the same person. Say
            # who, and add a second only when asked to ("Add anyway").
            if not request.form.get("proceed"):
                alike = customers.look_alikes(keepwell(), user.company_slug, form["email"] or None,
                                              form["phone"] or None)
            if not alike:
                try:
                    cid = customers.add_customer(keepwell(), user.company_slug, form["name"], form["email"] or None,
                                                 form["phone"] or None, None, form["location"] or None,
                                                 form["service_address"] or None)
                except KeepwellError as exc:
                    errors = _errors(exc)
                else:
                    flash(f"Customer added: {form['name']}.", "success")
                    return redirect(url_for(".details_view", id=cid))
        return self.render("keepwell/customer_form.html", form=form, errors=errors, title="Add a customer",
                           alike=alike, places=locations.list_locations(keepwell(), user.company_slug))

    @expose("/edit/", methods=["GET", "POST"])
    def edit_view(self) -> Any:
        found = self._customer(request.args.get("id", ""))
        user = require_editor()
        form, errors = _customer_form(found), {}
        alike: list[dict[str, Any]] = []
        if request.method == "POST":
            if not request.form.get("proceed"):
                alike = customers.look_alikes(keepwell(), user.company_slug, form["email"] or None,
                                              form["phone"] or None, found["id"])
            if not alike:
                try:
                    customers.update_customer(keepwell(), user.company_slug, found["id"], name=form["name"],
                                              email=form["email"] or None, phone=form["phone"] or None,
                                              location=form["location"], service_address=form["service_address"])
                except KeepwellError as exc:
                    errors = _errors(exc)
                else:
                    flash("Saved.", "success")
                    return redirect(url_for(".details_view", id=found["id"]))
        return self.render("keepwell/customer_form.html", form=form, errors=errors, title=f"Edit {found['name']}",
                           alike=alike, places=locations.list_locations(keepwell(), user.company_slug))


def _invite_to_portal(user: SignedIn, customer_id: str) -> None:
    """Email the customer a link that signs them in to the member portal, and say so."""
    try:
        to = portal.invite(keepwell(), user.company_slug, customer_id,
                           url_for("portal.home", company=user.company_slug, _external=True).rstrip("/"))
        flash(f"A link to the member portal is on its way to {to} (it works once, for 30 minutes).", "success")
    except KeepwellError as exc:
        flash(f"No portal invitation: {exc.message}", "warning")


CUSTOMER_FIELDS = ("name", "email", "phone", "location", "service_address")


def _customer_form(found: dict[str, str] | None = None) -> dict[str, str]:
    found = found or {}
    if request.method == "POST":
        return {k: request.form.get(k, "").strip() for k in CUSTOMER_FIELDS}
    return {**{k: found.get(k, "") for k in CUSTOMER_FIELDS}, "location": found.get("location_id", "")}


def _matches(user: SignedIn, typed: str, limit: int = 25) -> list[dict[str, Any]]:
    """Customers whose name, email or phone holds what is typed (the newest when nothing is)."""
    return lists.customers(keepwell(), user.company_slug,
                           ListQuery(search=typed.strip()[:100], page_size=limit)).rows


def _picked(c: dict[str, Any]) -> str:
    """A customer as a picker shows one: the name, then what tells two of that name apart."""
    return " · ".join(x for x in (c["name"], c.get("email") or c.get("phone") or "", c["id"]) if x)


def _errors(exc: KeepwellError) -> dict[str, str]:
    problems = getattr(exc, "problems", [])
    out = {p.path: p.message for p in problems}
    if not out:
        out["form"] = exc.message
    return out


class MembershipsView(ListView):
    title = "Memberships"
    fetch = staticmethod(lists.memberships)
    filters = (Filter("status", "Status", choices=("active", "cancelled", "expired")), Filter("plan", "Plan"),
               Filter("tier", "Tier"), Filter("customer", "Customer id"), Filter("expires_on", "Expires", "date"),
               Filter("issued_on", "Issued", "date"), BY_LOCATION)
    aliases = {"status": "status", "customer_id": "customer", "tier": "tier", "period": "period"}
    export_name = "memberships"
    actions = (("memberships.enroll", "Enroll a customer"),)

    def cell(self, key: str, row: dict[str, Any]) -> Any:
        if key == "id":
            return _link(".show", row["id"], membership_id=row["id"])
        if key == "customer_name":
            return _link("customers.details_view", row["customer_name"], id=row["customer_id"])
        return row.get(key, "")

    @expose("/details/")
    def details_view(self) -> Any:
        return redirect(url_for(".show", membership_id=request.args.get("id", "")))

    @expose("/show/<membership_id>")
    def show(self, membership_id: str, charge_form: dict[str, str] | None = None,
             charge_errors: dict[str, str] | None = None) -> Any:
        user = self.user()
        try:
            view = memberships.show(keepwell(), user.company_slug, membership_id)
            today = companies.today(keepwell(), user.company_slug)
            tiers = memberships.tiers_in_force(keepwell(), user.company_slug, membership_id, today) \
                if view["status"] == "active" else []
            invoices = billing.invoices_of(keepwell(), user.company_slug, membership=membership_id)
            points = rewards.points(keepwell(), user.company_slug, view["customer"]["id"], today)
        except NotFound:
            abort(404)
        charge = charge_form or {"amount": "", "description": "", "on": today.isoformat()}
        charge["key"] = charge.get("key") or f"admin-charge-{secrets.token_hex(8)}"  # one charge per form shown
        return self.render("keepwell/membership.html", m=view, user=user, tiers=tiers, today=today.isoformat(),
                           invoices=invoices, points=points, charge=charge, charge_errors=charge_errors or {})

    @expose("/charge/<membership_id>", methods=["POST"])
    @editor_only
    def charge(self, membership_id: str) -> Any:
        """Charge the allowance at the counter; past the balance the overdraft pays, past both it is
        declined and nothing is charged. The form's key makes a second click the same charge."""
        user, form = self.user(), {k: request.form.get(k, "").strip() for k in ("amount", "description", "on", "key")}
        errors: dict[str, str] = {}
        try:
            on = date.fromisoformat(form["on"])
        except ValueError:
            errors["on"] = "Date must be a date like 2025-03-01."
        if not errors:
            try:
                result = memberships.charge_allowance(keepwell(), user.company_slug, membership_id, form["amount"],
                                                      on, form["key"] or f"admin-charge-{secrets.token_hex(8)}",
                                                      form["description"])
            except NotFound:
                abort(404)
            except InvalidDocument as exc:
                for p in exc.problems:
                    errors["amount" if p.path.endswith("amount") else "form"] = p.message
            except KeepwellError as exc:
                errors["form"] = exc.message
            else:
                if result.get("status") == "declined":
                    errors["amount"] = f"Not charged: {result.get('message') or result.get('reason')}"
                else:
                    over = result.get("from_overdraft", "0.00")
                    flash(f"Charged {result.get('charged', form['amount'])}"
                          + (f", of which {over} from the overdraft" if over not in ("0.00", None) else "")
                          + f". Balance {result.get('balance')}, overdraft left {result.get('overdraft_left')}.",
                          "success")
                    return redirect(url_for(".show", membership_id=membership_id))
        return self.show(membership_id, charge_form=form, charge_errors=errors)

    @expose("/statement/<membership_id>")
    def statement(self, membership_id: str) -> Any:
        """The membership statement of a date range (the current period by default), on screen or
        (?format=pdf) as the PDF a member keeps."""
        user = self.user()
        try:
            view = memberships.show(keepwell(), user.company_slug, membership_id)
            start = date.fromisoformat(request.args.get("from") or view["period"]["start"])
            end = date.fromisoformat(request.args.get("to") or companies.today(keepwell(), user.company_slug)
                                     .isoformat())
        except NotFound:
            abort(404)
        except ValueError:
            flash("From and to must be dates like 2025-03-01.", "error")
            return redirect(url_for(".statement", membership_id=membership_id))
        try:
            if request.args.get("format") == "pdf":
                pdf = memberships.statement_document(keepwell(), user.company_slug, start, end,
                                                     membership_id=membership_id)
                return Response(pdf, mimetype="application/pdf", headers={
                    "Content-Disposition": f'inline; filename="statement-{membership_id}-{start}-{end}.pdf"'})
            shown = memberships.statement(keepwell(), user.company_slug, membership_id, start, end)
        except KeepwellError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".show", membership_id=membership_id))
        return self.render("keepwell/statement.html", st=shown, m=view, start=start.isoformat(), end=end.isoformat())

    @expose("/invoice/<int:number>.pdf")
    def invoice_pdf(self, number: int) -> Any:
        """An invoice (a receipt once paid) as a PDF, to download or print."""
        try:
            pdf = billing.invoice_document(keepwell(), self.user().company_slug, number, "pdf")
        except NotFound:
            abort(404)
        return Response(pdf, mimetype="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="invoice-{number}.pdf"'})

    @expose("/cancel/<membership_id>", methods=["GET"])
    @editor_only
    def cancel_confirm(self, membership_id: str) -> Any:
        """What cancelling would do and refund, shown before it is confirmed."""
        user = self.user()
        on, at = self._on(), request.args.get("at") or "now"
        if on is None:
            return redirect(url_for(".show", membership_id=membership_id))
        try:
            preview = memberships.cancel_preview(keepwell(), user.company_slug, membership_id, on, at)
        except NotFound:
            abort(404)
        except KeepwellError as exc:
            flash(f"Not possible: {exc.message}", "error")
            return redirect(url_for(".show", membership_id=membership_id))
        return self.render("keepwell/cancel_confirm.html", p=preview, on=on.isoformat(), at=at,
                           membership_id=membership_id)

    @expose("/upgrade/<membership_id>", methods=["GET"])
    @editor_only
    def upgrade_confirm(self, membership_id: str) -> Any:
        """What changing tier would credit, charge and ask now, shown before it is confirmed."""
        user = self.user()
        on, at, tier = self._on(), request.args.get("at") or None, request.args.get("tier", "")
        if on is None:
            return redirect(url_for(".show", membership_id=membership_id))
        try:
            preview = memberships.change_tier_preview(keepwell(), user.company_slug, membership_id, tier, on, at)
        except NotFound:
            abort(404)
        except KeepwellError as exc:
            flash(f"Not possible: {exc.message}", "error")
            return redirect(url_for(".show", membership_id=membership_id))
        return self.render("keepwell/tier_confirm.html", p=preview, on=on.isoformat(), membership_id=membership_id)

    @expose("/enroll", methods=["GET", "POST"])
    def enroll(self) -> Any:
        user = self.user()
        today = companies.today(keepwell(), user.company_slug)
        form = {"customer": request.values.get("customer", ""), "plan": request.values.get("plan", ""),
                "on": request.values.get("on", today.isoformat()), "cadence": request.values.get("cadence", "")}
        errors: dict[str, str] = {}
        on = today
        if request.method == "POST":
            plan, _, tier = form["plan"].partition("|")
            try:
                on = date.fromisoformat(form["on"])
            except ValueError:
                errors["on"] = "Enter a date (YYYY-MM-DD)."
            if not form["customer"]:
                errors["customer"] = "Choose a customer."
            if not plan:
                errors["plan"] = "Choose a plan and tier."
            if not errors:
                try:
                    result = memberships.enroll(keepwell(), user.company_slug, form["customer"], plan, on,
                                                tier=tier or None, cadence=form["cadence"] or None)
                except InvalidDocument as exc:  # each problem beside its field
                    for p in exc.problems:
                        errors[p.path if p.path in form else "form"] = p.message
                except KeepwellError as exc:
                    errors["form"] = exc.message
                else:
                    if result.get("status") == "declined":
                        where = "cadence" if result.get("reason") == "cadence_not_offered" else "form"
                        errors[where] = result.get("message") or result.get("reason") or "declined"
                    else:
                        flash(f"Enrolled: membership {result['membership']}.", "success")
                        if request.form.get("invite"):  # a second action, after the enrolment has landed
                            _invite_to_portal(user, form["customer"])
                        return redirect(url_for(".show", membership_id=result["membership"]))
        typed = request.values.get("find", "")
        people = [{"id": c["id"], "label": _picked(c)} for c in _matches(user, typed)]
        chosen = None
        if form["customer"]:
            try:
                chosen = lists.customer(keepwell(), user.company_slug, form["customer"])
            except NotFound:
                errors.setdefault("customer", "There is no such customer: find them by name, email or phone.")
        if chosen and all(p["id"] != chosen["id"] for p in people):
            people.insert(0, {"id": chosen["id"], "label": _picked(chosen)})
        cards = billing.payment_methods_of(keepwell(), user.company_slug, chosen["id"]) if chosen else []
        plans = memberships.plan_choices(keepwell(), user.company_slug, on)
        return self.render("keepwell/enroll.html", customers=people, plans=plans, form=form, errors=errors,
                           find=typed, chosen=chosen, card=next((c for c in cards if c.get("default")), None))

    def _on(self) -> date | None:
        try:
            return date.fromisoformat(request.values.get("on") or
                                      companies.today(keepwell(), self.user().company_slug).isoformat())
        except ValueError:
            flash("Enter a date (YYYY-MM-DD).", "error")
            return None

    @expose("/cancel/<membership_id>", methods=["POST"])
    @editor_only
    def cancel(self, membership_id: str) -> Any:
        user = self.user()
        on = self._on()
        if on is not None:
            try:
                result = memberships.cancel(keepwell(), user.company_slug, membership_id, on,
                                            request.form.get("at") or None)
            except NotFound:
                abort(404)
            except KeepwellError as exc:
                flash(f"Not done: {exc.message}", "error")
            else:
                if result.get("status") == "declined":
                    flash(f"Not done: {result.get('message') or result.get('reason')}", "error")
                elif result.get("ends_on") and result.get("status") == "active":
                    flash(f"The membership ends on {result['ends_on']}.", "success")
                else:
                    refund = result.get("refund")
                    flash("Membership cancelled." + (f" Refunded {refund} {result.get('currency', '')} to the card."
                                                     if refund and refund != "0.00" else ""), "success")
        return redirect(url_for(".show", membership_id=membership_id))

    @expose("/renewal/<membership_id>", methods=["POST"])
    @editor_only
    def renewal(self, membership_id: str) -> Any:
        """Turn automatic renewal off (it ends with its period) or on again."""
        try:
            done = memberships.set_renewal(keepwell(), self.user().company_slug, membership_id,
                                           request.form.get("auto_renewal") == "on")
        except NotFound:
            abort(404)
        except KeepwellError as exc:
            flash(f"Not done: {exc.message}", "error")
        else:
            flash(f"It renews automatically after {done['expires_on']}." if done["auto_renewal"]
                  else f"It will not renew: it ends on {done['expires_on']}.", "success")
        return redirect(url_for(".show", membership_id=membership_id))

    @expose("/upgrade/<membership_id>", methods=["POST"])
    @editor_only
    def upgrade(self, membership_id: str) -> Any:
        """Change tier: this membership ends and one on the new tier starts the same day, in one
        transaction; a tier the plan version in force lacks changes nothing and says why."""
        user = self.user()
        on = self._on()
        if on is None:
            return redirect(url_for(".show", membership_id=membership_id))
        try:
            changed = memberships.change_tier(keepwell(), user.company_slug, membership_id,
                                              request.form.get("tier", ""), on, request.form.get("at") or None)
        except NotFound:
            abort(404)
        except KeepwellError as exc:
            flash(f"Not done: {exc.message}", "error")
        else:
            if changed.cancelled is None:
                flash(f"Moves to tier {changed.tier} on {changed.effective_on}, when the billing period ends.",
                      "success")
                return redirect(url_for(".show", membership_id=membership_id))
            due = (changed.billing or {}).get("due_now")
            flash(f"Moved to tier {changed.tier}." + (f" Due now: {due}." if due else ""), "success")
            return redirect(url_for(".show", membership_id=changed.membership))
        return redirect(url_for(".show", membership_id=membership_id))


class LedgerView(ListView):
    """Read-only for everyone: the ledger is append-only; corrections are new entries."""

    title = "Ledger"
    fetch = staticmethod(lists.ledger)
    filters = (Filter("owner", "Owner"), Filter("unit", "Unit", choices=("allowance", "overdraft", "visits", "points")),
               Filter("kind", "Kind"), Filter("ruleset", "Ruleset version"), Filter("rule", "Rule"),
               Filter("event", "Event id"), Filter("effective_date", "Date", "date"), BY_LOCATION)
    aliases = {"account_owner": "owner", "account_unit": "unit", "kind": "kind", "ruleset": "ruleset", "rule": "rule",
               "event_key": "event"}
    export_name = "ledger"

    def cell(self, key: str, row: dict[str, Any]) -> Any:
        if key == "owner" and row["owner"].startswith("mem_"):
            return _link("memberships.show", row["owner"], membership_id=row["owner"])
        if key == "event":
            return _link("events.index_view", row["event"], key=row["event"])
        return row.get(key, "")


class EventsView(ListView):
    title = "Events"
    fetch = staticmethod(lists.events)
    filters = (Filter("type", "Type"), Filter("status", "Status", choices=("processed", "declined")),
               Filter("customer", "Customer id"), Filter("membership", "Membership id"), Filter("key", "Event id"),
               Filter("local_date", "Date", "date"), BY_LOCATION)
    aliases = {"type": "type", "status": "status", "customer_id": "customer", "membership_id": "membership",
               "key": "key"}
    export_name = "events"

    def cell(self, key: str, row: dict[str, Any]) -> Any:
        if key == "key":
            return _link(".details_view", row["key"], id=row["id"])
        if key == "result":  # the whole result on demand; the summary column says it in one line
            return Markup("<details><summary>Details</summary><code class='kw-json'>{}</code></details>").format(
                row["result"])
        if key == "customer_name" and row.get("customer_name"):
            return _link("customers.details_view", row["customer_name"], id=row["customer_id"])
        return row.get(key, "")

    @expose("/details/")
    def details_view(self) -> Any:
        raw = request.args.get("id", "")
        if not raw.isdigit():
            abort(404)
        try:
            found = lists.event(keepwell(), self.user().company_slug, int(raw))
        except NotFound:
            abort(404)
        return self.render("keepwell/details.html", title="Events", record=found, name=found["key"],
                           back=url_for(".index_view"), links=[], edit=None, code=("payload", "result"))
