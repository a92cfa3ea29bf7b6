"""The owners' Locations page: the places the company serves, each with its address, its own time
zone when it is not the company's (its customers' quiet hours follow it) and the sales tax its
invoices charge; add one, change one. The same use cases as `keepwell locations ...`."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose

from keepwell.kernel.errors import InvalidDocument, KeepwellError
from keepwell.usecases import companies, locations

from .auth import current_user
from .site import OwnersOnly, keepwell

FIELDS = ("name", "address", "timezone", "tax_rate", "tax_name")


def _form() -> dict[str, str]:
    return {k: request.form.get(k, "").strip() for k in FIELDS}


def _problems(exc: KeepwellError) -> dict[str, str]:
    if isinstance(exc, InvalidDocument):
        return {p.path: p.message for p in exc.problems}
    return {"name": exc.message}


class LocationsView(OwnersOnly, BaseView):
    refusal = "Only an owner manages the company's locations."

    @expose("/", methods=["GET", "POST"])
    def index(self) -> Any:
        me = current_user()
        form, errors = {k: "" for k in FIELDS}, {}
        if request.method == "POST":
            form = _form()
            try:
                added = locations.add_location(keepwell(), me.company_slug, form["name"], form["tax_rate"] or "0",
                                               form["tax_name"] or None, form["address"] or None,
                                               form["timezone"] or None)
            except KeepwellError as exc:
                errors = _problems(exc)
            else:
                flash(f"Location added: {added['name']}.", "success")
                return redirect(url_for(".index"))
        return self._page(form, errors)

    @expose("/<location_id>", methods=["POST"])
    def change(self, location_id: str) -> Any:
        me = current_user()
        form = _form()
        try:
            changed = locations.change_location(keepwell(), me.company_slug, location_id,
                                                **{**form, "tax_rate": form["tax_rate"] or "0"})
        except KeepwellError as exc:
            return self._page({k: "" for k in FIELDS}, {}, editing=location_id, edit_form=form,
                              edit_errors=_problems(exc))
        flash(f"Saved {changed['name']}.", "success")
        return redirect(url_for(".index"))

    def _page(self, form: dict[str, str], errors: dict[str, str], **editing: Any) -> Any:
        me = current_user()
        return self.render("keepwell/locations.html", rows=locations.list_locations(keepwell(), me.company_slug),
                           form=form, errors=errors, company=companies.details(keepwell(), me.company_slug),
                           editing=editing.get("editing"), edit_form=editing.get("edit_form", {}),
                           edit_errors=editing.get("edit_errors", {}))
