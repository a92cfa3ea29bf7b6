"""What a careful attacker and a careless client tried (issue 12), through the product's own
entry points — the admin over HTTP, the REST API, the CLI, `keepwell serve` — on both databases.
Each test failed before its fix."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path

import pytest
import sqlalchemy as sa

from keepwell.app import create_app
from keepwell.customers.users import add_user
from keepwell.infra.settings import Settings
from keepwell.kernel.errors import DeliveryError
from keepwell.messaging import templates
from keepwell.usecases import apikeys
from support import Cli, make_app
from test_workers import redis_server, redis_url  # noqa: F401  (fixtures: a Redis of the test session's own)

PASSWORD = "correct horse battery"
KEEPWELL = str(Path(sys.executable).parent / "keepwell")  # the console script, as a user runs it
PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "vip", "name": "VIP"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly", "overdraft": {"limit": "20.00"}}}}


def _settings(**env: str) -> Settings:
    return Settings.from_env({"KEEPWELL_SECRET_KEY": "test-secret-key", **env})


@pytest.fixture
def svc(db_url):
    app = make_app(db_url)
    app.publish(PLAN, "test", date(1970, 1, 1))
    for email, role in (("owner@heat.example", "owner"), ("manager@heat.example", "manager")):
        app.run("default", lambda c, e=email, r=role: add_user(c.session, c.company, e, PASSWORD, r))
    yield app
    app.close()


def web(svc, **env: str):
    return create_app({"TESTING": True}, service=svc, settings=_settings(**env))


def token(client, url: str = "/admin/login") -> str:
    html = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, email="owner@heat.example", password=PASSWORD):
    return client.post("/admin/login", data={"email": email, "password": password, "csrf_token": token(client)})


# --- sessions -------------------------------------------------------------------------------------

def test_the_session_cookie_is_httponly_samesite_and_lasts_12_hours(svc):
    r = sign_in(web(svc).test_client())
    cookie = r.headers["Set-Cookie"]
    assert r.status_code == 302 and "keepwell_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    expires = datetime.strptime(re.search(r"Expires=([^;]+)", cookie).group(1), "%a, %d %b %Y %H:%M:%S GMT")
    assert timedelta(hours=11, minutes=55) < expires.replace(tzinfo=UTC) - datetime.now(UTC) <= timedelta(hours=12)
    secure = sign_in(web(svc, KEEPWELL_HTTPS="1").test_client()).headers["Set-Cookie"]
    assert "Secure" in secure


def test_a_session_past_its_lifetime_has_ended(svc):
    client = web(svc).test_client()
    assert sign_in(client).status_code == 302
    cookie = client.get_cookie("keepwell_session").value
    assert client.get("/admin/").status_code == 200  # 12 hours: still on
    short = web(svc, KEEPWELL_SESSION_HOURS="0.0001").test_client()  # 0.36 s, the same signing key
    short.set_cookie("keepwell_session", cookie)
    deadline = time.monotonic() + 30
    while short.get("/admin/").status_code == 200:  # until the session has outlived 0.36 s
        assert time.monotonic() < deadline
        short.set_cookie("keepwell_session", cookie)
    assert short.get("/admin/").headers["Location"].startswith("/admin/login")


def test_signing_out_ends_the_session_a_copied_cookie_included(svc):
    app = web(svc)
    first, copy = app.test_client(), app.test_client()
    sign_in(first)
    cookie = first.get_cookie("keepwell_session").value
    copy.set_cookie("keepwell_session", cookie)
    assert copy.get("/admin/").status_code == 200
    r = first.post("/admin/logout", data={"csrf_token": token(first, "/admin/")})
    assert r.status_code == 302
    assert copy.get("/admin/").status_code == 302  # back to sign-in
    again = app.test_client()
    assert sign_in(again).status_code == 302 and again.get("/admin/").status_code == 200


def test_a_password_change_and_disabling_end_every_session(svc, db_url):
    app = web(svc)
    client = app.test_client()
    sign_in(client, "manager@heat.example")
    assert client.get("/admin/").status_code == 200
    cli = Cli(db_url)
    cli.env["KEEPWELL_PASSWORD"] = "another sturdy passphrase"
    assert "sessions have ended" in cli.out("users", "reset-password", "manager@heat.example")
    assert client.get("/admin/").status_code == 302
    assert sign_in(client, "manager@heat.example").status_code == 401
    assert sign_in(client, "manager@heat.example", "another sturdy passphrase").status_code == 302

    cli.out("users", "disable", "manager@heat.example")
    assert client.get("/admin/").status_code == 302
    assert sign_in(client, "manager@heat.example", "another sturdy passphrase").status_code == 401
    listed = cli.out("users", "list", "--json")
    assert '"disabled": true' in listed
    cli.out("users", "enable", "manager@heat.example")
    assert sign_in(client, "manager@heat.example", "another sturdy passphrase").status_code == 302
    generated = cli.out("users", "reset-password", "manager@heat.example", "--generate")
    new = re.search(r"shown once\): (\S+)", generated).group(1)
    assert sign_in(app.test_client(), "manager@heat.example", new).status_code == 302


def test_the_last_owner_cannot_be_disabled(svc, db_url):
    out = Cli(db_url)("users", "disable", "owner@heat.example", expect=1).output
    assert "last owner" in out


def test_wrong_passwords_are_throttled_per_account_then_per_address(svc):
    client = web(svc).test_client()
    for _ in range(5):
        assert sign_in(client, password="wrong password here").status_code == 401
    blocked = sign_in(client)  # the right password, but too late
    assert blocked.status_code == 429
    assert "Too many failed sign-ins for this account" in blocked.get_data(as_text=True)
    # another account from the same address still signs in; a success does not count
    assert sign_in(client, "manager@heat.example").status_code == 302
    for i in range(15):  # the address's 20 failures: 5 above, 15 here over other accounts
        assert sign_in(client, f"nobody{i}@heat.example", "wrong").status_code == 401
    r = sign_in(client, "manager@heat.example")
    assert r.status_code == 429 and "this address" in r.get_data(as_text=True)


def test_common_passwords_are_refused_with_advice(svc, db_url):
    cli = Cli(db_url)
    cli.env["KEEPWELL_PASSWORD"] = "password1234"
    out = cli("users", "add", "--email", "new@heat.example", "--role", "staff", expect=1).output
    assert "too easy to guess" in out and "common password" in out
    cli.env["KEEPWELL_PASSWORD"] = "Heating2024!"  # passable elsewhere, but built from the company's name
    assert "too easy to guess" in cli("users", "add", "--email", "new@heat.example", "--role", "staff",
                                      expect=1).output


def test_owners_manage_users_on_the_users_page_and_managers_cannot(svc):
    app = web(svc)
    manager = app.test_client()
    sign_in(manager, "manager@heat.example")
    assert manager.get("/admin/users/").status_code == 403
    owner = app.test_client()
    sign_in(owner)
    page = owner.get("/admin/users/").get_data(as_text=True)
    assert "manager@heat.example" in page and "Add a user" in page
    weak = owner.post("/admin/users/", data={"email": "tech@heat.example", "role": "staff", "password": "qwerty12345",
                                             "csrf_token": token(owner, "/admin/users/")})
    assert "too easy to guess" in weak.get_data(as_text=True)
    owner.post("/admin/users/", data={"email": "tech@heat.example", "role": "staff", "password": PASSWORD + " x",
                                      "csrf_token": token(owner, "/admin/users/")})
    tech = app.test_client()
    assert sign_in(tech, "tech@heat.example", PASSWORD + " x").status_code == 302
    owner.post("/admin/users/tech@heat.example/disable", data={"csrf_token": token(owner, "/admin/users/")})
    assert tech.get("/admin/").status_code == 302
    assert "disabled" in owner.get("/admin/users/").get_data(as_text=True)


# --- API keys -------------------------------------------------------------------------------------

def _api(svc, **env):
    return web(svc, **env).test_client()


def _h(key):
    return {"Authorization": f"Bearer {key}"}


def test_keys_carry_no_company_slug_and_can_be_listed_and_revoked(svc, db_url):
    cli = Cli(db_url)
    key = cli.out("apikeys", "create", "--name", "front desk", "--scope", "read")
    assert key.startswith("kw_") and "default" not in key
    client = _api(svc)
    assert client.get("/api/v1/rulesets", headers=_h(key)).status_code == 200
    rows = apikeys.list_keys(svc, "default")
    assert [(r["name"], r["scopes"], r["hint"]) for r in rows] == [("front desk", ["read"], key[:10])]
    assert key not in cli.out("apikeys", "list", "--json")
    apikeys.revoke(svc, "default", rows[0]["id"])  # the web app's own service: at once
    assert client.get("/api/v1/rulesets", headers=_h(key)).status_code == 401
    assert "revoked" in cli.out("apikeys", "list")
    assert "no API key 999" in cli("apikeys", "revoke", "999", expect=1).output


def test_a_request_outside_its_keys_scope_is_403_naming_the_scope(svc):
    client = _api(svc)
    reader = apikeys.create(svc, "default", "reports", ["read"])
    pos = apikeys.create(svc, "default", "pos")  # the default scopes: no adjustments
    r = client.post("/api/v1/customers", json={"name": "Ann"}, headers=_h(reader))
    assert r.status_code == 403 and r.json["error"]["needed_scope"] == "customers:write"
    cust = client.post("/api/v1/customers", json={"name": "Ann"}, headers=_h(pos)).json["id"]
    adjust = {"id": "adj-1", "type": "adjustment", "customer": cust, "occurred_at": datetime.now(UTC).isoformat(),
              "data": {"unit": "points", "amount": "999999999999", "reason": "goodwill"}}
    r = client.post("/api/v1/events", json=adjust, headers=_h(pos))
    assert r.status_code == 403 and r.json["error"]["needed_scope"] == "adjustments:write"
    r = client.post("/api/v1/events", json={"events": [adjust]}, headers=_h(pos))
    assert r.status_code == 403
    assert svc.points(cust)["balance"] == 0


def test_adjustments_are_bounded_by_the_company_limit(svc, db_url):
    client = _api(svc)
    key = apikeys.create(svc, "default", "office", ["adjustments:write", "customers:write"])
    cust = client.post("/api/v1/customers", json={"name": "Ann"}, headers=_h(key)).json["id"]
    now = datetime.now(UTC).isoformat()

    def adjust(i, amount):
        return client.post("/api/v1/events", headers=_h(key), json={
            "id": f"adj-{i}", "type": "adjustment", "customer": cust, "occurred_at": now,
            "data": {"unit": "points", "amount": amount, "reason": "goodwill"}}).json

    big = adjust(1, "999999999999")
    assert (big["status"], big["code"], big["reason"]) == (402, "declined", "adjustment_over_limit")
    assert adjust(2, "500")["status"] == "processed"
    Cli(db_url).out("companies", "set", "--adjustment-limit-points", "100")
    assert adjust(3, "500")["reason"] == "adjustment_over_limit"
    assert svc.points(cust)["balance"] == 500


# --- inputs ---------------------------------------------------------------------------------------

@pytest.fixture
def api(svc):
    client = _api(svc)
    key = apikeys.create(svc, "default", "pos")
    h = _h(key)
    cust = client.post("/api/v1/customers", json={"name": "Grace Hopper"}, headers=h).json["id"]
    today = date.today()
    mid = client.post("/api/v1/enrollments", json={"customer": cust, "plan": "vip", "on": today.isoformat()},
                      headers=h).json["membership"]
    return client, h, cust, mid


def _events(svc) -> int:
    with svc.engine.connect() as c:
        return c.scalar(sa.text("SELECT count(*) FROM events"))


@pytest.mark.parametrize("when", ["5000-01-01T10:00:00Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
                                  "1990-06-01T10:00:00Z"])
def test_an_event_dated_far_from_today_is_refused_and_writes_nothing(svc, api, when):
    client, h, cust, _mid = api
    before = _events(svc)
    r = client.post("/api/v1/events", headers=h, json={"id": "far", "type": "purchase", "customer": cust,
                                                        "occurred_at": when, "data": {"amount": "10.00"}})
    assert r.status_code == 422
    assert r.json["error"]["errors"][0]["path"] == "occurred_at"
    assert _events(svc) == before


def test_one_event_closes_at_most_the_companys_periods_and_due_work_catches_up(svc, db_url):
    cli = Cli(db_url)
    cli.out("companies", "set", "--max-periods-per-event", "12")
    cust = svc.add_customer("Old Member")
    on = date.today() - timedelta(days=2 * 365)
    svc.enroll(cust, "vip", on)
    client = _api(svc)
    h = _h(apikeys.create(svc, "default", "pos"))
    buy = {"id": "buy-now", "type": "purchase", "customer": cust, "occurred_at": datetime.now(UTC).isoformat(),
           "data": {"amount": "10.00", "pay_with": "membership"}}
    r = client.post("/api/v1/events", headers=h, json=buy)
    assert r.status_code == 422 and "more than 12 ended periods" in r.json["error"]["errors"][0]["message"]
    assert _events(svc) == 1  # the enrolment only
    svc.run_due(date.today())
    r = client.post("/api/v1/events", headers=h, json=buy)
    assert r.status_code == 201 and r.json["status"] == "approved"


@pytest.mark.parametrize("on", ["9999-12-31", "123", "1900-01-01"])
def test_enrolment_dates_are_bounded(api, on):
    client, h, cust, _ = api
    r = client.post("/api/v1/enrollments", json={"customer": cust, "plan": "vip", "on": on, "allow_second": True},
                    headers=h)
    assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == "on"


def test_malformed_bodies_and_queries_are_4xx_with_the_field(svc, api):
    client, h, cust, _ = api
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/api/v1/events", data=deep, content_type="application/json", headers=h)
    assert r.status_code == 422 and "levels deep" in r.json["error"]["errors"][0]["message"]
    r = client.post("/api/v1/customers", data='{"name": "a\\ud800b"}', content_type="application/json", headers=h)
    assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == "name"
    for body, field in (({"name": 5}, "name"), ({"name": ["x"]}, "name"), ({"name": "Ann", "email": 7}, "email"),
                        ({"name": "Ann", "email": "not-an-email"}, "email"), ({"name": "Ann", "phone": "12"}, "phone"),
                        ({"name": "x" * 10_000}, "name")):
        r = client.post("/api/v1/customers", json=body, headers=h)
        assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == field, body
    ev = {"id": "s1", "type": "purchase", "customer": cust, "occurred_at": datetime.now(UTC).isoformat(),
          "data": {"amount": "10.00", "memo": "a\ud800b"}}
    r = client.post("/api/v1/events", data=__import__("json").dumps(ev), content_type="application/json", headers=h)
    assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == "data.memo"
    for query in ("limit=²", "offset=99999999999999999999", "limit=-1"):
        r = client.get(f"/api/v1/customers?{query}", headers=h)
        assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == query.split("=")[0]
    assert _events(svc) == 1


def test_contacts_are_stored_normalised(api):
    client, h, _, _ = api
    r = client.post("/api/v1/customers", json={"name": "  Ann Lee ", "email": "Ann@Example.COM",
                                               "phone": "(303) 555-0100"}, headers=h)
    assert r.status_code == 201
    assert (r.json["name"], r.json["email"], r.json["phone"]) == ("Ann Lee", "Ann@example.com", "+13035550100")


def test_a_body_over_the_limit_is_413(svc):
    client = _api(svc, KEEPWELL_MAX_REQUEST_BYTES="10000")
    h = _h(apikeys.create(svc, "default", "pos"))
    r = client.post("/api/v1/customers", json={"name": "x" * 20_000}, headers=h)
    assert r.status_code == 413 and r.json["error"]["code"] == "too_large"


def test_simulations_in_a_request_are_bounded(api):
    client, h, cust, _ = api
    today = date.today()
    body = {"draft": PLAN, "from": today.isoformat(), "to": "5001-01-01"}
    r = client.post("/api/v1/simulations", json=body, headers=h)
    assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == "to"
    sample = [{"id": f"e{i}", "type": "purchase", "customer": cust, "occurred_at": f"{today}T10:00:00Z",
               "data": {"amount": "1.00"}} for i in range(501)]
    r = client.post("/api/v1/simulations", json={**body, "to": today.isoformat(), "events": sample}, headers=h)
    assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == "events"
    late = [{**sample[0], "occurred_at": "9999-01-01T10:00:00Z"}]
    r = client.post("/api/v1/simulations", json={**body, "to": today.isoformat(), "events": late}, headers=h)
    assert r.status_code == 422


def test_admin_enrolment_far_in_the_future_is_a_form_error(svc):
    client = web(svc).test_client()
    sign_in(client)
    cust = svc.add_customer("Ann")
    url = "/admin/memberships/enroll"
    r = client.post(url, data={"customer": cust, "plan": "vip|", "on": "9999-12-31", "csrf_token": token(client, url)})
    assert r.status_code == 200 and "9999-12-31 is in the future" in r.get_data(as_text=True)


def test_the_pack_page_loads_only_packs_of_the_packs_folder(svc):
    client = web(svc).test_client()
    sign_in(client)
    assert client.get("/admin/packs/hvac").status_code == 200
    for path in ("/admin/packs/..", "/admin/packs/%2e%2e", "/admin/packs/..%2Frulesets"):
        assert client.get(path).status_code == 404, path


# --- messages -------------------------------------------------------------------------------------

def test_a_template_that_loops_for_ever_is_stopped_within_its_budget():
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="ran longer than"):
        templates.render("{% for i in range(100000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", {})
    assert time.monotonic() - started < 30  # 10^8 iterations took 14 s before; the budget is 1 s
    with pytest.raises(DeliveryError, match="more than 100,000 characters"):
        templates.render("{% for i in range(100000) %}xx{% endfor %}", {})
    for costly in ('{{ "x" * 1000000000 }}', "{{ 2 ** 100000000 }}", '{{ "x"|center(1000000000) }}'):
        with pytest.raises(DeliveryError):
            templates.render(costly, {})
    assert templates.render("Hi {{ name }}: {% for i in range(3) %}{{ i }}{% endfor %}", {"name": "Ann"}) == "Hi Ann: 012"


def test_companies_take_turns_in_delivery(db_url):
    from keepwell.messaging import outbox
    from keepwell.messaging.models import OutboxMessage

    app = make_app(db_url)
    try:
        app.add_company("busy", "Busy Co")
        now = datetime.now(UTC)
        with app.sessions() as s, s.begin():
            ids = {c: s.scalar(sa.select(sa.text("id")).select_from(sa.text("companies")).where(
                sa.text("slug = :slug")).params(slug=c)) for c in ("default", "busy")}
            for i in range(30):
                s.add(OutboxMessage(company_id=ids["busy"], key=f"busy-{i}", kind="notification", channel="email",
                                    template="welcome", due_at=now - timedelta(hours=1, seconds=-i), payload={}))
            s.add(OutboxMessage(company_id=ids["default"], key="one", kind="notification", channel="email",
                                template="welcome", due_at=now, payload={}))
        with app.sessions() as s:
            order = [s.get(OutboxMessage, mid).company_id for mid, _ in outbox.due(s, now, limit=5)]
        assert order[:2].count(ids["default"]) == 1  # its one message is not behind the busy company's 30
    finally:
        app.close()


# --- headers, files, server ---------------------------------------------------------------------

def test_every_response_carries_security_headers(svc):
    client = web(svc, KEEPWELL_HTTPS="1").test_client()
    key = apikeys.create(svc, "default", "pos")
    for r in (client.get("/admin/login"), client.get("/healthz"), client.get("/api/v1/rulesets", headers=_h(key)),
              client.get("/api/v1/rulesets")):
        h = r.headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"] and "unsafe-inline" not in \
            h["Content-Security-Policy"].split("script-src")[1].split(";")[0]
        assert (h["X-Frame-Options"], h["X-Content-Type-Options"], h["Referrer-Policy"]) == (
            "DENY", "nosniff", "same-origin")
        assert h["Strict-Transport-Security"].startswith("max-age=")
    page = web(svc).test_client()
    sign_in(page)
    r = page.get("/admin/")
    nonce = re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script([^>]*)>", r.get_data(as_text=True))
    assert scripts and all(f'nonce="{nonce}"' in s for s in scripts)
    assert "Strict-Transport-Security" not in r.headers


def test_csv_exports_neutralise_spreadsheet_formulas(svc):
    client = web(svc).test_client()
    sign_in(client)
    svc.add_customer('=HYPERLINK("http://evil.example","click")', "ann@example.com")
    svc.add_customer("@SUM(A1:A9)")
    svc.add_customer("Plain Name")
    rows = list(csv.reader(io.StringIO(client.get("/admin/customers/export/csv/").get_data(as_text=True))))
    names = {cell for row in rows[1:] for cell in row}
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in names and "'@SUM(A1:A9)" in names
    assert "Plain Name" in names
    assert not any(c.startswith(("=", "+", "@")) for r in rows for c in r)


def test_the_sqlite_database_and_its_wal_are_private(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "KEEPWELL_HOME": str(home), "KEEPWELL_DATABASE_URL": ""}
    env.pop("KEEPWELL_DATABASE_URL")
    subprocess.run([KEEPWELL, "init"], env=env, check=True, capture_output=True)
    files = [p for p in home.iterdir() if p.name.startswith("keepwell.sqlite3")]
    assert any(p.name == "keepwell.sqlite3" for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, (p.name, oct(p.stat().st_mode))


def test_webhook_secrets_stay_off_the_command_line_and_are_never_shown(svc, db_url):
    cli = Cli(db_url)
    out = cli("companies", "set", "--webhook-secret", "s3cret-value", expect=1).output
    assert "not on the command line" in out
    cli("companies", "set", "--webhook-secret", "-", input="s3cret-value\n")
    shown = cli.out("companies", "show", "--json")
    assert '"webhook_secret_set": true' in shown and "s3cret-value" not in shown
    with svc.engine.connect() as c:
        assert c.scalar(sa.text("SELECT webhook_secret FROM companies WHERE slug = 'default'")) == "s3cret-value"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_keepwell_serve_runs_a_production_server_without_a_version_banner(tmp_path):
    import http.client

    port = _free_port()
    env = {**os.environ, "KEEPWELL_HOME": str(tmp_path)}
    env.pop("KEEPWELL_DATABASE_URL", None)
    proc = subprocess.Popen([KEEPWELL, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "keepwell serve did not start"
                time.sleep(0.1)  # polling for the port to open
            finally:
                conn.close()
        assert r.status == 200
        assert r.getheader("Server") in (None, "")
        assert r.getheader("X-Content-Type-Options") == "nosniff"
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "development server" not in out


def test_jinja2_is_at_least_3_1_6():
    requirement = next(r for r in metadata.requires("keepwell") if r.lower().startswith("jinja2"))
    assert ">=3.1.6" in requirement
    assert tuple(int(x) for x in metadata.version("jinja2").split(".")[:3]) >= (3, 1, 6)


def test_readme_promises_security():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Security", 1)[1].split("\n## ", 1)[0]
    for promise in ("company", "session", "scope", "never stored"):
        assert promise in section


def test_a_simulation_too_large_for_a_request_runs_on_a_worker_with_progress(postgres_url, redis_url, tmp_path):
    from mailserver import wait_until
    from test_workers import Proc, worker_env

    svc = make_app(postgres_url)
    try:
        svc.publish(PLAN, "test", date(1970, 1, 1))
        svc.add_company("other", "Other Co")
        cust = svc.add_customer("Ann")
        site = create_app({"TESTING": True}, service=svc, settings=_settings(KEEPWELL_REDIS_URL=redis_url))
        client = site.test_client()
        h = _h(apikeys.create(svc, "default", "analyst", ["read"]))
        today = date.today()
        sample = [{"id": f"e{i}", "type": "purchase", "customer": cust, "occurred_at": f"{today}T10:00:00Z",
                   "data": {"amount": "1.00"}} for i in range(600)]
        draft = {**PLAN, "spec": {"allowance": {**PLAN["spec"]["allowance"], "amount": "150.00"}}}
        r = client.post("/api/v1/simulations", headers=h, json={
            "draft": draft, "from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat(),
            "events": sample})
        assert r.status_code == 202 and r.json["status"] == "queued"
        url = r.json["status_url"]
        assert client.get(url, headers=h).json["status"] == "queued"
        other = _h(apikeys.create(svc, "other", "theirs", ["read"]))
        assert client.get(url, headers=other).status_code == 404  # another company's job is not theirs to see
        worker = Proc(worker_env(postgres_url, redis_url, 1), "worker", "--burst", log=tmp_path / "worker.log")
        try:
            assert worker.wait(300) == 0, worker.text()[-2000:]
        finally:
            worker.close()
        done = wait_until(lambda: (s := client.get(url, headers=h).json)["status"] == "finished" and s,
                          timeout=30, what="the simulation to finish")
        assert done["progress"] == {"done": 1200, "total": 1200}  # both replays, every event
        assert done["result"]["events"] == 600 and done["result"]["source"] == "sample stream"
    finally:
        svc.close()
