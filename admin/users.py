"""The owners' Users page: who can sign in to the company's admin, with what role; invite a user
by email (they choose their own password from the link), or add one with a password; change a
role, email a new link (the invitation again, or a password reset), disable and enable. Every
change ends the sessions it should (see keepwell.customers.users) and goes through the same use
cases as `keepwell users ...`."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose

from keepwell.kernel.errors import InvalidDocument, KeepwellError
from keepwell.usecases import users

from .auth import current_user
from .site import OwnersOnly, keepwell

ROLE_HELP = {"owner": "everything, users included", "manager": "changes rulesets and memberships",
             "staff": "looks, changes nothing"}


def link_base() -> str:
    """Where this admin is served, for the links emailed to users (…/admin)."""
    return url_for("admin.index", _external=True).rstrip("/")


class UsersView(OwnersOnly, BaseView):
    refusal = "Only an owner manages users."

    @expose("/", methods=["GET", "POST"])
    def index(self) -> Any:
        me = current_user()
        errors: dict[str, str] = {}
        form = {"email": "", "role": "staff"}
        if request.method == "POST":
            form = {"email": request.form.get("email", ""), "role": request.form.get("role", "staff")}
            password = request.form.get("password", "")
            try:
                if password:
                    added = users.add_user(keepwell(), me.company_slug, form["email"], password, form["role"])
                    flash(f"{added} can now sign in as {form['role']}.", "success")
                else:
                    sent = users.invite(keepwell(), me.company_slug, form["email"], form["role"], link_base())
                    flash(f"An invitation is on its way to {sent['email']}: they choose their password from "
                          "the link (it works once, for 72 hours).", "success")
                return redirect(url_for(".index"))
            except InvalidDocument as exc:
                errors = {p.path: p.message for p in exc.problems}
            except KeepwellError as exc:
                errors = {"email": exc.message}
        return self.render("keepwell/users.html", rows=users.list_users(keepwell(), me.company_slug), me=me,
                           roles=users.ROLES, role_help=ROLE_HELP, form=form, errors=errors)

    @expose("/<path:email>/<action>", methods=["POST"])
    def change(self, email: str, action: str) -> Any:
        me = current_user()
        app, company = keepwell(), me.company_slug
        try:
            if action == "disable":
                users.disable(app, company, email)
                flash(f"{email} is disabled and signed out everywhere.", "success")
            elif action == "enable":
                users.enable(app, company, email)
                flash(f"{email} can sign in again.", "success")
            elif action == "password":
                users.set_password(app, company, email, request.form.get("password", ""))
                flash(f"The password of {email} is changed; their sessions have ended.", "success")
            elif action == "role":
                role = request.form.get("role", "")
                users.change_role(app, company, email, role)
                flash(f"{email} is now {role}.", "success")
            elif action == "link":
                sent = users.send_link(app, company, email, link_base())
                what = "The invitation is sent again" if sent["purpose"] == "invite" else "A link to set a new password"
                flash(f"{what} to {sent['email']}; any earlier link no longer works.", "success")
            else:
                abort(404)
        except InvalidDocument as exc:
            flash(f"{email}: " + "; ".join(p.message if p.label else f"{p.path.capitalize()} {p.message}"
                                           for p in exc.problems),
                  "error")
        except KeepwellError as exc:
            flash(exc.message, "error")
        return redirect(url_for(".index"))
