"""The contractor's workspace (#16), as a contractor meets it: validation messages in words with
the field's label (CLI, API, admin, pack install), rulesets saved in the schema's key order so
Compare shows only what changed, publishing that asks first and keeps a change note, charging an
allowance past its balance, and the membership statement with its "Membership Overdraft
Payment" line, on screen, through the API and as a PDF."""

from __future__ import annotations

import copy
import html as html_lib
import re
import shutil
import subprocess
from datetime import date, timedelta

import pytest
import yaml

from keepwell.rulesets import packs as packs_core
from keepwell.rulesets.validation import validate_event, validate_ruleset
from keepwell.usecases import apikeys, companies, packs
from keepwell.usecases.rulesets import parse_text, to_yaml
from test_admin import Browser, install_hvac, signed_in, site  # noqa: F401  (fixtures)

REGEX_OR_PATH = re.compile(r"\^|\$\.|\[0-9\]|does not match|is a required property|is not of type|\\\\d")


def hvac_plan() -> dict:
    return copy.deepcopy(dict(packs_core.documents(packs_core.find("hvac")))[
        str(packs_core.find("hvac").path / "plan.yaml")])


# --- words and errors ----------------------------------------------------------------------------

def test_validation_messages_name_the_field_by_its_label_and_show_no_pattern_or_path():
    doc = hvac_plan()
    doc["spec"]["allowance"]["amount"] = "2five0"
    doc["spec"]["tiers"][0]["discount_percent"] = "150"
    del doc["spec"]["tiers"][1]["name"]
    doc["spec"]["allowance"]["amout"] = "1.00"
    doc["spec"]["tiers"][2]["priority"] = "high"
    found = {p.path: p.message for p in validate_ruleset(doc)}
    assert found == {
        "spec.allowance.amount": "Allowance amount must be an amount like 250.00",
        "spec.tiers[0].discount_percent": "Member discount (%) must be between 0 and 100 (like 10 or 12.5)",
        "spec.tiers[1].name": "Tier name is required",  # the path of the missing field, not its parent's
        "spec.allowance.amout": "Spending allowance has no setting “amout”",
        "spec.tiers[2].priority": "Scheduling priority must be a whole number",
    }
    assert not [m for m in found.values() if REGEX_OR_PATH.search(m)]


def test_event_messages_read_the_data_fields_of_the_events_own_type():
    bad = {"id": "e1", "type": "purchase", "customer": "c1", "occurred_at": "2025-13-01", "data": {"amount": "x"}}
    assert {p.path: p.message for p in validate_event(bad)} == {
        "data.amount": "Amount must be an amount like 250.00",
        "occurred_at": "Occurred at must be a date and time with its UTC offset, like 2025-03-01T09:30:00-05:00 or 2025-03-01T14:30:00Z",  # once, not per keyword
    }
    missing = {"id": "e2", "type": "purchase", "customer": "c1", "occurred_at": "2025-01-01T10:00:00Z", "data": {}}
    assert [(p.path, p.message, p.label) for p in validate_event(missing)] == [
        ("data.amount", "Amount is required", "Amount")]


def test_the_api_answers_each_problem_with_its_pointer_label_and_words(site):
    app, svc = site
    key = apikeys.create(svc, "default", "office", ["admin"])
    c = app.test_client()
    doc = hvac_plan()
    doc["spec"]["allowance"]["amount"] = "2five0"
    del doc["metadata"]["name"]
    r = c.post("/api/v1/rulesets", headers={"Authorization": f"Bearer {key}"}, json={"document": doc, "publish": True})
    assert r.status_code == 422
    errors = {e["pointer"]: (e["field"], e["message"]) for e in r.json["errors"]}
    assert errors["/metadata/name"] == ("Name", "Name is required")
    assert errors["/spec/allowance/amount"] == ("Allowance amount",
                                                         "Allowance amount must be an amount like 250.00")
    # A request body's own missing field points at the field, not at the body.
    r = c.post("/api/v1/customers", headers={"Authorization": f"Bearer {key}"}, json={"email": "a@b.example"})
    assert r.status_code == 422
    assert [(e["pointer"], e["message"]) for e in r.json["errors"]] == [("/name", "Name is required")]


def test_a_pack_parameter_that_breaks_a_ruleset_is_reported_at_the_parameter(cli, tmp_path):
    res = cli("packs", "install", "hvac", "--set", "basic_allowance=2five0", expect=1)
    assert "--set basic_allowance: Basic allowance must be an amount like 250.00" in res.stderr
    # A string parameter passes its own check; the plan it lands in does not: the parameter is named.
    pack = tmp_path / "hvac"
    shutil.copytree(packs_core.find("hvac").path, pack)
    manifest = pack / "pack.yaml"
    manifest.write_text(manifest.read_text().replace(
        "parameters:\n", 'parameters:\n  plan_period: {type: string, default: "yearly", label: "Membership period", '
        'help: "How long a membership runs"}\n', 1))
    plan = pack / "plan.yaml"
    plan.write_text(plan.read_text().replace("period: yearly", "period: ${plan_period}", 1))
    res = cli("packs", "install", str(pack), "--set", "plan_period=fortnightly", expect=1)
    assert "--set plan_period: Membership period must be one of: monthly, quarterly, half_yearly, yearly" in res.stderr


def test_pack_form_errors_appear_beside_their_field(site):
    app, _ = site
    b = signed_in(app)
    page = "/admin/packs/hvac"
    r = b.post(page, {"basic_allowance": "2five0", "_action": "preview", "effective_from": "2025-01-01"},
               token_from=page)
    html = r.get_data(as_text=True)
    beside = re.search(r'id="basic_allowance-error">([^<]*)<', html)
    assert beside and beside.group(1) == "Basic allowance must be an amount like 250.00"
    assert 'id="basic_allowance"' in html and html.index('id="basic_allowance"') < html.index("basic_allowance-error")
    assert "--set" not in html and "spec." not in html


# --- saving, comparing, publishing ---------------------------------------------------------------

def test_saved_rulesets_keep_the_schemas_key_order_so_compare_shows_only_the_change(cli, tmp_path):
    doc = hvac_plan()
    shuffled = {"spec": dict(reversed(list(doc["spec"].items()))), "metadata": doc["metadata"], "kind": doc["kind"],
                "apiVersion": doc["apiVersion"]}
    first = tmp_path / "plan.yaml"
    first.write_text(yaml.safe_dump(shuffled, sort_keys=False))
    cli("rulesets", "publish", str(first))
    stored = cli.json("rulesets", "show", doc["metadata"]["id"])["content"]
    assert list(stored) == ["apiVersion", "kind", "metadata", "spec"]
    assert list(stored["spec"]) == [k for k in ("currency", "period", "auto_renewal", "allowance", "tiers", "price",
                                                "included_services", "discount_percent", "priority", "emergency",
                                                "promotions", "billing", "late_charges", "cancellation")
                                    if k in stored["spec"]]
    changed = copy.deepcopy(doc)
    changed["spec"]["allowance"]["amount"] = "275.00"
    second = tmp_path / "plan2.yaml"
    second.write_text(yaml.safe_dump(changed, sort_keys=True))  # another order again
    cli("rulesets", "publish", str(second))
    diff = cli.out("rulesets", "diff", f"{doc['metadata']['id']}@1", f"{doc['metadata']['id']}@2")
    changes = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changes == ["-    amount: '250.00'", "+    amount: '275.00'"]


def test_publish_asks_first_with_the_changes_warnings_and_a_note(site):
    app, svc = site
    install_hvac(svc)
    b = signed_in(app)
    edit = "/admin/rulesets/r/hvac-comfort-club/edit"
    text = to_yaml(parse_text(_yaml_of(b, edit), "x")).replace("amount: '250.00'", "amount: '275.00'", 1)
    form = {"_mode": "yaml", "_kind": "Plan", "yaml": text, "effective_from": "2025-01-01"}
    asked = b.post(edit, {**form, "_action": "publish"}, token_from=edit).get_data(as_text=True)
    assert 'id="confirm-publish"' in asked and "Publish version 2" in asked
    assert "2 lines change" in asked
    # The Basic tier's description still quotes the old allowance.
    warnings = re.search(r'id="publish-warnings">(.*?)</div>', asked, re.S).group(1)
    assert "$250.00" in warnings and "Basic" in warnings
    history = b.get("/admin/rulesets/r/hvac-comfort-club").get_data(as_text=True)
    assert "Version 2" not in history
    done = b.post(edit, {**form, "_action": "publish:confirmed", "note": "Basic allowance up to 275.00"},
                  token_from=edit)
    assert done.status_code == 302
    history = b.get("/admin/rulesets/r/hvac-comfort-club").get_data(as_text=True)
    assert "Version 2" in history and "Basic allowance up to 275.00" in history
    assert "published" in history and "owner@heat.example" in history


def _yaml_of(b: Browser, edit: str) -> str:
    html = b.get(edit + "?mode=yaml").get_data(as_text=True)
    return html_lib.unescape(re.search(r'<textarea[^>]*id="yaml"[^>]*>(.*?)</textarea>', html, re.S).group(1))


# --- the allowance, the overdraft and the statement -------------------------------------------------

@pytest.fixture
def member(cli):
    """An HVAC Basic member (allowance 250.00 a year, overdraft 50.00) enrolled on 10 Jan 2025."""
    cli("packs", "install", "hvac")
    customer = cli.out("customers", "add", "--name", "Olive Overdraft", "--email", "olive@example.com")
    m = cli.out("enroll", customer, "hvac-comfort-club", "--tier", "basic", "--on", "2025-01-10")
    return customer, m


def test_the_statement_shows_the_overdraft_payment_line_after_the_renewal(cli, member, tmp_path):
    customer, m = member
    charged = cli.post({"id": "till-1", "type": "purchase", "customer": customer,
                        "occurred_at": "2025-06-02T10:00:00-07:00",
                        "data": {"amount": "280.00", "pay_with": "membership", "membership": m,
                                 "description": "Blower motor"}})[0]
    assert charged["status"] == "approved" and charged["from_overdraft"] == "30.00", charged
    cli("run-due", "--as-of", "2026-01-15")
    st = cli.json("statement", m, "--from", "2025-01-01", "--to", "2026-01-31")
    h = st["house"]
    assert h["opening"] == {"balance": "0.00", "overdraft_used": "0.00"}
    rows = [(line["date"], line["description"], line["amount"], line["balance"], line["overdraft_used"])
            for line in h["lines"]]
    assert rows == [
        ("2025-01-10", "Membership allowance", "250.00", "250.00", "0.00"),
        ("2025-06-02", "Charge: Blower motor", "-280.00", "0.00", "30.00"),
        ("2026-01-10", "Membership allowance", "250.00", "250.00", "30.00"),
        ("2026-01-10", "Membership Overdraft Payment", "-30.00", "220.00", "0.00"),
    ]
    assert h["closing"] == {"balance": "220.00", "overdraft_used": "0.00"}
    # The same statement as the PDF a member keeps.
    pdf = tmp_path / "statement.pdf"
    assert cli.out("statement", m, "--from", "2025-01-01", "--to", "2026-01-31", "--pdf", str(pdf)) == str(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Membership statement" in text and "Olive Overdraft" in text
    payment = next(line for line in text.splitlines() if "Membership Overdraft Payment" in line)
    assert payment.split()[-3:] == ["-30.00", "220.00", "0.00"]
    assert "Closing balance" in text


def test_all_statements_of_a_plan_print_one_member_after_another(cli, member, tmp_path):
    customer, m = member
    other = cli.out("customers", "add", "--name", "Pete Prepaid")
    cli("enroll", other, "hvac-comfort-club", "--tier", "premium", "--on", "2025-02-01")
    pdf = tmp_path / "plan.pdf"
    cli("statement", "--plan", "hvac-comfort-club", "--from", "2025-01-01", "--to", "2025-12-31", "--pdf", str(pdf))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\x0c")
    olive = [i for i, page in enumerate(pages) if "Olive Overdraft" in page]
    pete = [i for i, page in enumerate(pages) if "Pete Prepaid" in page]
    assert olive and pete and max(olive) < min(pete)  # one member after another, each from a new page
    res = cli("statement", "--plan", "no-such-plan", "--from", "2025-01-01", "--to", "2025-12-31", "--pdf",
              str(pdf), expect=1)
    assert "no membership of plan" in res.stderr


def test_charging_past_the_balance_shows_the_overdraft_on_the_customer_page(site):
    app, svc = site
    packs.install(svc, "default", packs.find("hvac"), author="test",
                  effective_from=date(2020, 1, 1))
    customer = svc.add_customer("Olive Overdraft", "olive@example.com")
    m = svc.enroll(customer, "hvac-comfort-club", date(2025, 1, 10), tier="basic")["membership"]
    b = signed_in(app)
    page = f"/admin/memberships/show/{m}"
    html = b.get(page).get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', html).group(1)
    typo = b.post(f"/admin/memberships/charge/{m}", {"amount": "2five0", "on": "2025-06-02", "key": key},
                  token_from=page).get_data(as_text=True)
    assert re.search(r'id="charge-amount-error">Amount must be an amount like 250.00<', typo)
    form = {"amount": "280.00", "description": "Blower motor", "on": "2025-06-02", "key": key}
    r = b.post(f"/admin/memberships/charge/{m}", form, token_from=page)
    assert r.status_code == 302
    again = b.post(f"/admin/memberships/charge/{m}", form, token_from=page)  # a second click: the same charge
    assert again.status_code == 302
    assert "of which 30.00 from the overdraft" in b.get(page).get_data(as_text=True)
    row = re.search(rf'<tr data-membership="{m}">(.*?)</tr>',
                    b.get(f"/admin/customers/details/?id={customer}").get_data(as_text=True), re.S).group(1)
    cells = dict(re.findall(r'data-key="(\w+)">([^<]*)<', row))
    assert cells == {"balance": "0.00", "overdraft_used": "30.00", "available": "20.00"}
    past = b.post(f"/admin/memberships/charge/{m}", {"amount": "20.01", "on": "2025-06-03", "key": "k2"},
                  token_from=page).get_data(as_text=True)
    assert re.search(r'id="charge-amount-error">Not charged: [^<]*20.00', past)
    statement = b.get(f"/admin/memberships/statement/{m}?from=2025-01-01&to=2025-12-31").get_data(as_text=True)
    assert re.search(r'id="closing-overdraft">30.00<', statement)
    pdf = b.get(f"/admin/memberships/statement/{m}?from=2025-01-01&to=2025-12-31&format=pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data[:5] == b"%PDF-"


def test_the_api_serves_the_statement_pdf_to_keys_of_the_company_only(site):
    app, svc = site
    packs.install(svc, "default", packs.find("hvac"), author="test",
                  effective_from=date(2020, 1, 1))
    customer = svc.add_customer("Olive Overdraft")
    m = svc.enroll(customer, "hvac-comfort-club", date(2025, 1, 10), tier="basic")["membership"]
    c = app.test_client()
    ours = {"Authorization": f"Bearer {svc.create_api_key('office')}"}
    theirs = {"Authorization": f"Bearer {svc.create_api_key('them', company='other')}"}
    r = c.get(f"/api/v1/memberships/{m}/statement.pdf?from=2025-01-01&to=2025-03-31", headers=ours)
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data[:5] == b"%PDF-"
    assert c.get(f"/api/v1/memberships/{m}/statement.pdf?from=2025-01-01&to=2025-03-31",
                 headers=theirs).status_code == 404
    bad = c.get(f"/api/v1/memberships/{m}/statement.pdf?from=2025-04-01&to=2025-03-31", headers=ours)
    assert bad.status_code == 422


def test_versions_read_in_words_on_the_rulesets_pages(site):
    app, svc = site
    install_hvac(svc)
    b = signed_in(app)
    index = b.get("/admin/rulesets/").get_data(as_text=True)
    assert "Membership plans" in index and "Points rules" in index and "EarningRules</td>" not in index
    assert "New: Messages" in index and "1970" not in index and "from the start" in index
    history = b.get("/admin/rulesets/r/hvac-comfort-club").get_data(as_text=True)
    assert re.search(r"Version 1</a> · published \d{1,2} \w{3} \d{4} by test", history)


def test_cli_keeps_unknown_membership_usage_clear(cli):
    res = cli("statement", "--from", "2025-01-01", "--to", "2025-01-31", expect=2)
    assert "name a membership" in res.output


def test_lists_find_members_by_name_or_email_and_show_names_in_date_order(site):
    app, svc = site
    packs.install(svc, "default", packs.find("hvac"), author="test", effective_from=date(2020, 1, 1))
    olive = svc.add_customer("Olive Overdraft", "olive@example.com")
    pete = svc.add_customer("Pete Prepaid", "pete@example.com")
    mo = svc.enroll(olive, "hvac-comfort-club", date(2025, 1, 10), tier="basic")["membership"]
    svc.enroll(pete, "hvac-comfort-club", date(2025, 1, 12), tier="basic")
    for key, day, amount in (("late", "2025-03-05", "20.00"), ("early", "2025-02-01", "10.00")):  # sent out of order
        r = svc.post_event({"id": key, "type": "purchase", "customer": olive, "occurred_at": f"{day}T10:00:00Z",
                            "data": {"amount": amount, "pay_with": "membership", "membership": mo}})
        assert r["status"] == "approved", r
    b = signed_in(app)
    found = b.get("/admin/memberships/?q=olive@example").get_data(as_text=True)
    assert "Olive Overdraft" in found and "Pete Prepaid" not in found
    ledger = b.get("/admin/ledger/?q=Olive").get_data(as_text=True)
    dates = re.findall(r"<td>(\d{4}-\d{2}-\d{2})</td>\s*<td>Olive Overdraft</td>", ledger)
    assert dates == sorted(dates, reverse=True) and dates[0] == "2025-03-05" and "2025-02-01" in dates
    assert "Pete Prepaid" not in ledger
    events = b.get("/admin/events/?q=Olive").get_data(as_text=True)
    rows = re.findall(r'<tr>(.*?)</tr>', events, re.S)
    late = next(row for row in rows if ">late<" in row)
    assert "charged 20.00" in late and "Olive Overdraft" in late and "<details>" in late
    assert events.index(">late<") < events.index(">early<")  # the later day first


def test_the_dashboard_shows_the_business_and_links_each_tile_to_its_list(site):
    app, svc = site
    b = signed_in(app)
    home = b.get("/admin/").get_data(as_text=True)
    assert re.search(r'<li data-done="no">[^✓]*Install an industry template pack', home)
    packs.install(svc, "default", packs.find("hvac"), author="test", effective_from=date(2020, 1, 1))
    ada = svc.add_customer("Ada Renewing", "ada@example.com")
    bo = svc.add_customer("Bo New", "bo@example.com")
    today = companies.today(svc, "default")
    # Enrolled a year ago less 17 days: the membership year ends within 30 days.
    soon = svc.enroll(ada, "hvac-comfort-club", today - timedelta(days=365 - 17), tier="basic")["membership"]
    svc.enroll(bo, "hvac-comfort-club", today.replace(day=1), tier="premium")
    r = svc.post_event({"id": "till-1", "type": "purchase", "customer": ada, "occurred_at": f"{today}T09:00:00Z",
                        "data": {"amount": "280.00", "pay_with": "membership", "membership": soon}})
    assert r["status"] == "approved" and r["from_overdraft"] == "30.00", r
    home = b.get("/admin/").get_data(as_text=True)

    def tile(name: str) -> str:
        return re.sub(r"<[^>]+>", "", re.search(rf'id="tile-{name}"[^>]*>(.*?)</a>', home, re.S).group(1)).strip()

    assert tile("active") == "2 active members"
    assert tile("new") == "1 new this month"
    assert tile("renewals-30") == "1 renew or expire in 30 days"
    assert tile("overdraft") == "30.00 overdraft used by members"
    assert tile("allowance") == "500.00 allowance left to members"  # Bo's premium 500.00; Ada's is spent
    points = sum(svc.points(c)["balance"] for c in (ada, bo))
    assert tile("points").startswith(f"{points} points outstanding") and points > 0
    link = re.search(r'id="tile-renewals-30" href="([^"]+)"', home).group(1).replace("&amp;", "&")
    listed = b.get(link).get_data(as_text=True)
    assert "Ada Renewing" in listed and "Bo New" not in listed
    for chart in ("chart-over-time", "chart-by-plan"):
        svg = re.search(rf'id="{chart}"[^>]*>(.*?)</figure>', home, re.S).group(1)
        assert svg.lstrip().startswith("<svg") and "<script" not in svg and "http://kozea" not in svg
    assert re.search(r'<li data-done="yes">✓ <a[^>]*>Install an industry template pack', home)
    assert re.search(r'<li data-done="no">Create an API key', home)
