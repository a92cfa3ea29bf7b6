"""The owners' Webhooks page: the URLs the company's integrations receive events at, which
event types each takes, whether it is on (and why not), its delivery log; add, turn on or off,
remove. The same use cases as `keepwell webhooks ...` and /api/v1/webhook_endpoints."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose

from keepwell.kernel.errors import InvalidDocument, KeepwellError
from keepwell.usecases import webhooks

from .auth import current_user
from .site import OwnersOnly, keepwell

LABELS = {"url": "Address", "event_types": "Events", "description": "Description"}


class WebhooksView(OwnersOnly, BaseView):
    refusal = "Only an owner manages webhooks."

    @expose("/", methods=["GET", "POST"])
    def index(self) -> Any:
        me = current_user()
        errors: dict[str, str] = {}
        form: dict[str, Any] = {"url": "", "description": "", "event_types": []}
        if request.method == "POST":
            form = {"url": request.form.get("url", "").strip(), "description": request.form.get("description", ""),
                    "event_types": request.form.getlist("event_types")}
            try:
                added = webhooks.add(keepwell(), me.company_slug, form["url"], form["event_types"],
                                     form["description"] or None)
                flash(f"{added['url']} now receives {', '.join(added['event_types'])}.", "success")
                return redirect(url_for(".index"))
            except InvalidDocument as exc:
                errors = {p.path: f"{LABELS.get(p.path, p.path)} {p.message}" for p in exc.problems}
        return self.render("keepwell/webhooks.html", rows=webhooks.listing(keepwell(), me.company_slug),
                           types=webhooks.TYPES, form=form, errors=errors)

    @expose("/<int:endpoint_id>/<action>", methods=["POST"])
    def change(self, endpoint_id: int, action: str) -> Any:
        me = current_user()
        try:
            if action in ("enable", "disable"):
                e = webhooks.update(keepwell(), me.company_slug, endpoint_id, enabled=action == "enable")
                flash(f"{e['url']} is {'on again: replay what it missed from its log' if e['enabled'] else 'off'}.",
                      "success")
            elif action == "remove":
                webhooks.remove(keepwell(), me.company_slug, endpoint_id)
                flash("The endpoint is removed.", "success")
            else:
                abort(404)
        except KeepwellError as exc:
            flash(exc.message, "error")
        return redirect(url_for(".index"))

    @expose("/<int:endpoint_id>/deliveries")
    def deliveries(self, endpoint_id: int) -> Any:
        me = current_user()
        try:
            endpoint = webhooks.get(keepwell(), me.company_slug, endpoint_id)
        except KeepwellError:
            abort(404)
        rows = webhooks.deliveries(keepwell(), me.company_slug, endpoint_id, 100)
        return self.render("keepwell/webhook_deliveries.html", endpoint=endpoint, rows=rows)
