"""List views over a company's records — customers, memberships, ledger, events — with filters,
pagination and CSV export from Flask-Admin, every query scoped to the signed-in user's company.

Writes never go through Flask-Admin's model forms: they call the core use cases (add customer,
enroll, cancel), so the admin and the CLI/API do each thing one way.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla import ModelView
from sqlalchemy.orm import joinedload
from markupsafe import Markup

from keepwell import memberships as memberships_core
from keepwell.errors import KeepwellError
from keepwell.models import Account, Customer, Event, LedgerEntry, Membership, Ruleset, RulesetVersion
from keepwell.money import format_cents
from keepwell.tenancy import update_customer
from keepwell.users import SignedIn

from .auth import current_user, editor_only, require_editor
from .site import SignedInOnly


def service():
    return current_app.extensions["keepwell"]


def dashboard(user: SignedIn) -> dict:
    with current_app.extensions["keepwell_read"]() as s:
        def count(model, *where):
            return s.scalar(sa.select(sa.func.count()).select_from(model).where(model.company_id == user.company_id, *where))

        return {"counts": {
            "customers": count(Customer),
            "active_memberships": count(Membership, Membership.status == "active"),
            "rulesets": count(Ruleset),
            "events": count(Event),
        }}


class CompanyView(SignedInOnly, ModelView):
    """Read-only, company-scoped, exportable: the shape of every list here."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    can_export = True
    export_types = ["csv"]
    export_max_rows = 0  # all rows: an export is for the accountant, not a page
    page_size = 50
    can_set_page_size = True

    def _company_id(self) -> int:
        user = current_user()
        if user is None:  # is_accessible already redirected; never serve an unscoped query
            abort(401)
        return user.company_id

    eager: tuple = ()  # relationships the list shows: loaded with the rows, not one query each

    def get_query(self):
        return super().get_query().options(*self.eager).filter(self.model.company_id == self._company_id())

    def get_count_query(self):
        return super().get_count_query().filter(self.model.company_id == self._company_id())

    def get_one(self, id):
        # Another company's id is simply not there: 404, not a redirect with a flash message.
        pk = getattr(self.model, self._primary_key)
        try:
            pk_value = self.model.__table__.c[self._primary_key].type.python_type(id)
        except (TypeError, ValueError):
            abort(404)
        found = self.session.scalar(sa.select(self.model).where(pk == pk_value, self.model.company_id == self._company_id()))
        if found is None:
            abort(404)
        return found


def _money(_view, _ctx, model, name):
    return format_cents(getattr(model, name))


def _json(_view, _ctx, model, name):
    return Markup("<code class='kw-json'>{}</code>").format(json.dumps(getattr(model, name), sort_keys=True))


class CustomersView(CompanyView):
    column_list = ["id", "name", "email", "phone", "created_at"]
    column_searchable_list = ["name", "email", "phone", "id"]
    column_filters = ["name", "email", "created_at"]
    column_default_sort = ("created_at", True)
    form_columns = ["name", "email", "phone"]
    column_formatters = {"id": lambda v, c, m, n: Markup('<a href="{}">{}</a>').format(
        url_for("memberships.index_view", flt0_customer_id_equals=m.id), m.id)}

    def __init__(self, session, **kw):
        super().__init__(Customer, session, **kw)

    @property
    def can_create(self):
        return current_user() is not None  # staff add customers at the counter too

    @property
    def can_edit(self):
        return current_user() is not None and current_user().can_edit

    def create_model(self, form):
        user = current_user()
        try:
            cid = service().add_customer(form.name.data, form.email.data or None, company=user.company_slug)
            if form.phone.data:
                service().run(user.company_slug, lambda c: update_customer(c.session, c.company, cid, phone=form.phone.data))
        except KeepwellError as exc:
            flash(exc.message, "error")
            return False
        self.session.rollback()  # end the read snapshot taken before the write
        return self.session.get(Customer, cid)

    def update_model(self, form, model):
        user = require_editor()
        try:
            service().run(user.company_slug, lambda c: update_customer(
                c.session, c.company, model.id, name=form.name.data, email=form.email.data or None,
                phone=form.phone.data or None))
        except KeepwellError as exc:
            flash(exc.message, "error")
            return False
        self.session.rollback()
        return True


class MembershipsView(CompanyView):
    column_list = ["id", "customer.name", "plan_version.ruleset.key", "plan_version.version", "tier", "period",
                   "issued_on", "current_period", "expires_on", "status", "allowance"]
    column_labels = {"customer.name": "Customer", "plan_version.ruleset.key": "Plan",
                     "plan_version.version": "Plan version", "current_period": "Period no."}
    column_filters = ["status", "tier", "period", "expires_on", "issued_on", "customer_id"]
    column_searchable_list = ["id", "customer_id", "tier"]
    column_default_sort = ("issued_on", True)
    column_formatters = {"id": lambda v, c, m, n: Markup('<a href="{}">{}</a>').format(
        url_for("memberships.show", membership_id=m.id), m.id), "allowance": lambda v, c, m, n: v._allowance(m)}
    column_formatters_export = {"allowance": lambda v, c, m, n: v._allowance(m)}
    column_labels_extra = {"allowance": "Allowance balance"}
    list_template = "keepwell/memberships_list.html"
    eager = (joinedload(Membership.customer), joinedload(Membership.plan_version).joinedload(RulesetVersion.ruleset))

    def __init__(self, session, **kw):
        super().__init__(Membership, session, **kw)
        self.column_labels = {**self.column_labels, **self.column_labels_extra}

    def _allowance(self, m: Membership) -> str:
        # The cached balance (checked by `keepwell audit`); blank for plans without an allowance.
        balance = self.session.scalar(sa.select(Account.balance).where(
            Account.company_id == m.company_id, Account.owner == m.id, Account.unit == "allowance"))
        return "" if balance is None else format_cents(balance)

    @expose("/details/")
    def details_view(self):
        return redirect(url_for(".show", membership_id=request.args.get("id", "")))

    @expose("/show/<membership_id>")
    def show(self, membership_id):
        user = current_user()
        m = self.get_one(membership_id)

        def work(c):
            return memberships_core.view(c, c.session.get(Membership, m.id))

        view = service().run(user.company_slug, work)
        tiers = _plan_tiers(self.session, m.plan_version_id)
        return self.render("keepwell/membership.html", m=view, user=user, tiers=tiers, today=date.today().isoformat())

    @expose("/enroll", methods=["GET", "POST"])
    def enroll(self):
        user = current_user()
        customers = self.session.execute(sa.select(Customer.id, Customer.name).where(
            Customer.company_id == user.company_id).order_by(Customer.name)).all()
        plans = _plans(self.session, user.company_id)
        form = {"customer": request.values.get("customer", ""), "plan": request.values.get("plan", ""),
                "on": request.values.get("on", date.today().isoformat())}
        errors = {}
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
                    result = service().enroll(form["customer"], plan, on, tier=tier or None, company=user.company_slug)
                except KeepwellError as exc:
                    errors["form"] = exc.message
                else:
                    if result.get("status") == "declined":
                        errors["form"] = _declined(result)
                    else:
                        flash(f"Enrolled: membership {result['membership']}.", "success")
                        return redirect(url_for(".show", membership_id=result["membership"]))
        return self.render("keepwell/enroll.html", customers=customers, plans=plans, form=form, errors=errors)

    @expose("/cancel/<membership_id>", methods=["POST"])
    @editor_only
    def cancel(self, membership_id):
        return self._change(membership_id, lambda m, on: [_platform_event(m, "cancelled", on, {"membership": m.id})],
                            "Membership cancelled.")

    @expose("/upgrade/<membership_id>", methods=["POST"])
    @editor_only
    def upgrade(self, membership_id):
        # A tier change ends this membership and starts one on the new tier the same day: the
        # old period's ledger stays as it was, the new tier's allowance starts fresh.
        tier = request.form.get("tier", "")
        m = self.get_one(membership_id)
        plan = self.session.scalar(sa.select(Ruleset.key).join(RulesetVersion, RulesetVersion.ruleset_id == Ruleset.id)
                                   .where(RulesetVersion.id == m.plan_version_id))

        def events(m, on):
            return [_platform_event(m, "cancelled", on, {"membership": m.id}, suffix=f"upgrade:{tier}"),
                    {"id": f"upgrade:{m.id}:{tier}:{on.isoformat()}", "type": "enrolled", "customer": m.customer_id,
                     "occurred_at": _noon(on), "data": {"plan": plan, "tier": tier}}]

        return self._change(membership_id, events, f"Moved to tier {tier}.", follow_new=True)

    def _change(self, membership_id, make_events, done: str, follow_new: bool = False):
        user = current_user()
        m = self.get_one(membership_id)
        try:
            on = date.fromisoformat(request.form.get("on") or date.today().isoformat())
        except ValueError:
            flash("Enter a date (YYYY-MM-DD).", "error")
            return redirect(url_for(".show", membership_id=m.id))
        target = m.id
        try:
            for payload in make_events(m, on):
                result = service().post_event(payload, company=user.company_slug, trusted=True)
                if result.get("status") == "declined":
                    flash(f"Not done: {_declined(result)}", "error")
                    return redirect(url_for(".show", membership_id=m.id))
                target = result.get("membership", target) if follow_new else target
        except KeepwellError as exc:
            flash(f"Not done: {exc.message}", "error")
            return redirect(url_for(".show", membership_id=m.id))
        flash(done, "success")
        return redirect(url_for(".show", membership_id=target))


def _declined(result: dict) -> str:
    return result.get("message") or result.get("reason") or "declined"


def _platform_event(m: Membership, type_: str, on: date, data: dict, suffix: str = "") -> dict:
    return {"id": f"admin:{type_}:{m.id}:{on.isoformat()}{':' + suffix if suffix else ''}", "type": type_,
            "customer": m.customer_id, "occurred_at": _noon(on), "data": data}


def _noon(on: date) -> str:
    """Midday of a date in the company's time zone: an admin action dated `on` lands on that day."""
    return service().run(current_user().company_slug, lambda c: (c.start_of(on) + timedelta(hours=12)).isoformat())


def _plans(session, company_id: int) -> list[tuple[str, str]]:
    """(value, label) for each plan and tier of the newest version of each Plan ruleset."""
    out = []
    for rs in session.scalars(sa.select(Ruleset).where(Ruleset.company_id == company_id, Ruleset.kind == "Plan")
                              .order_by(Ruleset.key)):
        v = session.scalar(sa.select(RulesetVersion).where(RulesetVersion.ruleset_id == rs.id)
                           .order_by(RulesetVersion.version.desc()).limit(1))
        tiers = (v.content.get("spec", {}).get("tiers") if v else None) or [{"id": "", "name": "Standard"}]
        out += [(f"{rs.key}|{t['id']}", f"{rs.name} — {t.get('name', t['id'])}") for t in tiers]
    return out


def _plan_tiers(session, version_id: int) -> list[tuple[str, str]]:
    v = session.get(RulesetVersion, version_id)
    return [(t["id"], t.get("name", t["id"])) for t in (v.content.get("spec", {}).get("tiers") or [])]


def _amount(view, ctx, model, name):
    unit = model.account.unit if model.account else ""
    value = getattr(model, name)
    return format_cents(value) if unit in ("allowance", "overdraft") else str(value)


class LedgerView(CompanyView):
    """Read-only for everyone: the ledger is append-only; corrections are new entries."""

    column_list = ["effective_date", "account.owner", "account.unit", "account.code", "kind", "amount",
                   "balance_after", "ruleset", "rule", "event.key", "period", "memo"]
    column_labels = {"account.owner": "Owner", "account.unit": "Unit", "account.code": "Service",
                     "event.key": "Event", "ruleset": "Ruleset version"}
    column_filters = ["effective_date", "kind", "ruleset", "rule", "account.owner", "account.unit", "event.key"]
    column_searchable_list = ["rule", "ruleset", "memo"]
    column_default_sort = ("id", True)
    column_formatters = {"amount": _amount, "balance_after": _amount}
    column_formatters_export = {"amount": _amount, "balance_after": _amount}
    eager = (joinedload(LedgerEntry.account), joinedload(LedgerEntry.event))

    def __init__(self, session, **kw):
        super().__init__(LedgerEntry, session, **kw)


class EventsView(CompanyView):
    column_list = ["received_at", "key", "type", "customer_id", "membership_id", "local_date", "status", "result"]
    column_labels = {"key": "Event id", "local_date": "Date"}
    column_filters = ["type", "status", "local_date", "customer_id", "membership_id", "key"]
    column_searchable_list = ["key", "customer_id", "membership_id"]
    column_default_sort = ("id", True)
    column_formatters = {"result": _json}
    column_formatters_export = {"result": lambda v, c, m, n: json.dumps(m.result, sort_keys=True)}
    column_details_list = ["key", "type", "customer_id", "membership_id", "occurred_at", "local_date", "status",
                           "payload", "result", "received_at"]
    column_formatters_detail = {"payload": _json, "result": _json}

    def __init__(self, session, **kw):
        super().__init__(Event, session, **kw)
