"""The `keepwell` command: a composition root. Its commands, flags and JSON keys are a public
contract that scripts rely on: extend them, never rename them."""

from __future__ import annotations

import json
import sys
from datetime import date
from functools import wraps

import click

from .config import Settings
from .documents import load_file, parse_text, to_yaml
from .errors import InvalidDocument, KeepwellError
from .validation import validate_ruleset


class Obj:
    def __init__(self, company: str | None):
        self.settings = Settings.from_env()
        self.company = company or self.settings.company
        self._app = None

    @property
    def app(self):
        if self._app is None:
            from .service import Keepwell

            self._app = Keepwell.from_settings(self.settings)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


def _date(_ctx, _param, value):
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def handled(fn):
    """Report our errors as one clear message (or one line per problem) and exit 1."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvalidDocument as exc:
            click.echo(f"error: {exc.message}", err=True)
            for p in exc.problems:
                click.echo(str(p), err=True)
            sys.exit(1)
        except KeepwellError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)

    return wrapper


def emit(data, as_json: bool, human) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human(data)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (amounts as decimal strings).")


@click.group()
@click.option("--company", envvar="KEEPWELL_COMPANY", default=None, help="Company slug (default: KEEPWELL_COMPANY or 'default').")
@click.version_option(package_name="keepwell")
@click.pass_context
def main(ctx, company):
    """Keepwell: memberships and rewards for home-service contractors, configured by rulesets."""
    ctx.obj = Obj(company)
    ctx.call_on_close(ctx.obj.close)


@main.command()
@click.option("--name", default=None, help="Company name, when the company is created.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the company (America/Denver).")
@click.pass_obj
@handled
def init(obj, name, timezone):
    """Create or upgrade the database and the company. Safe to run again."""
    created = obj.app.init(obj.company, name or obj.company.title(), timezone)
    click.echo(f"database ready; company {obj.company} {'created' if created else 'exists'}")


@main.group()
def companies():
    """Companies (tenants)."""


@companies.command("add")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--timezone", default="UTC", show_default=True)
@click.pass_obj
@handled
def companies_add(obj, slug, name, timezone):
    obj.app.add_company(slug, name, timezone)
    click.echo(slug)


@companies.command("set")
@click.option("--name", default=None)
@click.option("--timezone", default=None)
@click.option("--email", default=None, help="Where company-audience emails go.")
@click.option("--webhook-url", default=None, help="Where webhook notifications are POSTed.")
@click.option("--webhook-secret", default=None, help="HMAC secret for X-Keepwell-Signature.")
@click.option("--quiet-hours", default=None, help="HH:MM-HH:MM in company time; email and SMS wait until they end.")
@click.pass_obj
@handled
def companies_set(obj, **fields):
    """Change the company's settings (contact, time zone, quiet hours)."""
    from .tenancy import update_company

    obj.app.run(obj.company, lambda c: update_company(c.company, **fields))
    click.echo(obj.company)


# --- rulesets ---------------------------------------------------------------------------------

@main.group()
def rulesets():
    """Validate, publish and inspect versioned rulesets."""


def _read_docs(files) -> list[tuple[str, object]]:
    out = []
    for f in files:
        if f == "-":
            out.append(("<stdin>", parse_text(sys.stdin.read(), "<stdin>")))
        else:
            out.append((f, load_file(f)))
    return out


@rulesets.command("validate")
@click.argument("files", nargs=-1, required=True)
@json_option
def rulesets_validate(files, as_json):
    """Check ruleset files; print one line per error (file: path: reason) and exit 1 if any."""
    problems = []
    for f in files:
        try:
            found = validate_ruleset(load_file(f), f)
        except InvalidDocument as exc:
            found = exc.problems
        problems.extend(found)
        if not found and not as_json:
            click.echo(f"{f}: ok", err=True)
    emit([{"file": p.file, "path": p.path, "message": p.message} for p in problems], as_json,
         lambda _rows: [click.echo(str(p)) for p in problems])
    sys.exit(1 if problems else 0)


@rulesets.command("publish")
@click.argument("files", nargs=-1, required=True)
@click.option("--effective-from", callback=_date, default=None, help="Date the version takes effect (default: 1970-01-01, i.e. at once and for back-dated events).")
@click.option("--author", default=None, help="Who publishes (default: $USER).")
@click.pass_obj
@handled
def rulesets_publish(obj, files, effective_from, author):
    """Publish each file as a new immutable version; prints id@version per file."""
    import getpass

    author = author or getpass.getuser()
    docs = _read_docs(files)
    problems = [p for f, d in docs for p in validate_ruleset(d, f)]
    if problems:  # all or nothing: one bad file publishes none
        raise InvalidDocument("nothing published", problems)
    for f, doc in docs:
        published = obj.app.publish(doc, author, effective_from or date(1970, 1, 1), file=f, company=obj.company)
        click.echo(published.ref + ("" if published.created else "  (unchanged)"))


@rulesets.command("list")
@json_option
@click.pass_obj
@handled
def rulesets_list(obj, as_json):
    from . import versions

    rows = obj.app.run(obj.company, lambda c: versions.list_rulesets(c.session, c.company.id))

    def human(rows):
        for r in rows:
            click.echo(f"{r['id']:<28} {r['kind']:<22} {r['latest'] or '(draft only)':<32} {r['name']}")

    emit(rows, as_json, human)


@rulesets.command("show")
@click.argument("ref")
@json_option
@click.option("--versions", "history", is_flag=True, help="List every version instead of the content.")
@click.pass_obj
@handled
def rulesets_show(obj, ref, as_json, history):
    """Show a version (ID for the newest, ID@N for one) or, with --versions, the history."""
    from . import versions

    if history:
        rows = obj.app.run(obj.company, lambda c: versions.versions_of(c.session, c.company.id, ref.split("@")[0]))
        emit(rows, as_json, lambda rows: [click.echo(f"{r['ref']:<28} {r['effective_from']}  {r['author']:<16} {r['content_hash'][:12]} {r['note'] or ''}") for r in rows])
        return

    def work(c):
        rs, v = versions.get_version(c.session, c.company.id, ref)
        return {"ref": versions.ref(rs, v), "kind": rs.kind, "version": v.version, "content_hash": v.content_hash,
                "author": v.author, "effective_from": v.effective_from.isoformat(), "created_at": v.created_at.isoformat(),
                "content": v.content}

    data = obj.app.run(obj.company, work)
    emit(data, as_json, lambda d: click.echo(
        f"# {d['ref']}  effective {d['effective_from']}  by {d['author']}  sha256 {d['content_hash'][:12]}\n" + to_yaml(d["content"])))


@rulesets.command("diff")
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_obj
@handled
def rulesets_diff(obj, a, b, as_json):
    """Unified diff between two versions, e.g. `vip-customer@1 vip-customer@2`."""
    from . import versions

    if "@" not in b and "@" in a and b.isdigit():
        b = f"{a.split('@')[0]}@{b}"
    text = obj.app.run(obj.company, lambda c: versions.diff(c.session, c.company.id, a, b))
    emit({"from": a, "to": b, "changed": bool(text), "diff": text}, as_json,
         lambda d: click.echo(d["diff"] or "(no differences)\n", nl=False))


@rulesets.command("simulate")
@click.argument("files", nargs=-1)
@click.option("--pack", default=None, help="Simulate a template pack's rulesets (with --set values) instead of files.")
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE", help="A pack parameter value.")
@click.option("--events", "events_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A sample stream (JSON lines) instead of the recorded events.")
@click.option("--from", "start", callback=_date, required=True, help="First day of the range.")
@click.option("--to", "end", callback=_date, required=True, help="Last day of the range.")
@json_option
@click.pass_obj
@handled
def rulesets_simulate(obj, files, pack, settings, events_file, start, end, as_json):
    """What would change if FILES (drafts), or a pack with other parameters, had been in force
    from --from: points, allowance, revenue and points liability, per member and in total, over
    the recorded events (or a sample stream). Writes nothing to the ledgers."""
    from .simulation import simulate

    if bool(files) == bool(pack):
        raise KeepwellError("give draft FILES or --pack NAME (not both)")
    if pack:
        from . import packs

        overrides = dict(item.partition("=")[::2] for item in settings)
        drafts = [doc for _f, doc in packs.documents(packs.find(pack), overrides)]
    else:
        drafts = [load_file(f) for f in files]
    stream = None
    if events_file:
        with open(events_file, encoding="utf-8") as f:
            stream = [json.loads(line) for line in f if line.strip()]
    report = simulate(obj.app, obj.company, drafts, start, end, stream)

    def human(r):
        click.echo(f"{r['draft']} over {r['from']} .. {r['to']}: {r['events']} {r['source']} events, {r['members_changed']} member(s) change")
        for m in r["members"]:
            click.echo(f"  {m['name']:<24} points {m['points']['change']:+d}  allowance {m['allowance']['change']}  "
                       f"revenue {m['revenue']['change']}  liability {m['points_liability']['change']}")
        t = r["total"]
        click.echo(f"  total: points {t['points']:+d}, allowance {t['allowance']}, revenue {t['revenue']}, liability {t['points_liability']}")

    emit(report, as_json, human)


@rulesets.command("rollback")
@click.argument("ruleset_id")
@click.option("--to", "to_version", type=int, required=True, help="The version whose content is published again.")
@click.option("--effective-from", callback=_date, default=None)
@click.option("--author", default=None)
@click.pass_obj
@handled
def rulesets_rollback(obj, ruleset_id, to_version, effective_from, author):
    """Publish an older version's content as a new version."""
    import getpass

    from . import versions

    p = obj.app.run(obj.company, lambda c: versions.rollback(
        c.session, c.company.id, ruleset_id, to_version, author or getpass.getuser(), effective_from or date.today()))
    click.echo(p.ref)


@rulesets.command("draft")
@click.argument("file")
@click.option("--author", default=None)
@click.pass_obj
@handled
def rulesets_draft(obj, file, author):
    """Save a draft (it may still have errors, which are listed)."""
    import getpass

    from . import versions

    doc = load_file(file)
    problems = obj.app.run(obj.company, lambda c: versions.save_draft(c.session, c.company.id, doc, author or getpass.getuser()))
    for p in problems:
        click.echo(str(p))
    click.echo(f"draft saved: {doc['metadata']['id']} ({len(problems)} problem(s))", err=True)


@rulesets.command("publish-draft")
@click.argument("ruleset_id")
@click.option("--effective-from", callback=_date, default=None)
@click.option("--author", default=None)
@click.pass_obj
@handled
def rulesets_publish_draft(obj, ruleset_id, effective_from, author):
    import getpass

    from . import versions

    p = obj.app.run(obj.company, lambda c: versions.publish_draft(
        c.session, c.company.id, ruleset_id, author or getpass.getuser(), effective_from or date(1970, 1, 1)))
    click.echo(p.ref)


# --- customers and memberships --------------------------------------------------------------

@main.group()
def customers():
    """Customers of the company."""


@customers.command("add")
@click.option("--name", required=True)
@click.option("--email", default=None)
@click.option("--phone", default=None, help="For SMS, e.g. +15551234567.")
@click.pass_obj
@handled
def customers_add(obj, name, email, phone):
    """Add a customer; prints its id."""
    cid = obj.app.add_customer(name, email, company=obj.company)
    if phone:
        from .tenancy import update_customer

        obj.app.run(obj.company, lambda c: update_customer(c.session, c.company, cid, phone=phone))
    click.echo(cid)


@customers.command("set")
@click.argument("customer")
@click.option("--name", default=None)
@click.option("--email", default=None)
@click.option("--phone", default=None, help="For SMS, e.g. +15551234567.")
@click.option("--opt-out", "opt_out", multiple=True, type=click.Choice(["email", "sms", "webhook"]), help="Stop messages on a channel.")
@click.option("--opt-in", "opt_in", multiple=True, type=click.Choice(["email", "sms", "webhook"]), help="Allow a channel again.")
@click.pass_obj
@handled
def customers_set(obj, customer, name, email, phone, opt_out, opt_in):
    """Change a customer's contact details and channel preferences."""
    from .tenancy import set_preference, update_customer

    def work(c):
        update_customer(c.session, c.company, customer, name=name, email=email, phone=phone)
        for ch in opt_out:
            set_preference(c.session, c.company, customer, ch, True)
        for ch in opt_in:
            set_preference(c.session, c.company, customer, ch, False)

    obj.app.run(obj.company, work)
    click.echo(customer)


@customers.command("list")
@json_option
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0)
@click.pass_obj
@handled
def customers_list(obj, as_json, limit, offset):
    import sqlalchemy as sa

    from .models import Customer

    rows = obj.app.run(obj.company, lambda c: [
        {"id": x.id, "name": x.name, "email": x.email}
        for x in c.session.scalars(sa.select(Customer).where(Customer.company_id == c.company.id)
                                   .order_by(Customer.created_at, Customer.id).limit(limit).offset(offset))])
    emit(rows, as_json, lambda rows: [click.echo(f"{r['id']}  {r['name']}  {r['email'] or ''}") for r in rows])


@main.command()
@click.argument("customer")
@click.argument("plan")
@click.option("--tier", default=None, help="Tier id (default: the plan's first tier).")
@click.option("--on", "on", callback=_date, required=True, help="Issue date (YYYY-MM-DD, company time).")
@click.option("--key", default=None, help="Idempotency key (default: enroll:CUSTOMER:PLAN:DATE).")
@click.pass_obj
@handled
def enroll(obj, customer, plan, tier, on, key):
    """Enroll CUSTOMER on PLAN (id or id@version); prints the membership id."""

    result = obj.app.enroll(customer, plan, on, tier=tier, key=key, company=obj.company)
    if result.get("warning") or result.get("type") != "enrolled":
        # The key names an earlier, different event: its membership (if any) is not this one's.
        raise KeepwellError(f"key {result['event']!r} was already used for a different event; nothing enrolled (pass another --key)")
    if result["status"] == "declined":
        raise KeepwellError(result.get("message", "enrolment declined"))
    click.echo(result["membership"])


@main.group()
def membership():
    """Memberships."""


@membership.command("show")
@click.argument("membership_id")
@json_option
@click.pass_obj
@handled
def membership_show(obj, membership_id, as_json):
    """Status, plan version, tier, expiry, allowance and included services of a membership."""
    emit(obj.app.membership(membership_id, company=obj.company), as_json, _print_membership)


@membership.command("migrate")
@click.argument("plan")
@click.option("--to", "target", required=True, help="The plan version to move to, e.g. 3 or vip-customer@3.")
@click.option("--apply", is_flag=True, help="Do it. Without --apply only the preview is shown.")
@json_option
@click.pass_obj
@handled
def membership_migrate(obj, plan, target, apply, as_json):
    """Move PLAN's active memberships to another version of it. Memberships stay pinned to the
    version they enrolled on until this is applied; the preview shows what each would change."""
    target = target if "@" in target else f"{plan}@{target}"
    rows = obj.app.migrate(plan, target, apply=apply, company=obj.company)

    def human(rows):
        if not rows:
            click.echo(f"no active membership of {plan} to move to {target}")
        for r in rows:
            changes = ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in r["changes"].items()) or "no change in terms"
            state = "" if not apply else ("  [moved]" if r.get("applied") else "  [NOT moved]")
            click.echo(f"{r['membership']} ({r['tier']}) {r['from']} -> {r['to']}: {r['problem'] or changes}{state}")

    emit(rows, as_json, human)
    if apply and any(not r.get("applied") for r in rows):
        sys.exit(1)


def _print_membership(m: dict) -> None:
    click.echo(f"{m['id']}  {m['customer']['name']}  [{m['status']}]")
    click.echo(f"  plan      {m['plan']} ({m['plan_name']}), tier {m['tier_name']}")
    click.echo(f"  period    {m['period']['start']} .. {m['period']['end']} ({m['period']['kind']} #{m['period']['index']})")
    click.echo(f"  expires   {m['expires_on']}{'  (renews automatically)' if m['auto_renewal'] and m['status'] == 'active' else ''}")
    a = m.get("allowance")
    if a:
        click.echo(f"  allowance {a['balance']} of {a['amount']}; overdraft used {a['overdraft_used']} of {a['overdraft_limit']}")
    for s in m["services"]:
        click.echo(f"  service   {s['code']:<14} used {s['used']} of {s['quantity']}, {s['left']} left")


@main.group()
def points():
    """Rewards points."""


@points.command("show")
@click.argument("customer")
@json_option
@click.pass_obj
@handled
def points_show(obj, customer, as_json):
    """Points balance and lots (with their expiry) of a customer."""

    def human(d):
        click.echo(f"{d['customer']['name']}: {d['balance']} points")
        for lot in d["lots"]:
            click.echo(f"  lot {lot['lot']}: {lot['remaining']}/{lot['points']} earned {lot['earned_on']}, expires {lot['expires_on'] or 'never'}")

    emit(obj.app.points(customer, company=obj.company), as_json, human)


@main.command()
@click.argument("membership_id")
@click.option("--from", "start", callback=_date, required=True)
@click.option("--to", "end", callback=_date, required=True)
@json_option
@click.pass_obj
@handled
def statement(obj, membership_id, start, end, as_json):
    """Every entry of a membership's accounts between two dates, with why it happened."""

    def human(d):
        m = d["membership"]
        click.echo(f"Statement {m['id']} ({m['customer']['name']}, {m['plan']}) {d['from']} .. {d['to']}")
        for sec in d["accounts"]:
            click.echo(f"\n  {sec['account']}: opening {sec['opening']}")
            for e in sec["entries"]:
                click.echo(f"    {e['date']}  {e['kind']:<19} {e['amount']:>10}  = {e['balance']:>10}   {e['rule']} ({e['ruleset']}; event {e['event']})")
            click.echo(f"  {sec['account']}: closing {sec['closing']}")

    emit(obj.app.statement(membership_id, start, end, company=obj.company), as_json, human)


# --- events and due work ---------------------------------------------------------------------

@main.group()
def events():
    """Events: purchases, services, referrals..."""


@events.command("post")
@click.argument("source", default="-")
@click.pass_obj
@handled
def events_post(obj, source):
    """Post events from a file of JSON lines (or - for stdin); prints one JSON result per line.
    Exit status 1 when any event was rejected as malformed (it changes nothing)."""
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")
    except OSError as exc:
        raise KeepwellError(f"cannot read {source}: {exc.strerror or exc}") from None
    rejected = 0
    with stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                payload = json.loads(line)
            except json.JSONDecodeError as exc:
                rejected += 1
                click.echo(json.dumps({"line": lineno, "status": "rejected", "errors": [{"path": "(line)", "message": f"not JSON: {exc.msg}"}]}))
                continue
            try:
                result = obj.app.post_event(payload, company=obj.company)
            except InvalidDocument as exc:
                rejected += 1
                result = {"line": lineno, "event": payload.get("id") if isinstance(payload, dict) else None,
                          "status": "rejected", **exc.to_dict()}
            except KeepwellError as exc:
                rejected += 1
                result = {"line": lineno, "event": payload.get("id") if isinstance(payload, dict) else None,
                          "status": "rejected", **exc.to_dict()}
            click.echo(json.dumps(result))
    sys.exit(1 if rejected else 0)


@main.command("run-due")
@click.option("--as-of", callback=_date, required=True, help="Run everything due up to this date.")
@click.option("--wait", is_flag=True, help="With KEEPWELL_REDIS_URL: wait for the jobs to finish.")
@json_option
@click.pass_obj
@handled
def run_due(obj, as_of, wait, as_json):
    """Period ends and resets, renewals, expiries, points expiry and reminders due by a date.
    Running it twice for the same date does nothing the second time. With KEEPWELL_REDIS_URL set
    the work is enqueued as RQ jobs (one per unit, deterministic ids) and this returns at once."""
    if obj.settings.redis_url:
        from workers import jobs, worker

        summary = {"as_of": as_of.isoformat(), "enqueued": 0, "already_queued": 0, "jobs": {}}
        while True:
            added: list[str] = []
            ids = jobs.enqueue_due(obj.settings.redis_url, as_of, [obj.company], added)
            summary["enqueued"] += len(added)
            summary["already_queued"] += len(ids) - len(added)
            if not wait or not ids:
                break
            statuses = worker.wait(obj.settings.redis_url, ids)
            summary["jobs"].update(statuses)
            if any(s != "finished" for s in statuses.values()):
                break  # failed work stays due: do not spin on it
        summary["failed"] = sorted(j for j, s in summary["jobs"].items() if s != "finished")
        emit(summary, as_json, lambda s: click.echo(
            f"as of {s['as_of']}: {s['enqueued']} job(s) enqueued, {s['already_queued']} already queued"
            + (f", {len(s['failed'])} failed" if wait else "")))
        if summary["failed"]:
            sys.exit(1)
        return
    summary = obj.app.run_due(as_of, company=obj.company)
    emit(summary, as_json, lambda s: click.echo(
        f"as of {s['as_of']}: {s['periods_closed']} period(s) closed, {s['points_expired']} point(s) expired, "
        f"{s['reminders_queued']} reminder(s) queued"))


@main.command()
@json_option
@click.pass_obj
@handled
def audit(obj, as_json):
    """Recompute every balance from its ledger; exit 1 on any drift."""
    report = obj.app.audit(company=obj.company)
    emit(report, as_json, lambda r: click.echo(
        f"{r['accounts_checked']} accounts, {r['lots_checked']} lots checked: " + ("no drift" if r["ok"] else f"{len(r['drift'])} problem(s)")))
    if not report["ok"]:
        if not as_json:
            for d in report["drift"]:
                click.echo(json.dumps(d), err=True)
        sys.exit(1)


# --- serving -----------------------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load the demo company (HVAC pack, members) and print its admin login and API key.")
@click.pass_obj
@handled
def serve(obj, host, port, demo):
    """Serve the admin UI (/admin) and the REST API (/api/v1) on the embedded default: SQLite file
    and in-process jobs unless KEEPWELL_DATABASE_URL / KEEPWELL_REDIS_URL say otherwise. For more
    than one process, run gunicorn (see README, scaling out)."""
    from . import demo as demo_data
    from .app import create_app

    obj.app.init(obj.company, obj.company.title())
    if demo:
        loaded = demo_data.load(obj.app)
        key = obj.app.create_api_key("demo", company=demo_data.DEMO)
        email, password = demo_data.login(obj.app)
        click.echo(f"demo company {'loaded' if loaded['created'] else 'already there'}: {demo_data.DEMO}")
        click.echo(f"admin: http://{host}:{port}/admin/  sign in as {email} / {password}")
        click.echo(f"API key for the demo company: {key}")
        click.echo(f"try: curl -H 'Authorization: Bearer {key}' http://{host}:{port}/api/v1/rulesets")
    app = create_app(service=obj.app)
    click.echo(f"Keepwell on http://{host}:{port}/  (Ctrl-C to stop)")
    app.run(host=host, port=port, debug=False, use_reloader=False)


# --- users of the admin UI ------------------------------------------------------------------------

@main.group()
def users():
    """People who sign in to the admin UI."""


@users.command("add")
@click.option("--company", "company_slug", default=None, help="Company slug (default: the --company of keepwell).")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["owner", "manager", "staff"]), required=True,
              help="owner and manager edit rulesets and memberships; staff only read rulesets and ledgers.")
@click.option("--password", envvar="KEEPWELL_PASSWORD", default=None,
              help="Password (default: KEEPWELL_PASSWORD, else asked for). Avoid this flag on shared machines.")
@click.pass_obj
@handled
def users_add(obj, company_slug, email, role, password):
    """Create a user who signs in at /admin."""
    from .users import add_user

    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = obj.app.run(company_slug or obj.company, lambda c: add_user(c.session, c.company, email, password, role))
    click.echo(f"{user.email} ({role}) can sign in to company {company_slug or obj.company}")


@users.command("list")
@click.option("--company", "company_slug", default=None, help="Company slug (default: the --company of keepwell).")
@json_option
@click.pass_obj
@handled
def users_list(obj, company_slug, as_json):
    from .users import list_users

    rows = obj.app.run(company_slug or obj.company, lambda c: list_users(c.session, c.company))
    emit(rows, as_json, lambda rs: [click.echo(f"{r['email']:40} {r['role']:8}{' disabled' if r['disabled'] else ''}") for r in rs])


@main.group()
def apikeys():
    """API keys for the REST API."""


@apikeys.command("create")
@click.option("--name", default="default", show_default=True)
@click.pass_obj
@handled
def apikeys_create(obj, name):
    """Create an API key for the company; prints the secret once."""
    click.echo(obj.app.create_api_key(name, company=obj.company))


@main.command("demo")
@click.pass_obj
@handled
def demo_cmd(obj):
    """Load the demo company into the database (idempotent)."""
    from . import demo as demo_data

    obj.app.init(obj.company, obj.company.title())
    result = demo_data.load(obj.app)
    click.echo(json.dumps(result, indent=2))


@main.group("packs")
def packs_group():
    """Industry template packs."""


@packs_group.command("list")
@json_option
@handled
def packs_list(as_json):
    """The template packs shipped with Keepwell."""
    from . import packs

    rows = [p.to_dict() for p in packs.available()]
    emit(rows, as_json, lambda rows: [click.echo(
        f"{r['name']:<14} {r['version']:<8} {len(r['rulesets'])} rulesets, {len(r['samples'])} samples  {r['description']}") for r in rows])


@packs_group.command("show")
@click.argument("pack")
@json_option
@handled
def packs_show(pack, as_json):
    """A pack's manifest: version, description, parameters with defaults and help."""
    from . import packs

    d = packs.find(pack).to_dict()

    def human(d):
        click.echo(f"{d['name']} {d['version']}: {d['description']}")
        click.echo(f"  rulesets: {', '.join(d['rulesets'])}")
        click.echo(f"  samples:  {', '.join(d['samples'])}")
        for p in d["parameters"]:
            click.echo(f"  --set {p['name']}=<{p['type']}>  (default {p['default']})  {p['help']}")

    emit(d, as_json, human)


@packs_group.command("test")
@click.argument("pack")
@click.pass_obj
@handled
def packs_test(obj, pack):
    """Run a pack's sample scenarios through the real engine in fresh test companies."""
    from . import packs

    obj.app.init(obj.company, obj.company.title())
    outcomes = packs.test(obj.app, packs.find(pack))
    failed = 0
    for o in outcomes:
        click.echo(f"{'ok  ' if o.ok else 'FAIL'} {o.scenario} ({o.steps} steps)")
        for f in o.failures:
            click.echo(f"     {f}")
        failed += not o.ok
    sys.exit(1 if failed or not outcomes else 0)


@packs_group.command("build")
@click.argument("pack")
@click.option("--out", "out_dir", default="dist", show_default=True, help="Folder for the archive.")
@handled
def packs_build(pack, out_dir):
    """Validate a pack and write it as one archive (<name>-<version>.tar.gz); prints its path."""
    from pathlib import Path

    from . import packs

    click.echo(packs.build(packs.find(pack), Path(out_dir)))


@packs_group.command("install")
@click.argument("pack")
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE", help="A parameter value (see `packs show`).")
@click.option("--dry-run", is_flag=True, help="Show what would be published (new, unchanged, or the diff) and publish nothing.")
@json_option
@click.pass_obj
@handled
def packs_install(obj, pack, settings, dry_run, as_json):
    """Publish a pack's rulesets into the company, with its parameters filled in. Existing
    memberships stay pinned to the plan version they enrolled on."""
    from . import packs

    overrides = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep:
            raise KeepwellError(f"--set {item!r}: use PARAM=VALUE")
        overrides[name.strip()] = value.strip()
    found = packs.find(pack)
    if dry_run:
        rows = packs.preview(obj.app, found, obj.company, overrides)
        emit(rows, as_json, lambda rows: [click.echo(f"{r['id']}: {r['change']}\n{r['diff']}".rstrip()) for r in rows])
        return
    refs = packs.install(obj.app, found, obj.company, overrides=overrides)
    emit(refs, as_json, lambda refs: [click.echo(r) for r in refs])


# --- workers, jobs and the outbox ----------------------------------------------------------------

def _redis_url(obj) -> str:
    if not obj.settings.redis_url:
        raise KeepwellError("KEEPWELL_REDIS_URL is not set: jobs run in-process (use `keepwell outbox deliver`)")
    return obj.settings.redis_url


@main.command()
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.option("--name", default=None, help="Worker name (default: RQ's).")
@click.pass_obj
@handled
def worker(obj, burst, name):
    """Run an RQ worker (with its scheduler) on KEEPWELL_REDIS_URL. Run as many as you like."""
    from workers import worker as w

    w.work(_redis_url(obj), burst=burst, name=name)


@main.group()
def jobs():
    """Background jobs on Redis: status, failures, retries."""


@jobs.command("status")
@json_option
@click.pass_obj
@handled
def jobs_status(obj, as_json):
    """Counts of queued, started, finished, failed, scheduled and dead-lettered jobs."""
    from workers import worker as w

    from . import outbox

    dead = obj.app.run(obj.company, lambda c: outbox.counts(c.session).get("dead", 0))
    data = w.status(_redis_url(obj), dead)
    emit(data, as_json, lambda d: click.echo(
        "  ".join(f"{k} {d[k]}" for k in ("queued", "started", "finished", "failed", "scheduled", "dead_lettered", "workers"))))


@jobs.command("failed")
@json_option
@click.pass_obj
@handled
def jobs_failed(obj, as_json):
    """Failed jobs with the reason."""
    from workers import worker as w

    rows = w.failed(_redis_url(obj))
    emit(rows, as_json, lambda rows: [click.echo(f"{r['id']}  {r['function']}  {r['error']}") for r in rows])


@jobs.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Requeue every failed job.")
@click.pass_obj
@handled
def jobs_retry(obj, job_ids, all_):
    """Requeue failed jobs."""
    from workers import worker as w

    if not job_ids and not all_:
        raise KeepwellError("name job ids, or pass --all")
    for jid in w.retry(_redis_url(obj), None if all_ else list(job_ids)):
        click.echo(jid)


@main.group()
def outbox():
    """Messages leaving the system: email, SMS, webhooks."""


@main.group()
def templates():
    """The company's own wording of notification templates (overrides the shipped and ruleset ones)."""


@templates.command("set")
@click.argument("name")
@click.option("--channel", type=click.Choice(["email", "sms", "webhook"]), default="email", show_default=True)
@click.option("--subject", default=None, help="Email subject (Jinja2).")
@click.option("--body-file", type=click.Path(exists=True, dir_okay=False), required=True, help="File with the body (Jinja2).")
@click.pass_obj
@handled
def templates_set(obj, name, channel, subject, body_file):
    """Set the company's own wording for template NAME on a channel; checked by rendering it."""
    from pathlib import Path

    from .notify import set_override

    body = Path(body_file).read_text(encoding="utf-8")
    obj.app.run(obj.company, lambda c: set_override(c, name, channel, subject, body))
    click.echo(f"{name} ({channel})")


@templates.command("list")
@json_option
@click.pass_obj
@handled
def templates_list(obj, as_json):
    """Shipped templates and the company's overrides."""
    import sqlalchemy as sa

    from .models import MessageTemplate
    from .notify import shipped

    def work(c):
        own = {(t.name, t.channel): t for t in c.session.scalars(
            sa.select(MessageTemplate).where(MessageTemplate.company_id == c.company.id))}
        rows = [{"name": n, "channel": ch, "source": "company" if (n, ch) in own else "shipped"}
                for n, t in sorted(shipped().items()) for ch in ("email", "sms") if ch in t or (n, ch) in own]
        rows += [{"name": n, "channel": ch, "source": "company"} for (n, ch) in sorted(own)
                 if not any(r["name"] == n and r["channel"] == ch for r in rows)]
        return rows

    emit(obj.app.run(obj.company, work), as_json,
         lambda rows: [click.echo(f"{r['name']:<28} {r['channel']:<8} {r['source']}") for r in rows])


@templates.command("remove")
@click.argument("name")
@click.option("--channel", type=click.Choice(["email", "sms", "webhook"]), default="email", show_default=True)
@click.pass_obj
@handled
def templates_remove(obj, name, channel):
    """Go back to the shipped (or ruleset) wording."""
    import sqlalchemy as sa

    from .models import MessageTemplate

    obj.app.run(obj.company, lambda c: c.session.execute(sa.delete(MessageTemplate).where(
        MessageTemplate.company_id == c.company.id, MessageTemplate.name == name, MessageTemplate.channel == channel)))
    click.echo(f"{name} ({channel}) removed")


@outbox.command("list")
@click.option("--status", default=None, help="pending, retry, sending, sent, skipped or dead.")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_obj
@handled
def outbox_list(obj, status, limit, as_json):
    import sqlalchemy as sa

    from .models import OutboxAttempt, OutboxMessage

    def work(c):
        q = sa.select(OutboxMessage).where(OutboxMessage.company_id == c.company.id)
        if status:
            q = q.where(OutboxMessage.status == status)
        rows = []
        for m in c.session.scalars(q.order_by(OutboxMessage.id.desc()).limit(limit)):
            attempts = c.session.scalars(sa.select(OutboxAttempt).where(OutboxAttempt.message_id == m.id).order_by(OutboxAttempt.id))
            rows.append({"id": m.id, "key": m.key, "channel": m.channel, "template": m.template, "status": m.status,
                         "attempts": m.attempts, "customer": m.customer_id, "last_error": m.last_error,
                         "due_at": m.due_at.isoformat() if m.due_at else None,
                         "history": [{"at": a.at.isoformat(), "status": a.status, "detail": a.detail} for a in attempts]})
        return rows

    rows = obj.app.run(obj.company, work)
    emit(rows, as_json, lambda rows: [click.echo(
        f"{r['id']:>6} {r['status']:<8} {r['channel']:<7} {r['template'] or '':<28} tries {r['attempts']}  {r['last_error'] or ''}") for r in rows])


@outbox.command("replay")
@click.argument("message_ids", nargs=-1, type=int, required=True)
@click.pass_obj
@handled
def outbox_replay(obj, message_ids):
    """Put dead-lettered (or skipped) messages back in line."""
    from . import outbox as ob

    for mid in message_ids:
        obj.app.run(obj.company, lambda c: ob.replay(c.session, c.company.id, mid))
        click.echo(f"{mid} pending")


@outbox.command("deliver")
@json_option
@click.pass_obj
@handled
def outbox_deliver(obj, as_json):
    """Deliver every message due now, in this process (the embedded mode's worker)."""
    from . import db
    from . import outbox as ob
    from .channels import ChannelSettings, channels_from

    import os

    chans = channels_from(ChannelSettings.from_env(), os.environ.get("KEEPWELL_WEBHOOK_SECRET", ""))
    with db.transaction(obj.app.sessions) as session:
        ids = ob.due(session)
    results = [ob.deliver(obj.app, mid, chans).__dict__ for mid in ids]
    emit(results, as_json, lambda rows: [click.echo(f"{r['message_id']:>6} {r['status']} {r['detail']}") for r in rows])
