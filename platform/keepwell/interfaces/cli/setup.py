"""Setting up: the database, companies, admin users, API keys, serving, the demo company."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ...kernel.errors import InvalidDocument
from ...usecases import apikeys, companies, demo, users
from .common import Obj, emit, handled, json_option


@click.command()
@click.option("--name", default=None, help="Company name, when the company is created.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the company (America/Denver).")
@click.pass_obj
@handled
def init(obj: Obj, name: str | None, timezone: str) -> None:
    """Create or upgrade the database and the company. Safe to run again."""
    created = companies.init(obj.app, obj.company, name or obj.company.title(), timezone)
    click.echo(f"database ready; company {obj.company} {'created' if created else 'exists'}")


@click.group("companies")
def companies_group() -> None:
    """Companies (tenants)."""


@companies_group.command("add")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--timezone", default="UTC", show_default=True)
@click.pass_obj
@handled
def companies_add(obj: Obj, slug: str, name: str, timezone: str) -> None:
    click.echo(companies.add_company(obj.app, slug, name, timezone))


@companies_group.command("set")
@click.option("--name", default=None)
@click.option("--timezone", default=None)
@click.option("--email", default=None, help="Where company-audience emails go.")
@click.option("--webhook-url", default=None, help="Where webhook notifications are POSTed.")
@click.option("--webhook-secret", is_flag=False, flag_value="?", default=None,
              help="HMAC secret for X-Keepwell-Signature: give the option alone to be asked for it, or `-` to read "
              "it from standard input (never on the command line, where shell history and the process list keep it).")
@click.option("--quiet-hours", default=None, help="HH:MM-HH:MM in company time; email and SMS wait until they end.")
@click.option("--phone-region", default=None, help="Country of phone numbers written without +country code (US).")
@click.option("--future-hours", type=int, default=None, help="How far ahead of now an event may be dated (24).")
@click.option("--backdate-days", type=int, default=None, help="How far back an event may be dated (3650).")
@click.option("--max-periods-per-event", type=int, default=None,
              help="How many ended periods one event may close (120); more is left to due work.")
@click.option("--adjustment-limit", default=None, help="Largest manual allowance adjustment, e.g. 1000.00.")
@click.option("--adjustment-limit-points", type=int, default=None, help="Largest manual points adjustment (100000).")
@click.option("--brand-color", default=None, help="The member portal's colour, e.g. #0b5cad (dark enough for white "
              "text); \"\" for Keepwell's own.")
@click.option("--logo", type=click.File("rb"), default=None, help="The member portal's logo: a PNG or JPEG of at most "
              "200 KB (an empty file removes it).")
@click.option("--receipt-balance/--no-receipt-balance", "receipt_shows_balance", default=None,
              help="Whether POS receipts print the member's allowance left and overdraft (they do by default).")
@click.pass_obj
@handled
def companies_set(obj: Obj, **fields: Any) -> None:
    """Change the company's settings (contact, time zone, quiet hours)."""
    fields["webhook_secret"] = _webhook_secret(fields.get("webhook_secret"))
    if fields.get("logo") is not None:
        fields["logo"] = fields["logo"].read(300_000)
    companies.update(obj.app, obj.company, **fields)
    click.echo(obj.company)


@companies_group.command("show")
@json_option
@click.pass_obj
@handled
def companies_show(obj: Obj, as_json: bool) -> None:
    """The company's settings and limits (a webhook secret only as set or not: it is never shown)."""
    emit(companies.details(obj.app, obj.company), as_json,
         lambda d: [click.echo(f"{k.replace('_', ' '):24} {'' if v is None else v}") for k, v in d.items()])


@companies_group.command("rotate-webhook-secret")
@click.option("--keep-old-hours", type=float, default=24, show_default=True,
              help="How long the old secret still signs, beside the new one, while receivers switch.")
@click.pass_obj
@handled
def companies_rotate_webhook_secret(obj: Obj, keep_old_hours: float) -> None:
    """A new Standard Webhooks secret (whsec_...), printed once; webhooks carry a signature by
    each secret in force (the old one for --keep-old-hours)."""
    secret = companies.rotate_webhook_secret(obj.app, obj.company, keep_old_hours)
    click.echo(f"new webhook secret (shown once, give it to your receiver): {secret}")
    if keep_old_hours:
        click.echo(f"the previous secret, if any, also signs for {keep_old_hours:g} more hours")


def _webhook_secret(given: str | None) -> str | None:
    if given is None:
        return None
    if given == "?":
        return str(click.prompt("Webhook secret", hide_input=True, confirmation_prompt=True))
    if given == "-":
        return sys.stdin.readline().strip()
    raise InvalidDocument.field("--webhook-secret", "not on the command line: give --webhook-secret alone to be asked "
                                "for it, or --webhook-secret - to read it from standard input")


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface)."
)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo", "with_demo", is_flag=True,
              help="Load the demo company (HVAC pack, members) and print its admin login and API key.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Requests served at once.")
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader (never in production).")
@click.pass_obj
@handled
def serve(obj: Obj, host: str, port: int, with_demo: bool, threads: int, dev: bool) -> None:
    """Serve the admin UI (/admin) and the REST API (/api/v1) with a production WSGI server
    (waitress), on the embedded default: SQLite file and in-process jobs unless
    KEEPWELL_DATABASE_URL / KEEPWELL_REDIS_URL say otherwise. For more than one process, run
    gunicorn (see README, scaling out)."""
    from ..http.app import create_app

    companies.init(obj.app, obj.company, obj.company.title())
    if with_demo:
        loaded = demo.load(obj.app)
        key = apikeys.create(obj.app, demo.DEMO, "demo", apikeys.DEFAULT_SCOPES)
        email, password = demo.login(obj.app)
        click.echo(f"demo company {'loaded' if loaded['created'] else 'already there'}: {demo.DEMO}")
        click.echo(f"admin: http://{host}:{port}/admin/  sign in as {email} / {password}")
        click.echo(f"API key for the demo company: {key}")
        click.echo(f"try: curl -H 'Authorization: Bearer {key}' http://{host}:{port}/api/v1/rulesets")
    app = create_app(settings=obj.settings, service=obj.app)
    click.echo(f"Keepwell on http://{host}:{port}/  (Ctrl-C to stop)", nl=True)
    if dev:
        app.run(host=host, port=port, debug=False, use_reloader=True)
        return
    import waitress

    # ident="": no Server header naming the server and its version.
    waitress.serve(app, host=host, port=port, threads=threads, ident="", clear_untrusted_proxy_headers=True,
                   _quiet=True)


@click.command("demo")
@click.pass_obj
@handled
def demo_cmd(obj: Obj) -> None:
    """Load the demo company into the database (idempotent)."""
    companies.init(obj.app, obj.company, obj.company.title())
    click.echo(json.dumps(demo.load(obj.app), indent=2))


@click.group("users")
def users_group() -> None:
    """People who sign in to the admin UI."""


@users_group.command("add")
@click.option("--company", "company_slug", default=None, help="Company slug (default: the --company of keepwell).")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(list(users.ROLES)), required=True,
              help="owner and manager edit rulesets and memberships; staff only read rulesets and ledgers.")
@click.option("--password", default=None,
              help="Password (default: KEEPWELL_PASSWORD, else asked for). Avoid this flag on shared machines.")
@click.pass_obj
@handled
def users_add(obj: Obj, company_slug: str | None, email: str, role: str, password: str | None) -> None:
    """Create a user who signs in at /admin."""
    password = password or obj.settings.password
    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    company = company_slug or obj.company
    stored = users.add_user(obj.app, company, email, password, role)
    click.echo(f"{stored} ({role}) can sign in to company {company}")


@users_group.command("list")
@click.option("--company", "company_slug", default=None, help="Company slug (default: the --company of keepwell).")
@json_option
@click.pass_obj
@handled
def users_list(obj: Obj, company_slug: str | None, as_json: bool) -> None:
    rows = users.list_users(obj.app, company_slug or obj.company)
    emit(rows, as_json, lambda rs: [click.echo(f"{r['email']:40} {r['role']:8} {r['status']}") for r in rs])


def _new_password(obj: Obj, generate: bool) -> tuple[str, bool]:
    """The password to set: generated (and shown once), KEEPWELL_PASSWORD, or asked for."""
    if generate:
        return users.generated_password(), True
    if obj.settings.password:
        return obj.settings.password, False
    return click.prompt("New password", hide_input=True, confirmation_prompt=True), False


@users_group.command("reset-password")
@click.argument("email")
@click.option("--generate", is_flag=True, help="Make a strong password and print it once.")
@click.pass_obj
@handled
def users_reset_password(obj: Obj, email: str, generate: bool) -> None:
    """Set a user's password (asked for, or KEEPWELL_PASSWORD); every session of theirs ends."""
    password, show = _new_password(obj, generate)
    users.set_password(obj.app, obj.company, email, password)
    click.echo(f"password of {email} changed; their sessions have ended")
    if show:
        click.echo(f"new password (shown once): {password}")


@users_group.command("disable")
@click.argument("email")
@click.pass_obj
@handled
def users_disable(obj: Obj, email: str) -> None:
    """Stop a user signing in; every session of theirs ends now."""
    users.disable(obj.app, obj.company, email)
    click.echo(f"{email} is disabled and signed out everywhere")


@users_group.command("enable")
@click.argument("email")
@click.pass_obj
@handled
def users_enable(obj: Obj, email: str) -> None:
    """Let a disabled user sign in again."""
    users.enable(obj.app, obj.company, email)
    click.echo(f"{email} can sign in again")


@users_group.command("invite")
@click.argument("email")
@click.option("--role", type=click.Choice(list(users.ROLES)), required=True,
              help="owner and manager edit rulesets and memberships; staff only read rulesets and ledgers.")
@click.pass_obj
@handled
def users_invite(obj: Obj, email: str, role: str) -> None:
    """Invite a user by email: they choose their password from the link (72 hours, once), at
    KEEPWELL_ADMIN_URL/link/..."""
    sent = users.invite(obj.app, obj.company, email, role, obj.settings.admin_url)
    click.echo(f"invitation to {sent['email']} ({role}) queued; the link works until {sent['expires_at'][:16]} UTC")


@users_group.command("send-link")
@click.argument("email")
@click.pass_obj
@handled
def users_send_link(obj: Obj, email: str) -> None:
    """Email a user a new link: the invitation again, or (once they have joined) a link to set a
    new password (2 hours, once). Any earlier link stops working."""
    sent = users.send_link(obj.app, obj.company, email, obj.settings.admin_url)
    click.echo(f"{'invitation' if sent['purpose'] == 'invite' else 'password link'} to {sent['email']} queued")


@users_group.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(list(users.ROLES)))
@click.pass_obj
@handled
def users_set_role(obj: Obj, email: str, role: str) -> None:
    """Give a user another role (in effect on their next page)."""
    users.change_role(obj.app, obj.company, email, role)
    click.echo(f"{email} is now {role}")


@click.group("apikeys")
def apikeys_group() -> None:
    """API keys for the REST API."""


SCOPES_HELP = ("What the key may do (repeat, or space/comma-separated): "
               + "; ".join(f"{k}: {v}" for k, v in apikeys.SCOPES.items()) + ".")


@apikeys_group.command("create")
@click.option("--name", default="default", show_default=True)
@click.option("--scope", "scopes", multiple=True, help=SCOPES_HELP + f" Default: {' '.join(apikeys.DEFAULT_SCOPES)}.")
@click.pass_obj
@handled
def apikeys_create(obj: Obj, name: str, scopes: tuple[str, ...]) -> None:
    """Create an API key for the company; prints the secret once."""
    wanted = [s for item in scopes for s in item.replace(",", " ").split()] or list(apikeys.DEFAULT_SCOPES)
    click.echo(apikeys.create(obj.app, obj.company, name, wanted))


@apikeys_group.command("list")
@json_option
@click.pass_obj
@handled
def apikeys_list(obj: Obj, as_json: bool) -> None:
    """The company's keys: id, name, scopes, the secret's first characters, whether revoked."""
    rows = apikeys.list_keys(obj.app, obj.company)
    emit(rows, as_json, lambda rs: [click.echo(
        f"{r['id']:>5}  {r['name'][:24]:24} {r['hint'] or '':12} {' '.join(r['scopes']):40} "
        f"{'revoked ' + r['revoked_at'][:10] if r['revoked_at'] else 'active'}") for r in rs])


@apikeys_group.command("revoke")
@click.argument("key_id", type=int)
@click.pass_obj
@handled
def apikeys_revoke(obj: Obj, key_id: int) -> None:
    """Revoke a key (by the id `apikeys list` shows); it stops working at once in this process
    and within KEEPWELL_API_KEY_CACHE_SECONDS in the others."""
    apikeys.revoke(obj.app, obj.company, key_id)
    click.echo(f"key {key_id} revoked")


COMMANDS = [init, companies_group, serve, demo_cmd, users_group, apikeys_group]
