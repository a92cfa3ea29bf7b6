"""Rewards through the REST API (issue 15): the catalog, a redemption answered with the lots it
drew from, fulfilment and cancel (points back to the same lots), declines with their reason, a
referral rewarding both sides, the points liability; the scope that redemptions need."""

from __future__ import annotations

import textwrap
from datetime import date

import pytest
import yaml

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.usecases import apikeys
from support import make_app
from test_rewards import CATALOG, PLAN, RULES

DAY = "2026-11-02"  # a past day: the API refuses days more than one ahead of today


@pytest.fixture
def api(db_url):
    svc = make_app(db_url)
    for text in (PLAN, RULES.replace("ORDER", "oldest_first").replace("EXTRA\n", ""), CATALOG):
        svc.publish(yaml.safe_load(textwrap.dedent(text)), "test", date(2020, 1, 1))
    settings = Settings.from_env({"KEEPWELL_SECRET_KEY": "k"})
    c = create_app({"TESTING": True}, service=svc, settings=settings).test_client()
    auth = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 'desk', ['admin'])}"}
    yield svc, c, auth
    svc.close()


def _customer(c, auth, name: str, tier: str | None = None, **extra) -> str:
    cid = c.post("/api/v1/customers", headers=auth, json={"name": name}).json["id"]
    if tier:
        r = c.post("/api/v1/enrollments", headers=auth, json={"customer": cid, "plan": "comfort-club",
                                                              "tier": tier, "on": DAY, **extra})
        assert r.status_code == 201, r.json
    return cid


def _buy(c, auth, key: str, cid: str, amount: str) -> None:
    r = c.post("/api/v1/events", headers=auth, json={"id": key, "type": "purchase", "customer": cid,
                                                     "occurred_at": f"{DAY}T15:00:00Z", "data": {"amount": amount}})
    assert r.json["status"] == "approved", r.json


def test_redeem_fulfil_cancel_through_the_api(api):
    _svc, c, auth = api
    cid = _customer(c, auth, "Ada API")
    _buy(c, auth, "p1", cid, "70.00")
    catalog = {r["id"]: r for r in c.get("/api/v1/rewards", headers=auth).json["rewards"]}
    assert (catalog["mug"]["points"], catalog["mug"]["in_stock"]) == (30, 2)

    r = c.post("/api/v1/rewards/redemptions", headers=auth, json={"customer": cid, "reward": "mug", "on": DAY})
    assert r.status_code == 201
    mug = r.json
    assert (mug["status"], mug["points"]) == ("ordered", 30)
    [lot] = mug["lots"]
    assert lot["points"] == 30
    again = c.post("/api/v1/rewards/redemptions", headers=auth,
                   json={"customer": cid, "reward": "mug", "on": DAY, "id": mug["event"]})
    assert again.status_code == 200 and again.json["duplicate"] is True  # the same request: nothing twice

    r = c.post("/api/v1/rewards/redemptions", headers=auth, json={"customer": cid, "reward": "mug", "on": DAY})
    assert (r.status_code, r.json["code"], r.json["reason"]) == (402, "declined", "limit_reached")
    r = c.post("/api/v1/rewards/redemptions", headers=auth,
               json={"customer": cid, "reward": "filter-discount", "quantity": 2, "on": DAY})
    assert (r.status_code, r.json["reason"], r.json["available"]) == (402, "insufficient_points", 40)
    r = c.post("/api/v1/rewards/redemptions", headers=auth, json={"customer": cid, "reward": "nope"})
    assert r.status_code == 404

    shipped = c.post(f"/api/v1/rewards/redemptions/{mug['redemption']}/fulfil", headers=auth,
                     json={"tracking": "1Z42"})
    assert shipped.json["status"] == "shipped"
    assert c.get(f"/api/v1/rewards/redemptions/{mug['redemption']}", headers=auth).json["tracking"] == "1Z42"
    r = c.post(f"/api/v1/rewards/redemptions/{mug['redemption']}/cancel", headers=auth, json={})
    assert (r.status_code, r.json["reason"]) == (402, "wrong_status")

    _buy(c, auth, "p2", cid, "20.00")  # 40 + 20 = 60: enough for the 50-point discount
    disc = c.post("/api/v1/rewards/redemptions", headers=auth,
                  json={"customer": cid, "reward": "filter-discount", "on": DAY}).json
    queue = c.get("/api/v1/rewards/redemptions?status=open", headers=auth).json["redemptions"]
    assert {q["redemption"] for q in queue} == {mug["redemption"], disc["redemption"]}
    back = c.post(f"/api/v1/rewards/redemptions/{disc['redemption']}/cancel", headers=auth, json={"on": DAY})
    assert (back.json["status"], back.json["points_returned"]) == ("cancelled", 50)
    points = c.get(f"/api/v1/customers/{cid}/points?on={DAY}", headers=auth).json
    assert (points["balance"], points["available"], points["pending"]) == (60, 60, 0)  # 70 + 20 - 30
    assert points["lots"][0]["status"] == "available"


def test_redemptions_need_their_scope(api):
    svc, c, auth = api
    cid = _customer(c, auth, "Sam Scope")
    narrow = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 'till', list(apikeys.DEFAULT_SCOPES))}"}
    r = c.post("/api/v1/rewards/redemptions", headers=narrow, json={"customer": cid, "reward": "mug"})
    assert (r.status_code, r.json["needed_scope"]) == (403, "rewards:write")


def test_referral_through_the_api_rewards_both_sides(api):
    _svc, c, auth = api
    referrer = _customer(c, auth, "Rob Referrer", "basic")
    code = c.post(f"/api/v1/customers/{referrer}/referral_code", headers=auth).json["code"]
    friend = _customer(c, auth, "Fay Friend", "basic", referral_code=code)
    assert c.get(f"/api/v1/customers/{referrer}/points?on={DAY}", headers=auth).json["balance"] == 500
    assert c.get(f"/api/v1/customers/{friend}/points?on={DAY}", headers=auth).json["balance"] == 250
    [ref] = c.get(f"/api/v1/customers/{referrer}/referrals", headers=auth).json["referrals"]
    assert (ref["referee"], ref["referee_name"], ref["status"]) == (friend, "Fay Friend", "rewarded")
    liability = c.get(f"/api/v1/points/liability?from={DAY}&to={DAY}", headers=auth).json
    assert (liability["outstanding_points"], liability["liability"]) == (750, "7.50")
    r = c.get("/api/v1/points/liability?from=2026-11-03&to=2026-11-01", headers=auth)
    assert r.status_code == 422


def test_a_points_adjustment_names_the_key_that_made_it(api):
    svc, c, auth = api
    cid = _customer(c, auth, "Kim Key")
    key = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 'front desk', ['adjustments:write', 'read'])}"}
    r = c.post(f"/api/v1/customers/{cid}/points/adjustments", headers=key,
               json={"amount": 40, "reason": "goodwill", "on": DAY})
    assert r.status_code == 201 and (r.json["balance"], r.json["by"]) == (40, "API key front desk")
    r = c.post(f"/api/v1/customers/{cid}/points/adjustments", headers=key, json={"amount": 5})
    assert r.status_code == 422 and r.json["errors"][0]["pointer"] == "/reason"
    assert r.json["errors"][0]["message"] == "Reason is required"
    r = c.post(f"/api/v1/customers/{cid}/points/adjustments", headers=auth | {"Authorization": "Bearer nope"},
               json={"amount": 5, "reason": "x"})
    assert r.status_code == 401
