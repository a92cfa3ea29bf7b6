"""The Reports page: the reports a company closes its month on (the same catalog as `keepwell
report list`), each with a form of its filters — From/To, and the company's own locations, plans
and tiers — and, run, its figures as tables (and charts) with downloads in CSV, Excel and PDF,
the same figures as `keepwell report NAME`.

A small report downloads at once; a large one (more rows than `reports.DOWNLOAD_NOW_ROWS` for
the format) and any file asked for with "Prepare file" is a report file, made by a job (an RQ
worker with Redis, a thread of this process without): "Your report files" shows its progress,
refreshed by report_files.js from `files/status`, and Download once it is ready. Every signed-in
user may run reports (they change nothing); every query is the user's company's."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, abort, current_app, flash, jsonify, redirect, request, url_for
from flask_admin import BaseView, expose

from keepwell.kernel import calendar_words
from keepwell.kernel.errors import InvalidDocument, KeepwellError, NotFound
from keepwell.usecases import report_files, reports
from keepwell.usecases.users import SignedIn

from ..jobs import enqueue as jobs
from .auth import current_user
from .site import SignedInOnly, keepwell

LABELS = {"from": "From", "to": "To", "location": "Location", "plan": "Plan", "tier": "Tier",
          "membership": "Membership", "customer": "Customer"}
HELP = {"location": "only the customers of one location", "plan": "only the members of one plan",
        "tier": "only the members on one tier", "membership": "one membership, line by line",
        "customer": "one customer's memberships, line by line"}
# The statement is run for every member, the members of one plan, one membership or one customer.
SCOPES = (("all", "Every member"), ("plan", "The members of one plan"), ("membership", "One membership"),
          ("customer", "One customer"))
FORMAT_NAMES = {"csv": "CSV", "xlsx": "Excel", "pdf": "PDF"}
SHOWN_ROWS = 500  # rows of a section on the page; the files have them all
CURRENCY_SIGNS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "EUR": "€", "GBP": "£"}


def _user() -> SignedIn:
    user = current_user()
    if user is None:
        abort(401)
    return user


def _spec(name: str) -> dict[str, Any]:
    found = next((r for r in reports.list_reports(keepwell(), _user().company_slug) if r["name"] == name), None)
    if found is None:
        abort(404)
    return found


def _filters(spec: dict[str, Any]) -> list[str]:
    return [f["name"] for f in spec["filters"]]


def _form(spec: dict[str, Any], source: Any, choices: dict[str, Any]) -> dict[str, str]:
    """The form as typed (or its defaults: the last full month, every member)."""
    form = {k: (source.get(k) or "").strip() for k in _filters(spec)}
    form["from"] = form.get("from") or choices["default_from"]
    form["to"] = form.get("to") or choices["default_to"]
    if spec["name"] == "statement":
        scope = (source.get("scope") or "").strip()
        form["scope"] = scope if scope in dict(SCOPES) else "all"
    return form


def _given(spec: dict[str, Any], form: dict[str, str]) -> dict[str, str]:
    """The filters to run the report for: the statement's scope picks which of its own apply."""
    keep = set(_filters(spec))
    scope = form.get("scope")
    if scope in ("all", "plan"):
        keep -= {"membership", "customer"} | ({"plan"} if scope == "all" else set())
    elif scope in ("membership", "customer"):
        keep = {"from", "to", scope}
    return {k: form[k] for k in keep if form.get(k)}


def _missing(spec: dict[str, Any], form: dict[str, str]) -> dict[str, str]:
    scope = form.get("scope")
    if scope == "plan" and not form.get("plan"):
        return {"plan": "Choose the plan."}
    if scope == "membership" and not form.get("membership"):
        return {"membership": "Enter the membership's id (mem_…)."}
    if scope == "customer" and not form.get("customer"):
        return {"customer": "Enter the customer's id (cus_…)."}
    return {}


def _errors(exc: KeepwellError, form: dict[str, str]) -> dict[str, str]:
    """Each problem beside its field, in words: "From must be on or before ..."."""
    if isinstance(exc, InvalidDocument) and exc.problems:
        out: dict[str, str] = {}
        for p in exc.problems:
            field = p.path if p.path in LABELS else "form"
            message = p.message.rstrip(".") + "."
            if message.startswith(("must ", "is ")):  # "From must be on or before ..."
                message = f"{LABELS.get(field, 'This')} {message}"
            out[field] = message[:1].upper() + message[1:]
        return out
    message = exc.message[:1].upper() + exc.message[1:]
    if isinstance(exc, NotFound):  # a membership id of no membership of the company
        field = next((k for k in ("membership", "customer") if form.get(k) and form[k] in exc.message), "form")
        return {field: message.rstrip(".") + "."}
    return {"form": message.rstrip(".") + "."}


def cell(value: Any, kind: str, currency: str) -> str:
    """A figure as the page shows it: money with its currency, counts with separators."""
    if value is None or value == "":
        return "—"
    if kind == "money":
        text = str(value)
        negative = text.startswith("-")
        whole, _, cents = text.lstrip("-").partition(".")
        amount = f"{int(whole):,}.{(cents or '00')[:2]}"
        sign = CURRENCY_SIGNS.get(currency)
        shown = f"{sign}{amount}" if sign else f"{amount} {currency}"
        return f"-{shown}" if negative else shown
    if kind == "percent":
        return f"{value}%"
    if kind in ("int", "points") and isinstance(value, int):
        return f"{value:,}"
    if kind == "date":
        return calendar_words.day(str(value))
    return str(value)


def run_for(params: dict[str, str]) -> str:
    """What a report was run for, in words: "1 Nov 2026 to 30 Nov 2026 · plan comfort-club"."""
    text = f"{calendar_words.day(params.get('from'))} to {calendar_words.day(params.get('to'))}"
    rest = [f"{LABELS.get(k, k).lower()} {v}" for k, v in params.items() if k not in ("from", "to")]
    return " · ".join([text, *rest])


def file_view(f: dict[str, Any]) -> dict[str, Any]:
    """A report file as the list (and its JSON status) shows it."""
    done, total = f["progress"]["done"], f["progress"]["total"]
    percent = 0
    if f["status"] == "done":
        percent, text = 100, "Ready"
    elif f["status"] == "failed":
        text = "Failed"
    elif f["stalled"]:
        text = "Stopped part way: it will be taken up again, or prepare it again"
    elif f["status"] == "queued":
        text = "Waiting to start"
    elif not total:
        text = "Working out the figures"
    else:
        percent = int(done * 100 / total)
        text = f"Writing the file: {done} of {total} steps"
    size = f.get("size")
    return {**f, "for": run_for(f["params"]), "status_text": text, "percent": percent,
            "pending": f["status"] in ("queued", "running") and not f["stalled"],
            "size_text": (f"{size / 1024:,.1f} KB" if size and size >= 1024 else f"{size} bytes") if size else "",
            "download_url": url_for(".file_download", file_id=f["id"]) if f["status"] == "done" else None,
            "again_url": url_for(".file_again", file_id=f["id"]) if f["status"] == "failed" or f["stalled"] else None,
            "asked": calendar_words.day(f["created_at"])}


def _files(user: SignedIn) -> list[dict[str, Any]]:
    return [file_view(f) for f in report_files.listing(keepwell(), user.company_slug, by=user.email)]


def _back(name: str, form: dict[str, str]) -> str:
    """The report's page, run for the form's filters."""
    return url_for(".report", report_name=name) + "?" + urlencode({**{k: v for k, v in form.items() if v}, "run": "1"})


def _prepare(user: SignedIn, name: str, fmt: str, given: dict[str, str]) -> dict[str, Any]:
    """Queue a report file and start its job."""
    made = report_files.queue(keepwell(), user.company_slug, name, fmt, user.email, **given)
    jobs.prepare_report_file(keepwell(), current_app.extensions["keepwell_settings"].redis_url, user.company_slug,
                             made["id"])
    return made


class ReportsView(SignedInOnly, BaseView):
    @expose("/")
    def index(self) -> Any:
        user = _user()
        catalog = reports.list_reports(keepwell(), user.company_slug)
        return self.render("keepwell/reports.html", catalog=catalog, labels=LABELS, help=HELP, files=_files(user))

    @expose("/r/<report_name>")
    def report(self, report_name: str) -> Any:
        user, name = _user(), report_name
        spec = _spec(name)
        choices = reports.form_choices(keepwell(), user.company_slug)
        form = _form(spec, request.args, choices)
        errors: dict[str, str] = {}
        figures = None
        if request.args.get("run"):
            errors = _missing(spec, form)
            if not errors:
                try:
                    figures = reports.view(keepwell(), user.company_slug, name, **_given(spec, form))
                except KeepwellError as exc:
                    errors = _errors(exc, form)
        query = _back(name, form).split("?", 1)[1]
        return self.render("keepwell/report.html", spec=spec, form=form, errors=errors, figures=figures,
                           choices=choices, labels=LABELS, help=HELP, scopes=SCOPES, formats=FORMAT_NAMES,
                           query=query, limits=reports.DOWNLOAD_NOW_ROWS, shown_rows=SHOWN_ROWS, cell=cell,
                           files=_files(user)), 422 if errors else 200

    @expose("/r/<report_name>/download/<fmt>")
    def download(self, report_name: str, fmt: str) -> Any:
        user, name = _user(), report_name
        spec = _spec(name)
        if fmt not in FORMAT_NAMES:
            abort(404)
        choices = reports.form_choices(keepwell(), user.company_slug)
        form = _form(spec, request.args, choices)
        given = _given(spec, form)
        back = _back(name, form)
        try:
            made = reports.download_now(keepwell(), user.company_slug, name, fmt, **given)
            if made is None:  # too large to make in this request: a report file, made by a job
                _prepare(user, name, fmt, given)
                flash(f"This report is large, so the {FORMAT_NAMES[fmt]} file is being prepared: it is under "
                      "Your report files, with a Download button once it is ready.", "info")
                return redirect(back + "#report-files")
        except KeepwellError:
            return redirect(back)  # the page says what is wrong, beside its field
        return Response(made.content, mimetype=made.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})

    @expose("/r/<report_name>/prepare", methods=["POST"])
    def prepare(self, report_name: str) -> Any:
        user, name = _user(), report_name
        spec = _spec(name)
        choices = reports.form_choices(keepwell(), user.company_slug)
        form = _form(spec, request.form, choices)
        fmt = request.form.get("format", "")
        back = _back(name, form)
        if fmt not in FORMAT_NAMES:
            flash("Choose CSV, Excel or PDF.", "error")
            return redirect(back)
        try:
            _prepare(user, name, fmt, _given(spec, form))
        except KeepwellError:
            return redirect(back)  # the page says what is wrong, beside its field
        flash(f"The {spec['title']} is being prepared as {'an' if fmt == 'xlsx' else 'a'} {FORMAT_NAMES[fmt]} file: "
              "see Your report files below.", "success")
        return redirect(back + "#report-files")

    @expose("/files/status")
    def file_status(self) -> Any:
        """The signed-in user's report files as JSON (what report_files.js refreshes the list from)."""
        user = _user()
        ids = [i for i in request.args.get("ids", "").split(",") if i][:100]
        rows = report_files.listing(keepwell(), user.company_slug, ids=ids) if ids else \
            report_files.listing(keepwell(), user.company_slug, by=user.email)
        keys = ("id", "title", "format_name", "status", "progress", "error", "status_text", "percent", "pending",
                "size_text", "download_url", "again_url", "for", "asked")
        response = jsonify({"files": [{k: v.get(k) for k in keys} for v in map(file_view, rows)]})
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/files/<file_id>")
    def file_download(self, file_id: str) -> Any:
        user = _user()
        try:
            made = report_files.content(keepwell(), user.company_slug, file_id)
        except NotFound:
            abort(404)
        return Response(made.content, mimetype=made.media_type,
                        headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})

    @expose("/files/<file_id>/again", methods=["POST"])
    def file_again(self, file_id: str) -> Any:
        user = _user()
        try:
            made = report_files.again(keepwell(), user.company_slug, file_id, user.email)
        except NotFound:
            abort(404)
        except KeepwellError as exc:
            flash(f"Not prepared: {exc.message}", "error")
            return redirect(url_for(".index") + "#report-files")
        jobs.prepare_report_file(keepwell(), current_app.extensions["keepwell_settings"].redis_url, user.company_slug,
                                 made["id"])
        flash(f"The {made['title']} is being prepared again.", "success")
        return redirect(url_for(".index") + "#report-files")
