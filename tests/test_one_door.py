"""The fixes that came with the one-door structure (issue #10), through the product's entry
points: a change of tier is one transaction checked against the plan version in force; a second
active membership of the same plan is refused unless asked for; `events post` and the API's
batch go through the batched path with one result per event, one shape of "rejected"; an
unexpected failure of one event in a batch never takes the others with it."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
import sqlalchemy as sa

from keepwell.app import create_app
from keepwell.customers.users import add_user
from keepwell.events import registry
from kwmodels import Event, Membership
from support import event, make_app

PASSWORD = "correct horse battery"


def plan(version_tiers: list[str]) -> dict:
    return {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "care", "name": "Care Club"},
            "spec": {"allowance": {"amount": "100.00", "period": "yearly"},
                     "tiers": [{"id": t, "name": t.capitalize(), "allowance_amount": f"{100 * (i + 1)}.00"}
                               for i, t in enumerate(version_tiers)]}}


@pytest.fixture
def site(db_url):
    svc = make_app(db_url, timezone="America/Denver")
    svc.publish(plan(["basic", "premium"]), "test", date(2026, 1, 1))
    # Version 2, in force from February: premium is gone, elite is new.
    svc.publish(plan(["basic", "elite"]), "test", date(2026, 2, 1))
    svc.run(None, lambda c: add_user(c.session, c.company, "owner@care.example", PASSWORD, "owner"))
    app = create_app({"TESTING": True}, service=svc)
    yield app, svc
    svc.close()


def _signed_in(app):
    client = app.test_client()
    token = lambda url: re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)
    assert client.post("/admin/login", data={"email": "owner@care.example", "password": PASSWORD,
                                             "csrf_token": token("/admin/login")}).status_code == 302
    return client, token


def _memberships(svc) -> list[tuple[str, str, str]]:
    return sorted(svc.run(None, lambda c: c.session.execute(
        sa.select(Membership.id, Membership.tier, Membership.status)).all()))


def test_a_tier_the_plan_version_in_force_lacks_changes_nothing_and_says_why(site):
    app, svc = site
    cust = svc.add_customer("Tess Tier")
    mid = svc.enroll(cust, "care@1", date(2026, 1, 10), tier="basic")["membership"]
    before, events_before = _memberships(svc), svc.run(None, lambda c: c.session.scalar(sa.select(sa.func.count()).select_from(Event)))
    client, token = _signed_in(app)
    page = client.get(f"/admin/memberships/show/{mid}").get_data(as_text=True)
    # The form offers the tiers of the version in force today, which is what the change enrols on.
    offered = re.findall(r'<option value="([a-z]+)">', page.split('id="tier"')[1].split("</select>")[0])
    assert offered == ["elite"]
    r = client.post(f"/admin/memberships/upgrade/{mid}", data={"tier": "premium", "on": "2026-03-01",
                                                                "csrf_token": token(f"/admin/memberships/show/{mid}")})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/admin/memberships/show/{mid}")
    shown = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Not done" in shown and "has no tier &#39;premium&#39;" in shown and "basic, elite" in shown
    assert _memberships(svc) == before  # still active, nothing cancelled
    assert svc.run(None, lambda c: c.session.scalar(sa.select(sa.func.count()).select_from(Event))) == events_before
    # A tier the version has: one change, the old membership ended and the new one on it.
    r = client.post(f"/admin/memberships/upgrade/{mid}", data={"tier": "elite", "on": "2026-03-01",
                                                                "csrf_token": token(f"/admin/memberships/show/{mid}")})
    new = r.headers["Location"].rsplit("/", 1)[1]
    assert dict((m, (t, s)) for m, t, s in _memberships(svc)) == {mid: ("basic", "cancelled"), new: ("elite", "active")}
    assert svc.membership(new)["allowance"]["balance"] == "200.00"


def test_a_failed_enrolment_in_a_change_of_tier_undoes_the_cancellation(site):
    """If the second half of a change (the enrolment) is declined, the first (the cancellation)
    does not stay: one transaction."""
    from keepwell.kernel.errors import Declined
    from keepwell.usecases import memberships

    _app, svc = site
    cust = svc.add_customer("Una Undone")
    mid = svc.enroll(cust, "care", date(2026, 2, 10), tier="basic")["membership"]
    original = registry._types["enrolled"]

    def refuse(ctx, ev, data, local):
        raise Declined("closed", "enrolment is closed today")

    registry._types["enrolled"] = registry.EventType(original.decl, refuse)
    try:
        with pytest.raises(Declined, match="enrolment is closed"):
            memberships.change_tier(svc, "default", mid, "elite", date(2026, 3, 1))
    finally:
        registry._types["enrolled"] = original
    assert _memberships(svc) == [(mid, "basic", "active")]


def test_a_second_active_membership_of_the_same_plan_is_refused_unless_asked_for(cli, tmp_path):
    f = tmp_path / "care.yaml"
    f.write_text(json.dumps(plan(["basic"])))
    cli("rulesets", "publish", str(f))
    c = cli.out("customers", "add", "--name", "Dora Double")
    first = cli.out("enroll", c, "care", "--on", "2026-01-05")
    refused = cli("enroll", c, "care", "--on", "2026-02-05", expect=1)
    assert "already has an active Care Club membership" in refused.stderr and first in refused.stderr
    second = cli.out("enroll", c, "care", "--on", "2026-02-05", "--allow-second")  # a second home
    assert second.startswith("mem_") and second != first
    assert cli.json("membership", "show", second)["status"] == "active"


def test_events_post_uses_the_batched_path_one_result_per_line(cli, tmp_path):
    """A file of 60 lines: a handful of transactions, not sixty; each line its result, in order;
    a malformed line rejected alone, with its line and path; a repeated id the first answer."""
    f = tmp_path / "care.yaml"
    f.write_text(json.dumps(plan(["basic"])))
    cli("rulesets", "publish", str(f))
    c = cli.out("customers", "add", "--name", "Bea Batch")
    cli("enroll", c, "care", "--on", "2026-01-05")
    lines = [json.dumps(event(f"p{i}", "purchase", c, "2026-02-01", amount="1.00", pay_with="membership"))
             for i in range(57)]
    lines[10] = "{not json"
    lines[20] = json.dumps(event("bad", "purchase", c, "2026-02-01", amount="1.5x"))
    lines += [lines[0], json.dumps(event("p-last", "purchase", c, "2026-02-01", amount="1.00", pay_with="membership"))]
    begins = []
    listener = lambda conn: begins.append(1)
    sa.event.listen(sa.engine.Engine, "begin", listener)
    try:
        res = cli("events", "post", "-", input="\n".join(lines) + "\n", expect=1)
    finally:
        sa.event.remove(sa.engine.Engine, "begin", listener)
    results = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(results) == len(lines) == 59
    assert results[10]["line"] == 11 and results[10]["status"] == "rejected" and results[10]["code"] == "invalid"
    assert results[20]["line"] == 21 and results[20]["event"] == "bad" and results[20]["status"] == "rejected"
    assert [e["path"] for e in results[20]["errors"]] == ["data.amount"]
    assert results[57]["duplicate"] is True and results[57]["event"] == "p0"
    assert [r["status"] for i, r in enumerate(results) if i not in (10, 20)] == ["approved"] * 57
    assert len(begins) < 10, len(begins)  # one transaction per chunk, a few more to look things up
    assert cli.json("audit")["ok"] is True


def test_the_api_batch_answers_every_event_in_the_same_shape_as_the_cli(db_url):
    svc = make_app(db_url)
    svc.publish(plan(["basic"]), "test", date(2026, 1, 1))
    key = svc.create_api_key("pos")
    c = svc.add_customer("Ann Api")
    svc.enroll(c, "care", date(2026, 1, 5))
    client = create_app({"TESTING": True}, service=svc).test_client()
    body = {"events": [event("a1", "purchase", c, "2026-02-01", amount="5.00", pay_with="membership"),
                       {"id": "a2", "type": "purchase"},
                       event("a3", "purchase", "cus_nobody", "2026-02-01", amount="5.00")]}
    r = client.post("/api/v1/events", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    a1, a2, a3 = r.json["results"]
    assert a1["status"] == "approved"
    assert (a2["event"], a2["status"], a2["code"]) == ("a2", "rejected", "invalid") and a2["errors"]
    assert (a3["event"], a3["status"], a3["code"]) == ("a3", "rejected", "not_found")
    svc.close()


def test_an_unexpected_failure_of_one_event_in_a_batch_applies_the_others_and_says_so(db_url, monkeypatch):
    svc = make_app(db_url)
    svc.publish(plan(["basic"]), "test", date(2026, 1, 1))
    key = svc.create_api_key("pos")
    c = svc.add_customer("Fay Fault")
    svc.enroll(c, "care", date(2026, 1, 5))
    original = registry._types["purchase"]

    def flaky(ctx, ev, data, local):
        if ev.key == "f2":
            raise RuntimeError("a bug of ours")
        return original.handler(ctx, ev, data, local)

    monkeypatch.setitem(registry._types, "purchase", registry.EventType(original.decl, flaky))
    client = create_app({"TESTING": True}, service=svc).test_client()
    body = {"events": [event(f"f{i}", "purchase", c, "2026-02-01", amount="5.00", pay_with="membership")
                       for i in range(1, 4)]}
    r = client.post("/api/v1/events", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    f1, f2, f3 = r.json["results"]
    assert (f1["status"], f3["status"]) == ("approved", "approved")
    assert (f2["event"], f2["status"], f2["code"]) == ("f2", "error", "internal_error")
    stored = svc.run(None, lambda c: sorted(c.session.scalars(sa.select(Event.key).where(Event.type == "purchase"))))
    assert stored == ["f1", "f3"]  # the failing one wrote nothing; the others are there, once
    assert svc.membership(svc.run(None, lambda c: c.session.scalar(sa.select(Membership.id))))["allowance"]["balance"] == "90.00"
    assert svc.audit()["ok"]
    svc.close()
