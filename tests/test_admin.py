"""The admin UI through HTTP (Flask's test client, CSRF on): sign-in, roles, company isolation,
pack install, ruleset editing with validation, publish/diff/rollback, enroll, lists and CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest

from keepwell.app import create_app
from keepwell.customers.users import add_user
from keepwell.usecases import packs
from support import Cli, event, make_app

PASSWORD = "correct horse battery"


class Browser:
    """A test client that signs in and sends the CSRF token like the real pages do."""

    def __init__(self, app):
        self.client = app.test_client()

    def token(self, url: str = "/admin/login") -> str:
        html = self.client.get(url).get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def login(self, email: str, password: str = PASSWORD):
        return self.client.post("/admin/login", data={"email": email, "password": password, "csrf_token": self.token()})

    def get(self, url: str, **kw):
        return self.client.get(url, **kw)

    def post(self, url: str, data: dict | None = None, token_from: str | None = None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token(token_from or "/admin/"))
        return self.client.post(url, data=data, **kw)


@pytest.fixture
def site(db_url):
    svc = make_app(db_url, timezone="America/Denver")
    svc.add_company("other", "Other Plumbing", "UTC")
    for slug, email, role in (("default", "owner@heat.example", "owner"), ("default", "staff@heat.example", "staff"),
                              ("other", "owner@other.example", "owner")):
        svc.run(slug, lambda c, e=email, r=role: add_user(c.session, c.company, e, PASSWORD, r))
    app = create_app({"TESTING": True}, service=svc)
    yield app, svc
    svc.close()


def signed_in(app, email="owner@heat.example") -> Browser:
    b = Browser(app)
    assert b.login(email).status_code == 302
    return b


def install_hvac(svc, company="default", **overrides):
    return packs.install(svc, company, packs.find("hvac"), author="test", overrides=overrides or None)


def test_sign_in_is_required_and_wrong_passwords_fail(site):
    app, _ = site
    b = Browser(app)
    r = b.get("/admin/rulesets/")
    assert r.status_code == 302 and "/admin/login?next=/admin/rulesets/" in r.headers["Location"]
    bad = b.login("owner@heat.example", "wrong password")
    assert bad.status_code == 401 and "do not match" in bad.get_data(as_text=True)
    assert b.login("nobody@heat.example").status_code == 401
    ok = b.client.post("/admin/login?next=/admin/rulesets/",
                       data={"email": "OWNER@heat.example ", "password": PASSWORD, "csrf_token": b.token()})
    assert ok.status_code == 302 and ok.headers["Location"].endswith("/admin/rulesets/")
    page = b.get("/admin/").get_data(as_text=True)
    assert "owner@heat.example" in page and "Test Heating &amp; Air" in page
    b.post("/admin/logout")
    assert b.get("/admin/").status_code == 302


def test_login_never_redirects_off_site(site):
    app, _ = site
    b = Browser(app)
    r = b.client.post("/admin/login?next=//evil.example/x",
                      data={"email": "owner@heat.example", "password": PASSWORD, "csrf_token": b.token()})
    assert r.status_code == 302 and r.headers["Location"] == "/admin/"


def test_posts_without_the_csrf_token_are_refused(site):
    app, svc = site
    b = signed_in(app)
    install_hvac(svc)
    r = b.client.post("/admin/rulesets/r/hvac-comfort-club/rollback", data={"version": "1"})
    assert r.status_code == 400 and "expired" in r.get_data(as_text=True)
    r = b.client.post("/admin/login", data={"email": "owner@heat.example", "password": PASSWORD})
    assert r.status_code == 400


def test_the_api_needs_no_csrf_token(site):
    app, svc = site
    key = svc.create_api_key("pos")
    customer = svc.add_customer("Ann")
    r = app.test_client().post("/api/v1/events", json=event("e1", "referral", customer, "2026-01-05", referred_name="Bob"),
                               headers={"Authorization": f"Bearer {key}"})
    assert r.status_code in (200, 201), r.get_data(as_text=True)


def test_users_add_from_the_cli_signs_in(db_url, site):
    app, _ = site
    cli = Cli(db_url)
    cli.env["KEEPWELL_PASSWORD"] = "a long enough password"
    out = cli.out("users", "add", "--company", "default", "--email", "Manager@Heat.example", "--role", "manager")
    assert "manager@heat.example (manager)" in out
    assert Browser(app).login("manager@heat.example", "a long enough password").status_code == 302
    dup = cli("users", "add", "--company", "default", "--email", "manager@heat.example", "--role", "staff", expect=1)
    assert "already exists" in dup.output
    short = Cli(db_url)
    short.env["KEEPWELL_PASSWORD"] = "short"
    assert "at least 10" in short("users", "add", "--email", "x@heat.example", "--role", "staff", expect=1).output
    assert cli("users", "add", "--email", "y@heat.example", "--role", "admin", expect=2).exit_code == 2
    prompted = Cli(db_url)
    res = prompted("users", "add", "--email", "z@heat.example", "--role", "staff", input="prompted secret\nprompted secret\n")
    assert "z@heat.example" in res.output
    assert Browser(app).login("z@heat.example", "prompted secret").status_code == 302
    listed = cli.json("users", "list")
    assert {u["email"] for u in listed} >= {"manager@heat.example", "owner@heat.example", "z@heat.example"}


def test_install_a_pack_with_its_parameters_from_a_form(site):
    app, svc = site
    b = signed_in(app)
    page = b.get("/admin/packs/hvac").get_data(as_text=True)
    assert "Basic tier: parts-and-repair allowance per membership year" in page  # help text from pack.yaml
    bad = b.post("/admin/packs/hvac", {"basic_allowance": "lots", "_action": "install"}, token_from="/admin/packs/hvac")
    assert bad.status_code == 200
    text = bad.get_data(as_text=True)
    assert 'id="basic_allowance-error"' in text and "lots" in text
    assert b.get("/admin/rulesets/").get_data(as_text=True).count("hvac-comfort-club") == 0  # nothing installed
    form = {p.name: str(p.default).lower() if isinstance(p.default, bool) else str(p.default)
            for p in packs.find("hvac").parameters}
    form.update(basic_allowance="300.00", _action="install")
    r = b.post("/admin/packs/hvac", form, token_from="/admin/packs/hvac")
    assert r.status_code == 302
    listing = b.get("/admin/rulesets/").get_data(as_text=True)
    assert "hvac-comfort-club@1" in listing
    version = b.get("/admin/rulesets/r/hvac-comfort-club/v/1").get_data(as_text=True)
    assert "amount: &#39;300.00&#39;" in version or "amount: '300.00'" in version or 'amount: "300.00"' in version


def test_edit_yaml_see_each_error_with_its_path_fix_and_publish(site):
    app, svc = site
    install_hvac(svc)
    b = signed_in(app)
    edit = "/admin/rulesets/r/hvac-comfort-club/edit"
    page = b.get(edit + "?mode=yaml")
    assert page.status_code == 200
    # Start from the published YAML, as a power user would.
    yaml_text = b.get("/admin/rulesets/r/hvac-comfort-club/v/1").get_data(as_text=True)
    import html as htmlmod

    yaml_text = htmlmod.unescape(re.search(r'id="yaml" role="tabpanel"><pre class="kw-code">(.*?)</pre>', yaml_text, re.S).group(1))
    broken = yaml_text.replace("amount: '250.00'", "amount: 'ten dollars'").replace("period: yearly", "period: fortnightly", 1)
    assert broken != yaml_text
    r = b.post(edit, {"_mode": "yaml", "_kind": "Plan", "yaml": broken, "_action": "validate"}, token_from=edit)
    text = htmlmod.unescape(r.get_data(as_text=True))
    assert "2 problems to fix" in text or "problems to fix" in text
    assert "spec.allowance.amount" in text and "spec.allowance.period" in text
    r = b.post(edit, {"_mode": "yaml", "_kind": "Plan", "yaml": broken, "_action": "publish",
                      "effective_from": "2026-01-01"}, token_from=edit)
    assert "Not published" in r.get_data(as_text=True)
    fixed = yaml_text.replace("amount: '250.00'", "amount: '275.00'")
    r = b.post(edit, {"_mode": "yaml", "_kind": "Plan", "yaml": fixed, "_action": "publish:confirmed",
                      "effective_from": "2026-01-01"}, token_from=edit)
    assert r.status_code == 302, r.get_data(as_text=True)
    history = b.get("/admin/rulesets/r/hvac-comfort-club").get_data(as_text=True)
    assert "Version 2</a>" in history
    diff = b.get("/admin/rulesets/r/hvac-comfort-club/diff?a=1&b=2").get_data(as_text=True)
    assert 'class="diff_add"' in diff or 'class="diff_sub"' in diff  # highlighted, side by side
    cells = [htmlmod.unescape(re.sub(r"<[^>]+>", "", c)).replace("\xa0", " ")
             for c in re.findall(r'<td nowrap="nowrap">(.*?)</td>', diff)]
    assert any("250.00" in c for c in cells) and any("275.00" in c for c in cells)
    # Roll back: version 1's content again, as version 3.
    r = b.post("/admin/rulesets/r/hvac-comfort-club/rollback", {"version": "1", "effective_from": "2026-02-01"})
    assert r.status_code == 302
    rows = svc.run(None, lambda c: __import__("keepwell.rulesets.versions", fromlist=["x"]).versions_of(c.session, c.company.id, "hvac-comfort-club"))
    assert [r["version"] for r in rows] == [1, 2, 3]
    assert rows[2]["content_hash"] == rows[0]["content_hash"] and rows[2]["effective_from"] == "2026-02-01"


def test_unreadable_yaml_is_kept_as_typed_with_its_error(site):
    app, svc = site
    install_hvac(svc)
    b = signed_in(app)
    edit = "/admin/rulesets/r/hvac-comfort-club/edit"
    r = b.post(edit, {"_mode": "yaml", "_kind": "Plan", "yaml": "spec: [unclosed", "_action": "show:form"}, token_from=edit)
    text = r.get_data(as_text=True)
    assert "spec: [unclosed" in text and "Fix the YAML first" in text


def test_staff_read_rulesets_and_ledger_but_cannot_change_them(site):
    app, svc = site
    install_hvac(svc)
    b = signed_in(app, "staff@heat.example")
    assert b.get("/admin/rulesets/r/hvac-comfort-club").status_code == 200
    assert "Roll back" not in b.get("/admin/rulesets/r/hvac-comfort-club").get_data(as_text=True)
    assert b.get("/admin/ledger/").status_code == 200
    assert b.post("/admin/rulesets/r/hvac-comfort-club/rollback", {"version": "1"}).status_code == 403
    assert b.post("/admin/rulesets/r/hvac-comfort-club/edit", {"_mode": "yaml", "yaml": "x: 1", "_action": "save"}).status_code == 403
    assert b.post("/admin/packs/hvac", {"_action": "install"}).status_code == 403
    assert b.get("/admin/ledger/new/").status_code in (302, 403, 404)


def enroll_someone(svc, company="default", name="Maria Garcia", start="2026-01-10", tier="premium"):
    cust = svc.add_customer(name, f"{name.split()[0].lower()}@example.com", company=company)
    m = svc.enroll(cust, "hvac-comfort-club", date.fromisoformat(start), tier=tier, company=company)
    return cust, m["result"]["membership"] if "result" in m else m["membership"]


def test_enroll_from_the_admin_and_see_the_balance(site):
    app, svc = site
    install_hvac(svc)
    b = signed_in(app)
    r = b.post("/admin/customers/new/", {"name": "Maria Garcia", "email": "maria@example.com", "phone": ""},
               token_from="/admin/customers/new/")
    assert r.status_code == 302
    customers = b.get("/admin/customers/").get_data(as_text=True)
    cust = re.search(r"(cus_[0-9a-f]{16})", customers).group(1)
    enroll = b.get("/admin/memberships/enroll").get_data(as_text=True)
    assert "Comfort Club — Premium" in enroll
    r = b.post("/admin/memberships/enroll", {"customer": cust, "plan": "hvac-comfort-club|premium", "on": "2026-01-10"},
               token_from="/admin/memberships/enroll")
    assert r.status_code == 302
    page = b.get(r.headers["Location"]).get_data(as_text=True)
    assert "Maria Garcia" in page and "hvac-comfort-club@1" in page and "500.00" in page
    svc.post_event(event("pos-1", "purchase", cust, "2026-02-01", amount="120.00", pay_with="membership"))
    page = b.get(r.headers["Location"]).get_data(as_text=True)
    assert "380.00" in page  # 500.00 allowance less the 120.00 purchase
    missing = b.post("/admin/memberships/enroll", {"customer": "", "plan": "", "on": "not a date"},
                     token_from="/admin/memberships/enroll").get_data(as_text=True)
    assert "Choose a customer" in missing and "Enter a date" in missing


def test_cancel_and_change_tier(site):
    app, svc = site
    install_hvac(svc)
    cust, mid = enroll_someone(svc)
    b = signed_in(app)
    r = b.post(f"/admin/memberships/upgrade/{mid}", {"tier": "elite", "on": "2026-03-01"},
               token_from=f"/admin/memberships/show/{mid}")
    assert r.status_code == 302
    new_page = b.get(r.headers["Location"]).get_data(as_text=True)
    assert "Elite" in new_page and "1000.00" in new_page
    assert "cancelled" in b.get(f"/admin/memberships/show/{mid}").get_data(as_text=True)
    new_id = r.headers["Location"].rsplit("/", 1)[1]
    r = b.post(f"/admin/memberships/cancel/{new_id}", {"on": "2026-04-01"}, token_from=f"/admin/memberships/show/{new_id}")
    assert "cancelled" in b.get(f"/admin/memberships/show/{new_id}").get_data(as_text=True)
    staff = signed_in(app, "staff@heat.example")
    assert staff.post(f"/admin/memberships/cancel/{new_id}", {"on": "2026-04-01"}).status_code == 403


def test_another_companys_records_are_not_found(site):
    app, svc = site
    install_hvac(svc)
    install_hvac(svc, company="other")
    cust, mid = enroll_someone(svc, company="other", name="Olivia Other")
    svc.post_event(event("o-pos", "purchase", cust, "2026-02-01", amount="50.00", pay_with="membership"), company="other")
    mine = signed_in(app)
    assert mine.get(f"/admin/memberships/show/{mid}").status_code == 404
    assert mine.get(f"/admin/memberships/details/?id={mid}").status_code in (302, 404)
    assert mine.get(f"/admin/customers/details/?id={cust}").status_code == 404
    assert mine.get(f"/admin/customers/edit/?id={cust}").status_code == 404
    assert mine.post(f"/admin/memberships/cancel/{mid}", {"on": "2026-04-01"}).status_code == 404
    for url in ("/admin/customers/", "/admin/memberships/", "/admin/ledger/", "/admin/events/",
                "/admin/customers/export/csv/", "/admin/ledger/export/csv/", "/admin/events/export/csv/"):
        body = mine.get(url).get_data(as_text=True)
        assert "Olivia" not in body and cust not in body and mid not in body, url
    theirs = signed_in(app, "owner@other.example")
    assert "Olivia Other" in theirs.get(f"/admin/memberships/show/{mid}").get_data(as_text=True)


def test_every_list_exports_csv(site):
    app, svc = site
    install_hvac(svc)
    cust, mid = enroll_someone(svc)
    svc.post_event(event("pos-9", "purchase", cust, "2026-02-01", amount="99.99", pay_with="membership"))
    b = signed_in(app)
    for name, must in (("customers", "Maria Garcia"), ("memberships", mid), ("ledger", "99.99"), ("events", "pos-9")):
        r = b.get(f"/admin/{name}/export/csv/")
        assert r.status_code == 200 and "text/csv" in r.headers["Content-Type"], name
        rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
        assert len(rows) >= 2 and any(must in cell for row in rows[1:] for cell in row), (name, rows[:3])
    ledger = b.get(f"/admin/ledger/?flt0_account_owner_equals={mid}").get_data(as_text=True)
    assert "hvac-comfort-club@1" in ledger and "pos-9" in ledger


def test_simulate_a_draft_against_recorded_events(site):
    app, svc = site
    install_hvac(svc)
    cust, mid = enroll_someone(svc)
    svc.post_event(event("pos-s", "purchase", cust, "2026-02-01", amount="200.00"))
    b = signed_in(app)
    page = b.get("/admin/rulesets/r/hvac-comfort-rewards/simulate")
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    r = b.post("/admin/rulesets/r/hvac-comfort-rewards/simulate", {"from": "2026-01-01", "to": "2026-03-01"},
               token_from="/admin/rulesets/r/hvac-comfort-rewards/simulate")
    text = r.get_data(as_text=True)
    assert "Result:" in text and 'id="sim-total"' in text


def _published(svc, ref):
    from keepwell.rulesets import versions

    return svc.run(None, lambda c: versions.get_version(c.session, c.company.id, ref)[1].content)


def _form_post(b, url, doc, kind, action, **extra):
    from keepwell.interfaces.admin.schema_forms import build_form, form_formdata

    data = form_formdata(build_form(kind, doc))
    data.update({"_mode": "form", "_kind": kind, "_action": action, **extra})
    data["csrf_token"] = b.token(url)
    return b.client.post(url, data=data)


def test_the_form_editor_adds_a_tier_switches_to_yaml_and_back_and_publishes(site):
    import html as htmlmod

    from keepwell.interfaces.admin.schema_forms import build_form

    app, svc = site
    install_hvac(svc)
    b = signed_in(app)
    edit = "/admin/rulesets/r/hvac-comfort-club/edit"
    doc = _published(svc, "hvac-comfort-club@1")
    page = b.get(edit).get_data(as_text=True)
    assert 'name="spec-allowance-amount"' in page and "Allowance amount" in page  # title from the schema
    r = _form_post(b, edit, doc, "Plan", "add:spec-tiers")
    text = r.get_data(as_text=True)
    n = len(doc["spec"]["tiers"])
    assert f'name="spec-tiers-{n}-id"' in text  # one more, empty tier group
    # Form -> YAML -> form keeps every value, including a changed one.
    changed = {**doc, "spec": {**doc["spec"], "allowance": {**doc["spec"]["allowance"], "amount": "260.00"}}}
    r = _form_post(b, edit, changed, "Plan", "show:yaml")
    yaml_text = htmlmod.unescape(re.search(r'<textarea[^>]*id="yaml"[^>]*>(.*?)</textarea>', r.get_data(as_text=True), re.S).group(1))
    assert "amount: '260.00'" in yaml_text
    r = b.post(edit, {"_mode": "yaml", "_kind": "Plan", "yaml": yaml_text, "_action": "show:form"}, token_from=edit)
    assert re.search(r'name="spec-allowance-amount"[^>]*value="260.00"', r.get_data(as_text=True)) or \
        re.search(r'value="260.00"[^>]*name="spec-allowance-amount"', r.get_data(as_text=True))
    r = _form_post(b, edit, changed, "Plan", "publish:confirmed", effective_from="2026-01-01")
    assert r.status_code == 302, r.get_data(as_text=True)[-3000:]
    assert _published(svc, "hvac-comfort-club@2") == changed
    assert build_form("Plan", changed).to_document() == changed


def test_form_errors_show_next_to_their_fields(site):
    app, svc = site
    install_hvac(svc)
    b = signed_in(app)
    edit = "/admin/rulesets/r/hvac-comfort-club/edit"
    doc = _published(svc, "hvac-comfort-club@1")
    bad = {**doc, "spec": {**doc["spec"], "allowance": {**doc["spec"]["allowance"], "amount": "-5"}}}
    r = _form_post(b, edit, bad, "Plan", "validate")
    text = r.get_data(as_text=True)
    error = re.search(r'<ul class="kw-errors" id="spec-allowance-amount-errors"[^>]*>(.*?)</ul>', text, re.S)
    assert error and "Allowance amount must be an amount like 250.00" in error.group(1)
    assert re.search(r'name="spec-allowance-amount"[^>]*value="-5"|value="-5"[^>]*name="spec-allowance-amount"', text)
    assert 'aria-invalid="true"' in text
    # A condition typed as YAML that cannot be read keeps its text and shows where the problem is.
    rules_edit = "/admin/rulesets/r/hvac-comfort-rewards/edit"
    rules = _published(svc, "hvac-comfort-rewards@1")
    from keepwell.interfaces.admin.schema_forms import build_form, form_formdata

    data = form_formdata(build_form("EarningRules", rules))
    when = next(k for k in data if k.endswith("-when"))
    data[when] = "all: [unclosed"
    data.update({"_mode": "form", "_kind": "EarningRules", "_action": "save", "csrf_token": b.token(rules_edit)})
    r = b.client.post(rules_edit, data=data)
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and "all: [unclosed" in text and f'id="{when}-errors"' in text
    from keepwell.kernel.errors import NotFound
    from keepwell.rulesets import versions

    with pytest.raises(NotFound):  # nothing was saved
        svc.run(None, lambda c: versions.get_draft(c.session, c.company.id, "hvac-comfort-rewards"))


def test_a_new_ruleset_from_the_blank_form(site):
    app, svc = site
    b = signed_in(app)
    page = b.get("/admin/rulesets/new?kind=EarningRules")
    assert page.status_code == 200
    doc = {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": "referrals", "name": "Referrals"},
           "spec": {"rules": [{"id": "refer", "when": {"event": "referral"}, "earn": {"points": 500}}]}}
    r = _form_post(b, "/admin/rulesets/new?kind=EarningRules", doc, "EarningRules", "publish:confirmed",
                   effective_from="2026-01-01")
    if r.status_code != 302:  # the schema may want more: the page lists exactly what
        problems = re.findall(r'<div class="alert alert-danger" role="alert" id="problems">(.*?)</div>',
                              r.get_data(as_text=True), re.S)
        pytest.fail(f"blank-form publish refused: {problems}")
    assert _published(svc, "referrals@1") == doc
    staff = signed_in(app, "staff@heat.example")
    assert staff.get("/admin/rulesets/new?kind=Plan").status_code == 403


def test_simulate_a_saved_draft_over_an_uploaded_sample_file(site):
    import json

    app, svc = site
    install_hvac(svc)
    cust, _mid = enroll_someone(svc)
    b = signed_in(app)
    # A draft that doubles the spend points, saved from the YAML view.
    from keepwell.rulesets.documents import to_yaml

    rules = _published(svc, "hvac-comfort-rewards@1")
    for r in rules["spec"]["rules"]:
        if r["id"] == "hvac-spend-points":
            r["earn"]["points"] = int(r["earn"]["points"]) * 2
    edit = "/admin/rulesets/r/hvac-comfort-rewards/edit"
    r = b.post(edit, {"_mode": "yaml", "_kind": "EarningRules", "yaml": to_yaml(rules), "_action": "save"}, token_from=edit)
    assert r.status_code == 302
    stream = "\n".join(json.dumps(e) for e in [  # a sample stream brings its own enrolments
        event("s-0", "enrolled", cust, "2026-01-05", plan="hvac-comfort-club", tier="premium"),
        event("s-1", "purchase", cust, "2026-02-01", amount="100.00"),
        event("s-2", "purchase", cust, "2026-02-15", amount="50.00"),
    ])
    url = "/admin/rulesets/r/hvac-comfort-rewards/simulate"
    page = b.get(url).get_data(as_text=True)
    assert "the saved draft" in page
    r = b.client.post(url, data={"from": "2026-01-01", "to": "2026-03-01", "csrf_token": b.token(url),
                                 "events": (io.BytesIO(stream.encode()), "sample.jsonl")},
                      content_type="multipart/form-data")
    text = r.get_data(as_text=True)
    assert "3 sample stream events" in text, text[-2000:]
    members = re.search(r"<table[^>]*id=\"sim-members\".*?</table>", text, re.S)
    assert members, re.findall(r"<h[23][^>]*>.*?</h[23]>", text)
    members = members.group(0)
    assert "Maria Garcia" in members and "(+" in members  # more points under the draft
    bad = b.client.post(url, data={"from": "2026-01-01", "to": "2026-03-01", "csrf_token": b.token(url),
                                   "events": (io.BytesIO(b"{not json"), "bad.jsonl")}, content_type="multipart/form-data")
    assert "could not be read" in bad.get_data(as_text=True)


def test_billing_in_the_admin_cards_invoices_and_what_cancelling_refunds_before_confirming(site):
    app, svc = site
    install_hvac(svc)
    cid = svc.add_customer("Bea Billing", "bea@example.com")
    b = signed_in(app)
    page = f"/admin/customers/details/?id={cid}"
    assert "No card on file" in b.get(page).get_data(as_text=True)
    b.post(f"/admin/customers/cards/{cid}", {"action": "add", "card": "success"}, token_from=page)
    shown = b.get(page).get_data(as_text=True)
    assert "Visa ending 4242" in shown and "default" in shown
    on = date(2026, 10, 16).isoformat()
    r = b.post("/admin/memberships/enroll", {"customer": cid, "plan": "hvac-comfort-club|basic", "on": on,
                                             "cadence": "monthly"}, token_from="/admin/memberships/enroll")
    assert r.status_code == 302
    mid = r.headers["Location"].rsplit("/", 1)[1]
    from keepwell.usecases import billing
    billing.run(svc, "default", date(2026, 11, 1))
    m_page = b.get(f"/admin/memberships/show/{mid}").get_data(as_text=True)
    assert 'id="invoices"' in m_page and "Paid" in m_page
    pdf = b.get("/admin/memberships/invoice/1.pdf")
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    # Cancelling shows the refund first (nothing changes), then does it on confirmation.
    preview = b.get(f"/admin/memberships/cancel/{mid}?on=2026-11-10&at=now").get_data(as_text=True)
    # Within 30 days of joining (16 Oct) the Comfort Club gives back everything: 7.72 for 16-31 Oct
    # (14.95 x 16/31) and 14.95 for November.
    found = re.search(r"id=\"refund\">([^<]*)<", preview)
    assert found is not None, re.findall(r"alert[^>]*>[^<]*", preview)
    assert found.group(1) == "22.67 USD" and "In full (within the days after joining)" in preview
    assert svc.membership(mid)["status"] == "active"
    r = b.post(f"/admin/memberships/cancel/{mid}", {"on": "2026-11-10", "at": "now"},
               token_from=f"/admin/memberships/cancel/{mid}?on=2026-11-10&at=now")
    assert svc.membership(mid)["status"] == "cancelled"
    shown = b.get(f"/admin/memberships/show/{mid}").get_data(as_text=True)
    assert "Refunded 22.67" in shown and "cancelled" in shown
    other = signed_in(app, "owner@other.example")
    assert other.get("/admin/memberships/invoice/1.pdf").status_code == 404


def test_a_card_typed_on_the_sandbox_card_page_comes_back_as_a_token(site):
    app, svc = site
    cid = svc.add_customer("Cy Card")
    b = signed_in(app)
    page = b.get(f"/admin/customers/details/?id={cid}").get_data(as_text=True)
    link = re.search(r'href="(/sandbox/card\?[^"]+)" id="card-page"', page).group(1).replace("&amp;", "&")
    form = b.get(link).get_data(as_text=True)
    assert 'name="number"' in form
    fields = dict(re.findall(r'<input type="hidden" name="(return_to|state)" value="([^"]*)"', form))
    bad = b.client.post("/sandbox/card", data={**fields, "number": "4242 4242 4242 4241", "exp_month": "12",
                                               "exp_year": "2031", "cvc": "123"})
    assert bad.status_code == 422 and "not a valid card number" in bad.get_data(as_text=True)
    ok = b.client.post("/sandbox/card", data={**fields, "number": "4000 0000 0000 9995", "exp_month": "12",
                                              "exp_year": "2031", "cvc": "123"}).get_data(as_text=True)
    assert "Visa ending 9995" in ok and "value=\"4000" not in ok  # the number is not sent back
    action = re.search(r'<form method="post" action="([^"]+)"', ok).group(1)
    back = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', ok))
    r = b.client.post(action, data=back)
    assert r.status_code == 302
    shown = b.get(f"/admin/customers/details/?id={cid}").get_data(as_text=True)
    assert "Visa ending 9995, expires 12/2031" in shown
    assert b.client.get("/sandbox/card?return_to=https://evil.example/x").status_code == 400


def test_the_condition_builder_adds_a_condition_and_saves_the_same_condition_language(site):
    from keepwell.rulesets import versions
    from test_schema_forms import browser_submit

    app, svc = site
    install_hvac(svc)
    b = signed_in(app)
    edit = "/admin/rulesets/r/hvac-comfort-rewards/edit"
    published = _published(svc, "hvac-comfort-rewards@1")
    w = "spec-rules-0-when"

    def submit(page: str, **changes: str):
        form = re.search(r'<form method="post" novalidate id="editor".*?</form>', page, re.S).group(0)
        data = browser_submit(form)
        for k, v in changes.items():
            data[k] = v
        return b.client.post(edit, data=data)

    page = b.get(edit).get_data(as_text=True)
    assert f'id="{w}-g-0-c-0-field"' in page and 'id="kw-condition-catalog"' in page and "conditions.js" in page
    # the installed plan gives member.plan its list of values
    assert re.search(rf'id="{w}-g-0-c-1-value".*?<option value="hvac-comfort-club" selected>', page, re.S)
    n = len(published["spec"]["rules"][0]["when"]["all"])
    # "Add a condition" without JavaScript: the page comes back with one more, blank row
    r = submit(page, _action=f"add:{w}-g-0")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and f'id="{w}-g-0-c-{n}-field"' in page
    row = f"{w}-g-0-c-{n}"
    r = submit(page, **{f"{row}-field": "data.amount", f"{row}-op": "gte", f"{row}-value": "100",
                        "spec-rules-1-when-g-0-join": "any", "_action": "save"})
    assert r.status_code == 302, r.get_data(as_text=True)[-3000:]
    draft = svc.run(None, lambda c: versions.get_draft(c.session, c.company.id, "hvac-comfort-rewards").content)
    rules, before = draft["spec"]["rules"], published["spec"]["rules"]
    assert rules[0]["when"] == {**before[0]["when"], "all": [*before[0]["when"]["all"],
                                                             {"field": "data.amount", "gte": 100}]}
    assert rules[1]["when"] == {"event": before[1]["when"]["event"], "any": before[1]["when"]["all"]}
    assert rules[2:] == before[2:] and {k: v for k, v in draft.items() if k != "spec"} == \
        {k: v for k, v in published.items() if k != "spec"}
    # Opened again and saved unchanged, the draft is the same document.
    page = b.get(edit).get_data(as_text=True)
    assert submit(page, _action="save").status_code in (200, 302)
    again = svc.run(None, lambda c: versions.get_draft(c.session, c.company.id, "hvac-comfort-rewards").content)
    assert again == draft
