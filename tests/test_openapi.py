"""The OpenAPI 3.1 document: valid by openapi-spec-validator, covering every route of the API
(and nothing the app lacks), and enough to drive the API with nothing else — the client below
knows only the document's operation ids."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from openapi_spec_validator import validate

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.interfaces.http import contract
from keepwell.usecases import apikeys
from support import make_app

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "vip", "name": "VIP"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly", "overdraft": {"limit": "20.00"}}}}


@pytest.fixture
def site(db_url):
    svc = make_app(db_url)
    svc.publish(PLAN, "test", date(1970, 1, 1))
    app = create_app({"TESTING": True}, service=svc, settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"}))
    yield app, svc
    svc.close()


def test_the_document_is_valid_openapi_3_1_and_covers_every_route(site):
    app, _ = site
    doc = app.test_client().get("/api/v1/openapi.json").json
    validate(doc)  # raises on any violation of the specification
    assert doc["openapi"].startswith("3.1")
    routes = {(m.lower(), "/" + r.rule.removeprefix("/api/v1/").replace("<path:", "{").replace("<int:", "{").replace("<", "{")
               .replace(">", "}")) for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")
              for m in r.methods - {"HEAD", "OPTIONS"}}
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["security"][0]["apiKey"][0] in apikeys.SCOPES, path
            assert "422" in op["responses"] or op["operationId"] not in {e.operation for e in contract.ENDPOINTS
                                                                          if e.body}


def test_a_client_driven_by_the_document_alone(site):
    app, svc = site
    client = app.test_client()
    doc = client.get("/api/v1/openapi.json").json
    ops = {op["operationId"]: (method, path) for path, m in doc["paths"].items() for method, op in m.items()}
    h = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 'integrator')}"}

    def call(operation, body=None, query=None, **path_params):
        method, path = ops[operation]
        url = doc["servers"][0]["url"] + path.format(**path_params)
        r = getattr(client, method)(url, json=body, query_string=query or {}, headers=h)
        declared = doc["paths"][path][method]["responses"]
        assert str(r.status_code) in declared, (operation, r.status_code, r.get_data(as_text=True)[:300])
        return r

    cust = call("add_customer", {"name": "Ann Lee", "email": "ann@example.com"}).json["id"]
    today = date.today().isoformat()
    mid = call("enroll", {"customer": cust, "plan": "vip", "on": today}).json["membership"]
    now = datetime.now(UTC).isoformat()
    charge = {"id": "till-1", "type": "purchase", "customer": cust, "occurred_at": now,
              "data": {"amount": "90.00", "pay_with": "membership"}}
    first = call("post_events", charge)
    assert first.status_code == 201 and first.json["balance"] == "10.00"
    again = call("post_events", charge)
    assert again.data == first.data
    over = call("post_events", {**charge, "id": "till-2", "data": {"amount": "50.00", "pay_with": "membership"}})
    assert over.status_code == 402 and over.json["reason"] and over.mimetype == "application/problem+json"
    for i in range(3):
        call("add_customer", {"name": f"Extra {i}"})
    seen, query = [], {"limit": 2}
    while True:
        page = call("list_customers", query=query).json
        seen += [c["id"] for c in page["customers"]]
        if not page["has_more"]:
            break
        query = {"limit": 2, "starting_after": seen[-1]}
    assert len(seen) == 4 and seen[0] == cust
    statement = call("statement", query={"from": today, "to": today}, membership_id=mid).json
    assert [e["kind"] for a in statement["accounts"] for e in a["entries"]][:2] == ["grant", "debit"]
    bad = call("add_customer", {"name": "", "email": 7, "nickname": "x"})
    assert bad.status_code == 422 and len(bad.json["errors"]) >= 2  # every problem, not the first


def test_interactive_docs_are_served_locally(site):
    app, _ = site
    c = app.test_client()
    page = c.get("/api/docs/")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.get_data(as_text=True)
    assert "<script>" not in page.get_data(as_text=True)  # no inline script: the CSP holds
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js"):
        with c.get(f"/api/docs/{name}") as r:  # files stream: closed when read
            assert r.status_code == 200 and r.data, name
    assert json.loads(c.get("/api/v1/openapi.json").data)["info"]["title"] == "Keepwell REST API"
