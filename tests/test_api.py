"""The REST API: authenticated by a company key, scoped to that company, same pipeline as the CLI."""

from __future__ import annotations

import pytest

from keepwell.app import create_app
from support import make_app

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "vip", "name": "VIP"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly", "overdraft": {"limit": "20.00"}}}}


@pytest.fixture
def api(db_url):
    from datetime import date

    svc = make_app(db_url)
    svc.add_company("other", "Other Co", "UTC")
    for company in ("default", "other"):
        svc.publish(PLAN, "test", date(1970, 1, 1), company=company)
    keys = {c: svc.create_api_key("test", company=c) for c in ("default", "other")}
    client = create_app({"TESTING": True}, service=svc).test_client()
    yield client, keys
    svc.close()


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_requires_a_key(api):
    client, _ = api
    r = client.get("/api/v1/rulesets")
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    assert client.get("/api/v1/rulesets", headers=auth("kw_nope")).status_code == 401


def test_enrol_charge_and_read_back(api):
    client, keys = api
    h = auth(keys["default"])
    cust = client.post("/api/v1/customers", json={"name": "Grace Hopper"}, headers=h).json["id"]
    m = client.post("/api/v1/enrollments", json={"customer": cust, "plan": "vip", "on": "2024-01-01"}, headers=h)
    assert m.status_code == 201
    mid = m.json["membership"]
    ev = {"id": "pos-1", "type": "purchase", "customer": cust, "occurred_at": "2024-01-05T10:00:00Z",
          "data": {"amount": "110.00", "pay_with": "membership"}}
    first = client.post("/api/v1/events", json=ev, headers=h)
    assert first.status_code == 201
    assert (first.json["status"], first.json["balance"], first.json["overdraft_left"]) == ("approved", "0.00", "10.00")
    again = client.post("/api/v1/events", json=ev, headers=h)
    assert again.status_code == 201 and again.data == first.data  # the first answer, byte for byte
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    shown = client.get(f"/api/v1/memberships/{mid}", headers=h).json
    assert shown["allowance"]["overdraft_used"] == "10.00"
    st = client.get(f"/api/v1/memberships/{mid}/statement?from=2024-01-01&to=2024-01-31", headers=h).json
    assert [e["kind"] for a in st["accounts"] for e in a["entries"]] == ["grant", "debit", "overdraft"]


def test_bad_event_is_422_with_paths(api):
    client, keys = api
    h = auth(keys["default"])
    cust = client.post("/api/v1/customers", json={"name": "Bob"}, headers=h).json["id"]
    r = client.post("/api/v1/events", json={"id": "x", "type": "purchase", "customer": cust,
                                            "occurred_at": "2024-01-05T10:00:00", "data": {"amount": 5}}, headers=h)
    assert r.status_code == 422
    errors = r.json["error"]["errors"]
    assert sorted({e["path"] for e in errors}) == ["data.amount", "occurred_at"]
    assert [e["message"] for e in errors if e["path"] == "occurred_at"] == [
        "Occurred at must be a date and time with its UTC offset, like 2025-03-01T09:30:00-05:00 or 2025-03-01T14:30:00Z"]


def test_another_companys_ids_are_not_found(api):
    client, keys = api
    mine = auth(keys["default"])
    theirs = auth(keys["other"])
    cust = client.post("/api/v1/customers", json={"name": "Ada"}, headers=mine).json["id"]
    mid = client.post("/api/v1/enrollments", json={"customer": cust, "plan": "vip", "on": "2024-01-01"}, headers=mine).json["membership"]
    assert client.get(f"/api/v1/memberships/{mid}", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/customers/{cust}/points", headers=theirs).status_code == 404
    r = client.post("/api/v1/events", json={"id": "steal", "type": "purchase", "customer": cust,
                                            "occurred_at": "2024-01-05T10:00:00Z",
                                            "data": {"amount": "50.00", "pay_with": "membership"}}, headers=theirs)
    assert r.status_code == 404
    assert client.get(f"/api/v1/memberships/{mid}", headers=mine).json["allowance"]["balance"] == "100.00"
    assert client.get("/api/v1/customers", headers=theirs).json["customers"] == []


def test_simulation_over_the_api(api):
    client, keys = api
    h = auth(keys["default"])
    cust = client.post("/api/v1/customers", json={"name": "Sim"}, headers=h).json["id"]
    client.post("/api/v1/enrollments", json={"customer": cust, "plan": "vip", "on": "2024-01-01"}, headers=h)
    client.post("/api/v1/events", json={"id": "s1", "type": "purchase", "customer": cust, "occurred_at": "2024-01-05T10:00:00Z",
                                        "data": {"amount": "42.00", "pay_with": "card"}}, headers=h)
    draft = {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": "r", "name": "R"},
             "spec": {"point_value": "0.01", "rules": [{"id": "spend", "when": {"event": "purchase"},
                                                       "earn": {"points": 2, "per": "1.00", "of": "data.amount"}}]}}
    r = client.post("/api/v1/simulations", json={"draft": draft, "from": "2024-01-01", "to": "2024-12-31"}, headers=h)
    assert r.status_code == 200
    assert r.json["total"]["points"] == 84 and r.json["total"]["points_liability"] == "0.84"
    assert client.get(f"/api/v1/customers/{cust}/points", headers=h).json["balance"] == 0  # nothing written
    bad = client.post("/api/v1/simulations", json={"draft": {"kind": "EarningRules"}, "from": "2024-01-01", "to": "2024-12-31"}, headers=h)
    assert bad.status_code == 422 and bad.json["error"]["errors"]


def test_bad_paging_is_a_422_not_a_crash(api):
    client, keys = api
    h = auth(keys["default"])
    r = client.get("/api/v1/customers?limit=abc", headers=h)
    assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == "limit"
    assert client.get("/api/v1/customers?offset=-1", headers=h).status_code == 422
    assert client.get("/api/v1/customers?limit=2&offset=0", headers=h).status_code == 200


def test_an_event_with_a_nul_character_is_a_422_on_every_database(api):
    client, keys = api
    h = auth(keys["default"])
    cust = client.post("/api/v1/customers", json={"name": "Nul"}, headers=h).json["id"]
    r = client.post("/api/v1/events", headers=h, json={"id": "pos-\x00", "type": "purchase", "customer": cust,
                                                       "occurred_at": "2026-01-05T10:00:00Z", "data": {"amount": "5.00"}})
    assert r.status_code == 422 and r.json["error"]["errors"][0]["path"] == "id"


def test_a_customer_name_with_a_nul_character_is_refused(api):
    client, keys = api
    r = client.post("/api/v1/customers", json={"name": "Ann\x00"}, headers=auth(keys["default"]))
    assert 400 <= r.status_code < 500 and "NUL" in r.json["error"]["message"]


def _revoke_in_another_process(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            c.execute(sa.text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("seconds", [0.0, 0.5])
def test_a_key_revoked_elsewhere_stops_working_within_the_cache_time(db_url, seconds):
    """A web process trusts a key it checked for KEEPWELL_API_KEY_CACHE_SECONDS (no transaction
    of its own per request); a revocation by another process is seen once that runs out."""
    from mailserver import wait_until
    from support import App
    from support import make_app as init

    init(db_url).close()
    svc = App.at(db_url)
    svc.key_cache.seconds = seconds
    try:
        key = svc.create_api_key("till")
        client = create_app({"TESTING": True}, service=svc).test_client()
        assert client.get("/api/v1/rulesets", headers=auth(key)).status_code == 200
        _revoke_in_another_process(db_url)
        first = client.get("/api/v1/rulesets", headers=auth(key)).status_code
        if seconds == 0:
            assert first == 401
        else:
            assert first == 200  # still trusted for a moment...
            wait_until(lambda: client.get("/api/v1/rulesets", headers=auth(key)).status_code == 401,
                       timeout=10, interval=0.05, what="the revoked key to be refused")
    finally:
        svc.close()


def test_a_pooled_connection_closed_by_the_server_is_replaced_without_an_error(postgres_url):
    """No ping on every checkout, but a connection that sat idle is checked first: when the server
    dropped it (a restart, a firewall), the next request gets a new one instead of an error."""
    import sqlalchemy as sa

    from keepwell.usecases import Keepwell, companies

    svc = Keepwell.open(postgres_url, ping_idle_seconds=0.0)  # every connection counts as idle
    try:
        companies.init(svc, "default", "Default", "UTC")
        assert companies.slugs(svc) == ["default"]
        admin = sa.create_engine(postgres_url)
        with admin.begin() as c:
            killed = c.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        admin.dispose()
        assert killed >= 1
        assert companies.slugs(svc) == ["default"]
    finally:
        svc.close()
