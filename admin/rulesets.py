"""Rulesets in the admin UI: list, history, the draft editor (a form generated from the kind's
JSON Schema, or the YAML of the same draft), validate, diff, simulate, publish and roll back.

The editor carries the whole document through every POST, so switching between form and YAML,
adding a tier or validating never loses what was typed; only "Save draft" and "Publish" write.
"""

from __future__ import annotations

import difflib
import json
from datetime import date, timedelta
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import BaseView, expose
from markupsafe import Markup

from keepwell.kernel.calendar_words import day as _day
from keepwell.kernel.errors import InvalidDocument, KeepwellError, NotFound, Problem
from keepwell.usecases import companies
from keepwell.usecases import rulesets as uc
from keepwell.usecases.rulesets import parse_text, to_yaml
from keepwell.usecases.simulation import simulate

from .auth import current_user, require_editor
from .site import SignedInOnly, keepwell

BLANK = {
    "Plan": {"spec": {"currency": "USD"}},
    "EarningRules": {"spec": {"rules": []}},
    "NotificationTriggers": {"spec": {"triggers": []}},
}
CONDITION_KINDS = ("EarningRules", "NotificationTriggers")  # kinds whose forms have the condition builder


class _Forms:
    """admin.schema_forms, imported on first use (it builds form classes from every schema)."""

    def __getattr__(self, name):
        from . import schema_forms as module

        return getattr(module, name)


schema_forms = _Forms()


def _company() -> str:
    user = current_user()
    assert user is not None
    return user.company_slug


def _today() -> date:
    return companies.today(keepwell(), _company())


def kinds() -> tuple[str, ...]:
    return tuple(uc.kind_schemas())


class Editor:
    """One draft on its way through a POST: the document, where it came from, its problems."""

    def __init__(self, kind: str, doc: dict, mode: str):
        self.kind, self.doc, self.mode = kind, doc, mode
        self.problems: list[Problem] = []
        self.opened: list[str] | None = None  # sections open when the page was sent (None: as the schema says)
        self.focus = ""  # the field an add/remove button changed: its section shows open
        self.yaml_text = to_yaml(doc)
        self.form = schema_forms.build_form(kind, doc)

    @classmethod
    def from_request(cls, key: str | None) -> Editor:
        mode = request.form.get("_mode", "form")
        kind = request.form.get("_kind", "Plan")
        if kind not in kinds():
            kind = "Plan"
        if mode == "yaml":
            text = request.form.get("yaml", "")
            try:
                doc = parse_text(text, "draft")
            except InvalidDocument as exc:
                ed = cls(kind, {}, "yaml")
                ed.yaml_text, ed.problems = text, list(exc.problems) or [Problem("(document)", exc.message)]
                ed.broken = True
                return ed
            if not isinstance(doc, dict):
                ed = cls(kind, {}, "yaml")
                ed.yaml_text, ed.problems = text, [Problem("(document)", "a ruleset is a mapping (key: value lines)")]
                ed.broken = True
                return ed
            kind = doc.get("kind") if doc.get("kind") in kinds() else kind
            ed = cls(kind, doc, "yaml")
            ed.yaml_text = text
            return ed
        form = schema_forms.build_form(kind, None, formdata=request.form)
        ed = cls.__new__(cls)
        ed.kind, ed.mode, ed.form, ed.problems = kind, "form", form, []
        ed.opened = request.form.getlist("_open") if request.form.get("_sections") else None
        ed.focus = ""
        ed.read_form()
        return ed

    def read_form(self) -> None:
        """The document from the form; a YAML box that cannot be read keeps its text and error."""
        try:
            self.doc = self.form.to_document()
        except InvalidDocument as exc:
            self.broken, self.doc, self.problems = True, {}, list(exc.problems)
            schema_forms.attach_errors(self.form, self.problems)
            self.yaml_text = ""
            return
        self.yaml_text = to_yaml(self.doc)

    broken = False

    def show(self, mode: str) -> None:
        """Re-render in `mode` from the current document (the switch between form and YAML)."""
        if self.broken:
            return  # unreadable YAML stays as typed, with its error, until fixed
        self.mode = mode
        self.yaml_text = to_yaml(self.doc)
        self.form = schema_forms.build_form(self.kind, self.doc)

    def check(self, key: str | None) -> list[Problem]:
        if self.broken:
            return self.problems
        self.problems = list(uc.validate([("", self.doc)]))
        got = (self.doc.get("metadata") or {}).get("id")
        if key and got != key:
            self.problems.append(
                Problem("metadata.id", f"this page edits {key!r}; start a new ruleset to use another id")
            )
        if self.mode == "form":
            self.form = schema_forms.build_form(self.kind, self.doc)
            schema_forms.attach_errors(self.form, self.problems)
        return self.problems


class RulesetsView(SignedInOnly, BaseView):
    @expose("/")
    def index(self) -> Any:
        rows = uc.list_rulesets(keepwell(), _company())
        return self.render("keepwell/rulesets.html", rows=rows, kinds=kinds(), kind_titles=dict(uc.kind_names()),
                           user=current_user())

    @expose("/r/<key>")
    def history(self, key: str) -> Any:
        h = self._or_404(lambda: uc.history(keepwell(), _company(), key))
        return self.render("keepwell/ruleset.html", key=key, rows=h.rows, in_force=h.in_force, has_draft=h.has_draft,
                           kind=h.kind, kind_titles=dict(uc.kind_names()), name=h.name, user=current_user(),
                           today=_today().isoformat())

    @expose("/r/<key>/v/<int:version>")
    def version(self, key: str, version: int) -> Any:
        v = self._or_404(lambda: uc.show(keepwell(), _company(), f"{key}@{version}"))
        return self.render("keepwell/version.html", key=key, ref=v["ref"], yaml_text=to_yaml(v["content"]),
                           json_text=json.dumps(v["content"], indent=2), effective=v["effective_from"],
                           author=v["author"], note=v["note"])

    @expose("/r/<key>/diff")
    def diff(self, key: str) -> Any:
        rows = self._or_404(lambda: uc.versions_of(keepwell(), _company(), key))
        numbers = [r["version"] for r in rows]
        if not numbers:
            abort(404)
        a = request.args.get("a", type=int) or (numbers[-2] if len(numbers) > 1 else numbers[0])
        b = request.args.get("b", type=int) or numbers[-1]
        left, right = self._or_404(lambda: uc.version_contents(keepwell(), _company(), key, [a, b]))
        table = difflib.HtmlDiff(wrapcolumn=60).make_table(
            to_yaml(left).splitlines(), to_yaml(right).splitlines(), f"{key}@{a}", f"{key}@{b}")
        return self.render("keepwell/diff.html", key=key, numbers=numbers, a=a, b=b, table=Markup(table),
                           same=left == right)

    @expose("/new", methods=["GET", "POST"])
    def new(self):
        require_editor()
        if request.method == "GET":
            kind = request.args.get("kind", "Plan")
            if kind not in kinds():
                abort(404)
            doc = {"apiVersion": "keepwell/v1", "kind": kind, "metadata": {"id": "", "name": ""}, **BLANK[kind]}
            return self._editor(Editor(kind, doc, "form"), None)
        return self._post(None)

    @expose("/r/<key>/edit", methods=["GET", "POST"])
    def edit(self, key):
        if request.method == "POST":
            require_editor()
            return self._post(key)

        found = self._or_404(lambda: uc.editable(keepwell(), _company(), key))
        ed = Editor(found.kind, found.doc, request.args.get("mode", "form"))
        if found.is_draft:
            ed.check(key)
        return self._editor(ed, key, is_draft=found.is_draft)

    def _post(self, key):
        user = require_editor()
        ed = Editor.from_request(key)
        action = request.form.get("_action", "validate")
        if action.startswith(("add:", "remove:")) and ed.mode == "form":
            if not ed.broken:
                ed.form = schema_forms.apply_action(ed.form, action)
                ed.read_form()
                ed.focus = action.partition(":")[2]
            return self._editor(ed, key)
        if action in ("show:form", "show:yaml"):
            ed.show(action[5:])
            if ed.broken:
                flash("Fix the YAML first: it could not be read.", "error")
            return self._editor(ed, key)
        problems = ed.check(key)
        if action == "validate":
            if not problems:
                flash("No problems: this draft can be published.", "success")
            return self._editor(ed, key)
        if ed.broken:
            return self._editor(ed, key)
        new_key = (ed.doc.get("metadata") or {}).get("id") or key
        if action == "save":
            try:
                uc.save_draft(keepwell(), user.company_slug, ed.doc, user.email)
            except KeepwellError as exc:
                flash(exc.message, "error")
                return self._editor(ed, key)
            flash("Draft saved." + (" It has problems to fix before it can be published." if problems else ""),
                  "warning" if problems else "success")
            return redirect(url_for(".edit", key=new_key, mode=ed.mode)) if not problems else self._editor(ed, new_key)
        if action == "simulate":  # "Simulate first": the draft is saved, then simulated as it stands
            try:
                uc.save_draft(keepwell(), user.company_slug, ed.doc, user.email)
            except KeepwellError as exc:
                flash(exc.message, "error")
                return self._editor(ed, key)
            return redirect(url_for(".simulate", key=new_key))
        if action in ("publish", "publish:confirmed"):
            if problems:
                flash("Not published: fix the problems marked below.", "error")
                return self._editor(ed, key)
            try:
                on = date.fromisoformat(request.form.get("effective_from") or _today().isoformat())
            except ValueError:
                flash("In force from: enter a date like 2025-03-01.", "error")
                return self._editor(ed, key)
            if action == "publish":  # first the question: this version, these changes, a note
                preview = uc.publish_preview(keepwell(), user.company_slug, ed.doc)
                return self._editor(ed, key, confirm=preview, effective_from=on.isoformat())
            note = (request.form.get("note") or "").strip()[:500] or None
            try:
                published = uc.save_and_publish(keepwell(), user.company_slug, ed.doc, user.email, on, note)
            except InvalidDocument as exc:
                ed.problems = list(exc.problems)
                if ed.mode == "form":
                    schema_forms.attach_errors(ed.form, ed.problems)
                flash(exc.message, "error")
                return self._editor(ed, key)
            flash(f"Published version {published.version}, in force from {_day(on)}." if published.created else
                  f"Nothing new to publish: version {published.version} already has this content.", "success")
            return redirect(url_for(".history", key=new_key))
        abort(400)

    def _editor(self, ed: Editor, key: str | None, is_draft: bool = False, confirm: Any = None,
                effective_from: str | None = None):
        catalog = None
        if ed.kind in CONDITION_KINDS:  # the condition builder: the plans' tiers, services; the event catalog
            g.kw_condition_values = uc.condition_values(keepwell(), _company())
            catalog = schema_forms.conditions.catalog_json()
        return self.render("keepwell/editor.html", ed=ed, key=key, is_draft=is_draft, kinds=kinds(),
                           kind_titles=dict(uc.kind_names()), user=current_user(),
                           today=effective_from or _today().isoformat(), confirm=confirm,
                           condition_catalog=catalog)

    @expose("/r/<key>/rollback", methods=["POST"])
    def rollback(self, key):
        user = require_editor()
        to = request.form.get("version", type=int)
        try:
            on = date.fromisoformat(request.form.get("effective_from") or _today().isoformat())
        except ValueError:
            flash("Effective from: enter a date (YYYY-MM-DD).", "error")
            return redirect(url_for(".history", key=key))
        if to is None:
            flash("Choose the version to roll back to.", "error")
            return redirect(url_for(".history", key=key))
        try:
            published = uc.rollback(keepwell(), user.company_slug, key, to, user.email, on)
        except NotFound:
            abort(404)
        except KeepwellError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".history", key=key))
        flash(
            f"Rolled back: published version {to}'s content again as {published.ref}, from {on.isoformat()}.", "success"
        )
        return redirect(url_for(".history", key=key))

    @expose("/r/<key>/simulate", methods=["GET", "POST"])
    def simulate(self, key):
        user = current_user()
        found = self._or_404(lambda: uc.editable(keepwell(), _company(), key))
        doc, source = found.doc, found.source
        today = _today()
        form = {"from": request.values.get("from", (today - timedelta(days=90)).isoformat()),
                "to": request.values.get("to", today.isoformat())}
        report, error, problems = None, None, []
        if request.method == "POST":
            try:
                start, end = date.fromisoformat(form["from"]), date.fromisoformat(form["to"])
                stream = _sample_stream(request.files.get("events"))
                report = simulate(keepwell(), user.company_slug, doc, start, end, stream)
            except ValueError:
                error = "Enter both dates as YYYY-MM-DD."
            except InvalidDocument as exc:
                error, problems = exc.message, exc.problems
            except KeepwellError as exc:
                error = exc.message
        return self.render("keepwell/simulate.html", key=key, source=source, form=form, report=report, error=error,
                           problems=problems)

    def _or_404(self, read: Any) -> Any:
        try:
            return read()
        except NotFound:
            abort(404)


def _sample_stream(upload) -> list[dict] | None:
    """An uploaded event file: JSON lines, a JSON list, or a YAML list. None when no file."""
    if upload is None or not upload.filename:
        return None
    text = upload.read().decode("utf-8", errors="replace")
    try:
        if text.lstrip().startswith("{"):
            events = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            events = parse_text(text, upload.filename)
    except (ValueError, InvalidDocument) as exc:
        raise InvalidDocument("the event file could not be read", [Problem(upload.filename, str(exc))]) from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise InvalidDocument(
            "the event file could not be read", [Problem(upload.filename, "expected a list of events")]
        )
    return events
