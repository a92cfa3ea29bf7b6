"""The REST API as an integrator meets it (issue 13, first part): problem details on every error,
a request id on every response, per-key rate limits with their headers, customers found by
email, phone or name and paged by cursor, a customer's memberships, one event read back."""

from __future__ import annotations

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
    app.publish(PLAN, "test", date(1970, 1, 1))
    app.add_company("other", "Other Co")
    yield app
    app.close()


def client_of(svc, **env):
    settings = Settings.from_env({"KEEPWELL_SECRET_KEY": "k", **env})
    return create_app({"TESTING": True}, service=svc, settings=settings).test_client()


def h(svc, company="default", scopes=apikeys.DEFAULT_SCOPES):
    return {"Authorization": f"Bearer {apikeys.create(svc, company, 'test', list(scopes))}"}


def test_errors_are_problem_details_with_pointers(svc):
    c, auth = client_of(svc), h(svc)
    r = c.post("/api/v1/events", json={"id": "x", "type": "purchase", "customer": "nobody",
                                       "occurred_at": "soon", "data": {"amount": "2five0"}}, headers=auth)
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    body = r.json
    assert (body["status"], body["code"], body["type"].endswith("/invalid")) == (422, "invalid", True)
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/occurred_at", "/data/amount"} <= pointers  # every problem, not only the first
    assert body["error"]["errors"]  # the earlier shape is still there
    for path, method, status, code in (("/api/v1/nowhere", "get", 404, "not_found"),
                                       ("/api/v1/rulesets", "delete", 405, "method_not_allowed")):
        r = getattr(c, method)(path, headers=auth)
        assert (r.status_code, r.mimetype, r.json["code"], r.json["status"]) == (
            status, "application/problem+json", code, status)
    r = c.post("/api/v1/customers", data="name=Ann", content_type="application/x-www-form-urlencoded", headers=auth)
    assert r.status_code == 415 and r.json["code"] == "unsupported_media_type"
    r = c.get("/api/v1/rulesets")
    assert r.status_code == 401 and r.json["code"] == "unauthorized"
    assert c.get("/admin/nowhere").mimetype == "text/html"  # the admin keeps its pages


def test_every_response_has_a_request_id_echoed_when_sent(svc):
    c, auth = client_of(svc), h(svc)
    mine = c.get("/api/v1/rulesets", headers={**auth, "X-Request-Id": "till-7-0042"})
    assert mine.headers["X-Request-Id"] == "till-7-0042"
    ours = {c.get("/api/v1/rulesets", headers=auth).headers["X-Request-Id"] for _ in range(3)}
    assert len(ours) == 3
    assert c.get("/api/v1/rulesets", headers={**auth, "X-Request-Id": "<script> & spaces"}).headers[
        "X-Request-Id"] != "<script> & spaces"  # not echoed: a fresh one instead


def test_rate_limits_per_key_with_headers_and_429(svc):
    c = client_of(svc, KEEPWELL_API_RATE_LIMIT="3 per minute")
    first, second = h(svc), h(svc)
    answers = [c.get("/api/v1/rulesets", headers=first) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3" and answers[0].headers["RateLimit-Remaining"] == "2"
    limited = answers[3]
    assert limited.mimetype == "application/problem+json" and limited.json["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    assert c.get("/api/v1/rulesets", headers=second).status_code == 200  # another key counts on its own


def test_customers_found_by_email_phone_and_name_and_paged_by_cursor(svc):
    c, auth = client_of(svc), h(svc)
    made = [c.post("/api/v1/customers", json={"name": f"Customer {i:02d}", "email": f"c{i}@example.com",
                                              "phone": f"+1303555{i:04d}"}, headers=auth).json["id"]
            for i in range(7)]
    c.post("/api/v1/customers", json={"name": "Other's"}, headers=h(svc, "other"))
    seen, url, late = [], "/api/v1/customers?limit=3", None
    while url:
        page = c.get(url, headers=auth).json
        seen += [x["id"] for x in page["customers"]]
        if late is None:  # added while paging: it comes last, and no page shifts
            late = c.post("/api/v1/customers", json={"name": "Late"}, headers=auth).json["id"]
        url = page["next"]
    assert seen == made + [late]
    by_email = c.get("/api/v1/customers?email=C3@Example.com", headers=auth).json["customers"]
    assert [x["id"] for x in by_email] == [made[3]]
    by_phone = c.get("/api/v1/customers?phone=(303) 555-0004", headers=auth).json["customers"]
    assert [x["id"] for x in by_phone] == [made[4]]
    by_name = c.get("/api/v1/customers?q=tomer 0", headers=auth).json["customers"]
    assert len(by_name) == 7
    assert c.get("/api/v1/customers?q=100%25", headers=auth).json["customers"] == []  # % is no wildcard
    r = c.get("/api/v1/customers?starting_after=cus_nope", headers=auth)
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/starting_after"


def test_a_customers_memberships_and_one_event_read_back_in_the_company_only(svc):
    c, auth = client_of(svc), h(svc)
    cust = c.post("/api/v1/customers", json={"name": "Ann"}, headers=auth).json["id"]
    mid = c.post("/api/v1/enrollments", json={"customer": cust, "plan": "vip", "on": date.today().isoformat()},
                 headers=auth).json["membership"]
    listed = c.get(f"/api/v1/customers/{cust}/memberships", headers=auth).json["memberships"]
    assert [m["id"] for m in listed] == [mid]
    ev = {"id": "pos-1", "type": "purchase", "customer": cust, "occurred_at": datetime.now(UTC).isoformat(),
          "data": {"amount": "30.00", "pay_with": "membership"}}
    assert c.post("/api/v1/events", json=ev, headers=auth).status_code == 201
    got = c.get("/api/v1/events/pos-1", headers=auth).json
    assert (got["status"], got["customer"], got["result"]["balance"], got["payload"]["data"]) == (
        "processed", cust, "70.00", ev["data"])
    theirs = h(svc, "other")
    assert c.get("/api/v1/events/pos-1", headers=theirs).status_code == 404
    assert c.get(f"/api/v1/customers/{cust}/memberships", headers=theirs).status_code == 404
    assert c.get(f"/api/v1/customers/{cust}", headers=theirs).status_code == 404
    no_read = h(svc, scopes=["events:write"])
    assert c.get("/api/v1/events/pos-1", headers=no_read).json["needed_scope"] == "read"


def test_idempotency_keys_on_posts(svc):
    import hashlib

    from keepwell.usecases import idempotency

    c, auth = client_of(svc), h(svc)
    body = b'{"name": "Ann Lee", "email": "ann@example.com"}'

    def post(key, data=body, headers=auth):
        return c.post("/api/v1/customers", data=data, content_type="application/json",
                      headers={**headers, "Idempotency-Key": key})

    first, again = post("pos-77-create-ann"), post("pos-77-create-ann")
    assert first.status_code == again.status_code == 201 and first.data == again.data
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(c.get("/api/v1/customers", headers=auth).json["customers"]) == 1  # created once
    other = post("pos-77-create-ann", data=b'{"name": "Bob"}')
    assert other.status_code == 422 and other.json["errors"][0]["pointer"] == "/Idempotency-Key"
    theirs = post("pos-77-create-ann", headers=h(svc, "other"))  # keys are per company
    assert theirs.status_code == 201 and theirs.json["id"] != first.json["id"]
    # a request while the first with its key is still running
    fingerprint = hashlib.sha256(b"POST /api/v1/customers\n" + body).hexdigest()
    assert idempotency.begin(svc, "default", "in-flight", fingerprint) is None
    r = post("in-flight")
    assert r.status_code == 409 and r.json["code"] == "conflict"
    idempotency.finish(svc, "default", "in-flight", None)
    assert post("in-flight").status_code == 201
    assert post("bad key with spaces").status_code == 422
    # a refused request is answered the same way again, and creates nothing
    bad = b'{"name": ""}'
    one, two = post("bad-1", data=bad), post("bad-1", data=bad)
    assert one.status_code == two.status_code == 422 and one.data == two.data


def test_events_listed_by_customer_and_type_a_page_at_a_time(svc):
    c, auth = client_of(svc), h(svc)
    ann = c.post("/api/v1/customers", json={"name": "Ann"}, headers=auth).json["id"]
    bob = c.post("/api/v1/customers", json={"name": "Bob"}, headers=auth).json["id"]
    now = datetime.now(UTC).isoformat()
    for i in range(5):
        for who in (ann, bob):
            c.post("/api/v1/events", headers=auth, json={"id": f"{who}-{i}", "type": "referral", "customer": who,
                                                         "occurred_at": now, "data": {"referred_name": "X"}})
    seen, url = [], f"/api/v1/events?customer={ann}&limit=2"
    while url:
        page = c.get(url, headers=auth).json
        seen += [e["id"] for e in page["events"]]
        url = page["next"]
    assert seen == [f"{ann}-{i}" for i in range(5)]
    assert c.get("/api/v1/events?type=purchase", headers=auth).json["events"] == []
    assert c.get("/api/v1/events", headers=h(svc, "other")).json["events"] == []  # another company's: none


def test_a_customer_is_changed_in_its_company_only(svc):
    c, auth = client_of(svc), h(svc)
    cust = c.post("/api/v1/customers", json={"name": "Ann"}, headers=auth).json["id"]
    r = c.patch(f"/api/v1/customers/{cust}", json={"phone": "303 555 0199", "email": "Ann@Example.com"}, headers=auth)
    assert r.status_code == 200 and (r.json["phone"], r.json["email"], r.json["name"]) == (
        "+13035550199", "Ann@example.com", "Ann")
    assert c.patch(f"/api/v1/customers/{cust}", json={"colour": "red"}, headers=auth).status_code == 422
    assert c.patch(f"/api/v1/customers/{cust}", json={"name": "Mallory"}, headers=h(svc, "other")).status_code == 404
    reader = h(svc, scopes=["read"])
    assert c.patch(f"/api/v1/customers/{cust}", json={"name": "X"}, headers=reader).json["needed_scope"] == (
        "customers:write")
    assert c.get(f"/api/v1/customers/{cust}", headers=auth).json["name"] == "Ann"


def test_a_batch_over_500_events_is_refused_whole(svc):
    c, auth = client_of(svc), h(svc)
    cust = c.post("/api/v1/customers", json={"name": "Ann"}, headers=auth).json["id"]
    now = datetime.now(UTC).isoformat()
    batch = [{"id": f"r{i}", "type": "referral", "customer": cust, "occurred_at": now,
              "data": {"referred_name": "X"}} for i in range(501)]
    r = c.post("/api/v1/events", json={"events": batch}, headers=auth)
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/events"
    assert c.get("/api/v1/events", headers=auth).json["events"] == []
    assert len(c.post("/api/v1/events", json={"events": batch[:500]}, headers=auth).json["results"]) == 500


def test_a_charge_that_asks_for_it_gets_the_member_discount(svc):
    svc.publish({**PLAN, "spec": {**PLAN["spec"], "discount_percent": "15"}}, "test", date(1970, 1, 2))
    c, auth = client_of(svc), h(svc)
    cust = c.post("/api/v1/customers", json={"name": "Ann"}, headers=auth).json["id"]
    c.post("/api/v1/enrollments", json={"customer": cust, "plan": "vip", "on": date.today().isoformat()},
           headers=auth)
    now = datetime.now(UTC).isoformat()
    r = c.post("/api/v1/events", headers=auth, json={
        "id": "till-9", "type": "purchase", "customer": cust, "occurred_at": now,
        "data": {"amount": "40.00", "pay_with": "membership", "apply_discount": True}})
    assert r.status_code == 201
    assert (r.json["list_amount"], r.json["discount_percent"], r.json["discount"], r.json["charged"],
            r.json["balance"]) == ("40.00", "15", "6.00", "34.00", "66.00")
    card = c.post("/api/v1/events", headers=auth, json={
        "id": "till-10", "type": "purchase", "customer": cust, "occurred_at": now,
        "data": {"amount": "19.99", "pay_with": "card", "apply_discount": True}}).json
    assert (card["discount"], card["charged"]) == ("3.00", "16.99")  # 15% of 19.99 = 2.9985, to the cent
    plain = c.post("/api/v1/events", headers=auth, json={
        "id": "till-11", "type": "purchase", "customer": cust, "occurred_at": now,
        "data": {"amount": "10.00", "pay_with": "membership"}}).json
    assert plain["charged"] == "10.00" and "discount" not in plain


def test_owners_keys_manage_keys_and_others_cannot(svc):
    c = client_of(svc)
    admin, pos = h(svc, scopes=["admin"]), h(svc)
    assert c.get("/api/v1/api_keys", headers=pos).json["needed_scope"] == "admin"
    made = c.post("/api/v1/api_keys", json={"name": "reports", "scopes": ["read"]}, headers=admin)
    assert made.status_code == 201 and made.json["secret"].startswith("kw_") and made.json["scopes"] == ["read"]
    listed = c.get("/api/v1/api_keys", headers=admin).json["api_keys"]
    assert made.json["secret"] not in str(listed) and made.json["id"] in [k["id"] for k in listed]
    new = {"Authorization": f"Bearer {made.json['secret']}"}
    assert c.get("/api/v1/rulesets", headers=new).status_code == 200
    assert c.delete(f"/api/v1/api_keys/{made.json['id']}", headers=admin).status_code == 204
    assert c.get("/api/v1/rulesets", headers=new).status_code == 401
    theirs = h(svc, "other", scopes=["admin"])
    assert c.delete(f"/api/v1/api_keys/{listed[0]['id']}", headers=theirs).status_code == 404
    bad = c.post("/api/v1/api_keys", json={"name": "x", "scopes": ["everything"]}, headers=admin)
    assert bad.status_code == 422 and bad.json["errors"][0]["pointer"] == "/scopes/0"


def test_a_membership_changes_tier_and_is_cancelled_through_the_api(svc):
    tiers = {**PLAN, "spec": {"allowance": PLAN["spec"]["allowance"], "tiers": [
        {"id": "basic", "name": "Basic"}, {"id": "premium", "name": "Premium", "allowance_amount": "300.00"}]}}
    svc.publish(tiers, "test", date(1970, 1, 2))
    c, auth = client_of(svc), h(svc)
    cust = c.post("/api/v1/customers", json={"name": "Ann"}, headers=auth).json["id"]
    mid = c.post("/api/v1/enrollments", json={"customer": cust, "plan": "vip", "tier": "basic",
                                              "on": date.today().isoformat()}, headers=auth).json["membership"]
    moved = c.post(f"/api/v1/memberships/{mid}/tier", json={"tier": "premium"}, headers=auth)
    assert moved.status_code == 201 and moved.json["cancelled"] == mid and moved.json["tier"] == "premium"
    new = moved.json["membership"]
    assert c.get(f"/api/v1/memberships/{new}", headers=auth).json["allowance"]["amount"] == "300.00"
    again = c.post(f"/api/v1/memberships/{new}/tier", json={"tier": "premium"}, headers=auth)
    assert again.status_code == 422 and again.json["errors"][0]["pointer"] == "/tier"
    assert c.post(f"/api/v1/memberships/{new}/cancel", headers=h(svc, "other")).status_code == 404
    done = c.post(f"/api/v1/memberships/{new}/cancel", json={}, headers=auth)
    assert done.status_code == 200 and c.get(f"/api/v1/memberships/{new}", headers=auth).json["status"] == "cancelled"
    twice = c.post(f"/api/v1/memberships/{mid}/cancel", headers=auth)  # ended already by the tier change
    assert twice.status_code == 402 and twice.json["code"] == "declined" and twice.json["reason"]
