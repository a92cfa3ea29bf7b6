"""Install an industry template pack into the signed-in company, its parameters asked for in a
form built from the pack's manifest (type and help of each parameter)."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose

from keepwell.kernel.errors import InvalidDocument, KeepwellError
from keepwell.usecases import packs as packs_core

from .auth import current_user, require_editor
from .site import SignedInOnly, keepwell

INPUT = {"money": ("text", "decimal"), "percent": ("text", "decimal"), "integer": ("number", "numeric"),
         "string": ("text", "text"), "boolean": ("checkbox", None)}


class PacksView(SignedInOnly, BaseView):
    @expose("/")
    def index(self):
        return self.render("keepwell/packs.html", packs=packs_core.available(), user=current_user())

    @expose("/<pack_name>", methods=["GET", "POST"])
    def install(self, pack_name):
        name = pack_name  # Flask-Admin reserves the argument "name"
        try:
            pack = packs_core.shipped(name)
        except KeepwellError:
            return self.render("keepwell/error.html", title="No such pack", message=f"There is no pack {name!r}."), 404
        user = current_user()
        values = {p.name: request.form.get(p.name, "") if request.method == "POST" else _text(p.default)
                  for p in pack.parameters}
        for p in pack.parameters:
            if p.type == "boolean" and request.method == "POST":
                values[p.name] = "true" if request.form.get(p.name) else "false"
        errors: dict[str, str] = {}
        preview, form_error = None, None
        effective = request.form.get("effective_from") or date.today().isoformat()
        if request.method == "POST":
            require_editor()
            try:
                on = date.fromisoformat(effective)
            except ValueError:
                errors["effective_from"] = "Enter a date (YYYY-MM-DD)."
                on = None
            try:
                preview = packs_core.preview(keepwell(), user.company_slug, pack, values)
                if request.form.get("_action") == "install" and on is not None:
                    refs = packs_core.install(keepwell(), user.company_slug, pack, author=user.email,
                                              effective_from=on, overrides=values)
                    flash(f"Installed {pack.name}: published {', '.join(refs)}.", "success")
                    return redirect(url_for("rulesets.index"))
            except InvalidDocument as exc:
                form_error = exc.message
                for prob in exc.problems:
                    key = prob.path.removeprefix("--set ").strip()
                    if key in values:
                        errors[key] = prob.message
                    else:
                        errors.setdefault("_form", "")
                        errors["_form"] += f"{prob.path}: {prob.message}\n"
            except KeepwellError as exc:
                form_error = exc.message
        return self.render("keepwell/pack_install.html", pack=pack, values=values, errors=errors, preview=preview,
                           form_error=form_error, effective_from=effective, inputs=INPUT, user=user)


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
