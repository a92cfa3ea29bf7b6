"""Setting up: the database, companies, admin users, API keys, serving, the demo company."""

from __future__ import annotations

import json
from typing import Any

import click

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
@click.option("--webhook-secret", default=None, help="HMAC secret for X-Keepwell-Signature.")
@click.option("--quiet-hours", default=None, help="HH:MM-HH:MM in company time; email and SMS wait until they end.")
@click.pass_obj
@handled
def companies_set(obj: Obj, **fields: Any) -> None:
    """Change the company's settings (contact, time zone, quiet hours)."""
    companies.update(obj.app, obj.company, **fields)
    click.echo(obj.company)


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface)."
)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo", "with_demo", is_flag=True,
              help="Load the demo company (HVAC pack, members) and print its admin login and API key.")
@click.pass_obj
@handled
def serve(obj: Obj, host: str, port: int, with_demo: bool) -> None:
    """Serve the admin UI (/admin) and the REST API (/api/v1) on the embedded default: SQLite file
    and in-process jobs unless KEEPWELL_DATABASE_URL / KEEPWELL_REDIS_URL say otherwise. For more
    than one process, run gunicorn (see README, scaling out)."""
    from ..http.app import create_app

    companies.init(obj.app, obj.company, obj.company.title())
    if with_demo:
        loaded = demo.load(obj.app)
        key = apikeys.create(obj.app, demo.DEMO, "demo")
        email, password = demo.login(obj.app)
        click.echo(f"demo company {'loaded' if loaded['created'] else 'already there'}: {demo.DEMO}")
        click.echo(f"admin: http://{host}:{port}/admin/  sign in as {email} / {password}")
        click.echo(f"API key for the demo company: {key}")
        click.echo(f"try: curl -H 'Authorization: Bearer {key}' http://{host}:{port}/api/v1/rulesets")
    app = create_app(settings=obj.settings, service=obj.app)
    click.echo(f"Keepwell on http://{host}:{port}/  (Ctrl-C to stop)")
    app.run(host=host, port=port, debug=False, use_reloader=False)


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
    emit(rows, as_json, lambda rs: [click.echo(f"{r['email']:40} {r['role']:8}{' disabled' if r['disabled'] else ''}")
                                    for r in rs])


@click.group("apikeys")
def apikeys_group() -> None:
    """API keys for the REST API."""


@apikeys_group.command("create")
@click.option("--name", default="default", show_default=True)
@click.pass_obj
@handled
def apikeys_create(obj: Obj, name: str) -> None:
    """Create an API key for the company; prints the secret once."""
    click.echo(apikeys.create(obj.app, obj.company, name))


COMMANDS = [init, companies_group, serve, demo_cmd, users_group, apikeys_group]
