"""Idempotency (issue #4): the same event, API request, due job or outbox delivery, delivered 2, 10
or 100 times, one after the other and all at once, has one effect: one set of ledger entries, one
balance change, one message to the receiver, and every repeat answers with the first result.

Runs on SQLite and PostgreSQL (`db_url`); "all at once" is threads released together by a
barrier, each with its own database connection (and, for the due job, the worker's own service)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from keepwell.app import create_app
from keepwell.messaging import outbox
from keepwell.messaging.channels import ChannelSettings, channels_from
from keepwell.usecases.messaging import deliver
from kwmodels import Event, LedgerEntry, OutboxAttempt, OutboxMessage
from mailserver import HttpRecorder
from support import make_app
from test_workers import redis_server, redis_url  # noqa: F401

TIMES = [2, 10, 100]
THREADS = 10

PLAN = {
    "apiVersion": "keepwell/v1", "kind": "Plan",
    "metadata": {"id": "idem-plan", "name": "Idempotent plan"},
    "spec": {"allowance": {"amount": "500.00", "period": "monthly", "overdraft": {"limit": "50.00"}},
             "included_services": [{"code": "HVAC_TUNEUP", "name": "Tune-up", "quantity": 2}]},
}
POINTS = {
    "apiVersion": "keepwell/v1", "kind": "EarningRules",
    "metadata": {"id": "idem-points", "name": "Idempotent points"},
    "spec": {"expiry": {"after_months": 1},
             "rules": [{"id": "spend", "when": {"event": "purchase"}, "earn": {"points": 1, "per": "1.00", "of": "data.amount"}},
                       {"id": "visit", "when": {"event": "service_completed"}, "earn": {"points": 10}}]},
}
HOOKS = {
    "apiVersion": "keepwell/v1", "kind": "NotificationTriggers",
    "metadata": {"id": "idem-hooks", "name": "Idempotent hooks"},
    "spec": {"templates": {"charged": {"subject": "Charged", "email": "{{ customer.name }} paid"}},
             "triggers": [{"id": "charge-hook", "on": {"event": "purchase"}, "template": "charged",
                           "channel": "webhook", "audience": "company"}]},
}


@pytest.fixture
def world(db_url):
    """A member on a monthly allowance with points, in company 'default'."""
    app = make_app(db_url)
    app.publish(PLAN, "test", date(2023, 1, 1))
    app.publish(POINTS, "test", date(2023, 1, 1))
    cid = app.add_customer("Ida Idempotent", "ida@example.com")
    mid = app.enroll(cid, "idem-plan", date(2024, 1, 1))["membership"]
    yield app, cid, mid
    app.close()


def snapshot(app) -> tuple:
    """Everything an effect could change."""
    def work(c):
        s = c.session
        n = lambda model: s.scalar(sa.select(sa.func.count()).select_from(model))
        return (n(Event), n(LedgerEntry), n(OutboxMessage),
                sorted(s.execute(sa.text("SELECT owner, unit, code, balance FROM accounts")).all()),
                sorted(s.execute(sa.text("SELECT points, remaining FROM points_lots")).all()))
    return app.run(None, work)


def all_at_once(n: int, fn) -> list:
    """Call fn(i) for i in range(n) on THREADS threads, released together; results in order."""
    out: list = [None] * n
    errors: list = []
    barrier = threading.Barrier(min(n, THREADS))

    def run(indices):
        try:
            barrier.wait(timeout=60)
            for i in indices:
                out[i] = fn(i)
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(range(t, n, THREADS),)) for t in range(min(n, THREADS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "threads still running after 120 s"
    if errors:
        raise errors[0]
    return out


def same_answers(results: list[dict]) -> dict:
    """Exactly one first answer; every other one is it, flagged duplicate, without a warning."""
    assert sum(1 for r in results if r["duplicate"] is False) == 1, [r["duplicate"] for r in results]
    first = next(r for r in results if r["duplicate"] is False)
    strip = lambda r: {k: v for k, v in r.items() if k != "duplicate"}
    assert all(strip(r) == strip(first) for r in results)
    return first


def entries_of(app, key: str) -> list[tuple]:
    return app.run(None, lambda c: sorted(c.session.execute(
        sa.select(LedgerEntry.kind, LedgerEntry.amount).join(Event, Event.id == LedgerEntry.event_id)
        .where(Event.key == key)).all()))


# --- events through the service --------------------------------------------------------------------

def purchase(key: str, cid: str, amount: str = "120.00") -> dict:
    return {"id": key, "type": "purchase", "customer": cid, "occurred_at": "2024-01-15T10:00:00Z",
            "data": {"amount": amount, "pay_with": "membership"}}


KINDS = ["purchase", "redemption", "service_completed", "adjustment", "enrolment"]


@pytest.mark.parametrize("times", TIMES)
@pytest.mark.parametrize("how", ["in_sequence", "all_at_once"])
def test_the_same_event_has_one_effect(world, how, times):
    """Each kind of event (a purchase, a redemption, a completed service, an adjustment, an
    enrolment) delivered `times` times: one first answer, every other one the same answer flagged
    duplicate, the ledger entries of the first answer and nothing more."""
    app, cid, mid = world
    assert app.post_event(purchase("seed", cid, "60.00"))["status"] == "approved"  # 60 points to redeem
    payloads = {
        "purchase": purchase("pos-1", cid),
        "redemption": {"id": "red-1", "type": "redemption", "customer": cid, "occurred_at": "2024-01-16T10:00:00Z",
                       "data": {"points": 25, "reward": "filter"}},
        "service_completed": {"id": "svc-1", "type": "service_completed", "customer": cid,
                              "occurred_at": "2024-01-16T10:00:00Z", "data": {"service_code": "HVAC_TUNEUP"}},
        "adjustment": {"id": "adj-1", "type": "adjustment", "customer": cid, "occurred_at": "2024-01-16T10:00:00Z",
                       "data": {"unit": "allowance", "amount": "-15.50", "reason": "correction"}},
    }
    # A hundred times over: the two that spend (the other kinds take the same path).
    for kind in KINDS if times < 100 else ["purchase", "redemption"]:
        before = snapshot(app)
        if kind == "enrolment":
            post = lambda i: app.enroll(cid, "idem-plan", date(2024, 1, 20), key="join-again")
        else:
            post = lambda i, p=payloads[kind]: app.post_event(dict(p))
        results = [post(i) for i in range(times)] if how == "in_sequence" else all_at_once(times, post)
        first = same_answers(results)
        after = snapshot(app)
        assert after != before, kind  # it did something, once
        assert entries_of(app, first["event"]) == sorted((e["kind"], _raw(e)) for e in first["entries"]), kind
        # One more, later, is still the first answer and changes nothing.
        assert post(0) == dict(first, duplicate=True), kind
        assert snapshot(app) == after, kind
        report = app.audit()
        assert report["ok"], report["drift"]
    if times < 100:
        assert app.membership(mid)["allowance"]["balance"] == "304.50"  # 500 - 60 - 120 - 15.50
        assert [s["left"] for s in app.membership(mid)["services"]] == [1]
        assert app.points(cid)["balance"] == 60 + 120 - 25 + 10
    else:
        assert app.membership(mid)["allowance"]["balance"] == "320.00"
        assert app.points(cid)["balance"] == 60 + 120 - 25


def _raw(entry: dict) -> int:
    amount = entry["amount"]
    return int(round(float(amount) * 100)) if isinstance(amount, str) else amount


@pytest.mark.parametrize("times", [2, 100])
def test_the_same_event_repeated_inside_one_batch_has_one_effect(world, times):
    """`post_events` (the CLI's `events post` and the bulk path): the same id many times in one
    batch, and again in a second batch, is applied once; every answer is the first one."""
    app, cid, mid = world
    before = snapshot(app)
    results = app.post_events([purchase("pos-b", cid, "35.00") for _ in range(times)])
    first = same_answers(results)
    assert first["status"] == "approved"
    again = app.post_events([purchase("pos-b", cid, "35.00") for _ in range(times)])
    assert all(r == dict(first, duplicate=True) for r in again)
    after = snapshot(app)
    assert after[0] == before[0] + 1 and after[1] == before[1] + len(first["entries"])
    assert app.membership(mid)["allowance"]["balance"] == "465.00"
    assert entries_of(app, "pos-b") == sorted((e["kind"], _raw(e)) for e in first["entries"])
    assert app.audit()["ok"]


# --- the REST API ------------------------------------------------------------------------------------

@pytest.mark.parametrize("times", [10, 100])
@pytest.mark.parametrize("how", ["in_sequence", "all_at_once"])
def test_the_same_api_request_has_one_effect(world, how, times):
    """POST /api/v1/events with the same body: the first answer every time (201, the same bytes),
    replays marked Idempotent-Replayed."""
    app, cid, mid = world
    key = app.create_api_key("idempotency")
    flask_app = create_app({"TESTING": True}, service=app)
    headers = {"Authorization": f"Bearer {key}"}
    body = purchase("api-1", cid, "75.25")
    before = snapshot(app)

    def post(i):
        resp = flask_app.test_client().post("/api/v1/events", json=body, headers=headers)
        return resp.status_code, resp.headers.get("Idempotent-Replayed"), resp.get_data()

    answers = [post(i) for i in range(times)] if how == "in_sequence" else all_at_once(times, post)
    assert Counter(code for code, _, _ in answers) == Counter({201: times})
    assert Counter(replayed for _, replayed, _ in answers) == Counter({None: 1, "true": times - 1})
    assert len({raw for _, _, raw in answers}) == 1  # every answer is the first, byte for byte
    first = json.loads(answers[0][2])
    assert first["status"] == "approved"
    after = snapshot(app)
    assert after[0] == before[0] + 1 and after[1] == before[1] + len(first["entries"])
    assert app.membership(mid)["allowance"]["balance"] == "424.75"
    # The batch form of the same request, repeated: still one effect, the first answer each time.
    for _ in range(3):
        resp = flask_app.test_client().post("/api/v1/events", json={"events": [body, body]}, headers=headers)
        assert resp.status_code == 200
        assert all(r == dict(first, duplicate=True) for r in resp.get_json()["results"])
    assert snapshot(app) == after
    assert app.audit()["ok"]


# --- a due job -------------------------------------------------------------------------------------

@pytest.mark.parametrize("times", [2, 100])
@pytest.mark.parametrize("how", ["in_sequence", "all_at_once"])
def test_the_same_due_job_has_one_effect(world, db_url, redis_url, monkeypatch, how, times):
    """keepwell.interfaces.jobs.tasks.run_due_unit, as RQ runs it (at-least-once: again after a crash, or twice when
    two tickers raced), for a period end and a points expiry."""
    from keepwell.interfaces.jobs import tasks as jobs

    app, cid, mid = world
    assert app.post_event(purchase("spend", cid, "80.00"))["status"] == "approved"
    monkeypatch.setenv("KEEPWELL_DATABASE_URL", db_url)
    monkeypatch.setenv("KEEPWELL_REDIS_URL", redis_url)
    monkeypatch.setenv("KEEPWELL_COMPANY", "default")
    as_of = date(2024, 3, 1)  # January's period ended, the points earned in it expired (1 month)
    units = app.due_plan(as_of)
    assert Counter(u.kind for u in units) == Counter({"period_end": 1, "points_expiry": 1})
    before = snapshot(app)
    try:
        for unit in units:
            run = lambda i, unit=unit: jobs.run_due_unit("default", unit.to_dict())
            results = [run(i) for i in range(times)] if how == "in_sequence" else all_at_once(times, run)
            if unit.kind == "period_end":
                assert sorted(r["periods_closed"] for r in results) == [0] * (times - 1) + [2]
            else:
                assert sorted(r["expired_points"] for r in results) == [0] * (times - 1) + [80]
    finally:
        jobs.close()
    after = snapshot(app)
    assert after != before
    view = app.membership(mid)
    assert (view["period"]["index"], view["allowance"]["balance"]) == (2, "500.00")
    assert app.points(cid)["balance"] == 0
    with app.engine.connect() as c:
        keys = Counter(c.scalars(sa.select(Event.key).where(Event.type.in_(("period_ended", "points_expired")))))
    assert set(keys.values()) == {1} and len(keys) == 3  # two period ends, one expiry
    assert app.due_plan(as_of) == []
    assert app.audit()["ok"]


# --- an outbox delivery (a webhook) -------------------------------------------------------------------

@pytest.mark.parametrize("times", [2, 100])
@pytest.mark.parametrize("how", ["in_sequence", "all_at_once"])
def test_the_same_outbox_delivery_reaches_the_receiver_once(world, how, times):
    """The deliver job for one webhook message run many times (a tick enqueuing it twice, RQ
    running it again): the claim lets one of them send; the receiver sees it once, with the
    message's key as Idempotency-Key. A send the product cannot know succeeded (the worker died
    after sending, the claim expired) is sent again under the same key."""
    app, cid, mid = world
    app.publish(HOOKS, "test", date(2023, 1, 1))
    with HttpRecorder(lambda req: (200, {"ok": True})) as hook:
        app.run(None, lambda c: setattr(c.company, "webhook_url", f"{hook.url}/hook"))
        res = app.post_event(purchase("pos-hook", cid, "42.00"))
        assert res["status"] == "approved"
        with app.engine.connect() as c:
            [(msg_id, key)] = c.execute(sa.select(OutboxMessage.id, OutboxMessage.key)).all()
        chans = channels_from(ChannelSettings(webhook_networks="loopback"), "secret")
        send = lambda i: deliver(app, msg_id, chans).status
        statuses = [send(i) for i in range(times)] if how == "in_sequence" else all_at_once(times, send)
        # One sends; the others find it claimed (`sending`, or locked: `busy`) or already sent.
        assert set(statuses) <= {"sent", "sending", "busy"}, Counter(statuses)
        assert len(hook.requests) == 1
        [req] = hook.requests
        assert req["headers"]["Idempotency-Key"] == key
        with app.engine.connect() as c:
            row = c.execute(sa.select(OutboxMessage.status, OutboxMessage.attempts).where(OutboxMessage.id == msg_id)).one()
            attempts = c.scalars(sa.select(OutboxAttempt.status).where(OutboxAttempt.message_id == msg_id)).all()
        assert tuple(row) == ("sent", 1) and attempts == ["sent"]

        # A claimed message whose worker died after sending (status `sending`, lease over): sent
        # again, with the same key and the same body, so the receiver can drop the copy.
        app.run(None, lambda c: c.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == msg_id)
                                                  .values(status="sending", claimed_until=outbox.utcnow())))
        later = outbox.utcnow() + outbox.LEASE + timedelta(seconds=1)
        assert deliver(app, msg_id, chans, now=later).status == "sent"
        assert deliver(app, msg_id, chans, now=later).status == "sent"  # and not a third time
        assert len(hook.requests) == 2
        assert {r["headers"]["Idempotency-Key"] for r in hook.requests} == {key}
        assert hook.requests[0]["body"] == hook.requests[1]["body"]
    assert app.audit()["ok"]
