"""The company's team and places (the workspace issue): an owner invites a user by email, who
chooses a password from the emailed link (read from a real SMTP server); roles change and the
last owner stays one; locations with their address, time zone and tax, edited in the admin,
narrow the lists and the dashboard, and their time zone keeps their customers' quiet hours; the
customer page shows where a customer is served and what was sent to them; a customer with the
same email or phone is flagged before a second is added; the enrolment picker searches; POS
receipt lines print the balance only when the company wants it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from keepwell.messaging.channels import ChannelSettings, channels_from
from keepwell.usecases import customers, locations, memberships
from keepwell.usecases.messaging import deliver_due
from mailserver import MailServer
from test_outbox import _window_around, customer, deliver, enrolled_member, hvac, listed, smtp_env  # noqa: F401
from test_security import PASSWORD, PLAN, sign_in, svc, token, web  # noqa: F401  (svc: a fixture)

NEW_PASSWORD = "amber kettle violin 42"


def post(client, url: str, data: dict, token_from: str):
    return client.post(url, data={**data, "csrf_token": token(client, token_from)})


def emailed(svc, smtp: MailServer, n: int) -> list:
    """(recipients, message) of what the outbox delivered to the SMTP server."""
    deliver_due(svc, channels_from(ChannelSettings(smtp_port=smtp.port)))
    smtp.wait_for(n, timeout=10)
    return list(smtp.received)


def link_in(mail) -> str:
    return re.search(r"http://localhost/admin/link/[A-Za-z0-9_-]+", mail.get_content()).group(0)


# --- the team -----------------------------------------------------------------------------------

def test_an_invited_user_chooses_a_password_from_the_emailed_link_which_works_once(svc):
    app = web(svc)
    owner = app.test_client()
    sign_in(owner)
    r = post(owner, "/admin/users/", {"email": "Tech@Heat.example", "role": "staff"}, "/admin/users/")
    assert r.status_code == 302
    page = owner.get("/admin/users/").get_data(as_text=True)
    assert "An invitation is on its way to tech@heat.example" in page
    row = re.search(r'<tr id="user-\d+" data-email="tech@heat.example">(.*?)</tr>', page, re.S).group(1)
    assert "invited" in row and 'value="staff" selected' in row
    # Nobody can sign in as an invited user before they choose a password.
    assert sign_in(app.test_client(), "tech@heat.example", PASSWORD).status_code == 401

    with MailServer() as smtp:
        [(to, mail)] = emailed(svc, smtp, 1)
    assert to == ["tech@heat.example"] and "invited" in mail["Subject"]
    link = link_in(mail)
    token_part = link.rsplit("/", 1)[1]
    with svc.database.engine.connect() as conn:  # only the link's digest is kept with the user
        stored = conn.exec_driver_sql("select link_digest from users where email = 'tech@heat.example'").scalar()
    assert stored and token_part not in stored

    tech = app.test_client()
    page = tech.get(link.removeprefix("http://localhost")).get_data(as_text=True)
    assert "Welcome to" in page and "tech@heat.example" in page
    path = link.removeprefix("http://localhost")
    differ = post(tech, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"}, path)
    assert differ.status_code == 400 and "not the same" in differ.get_data(as_text=True)
    weak = post(tech, path, {"password": "password123", "confirm": "password123"}, path)
    assert weak.status_code == 400 and "too easy to guess" in weak.get_data(as_text=True)
    done = post(tech, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, path)
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/login")
    assert sign_in(app.test_client(), "tech@heat.example", NEW_PASSWORD).status_code == 302
    # The link worked once.
    again = app.test_client().get(path)
    assert again.status_code == 404 and "no longer works" in again.get_data(as_text=True)
    assert "active" in re.search(r'data-email="tech@heat.example">(.*?)</tr>',
                                 owner.get("/admin/users/").get_data(as_text=True), re.S).group(1)


def test_an_owner_emails_a_password_link_and_only_the_newest_works(svc):
    app = web(svc)
    owner = app.test_client()
    sign_in(owner)
    url = "/admin/users/manager@heat.example/link"
    with MailServer() as smtp:
        post(owner, url, {}, "/admin/users/")
        post(owner, url, {}, "/admin/users/")
        first, second = (m for _to, m in emailed(svc, smtp, 2))
    assert "Set a new password" in first["Subject"]
    old, new = (link_in(m).removeprefix("http://localhost") for m in (first, second))
    assert old != new and app.test_client().get(old).status_code == 404
    manager = app.test_client()
    assert sign_in(manager, "manager@heat.example").status_code == 302  # the old password works until then
    assert post(app.test_client(), new, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, new).status_code == 302
    assert manager.get("/admin/").status_code == 302  # their sessions have ended
    assert sign_in(app.test_client(), "manager@heat.example", NEW_PASSWORD).status_code == 302


def test_roles_change_on_the_next_page_and_the_last_owner_stays_an_owner(svc, db_url):
    from support import Cli

    app = web(svc)
    owner, manager = app.test_client(), app.test_client()
    sign_in(owner)
    sign_in(manager, "manager@heat.example")
    assert manager.get("/admin/customers/new/").status_code == 200
    post(owner, "/admin/users/manager@heat.example/role", {"role": "staff"}, "/admin/users/")
    assert "manager@heat.example is now staff" in owner.get("/admin/users/").get_data(as_text=True)
    edit = manager.get(f"/admin/customers/edit/?id={svc.add_customer('Ann')}")
    assert edit.status_code == 403  # staff change nothing, from their very next page
    cli = Cli(db_url)
    out = cli("users", "set-role", "owner@heat.example", "manager", expect=1).output
    assert "last owner" in out
    cli("users", "set-role", "manager@heat.example", "owner")
    cli("users", "set-role", "owner@heat.example", "manager")
    assert {r["email"]: r["role"] for r in cli.json("users", "list")} == {
        "manager@heat.example": "owner", "owner@heat.example": "manager"}


# --- locations ----------------------------------------------------------------------------------

def test_locations_are_managed_in_the_admin_and_narrow_the_lists_and_the_dashboard(svc):
    app = web(svc)
    owner, manager = app.test_client(), app.test_client()
    sign_in(owner)
    sign_in(manager, "manager@heat.example")
    assert manager.get("/admin/locations/").status_code == 403
    bad = post(owner, "/admin/locations/", {"name": "Denver", "timezone": "Mountain Time", "tax_rate": "eight"},
               "/admin/locations/").get_data(as_text=True)
    assert "unknown time zone" in bad or "Tax rate must be a percent" in bad
    r = post(owner, "/admin/locations/", {"name": "Denver", "address": "400 Main St, Denver CO", "timezone":
                                          "America/Denver", "tax_rate": "8.81"}, "/admin/locations/")
    assert r.status_code == 302
    post(owner, "/admin/locations/", {"name": "Boulder", "tax_rate": "4.5"}, "/admin/locations/")
    places = {p["name"]: p for p in locations.list_locations(svc, "default")}
    assert places["Denver"]["timezone"] == "America/Denver" and places["Denver"]["address"] == "400 Main St, Denver CO"
    changed = post(owner, f"/admin/locations/{places['Boulder']['id']}",
                   {"name": "Boulder", "tax_rate": "4.99", "timezone": "", "address": "1 Pearl St"}, "/admin/locations/")
    assert changed.status_code == 302
    assert locations.list_locations(svc, "default")[0]["tax_rate"] == "4.99"  # Boulder sorts first

    ann = customers.add_customer(svc, "default", "Ann Denver", location="Denver", service_address="12 Elm St")
    bob = customers.add_customer(svc, "default", "Bob Boulder", location="Boulder")
    today = datetime.now(UTC).date() - timedelta(days=1)
    for cid in (ann, bob):
        memberships.enroll(svc, "default", cid, "vip", today)
    denver = places["Denver"]["id"]
    listed = owner.get(f"/admin/customers/?location={denver}").get_data(as_text=True)
    assert "Ann Denver" in listed and "Bob Boulder" not in listed
    members = owner.get(f"/admin/memberships/?location={denver}").get_data(as_text=True)
    assert "Ann Denver" in members and "Bob Boulder" not in members
    home = owner.get(f"/admin/?location={denver}").get_data(as_text=True)
    assert re.search(r'id="tile-active"[^>]*><b>1</b>', home) and "for <strong>Denver</strong>" in home
    assert re.search(r'id="tile-active"[^>]*><b>2</b>', owner.get("/admin/").get_data(as_text=True))
    page = owner.get(f"/admin/customers/details/?id={ann}").get_data(as_text=True)
    assert "12 Elm St" in page and "Denver" in page


def test_quiet_hours_are_kept_in_the_customers_location_time_zone(hvac):
    tokyo = ZoneInfo("Asia/Tokyo")
    hvac("locations", "add", "Tokyo office", "--timezone", "Asia/Tokyo")
    window, _end = _window_around(datetime.now(tokyo))  # quiet now in Tokyo, not in Denver (the company's)
    hvac("companies", "set", "--quiet-hours", window)
    far, _ = enrolled_member(hvac, "Far Away", "far@example.com")
    hvac("customers", "set", far, "--location", "Tokyo office")
    near, _ = enrolled_member(hvac, "Near By", "near@example.com")
    with MailServer() as smtp:
        smtp_env(hvac, smtp.port)
        outcomes = deliver(hvac)
        smtp.wait_for(1, timeout=10)
        [(to, _mail)] = smtp.received
    assert to == ["near@example.com"]
    by_customer = {r["customer"]: r for r in listed(hvac)}
    assert by_customer[far]["status"] == "pending" and by_customer[near]["status"] == "sent"
    assert sorted(o["detail"] or "" for o in outcomes)[-1] == "quiet hours"


# --- customers ----------------------------------------------------------------------------------

def test_a_customer_with_the_same_email_or_phone_is_flagged_before_a_second_is_added(svc):
    client = web(svc).test_client()
    sign_in(client)
    first = customers.add_customer(svc, "default", "Maria Garcia", "maria@example.com", "(303) 555-0100")
    url = "/admin/customers/new/"
    warned = post(client, url, {"name": "Maria G.", "email": "MARIA@example.com", "phone": ""}, url)
    page = warned.get_data(as_text=True)
    assert warned.status_code == 200 and 'id="look-alikes"' in page and first in page and "Save anyway" in page
    by_phone = post(client, url, {"name": "M. Garcia", "email": "", "phone": "303-555-0100"}, url).get_data(as_text=True)
    assert 'id="look-alikes"' in by_phone
    assert len(customers.page(svc, "default", q="Garcia")["customers"]) == 1  # nothing added yet
    anyway = post(client, url, {"name": "Maria G.", "email": "maria@example.com", "phone": "", "proceed": "1"}, url)
    assert anyway.status_code == 302
    assert len(customers.page(svc, "default", email="maria@example.com")["customers"]) == 2
    assert 'id="look-alikes"' not in post(client, url, {"name": "Someone Else", "email": "else@example.com"},
                                          url).get_data(as_text=True)


def test_the_enrolment_picker_finds_customers_by_what_is_typed(svc):
    client = web(svc).test_client()
    sign_in(client)
    for i in range(30):
        customers.add_customer(svc, "default", f"Customer {i:02}", f"c{i}@example.com")
    olive = customers.add_customer(svc, "default", "Olive Oyl", "olive@example.com", "303-555-0199")
    found = client.get("/admin/customers/lookup?q=oyl").get_json()
    assert found == [{"id": olive, "label": f"Olive Oyl · olive@example.com · {olive}"}]
    assert [c["id"] for c in client.get("/admin/customers/lookup?q=555-0199").get_json()] == [olive]
    assert len(client.get("/admin/customers/lookup?q=").get_json()) == 25  # the newest, not all of them
    page = client.get("/admin/memberships/enroll?find=olive").get_data(as_text=True)
    options = re.findall(r'<option value="(cus_[0-9a-f]+)"', page)
    assert options == [olive]
    chosen = client.get(f"/admin/memberships/enroll?customer={olive}").get_data(as_text=True)
    assert f'value="{olive}" selected' in chosen and "has none yet: add one" in chosen


def test_pos_receipt_lines_print_the_balance_only_when_the_company_wants_it(cli, tmp_path):
    import yaml

    from support import event

    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN))
    cli("rulesets", "publish", str(path), "--effective-from", "2020-01-01")
    cid = cli.out("customers", "add", "--name", "Ann")
    cli("enroll", cid, "vip", "--on", "2026-01-01")

    def sale(key: str, amount: str) -> dict:
        [result] = cli.post(event(key, "purchase", cid, "2026-01-05", amount=amount, pay_with="membership"))
        return result

    lines = sale("sale-1", "40.00")["receipt_lines"]
    assert lines[0].startswith("VIP member")
    assert "Allowance left: 60.00 USD" in lines and "Overdraft available: 20.00 USD" in lines
    cli("companies", "set", "--no-receipt-balance")
    again = sale("sale-2", "10.00")
    assert not any("Allowance" in x or "Overdraft" in x for x in again["receipt_lines"])
    assert again["receipt_lines"][0].startswith("VIP member") and again["receipt_lines"][-1].startswith("Renews on")
    assert again["balance"] == "50.00"  # the till still gets the figure; only the printed lines leave it out
    assert cli.json("companies", "show")["receipt_shows_balance"] is False
