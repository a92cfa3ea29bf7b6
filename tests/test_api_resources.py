"""The rest of the admin's and CLI's configuration through the REST API: the company's own
settings, rulesets (validate, draft, publish, versions, diff, rollback) and template packs; each
for its own company only, the writes for `admin` keys only."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime

import pytest

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.usecases import apikeys
from support import make_app

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "vip", "name": "VIP"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly", "overdraft": {"limit": "20.00"}}}}


@pytest.fixture
def svc(db_url):
    app = make_app(db_url)
    app.add_company("other", "Other Co")
    yield app
    app.close()


@pytest.fixture
def c(svc):
    return create_app({"TESTING": True}, service=svc, settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"})).test_client()


def key(svc, company="default", scopes=("admin",)):
    return {"Authorization": f"Bearer {apikeys.create(svc, company, 'test', list(scopes))}"}


def test_the_company_reads_and_changes_its_own_settings(svc, c):
    admin, reader = key(svc), key(svc, scopes=("read",))
    shown = c.get("/api/v1/company", headers=reader).json
    assert shown["slug"] == "default" and "webhook_secret" not in shown and shown["webhook_secret_set"] is False
    r = c.patch("/api/v1/company", headers=admin, json={"email": "office@heat.example", "quiet_hours": "21:00-08:00",
                                                        "adjustment_limit": "500.00"})
    assert r.status_code == 200, r.json
    assert (r.json["email"], r.json["quiet_hours"], r.json["adjustment_limit"]) == (
        "office@heat.example", "21:00-08:00", "500.00")
    r = c.patch("/api/v1/company", headers=admin, json={"quiet_hours": "late", "timezone": "Mars/Olympus"})
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] in ("/quiet_hours", "/timezone")
    assert c.get("/api/v1/company", headers=reader).json["email"] == "office@heat.example"  # nothing half-applied
    r = c.patch("/api/v1/company", headers=reader, json={"name": "Mine now"})
    assert r.status_code == 403 and r.json["needed_scope"] == "admin"
    assert c.get("/api/v1/company", headers=key(svc, "other")).json["slug"] == "other"


def test_rulesets_validate_draft_publish_compare_and_roll_back(svc, c):
    admin = key(svc)
    broken = copy.deepcopy(PLAN)
    broken["spec"]["allowance"]["amount"] = "2five0"
    r = c.post("/api/v1/rulesets/validate", headers=admin, json={"documents": [PLAN, broken]})
    assert r.status_code == 200 and r.json["valid"] is False
    first, second = r.json["documents"]
    assert first == {"index": 0, "valid": True, "errors": []}
    assert not second["valid"] and [e["path"] for e in second["errors"]] == ["spec.allowance.amount"]
    # A draft may be invalid (kept, with its problems); publishing it is refused with them.
    r = c.post("/api/v1/rulesets", headers=admin, json={"document": broken})
    assert r.status_code == 200 and r.json["draft"] and not r.json["valid"] and r.json["errors"]
    r = c.post("/api/v1/rulesets", headers=admin, json={"document": broken, "publish": True})
    assert r.status_code == 422
    r = c.post("/api/v1/rulesets", headers=admin, json={"document": PLAN, "publish": True, "effective_from": "2026-01-01"})
    assert r.status_code == 201 and r.json == {"ref": "vip@1", "version": 1, "created": True}
    richer = copy.deepcopy(PLAN)
    richer["spec"]["allowance"]["amount"] = "150.00"
    assert c.post("/api/v1/rulesets", headers=admin, json={"document": richer, "publish": True}).json["ref"] == "vip@2"
    versions = c.get("/api/v1/rulesets/vip", headers=admin).json["versions"]
    assert [v["version"] for v in versions] == [2, 1] or [v["version"] for v in versions] == [1, 2]
    one = c.get("/api/v1/rulesets/vip/versions/1", headers=admin).json
    assert one["content"]["spec"]["allowance"]["amount"] == "100.00" and one["author"] == "API key"
    diff = c.get("/api/v1/rulesets/vip/diff?from=1&to=2", headers=admin).json["diff"]
    assert "100.00" in diff and "150.00" in diff
    assert c.get("/api/v1/rulesets/vip/diff?from=1", headers=admin).status_code == 422
    r = c.post("/api/v1/rulesets/vip/rollback", headers=admin, json={"to_version": 1})
    assert r.status_code == 201 and r.json["ref"] == "vip@3"
    assert c.get("/api/v1/rulesets/vip/versions/3", headers=admin).json["content"]["spec"]["allowance"]["amount"] == "100.00"
    # Another company sees none of it; a key without admin cannot publish.
    other = key(svc, "other")
    assert c.get("/api/v1/rulesets/vip", headers=other).status_code == 404
    assert c.get("/api/v1/rulesets/vip/versions/1", headers=other).status_code == 404
    assert c.post("/api/v1/rulesets/vip/rollback", headers=other, json={"to_version": 1}).status_code == 404
    r = c.post("/api/v1/rulesets", headers=key(svc, scopes=("read", "events:write")), json={"document": PLAN})
    assert r.status_code == 403 and r.json["needed_scope"] == "admin"


def test_packs_are_listed_and_installed_all_or_none(svc, c):
    admin = key(svc)
    listed = c.get("/api/v1/packs", headers=key(svc, scopes=("read",))).json["packs"]
    names = [p["name"] for p in listed]
    assert "hvac" in names
    r = c.post("/api/v1/packs/hvac/install", headers=admin, json={})
    assert r.status_code == 201 and r.json["published"]
    installed = c.get("/api/v1/rulesets", headers=admin).json["rulesets"]
    assert len(installed) == len(r.json["published"])
    assert c.get("/api/v1/rulesets", headers=key(svc, "other")).json["rulesets"] == []
    assert c.post("/api/v1/packs/../../etc/install", headers=admin, json={}).status_code == 404
    assert c.post("/api/v1/packs/nope/install", headers=admin, json={}).status_code == 404
    assert c.post("/api/v1/packs/hvac/install", headers=key(svc, scopes=("read",)), json={}).status_code == 403


def test_memberships_are_listed_by_customer_plan_and_status_and_cancelling_is_previewed(svc, c):
    admin = key(svc, scopes=("admin",))
    today = datetime.now(UTC).date().isoformat()
    svc.publish(PLAN, "test", date(1970, 1, 1))
    people = [c.post("/api/v1/customers", headers=admin, json={"name": f"Member {n}"}).json["id"] for n in range(3)]
    mids = [c.post("/api/v1/enrollments", headers=admin, json={"customer": p, "plan": "vip", "on": today}).json["membership"]
            for p in people]
    assert c.post(f"/api/v1/memberships/{mids[2]}/cancel", headers=admin, json={}).status_code == 200
    page = c.get("/api/v1/memberships?limit=2", headers=admin).json
    assert [m["id"] for m in page["memberships"]] == mids[:2] and page["has_more"]
    rest = c.get(page["next"], headers=admin).json
    assert [m["id"] for m in rest["memberships"]] == mids[2:] and not rest["has_more"]
    active = c.get("/api/v1/memberships?status=active&plan=vip", headers=admin).json["memberships"]
    assert [m["id"] for m in active] == mids[:2]
    assert [m["id"] for m in c.get(f"/api/v1/memberships?customer={people[1]}", headers=admin).json["memberships"]] == [
        mids[1]]
    assert c.get("/api/v1/memberships?status=paused", headers=admin).status_code == 422
    assert c.get("/api/v1/memberships?starting_after=mem_nope", headers=admin).status_code == 422
    assert c.get("/api/v1/memberships", headers=key(svc, "other")).json["memberships"] == []
    # The preview changes nothing and says what is left.
    preview = c.get(f"/api/v1/memberships/{mids[0]}/cancel_preview", headers=admin).json
    assert preview["status_after"] == "cancelled" and preview["now"]["allowance"]["balance"] == "100.00"
    assert c.get(f"/api/v1/memberships/{mids[0]}", headers=admin).json["status"] == "active"
    assert c.get(f"/api/v1/memberships/{mids[2]}/cancel_preview", headers=admin).status_code == 402  # cancelled already
    assert c.get(f"/api/v1/memberships/{mids[0]}/cancel_preview", headers=key(svc, "other")).status_code == 404
    # Migrating to another version: previewed, then applied.
    richer = copy.deepcopy(PLAN)
    richer["spec"]["allowance"]["amount"] = "150.00"
    svc.publish(richer, "test", date(1970, 1, 1))
    r = c.post("/api/v1/memberships/migrate", headers=admin, json={"plan": "vip", "to": "vip@2"})
    assert r.status_code == 200 and not r.json["applied"] and len(r.json["memberships"]) == 2
    r = c.post("/api/v1/memberships/migrate", headers=admin, json={"plan": "vip", "to": "vip@2", "apply": True})
    assert all(m["applied"] for m in r.json["memberships"])
    assert c.get(f"/api/v1/memberships/{mids[0]}", headers=admin).json["plan"] == "vip@2"
    assert c.post("/api/v1/memberships/migrate", headers=key(svc, scopes=("memberships:write",)),
                  json={"plan": "vip", "to": "vip@2"}).status_code == 403


def test_customers_carry_the_id_another_system_knows_them_by(svc, c):
    h = key(svc, scopes=("customers:write", "read"))
    ann = c.post("/api/v1/customers", headers=h, json={"name": "Ann Lee", "external_id": "POS-00017"})
    assert ann.status_code == 201 and ann.json["external_id"] == "POS-00017"
    again = c.post("/api/v1/customers", headers=h, json={"name": "Ann Again", "external_id": "POS-00017"})
    assert again.status_code == 409 and ann.json["id"] in again.json["detail"]
    bob = c.post("/api/v1/customers", headers=h, json={"name": "Bob Ray"}).json
    found = c.get("/api/v1/customers?external_id=POS-00017", headers=h).json["customers"]
    assert [x["id"] for x in found] == [ann.json["id"]]
    assert c.patch(f"/api/v1/customers/{bob['id']}", headers=h, json={"external_id": "POS-00017"}).status_code == 409
    r = c.patch(f"/api/v1/customers/{bob['id']}", headers=h, json={"external_id": "POS-00018"})
    assert r.status_code == 200 and r.json["external_id"] == "POS-00018"
    # Another company's customers may have the same external ids, and do not see these.
    other = key(svc, "other", scopes=("customers:write", "read"))
    assert c.post("/api/v1/customers", headers=other, json={"name": "Cy", "external_id": "POS-00017"}).status_code == 201
    assert c.get("/api/v1/customers?external_id=POS-00018", headers=other).json["customers"] == []


def test_a_customers_channel_choices_are_changed_through_the_api(svc, c):
    from keepwell.customers.customers import opted_out

    h = key(svc, scopes=("customers:write", "read"))
    cid = c.post("/api/v1/customers", headers=h, json={"name": "Quiet Quinn", "email": "q@example.com"}).json["id"]
    assert c.patch(f"/api/v1/customers/{cid}", headers=h, json={"opt_out": ["email", "sms"]}).status_code == 200

    def choices():
        return svc.run("default", lambda ctx: {ch: opted_out(ctx.session, cid, ch) for ch in ("email", "sms")})

    assert choices() == {"email": True, "sms": True}
    assert c.patch(f"/api/v1/customers/{cid}", headers=h, json={"opt_in": ["sms"]}).status_code == 200
    assert choices() == {"email": True, "sms": False}
    assert c.patch(f"/api/v1/customers/{cid}", headers=h, json={"opt_out": ["fax"]}).status_code == 422
