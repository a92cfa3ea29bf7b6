"""Webhook endpoints as an integrator uses them through the REST API: subscribe a URL to event
types, receive exactly those (verified with the `standardwebhooks` library as a receiver would),
read the endpoint's delivery log; a 410 turns that endpoint off and turning it back on (with a
replay of what it missed) works; another company's endpoints are not found, and only `admin`
keys manage them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from standardwebhooks.webhooks import Webhook as Receiver

from keepwell.messaging.channels import ChannelSettings, channels_from
from keepwell.usecases import apikeys, companies, messaging
from mailserver import HttpRecorder
from test_admin import site  # noqa: F401  (the admin with an owner, a staff member and another company)
from test_api_v1 import PLAN, client_of, svc  # noqa: F401  (the VIP plan, and a company beside it)

TODAY = datetime.now(UTC).date()


def auth(svc, company="default", scopes=("admin", "read", "events:write", "customers:write", "memberships:write")):
    return {"Authorization": f"Bearer {apikeys.create(svc, company, 'test', list(scopes))}"}


def deliver(svc) -> list:
    return messaging.deliver_due(svc, channels_from(ChannelSettings(webhook_networks="loopback")))


def charge(c, h, key: str, cid: str, amount: str):
    return c.post("/api/v1/events", headers=h, json={
        "id": key, "type": "purchase", "customer": cid, "occurred_at": f"{TODAY.isoformat()}T15:00:00+00:00",
        "data": {"amount": amount, "pay_with": "membership"}})


def member(c, h) -> str:
    cid = c.post("/api/v1/customers", headers=h, json={"name": "Ann Till"}).json["id"]
    r = c.post("/api/v1/enrollments", headers=h, json={"customer": cid, "plan": "vip", "on": TODAY.isoformat()})
    assert r.status_code == 201, r.json
    return cid


def test_an_endpoint_gets_exactly_the_types_it_subscribed_to_signed_per_standard_webhooks(svc):
    c, h = client_of(svc), auth(svc)
    secret = companies.rotate_webhook_secret(svc, "default", 0)
    with HttpRecorder(lambda req: (200, {})) as till:
        r = c.post("/api/v1/webhook_endpoints", headers=h, json={
            "url": f"{till.url}/keepwell", "description": "front desk POS",
            "event_types": ["membership.enrolled", "allowance.charged", "allowance.declined"]})
        assert r.status_code == 201, r.json
        endpoint = r.json
        assert (endpoint["enabled"], endpoint["event_types"][0]) == (True, "membership.enrolled")
        cid = member(c, h)
        assert charge(c, h, "pos-1", cid, "90.00").status_code == 201
        declined = charge(c, h, "pos-2", cid, "50.00")  # 10.00 + 20.00 overdraft left
        assert declined.status_code == 402
        c.post("/api/v1/events", headers=h, json={  # not subscribed: nothing is sent for it
            "id": "visit-1", "type": "service_completed", "customer": cid,
            "occurred_at": f"{TODAY.isoformat()}T16:00:00+00:00", "data": {"service_code": "AC_TUNE"}})
        assert {o.status for o in deliver(svc)} == {"sent"}
        received = till.requests
    assert len(received) == 3
    bodies = []
    for req in received:
        headers = {k.lower(): v for k, v in req["headers"].items()}
        bodies.append(Receiver(secret).verify(req["body"].decode(), headers))  # raises unless signed by us
    assert [b["type"] for b in bodies] == ["membership.enrolled", "allowance.charged", "allowance.declined"]
    charged, refused = bodies[1]["data"], bodies[2]["data"]
    assert charged["event"]["id"] == "pos-1" and charged["customer"]["name"] == "Ann Till"
    assert charged["result"]["balance"] == "10.00" and charged["result"]["entries"][0]["rule"] == "plan.allowance.debit"
    assert refused["result"]["reason"] == "insufficient_allowance" and refused["event"]["status"] == "declined"
    # The delivery log: every message with its attempts, how long the receiver took.
    log = c.get(f"/api/v1/webhook_endpoints/{endpoint['id']}/deliveries", headers=h).json["deliveries"]
    assert sorted(d["type"] for d in log) == ["allowance.charged", "allowance.declined", "membership.enrolled"]
    assert all(d["status"] == "sent" and " ms: " in d["history"][-1]["detail"] for d in log)
    # Listed with the types an endpoint may take; changed; removed.
    listed = c.get("/api/v1/webhook_endpoints", headers=h).json
    assert [e["id"] for e in listed["webhook_endpoints"]] == [endpoint["id"]]
    assert "points.earned" in listed["event_types"]
    r = c.patch(f"/api/v1/webhook_endpoints/{endpoint['id']}", headers=h, json={"event_types": ["points.earned"]})
    assert r.status_code == 200 and r.json["event_types"] == ["points.earned"]
    assert charge(c, h, "pos-3", cid, "1.00").status_code == 201
    assert [o for o in deliver(svc)] == []  # no longer subscribed to charges
    assert c.delete(f"/api/v1/webhook_endpoints/{endpoint['id']}", headers=h).status_code == 204
    assert c.get(f"/api/v1/webhook_endpoints/{endpoint['id']}", headers=h).status_code == 404


def test_endpoints_are_checked_scoped_to_the_company_and_to_admin_keys(svc):
    c, h, other = client_of(svc), auth(svc), auth(svc, "other")
    r = c.post("/api/v1/webhook_endpoints", headers=h, json={"url": "ftp://x", "event_types": ["points.sent"]})
    assert r.status_code == 422 and {e["pointer"] for e in r.json["errors"]} >= {"/event_types/0"}
    r = c.post("/api/v1/webhook_endpoints", headers=h, json={"url": "ftp://pos.example", "event_types": ["points.earned"]})
    assert r.status_code == 422 and "http(s) address" in json.dumps(r.json)
    mine = c.post("/api/v1/webhook_endpoints", headers=h, json={"url": "https://pos.example/hook",
                                                                "event_types": ["points.earned"]}).json
    path = f"/api/v1/webhook_endpoints/{mine['id']}"
    assert c.get(path, headers=other).status_code == 404
    assert c.patch(path, headers=other, json={"enabled": False}).status_code == 404
    assert c.delete(path, headers=other).status_code == 404
    assert c.get(f"{path}/deliveries", headers=other).status_code == 404
    assert c.get("/api/v1/webhook_endpoints", headers=other).json["webhook_endpoints"] == []
    reader = auth(svc, scopes=("read", "events:write"))
    r = c.get("/api/v1/webhook_endpoints", headers=reader)
    assert r.status_code == 403 and r.json["needed_scope"] == "admin"
    assert c.get(path, headers=h).status_code == 200


def test_a_410_turns_only_that_endpoint_off_and_turning_it_on_with_a_replay_catches_up(svc):
    c, h = client_of(svc), auth(svc)
    answers = {"gone": True}
    with HttpRecorder(lambda req: (410, {}) if answers["gone"] else (200, {})) as hook:
        ep = c.post("/api/v1/webhook_endpoints", headers=h, json={"url": hook.url,
                                                                  "event_types": ["membership.enrolled"]}).json
        first = member(c, h)
        assert [o.status for o in deliver(svc)] == ["dead"]
        shown = c.get(f"/api/v1/webhook_endpoints/{ep['id']}", headers=h).json
        assert shown["enabled"] is False and "410 Gone" in shown["disabled_reason"]
        assert companies.details(svc, "default")["webhook_disabled_reason"] is None  # the company URL is not touched
        member(c, h)  # while off: kept, not sent
        skipped = deliver(svc)
        assert [o.status for o in skipped if o.detail.startswith("webhook endpoint")] == ["skipped"]
        assert len(hook.requests) == 1
        # Back on, and what it missed put back in line by range.
        answers["gone"] = False
        assert c.patch(f"/api/v1/webhook_endpoints/{ep['id']}", headers=h, json={"enabled": True}).json["enabled"]
        r = c.post(f"/api/v1/webhook_endpoints/{ep['id']}/replay", headers=h, json={
            "from": (TODAY - timedelta(days=1)).isoformat(), "to": (TODAY + timedelta(days=1)).isoformat()})
        assert r.status_code == 200 and r.json["replayed"] == 2  # the 410'd one and the skipped one
        assert c.post(f"/api/v1/webhook_endpoints/{ep['id']}/replay", headers=auth(svc, "other"), json={
            "from": TODAY.isoformat(), "to": TODAY.isoformat()}).status_code == 404
        assert sorted(o.status for o in deliver(svc)) == ["sent", "sent"]
        assert len(hook.requests) == 3
    customers = {json.loads(r["body"])["data"]["customer"]["id"] for r in hook.requests[1:]}
    assert first in customers and len(customers) == 2


def test_owners_manage_endpoints_on_the_admin_webhooks_page(site):
    from test_admin import signed_in

    app, svc = site
    svc.publish(PLAN, "test", date(1970, 1, 1))
    owner = signed_in(app)
    page = owner.get("/admin/webhooks/").get_data(as_text=True)
    assert "No webhook endpoints yet" in page and "membership.enrolled" in page
    bad = owner.post("/admin/webhooks/", {"url": "pos.example", "event_types": []}, token_from="/admin/webhooks/")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "Address must be an http(s) address" in html and "Events name at least one" in html
    with HttpRecorder(lambda req: (200, {})) as hook:
        r = owner.post("/admin/webhooks/", {"url": f"{hook.url}/in", "event_types": ["membership.enrolled"],
                                            "description": "bookkeeping"}, token_from="/admin/webhooks/")
        assert r.status_code == 302
        [endpoint] = webhooks_of(svc)
        c, h = client_of(svc), auth(svc)
        member(c, h)
        assert [o.status for o in deliver(svc)] == ["sent"]
    log = owner.get(f"/admin/webhooks/{endpoint['id']}/deliveries").get_data(as_text=True)
    assert "membership.enrolled" in log and "sent" in log and " ms: " in log
    r = owner.post(f"/admin/webhooks/{endpoint['id']}/disable", token_from="/admin/webhooks/")
    assert r.status_code == 302 and webhooks_of(svc)[0]["enabled"] is False
    owner.post(f"/admin/webhooks/{endpoint['id']}/enable", token_from="/admin/webhooks/")
    assert webhooks_of(svc)[0]["enabled"] is True
    # Staff cannot see the page; another company's owner cannot touch this endpoint.
    assert signed_in(app, "staff@heat.example").get("/admin/webhooks/").status_code == 403
    other = signed_in(app, "owner@other.example")
    assert other.get(f"/admin/webhooks/{endpoint['id']}/deliveries").status_code == 404
    other.post(f"/admin/webhooks/{endpoint['id']}/remove", token_from="/admin/webhooks/")
    assert len(webhooks_of(svc)) == 1
    owner.post(f"/admin/webhooks/{endpoint['id']}/remove", token_from="/admin/webhooks/")
    assert webhooks_of(svc) == []


def webhooks_of(svc) -> list:
    from keepwell.usecases import webhooks

    return webhooks.listing(svc, "default")
