"""Two rules checked on every endpoint of the API's contract table (so a new endpoint is checked
the day it is added): another company's ids are not found (404, and nothing of theirs changes),
and a key without the endpoint's scope is refused (403 naming the scope)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.interfaces.http.contract import ENDPOINTS
from keepwell.usecases import apikeys, billing
from support import make_app

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "vip", "name": "VIP"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly"}, "price": {"monthly": "10.00"},
                 "tiers": [{"id": "standard", "name": "Standard"}, {"id": "gold", "name": "Gold"}]}}
CATALOG = {"apiVersion": "keepwell/v1", "kind": "RewardCatalog", "metadata": {"id": "gifts", "name": "Gifts"},
           "spec": {"rewards": [{"id": "mug", "name": "Mug", "type": "merchandise", "points": 1, "inventory": 5}]}}
TODAY = datetime.now(UTC).date().isoformat()
# A body each operation accepts (so that what answers is the rule under test, not validation).
BODIES = {
    "post_events": {"id": "t-1", "type": "purchase", "customer": "{customer_id}",
                    "occurred_at": f"{TODAY}T12:00:00+00:00", "data": {"amount": "1.00"}},
    "add_customer": {"name": "New"}, "update_customer": {"name": "Renamed"},
    "enroll": {"customer": "{customer_id}", "plan": "vip", "on": TODAY},
    "cancel_membership": {}, "change_tier": {"tier": "gold"},
    "migrate_memberships": {"plan": "vip", "to": "vip@1"},
    "validate_rulesets": {"documents": [PLAN]}, "save_ruleset": {"document": PLAN},
    "rollback_ruleset": {"to_version": 1}, "install_pack": {},
    "update_company": {"name": "Renamed Co"},
    "create_api_key": {"name": "till"},
    "add_webhook_endpoint": {"url": "https://pos.example/hook", "event_types": ["points.earned"]},
    "update_webhook_endpoint": {"enabled": False},
    "replay_webhooks": {"from": TODAY, "to": TODAY},
    "simulate": {"draft": PLAN, "from": TODAY, "to": TODAY},
    "add_payment_method": {"test_card": "success"}, "run_billing": {"as_of": TODAY},
    "redeem_reward": {"customer": "{customer_id}", "reward": "mug"},
    "adjust_points": {"amount": 5, "reason": "goodwill"},
    "add_location": {"name": "Boulder"}, "update_location": {"tax_rate": "4.5"},
    "set_renewal": {"auto_renewal": False},
    # Visits (#19)
    "set_service_duration": {"service_code": "AC_TUNE", "minutes": 60},
    "add_technician": {"name": "Tess", "hours": {"mon-sun": "00:00-24:00"}, "skills": [{"service_code": "AC_TUNE"}]},
    "add_time_off": {"from": "2030-01-01"}, "technician_calendar": {}, "customer_calendar": {},
    "schedule_visit": {"customer": "{customer_id}", "service_code": "AC_TUNE", "start": f"{TODAY}T09:00"},
    "reschedule_visit": {"start": f"{TODAY}T12:00"}, "cancel_visit": {"by": "member"}, "complete_visit": {},
    "add_report_schedule": {"report": "churn", "cadence": "monthly", "day": 1, "recipients": ["owner@example.com"]},
}
# Paths of a company's own things: another company's key must not find them.
OWNED = {"customer_id", "membership_id", "event_id", "key", "endpoint_id", "key_id", "job_id", "number",
         "payment_method_id", "redemption_id", "location_id", "technician_id", "visit_id", "schedule_id"}


@pytest.fixture
def world(db_url):
    svc = make_app(db_url)
    svc.add_company("other", "Other Co")
    svc.publish(PLAN, "test", date(1970, 1, 1))
    svc.publish(CATALOG, "test", date(1970, 1, 1))
    c = create_app({"TESTING": True}, service=svc, settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"})).test_client()
    admin = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 'mine', ['admin'])}"}
    cid = c.post("/api/v1/customers", headers=admin, json={"name": "Ann"}).json["id"]
    mid = c.post("/api/v1/enrollments", headers=admin, json={"customer": cid, "plan": "vip", "on": TODAY,
                                                             "cadence": "monthly"}).json["membership"]
    pm = c.post(f"/api/v1/customers/{cid}/payment_methods", headers=admin, json={"test_card": "success"}).json["id"]
    billing.run(svc, "default", datetime.now(UTC).date())  # invoice 1
    c.post("/api/v1/events", headers=admin, json={**BODIES["post_events"], "customer": cid})
    c.post("/api/v1/events", headers=admin, json={"id": "adj-1", "type": "adjustment", "customer": cid,
                                                  "occurred_at": f"{TODAY}T12:00:00+00:00",
                                                  "data": {"unit": "points", "amount": "10", "reason": "welcome"}})
    redemption = c.post("/api/v1/rewards/redemptions", headers=admin, json={"customer": cid, "reward": "mug"})
    assert redemption.status_code == 201, redemption.get_json()
    endpoint = c.post("/api/v1/webhook_endpoints", headers=admin, json=BODIES["add_webhook_endpoint"]).json["id"]
    location = c.post("/api/v1/locations", headers=admin, json={"name": "Denver", "timezone": "America/Denver"}).json["id"]
    key_id = max(k["id"] for k in c.get("/api/v1/api_keys", headers=admin).json["api_keys"])
    c.post("/api/v1/service_durations", headers=admin, json=BODIES["set_service_duration"])
    tech = c.post("/api/v1/technicians", headers=admin, json=BODIES["add_technician"]).json["id"]
    visit = c.post("/api/v1/visits", headers=admin, json={**BODIES["schedule_visit"], "customer": cid})
    assert visit.status_code == 201, visit.get_json()
    schedule = c.post("/api/v1/report_schedules", headers=admin, json=BODIES["add_report_schedule"]).json["id"]
    ids = {"customer_id": cid, "membership_id": mid, "event_id": "t-1", "key": "vip", "version": "1",
           "endpoint_id": str(endpoint), "key_id": str(key_id), "job_id": "no-such-job", "name": "hvac",
           "number": "1", "payment_method_id": pm, "redemption_id": redemption.json["redemption"],
           "action": "fulfil", "location_id": location, "report": "statement",
           "technician_id": tech, "visit_id": visit.json["id"], "schedule_id": str(schedule)}
    yield svc, c, admin, ids
    svc.close()


def call(c, e, ids: dict, headers: dict):
    path = "/api/v1" + re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], e.path)
    body = BODIES.get(e.operation)
    if isinstance(body, dict):
        body = {k: (v.format(**ids) if isinstance(v, str) and "{" in v else v) for k, v in body.items()}
    path += {"statement": f"?from={TODAY}&to={TODAY}", "statement_pdf": f"?from={TODAY}&to={TODAY}", "ruleset_diff": "?from=1&to=1",
             "list_invoices": f"?membership={ids['membership_id']}", "tier_preview": "?tier=gold"}.get(e.operation, "")
    kwargs = {"json": body if body is not None else {}} if e.method in ("post", "patch") else {}
    return getattr(c, e.method)(path, headers=headers, **kwargs)


def test_another_companys_ids_are_not_found_by_any_endpoint(world):
    svc, c, admin, ids = world
    other = {"Authorization": f"Bearer {apikeys.create(svc, 'other', 'theirs', ['admin'])}"}
    checked = []
    for e in ENDPOINTS:
        params = set(re.findall(r"\{(\w+)\}", e.path))
        if not params & OWNED:
            continue
        r = call(c, e, ids, other)
        assert r.status_code == 404, (e.method, e.path, r.status_code, r.get_json())
        checked.append(e.operation)
    assert {"get_customer", "membership", "cancel_membership", "get_event", "ruleset_version", "rollback_ruleset",
            "get_webhook_endpoint", "replay_webhooks", "revoke_api_key", "get_invoice",
            "remove_report_schedule"} <= set(checked)
    # Nothing of the first company changed.
    assert c.get(f"/api/v1/customers/{ids['customer_id']}", headers=admin).json["name"] == "Ann"
    assert c.get(f"/api/v1/memberships/{ids['membership_id']}", headers=admin).json["status"] == "active"
    assert c.get(f"/api/v1/webhook_endpoints/{ids['endpoint_id']}", headers=admin).json["enabled"] is True
    assert [v["version"] for v in c.get("/api/v1/rulesets/vip", headers=admin).json["versions"]] == [1]
    assert c.get("/api/v1/rulesets", headers=admin).status_code == 200  # the key was not revoked
    assert [s["id"] for s in c.get("/api/v1/report_schedules", headers=admin).json["report_schedules"]] == [
        int(ids["schedule_id"])]  # nor the schedule removed


def test_a_key_without_an_endpoints_scope_is_refused(world):
    svc, c, _admin, ids = world
    for e in ENDPOINTS:
        needed = e.scope
        others = [s for s in apikeys.SCOPES if s not in (needed, "admin")]
        headers = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 'narrow', others)}"}
        r = call(c, e, ids, headers)
        assert r.status_code == 403 and r.get_json()["needed_scope"] == needed, (e.method, e.path, r.status_code)


def test_every_read_answers_with_the_body_its_schema_describes(world):
    """Each GET, with the owner's key on real data, answers what the OpenAPI document says."""
    from jsonschema import Draft202012Validator

    svc, c, admin, ids = world
    doc = c.get("/api/v1/openapi.json").json
    seen = []
    for e in ENDPOINTS:
        if e.method != "get" or e.operation in ("simulation_status",):
            continue
        r = call(c, e, ids, admin)
        assert r.status_code == 200, (e.path, r.status_code, r.get_json())
        content = doc["paths"][e.path]["get"]["responses"]["200"]["content"]
        if "application/pdf" in content and "application/json" not in content:  # a document: what it says is checked where it is made
            assert r.mimetype == "application/pdf" and r.data[:5] == b"%PDF-", e.path
            continue
        schema = content["application/json"]["schema"]
        errors = list(Draft202012Validator({**schema, "components": doc["components"]}).iter_errors(r.get_json()))
        assert not errors, (e.path, [f"{list(x.absolute_path)}: {x.message}" for x in errors][:3])
        if "$ref" in schema:
            seen.append(schema["$ref"].rsplit("/", 1)[-1])
    assert {"Membership", "MembershipPage", "MembershipList", "Event", "EventPage", "WebhookEndpoint", "Company",
            "Customer", "CustomerPage", "ReportScheduleList"} <= set(seen)
