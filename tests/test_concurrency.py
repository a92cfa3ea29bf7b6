"""Concurrent writers on one PostgreSQL database: no lost update, no overdraft past its limit, one
effect per event id.

Each writer is a separate OS process (multiprocessing, 'spawn') with a Keepwell of its own, built
from settings exactly as a web or worker process builds it; some also run several threads. They
wait on a shared barrier and then post at the same moment, so the row lock on the customer (see
README, "Scaling out") is what stands between them and a double spend.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
import time
import traceback
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from kwmodels import Account, Event, LedgerEntry
from support import make_app

pytestmark = pytest.mark.postgres_only

PLAN_ID = "race-plan"
ON = date(2024, 1, 1)  # issue date; the yearly period runs to 2024-12-31
DAY = "2024-03-01T10:00:00-00:00"
DEADLINE = 120  # seconds: no test may wait longer than this for its writers


def plan(amount: str, limit: str, period: str = "yearly") -> dict:
    return {
        "apiVersion": "keepwell/v1", "kind": "Plan",
        "metadata": {"id": PLAN_ID, "name": "Race plan"},
        "spec": {"allowance": {"amount": amount, "period": period, "overdraft": {"limit": limit}}},
    }


POINTS = {
    "apiVersion": "keepwell/v1", "kind": "EarningRules",
    "metadata": {"id": "race-points", "name": "Race points"},
    "spec": {"rules": [{"id": "spend", "when": {"event": "purchase"}, "earn": {"points": 1, "per": "1.00", "of": "data.amount"}}]},
}


def cents(s: str) -> int:
    return int(Decimal(s) * 100)


def money(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def purchase(event_id: str, customer: str, amount: str, at: str = DAY) -> dict:
    return {"id": event_id, "type": "purchase", "customer": customer, "occurred_at": at,
            "data": {"amount": amount, "pay_with": "membership"}}


# --- the writer processes ------------------------------------------------------------------------

def _writer(url: str, barrier, results, name: str, threads: list[list[dict]], sync_each: bool) -> None:
    """One OS process: a Keepwell of its own; one thread per list of payloads (an event, or
    {"run_due": DATE}). Every thread waits at the barrier (before each payload when `sync_each`),
    then posts; results go back on the queue."""
    from keepwell.infra.settings import Settings
    from keepwell.interfaces.wiring import open_app
    from keepwell.usecases import audit, due, events

    app = None
    try:
        app = open_app(Settings.from_env({"KEEPWELL_DATABASE_URL": url}))
        audit.audit(app, "default")  # connect and import everything before the race starts

        def run(i: int, payloads: list[dict]) -> None:
            out = []
            try:
                for n, payload in enumerate(payloads):
                    if sync_each or n == 0:
                        barrier.wait(timeout=DEADLINE)
                    if "run_due" in payload:
                        out.append(due.run(app, "default", date.fromisoformat(payload["run_due"])).to_dict())
                    else:
                        out.append(events.post_event(app, "default", payload))
                results.put((f"{name}.{i}", "ok", out))
            except BaseException:
                results.put((f"{name}.{i}", "error", traceback.format_exc()))
                barrier.abort()

        workers = [threading.Thread(target=run, args=(i, p), daemon=True) for i, p in enumerate(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(DEADLINE)
    except BaseException:
        results.put((name, "error", traceback.format_exc()))
        barrier.abort()
    finally:
        if app is not None:
            app.close()


def race(url: str, plan_of_writers: list[list[list[dict]]], sync_each: bool = False) -> dict[str, list[dict]]:
    """Start one process per entry of `plan_of_writers` (each a list of per-thread payload lists),
    release them together, and return every thread's results by its name. Bounded by DEADLINE."""
    ctx = multiprocessing.get_context("spawn")
    parties = sum(len(threads) for threads in plan_of_writers)
    barrier = ctx.Barrier(parties)
    results = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, barrier, results, f"p{i}", threads, sync_each), daemon=True)
             for i, threads in enumerate(plan_of_writers)]
    for p in procs:
        p.start()
    got: dict[str, list[dict]] = {}
    errors = []
    stop = time.monotonic() + DEADLINE
    try:
        while len(got) + len(errors) < parties:
            try:
                name, status, payload = results.get(timeout=max(stop - time.monotonic(), 0.1))
            except queue_module.Empty:
                pytest.fail(f"writers did not finish within {DEADLINE}s ({len(got)} of {parties} reported)")
            if status == "ok":
                got[name] = payload
            else:
                errors.append(f"{name}:\n{payload}")
            if errors:
                break
    finally:
        for p in procs:
            p.join(timeout=10)
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    assert not errors, "\n".join(errors)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return got


# --- setup and checks ----------------------------------------------------------------------------

@pytest.fixture
def member(postgres_url):
    """A member on a yearly allowance plan with an overdraft, in company 'default'."""
    apps = []

    def setup(amount: str, limit: str, period: str = "yearly"):
        app = make_app(postgres_url)
        apps.append(app)
        app.publish(plan(amount, limit, period), "test", date(2023, 1, 1))
        app.publish(POINTS, "test", date(2023, 1, 1))
        customer = app.add_customer("Rachel Racer")
        m = app.enroll(customer, PLAN_ID, ON)["membership"]
        return app, customer, m

    yield setup
    for a in apps:
        a.close()


def available(app, m: str) -> int:
    return cents(app.membership(m)["allowance"]["available"])


def check_ledger_chains(app) -> None:
    """Every account's entries, in the order they were written, carry a running balance that is
    exactly the sum so far, and the cached balance is the last of them: no write saw stale data."""
    with app.engine.connect() as c:
        for acc_id, balance in c.execute(sa.select(Account.id, Account.balance)):
            running = 0
            for amount, after in c.execute(sa.select(LedgerEntry.amount, LedgerEntry.balance_after)
                                           .where(LedgerEntry.account_id == acc_id).order_by(LedgerEntry.id)):
                running += amount
                assert after == running, f"account {acc_id}: balance_after {after}, running sum {running}"
            assert balance == running
    report = app.audit()
    assert report["ok"], report["drift"]


def allowance_entries(app, m: str, end: date = date(2024, 12, 31)) -> dict[str, list[dict]]:
    st = app.statement(m, date(2024, 1, 1), end)
    return {a["account"]: a["entries"] for a in st["accounts"]}


# --- the tests -----------------------------------------------------------------------------------

def test_two_processes_cannot_spend_more_than_balance_plus_overdraft(member, postgres_url):
    app, customer, m = member("1000.00", "200.00")
    start = available(app, m)
    assert start == 120000
    amounts = ["7.00", "12.50", "20.00", "33.33", "50.00", "3.99"]
    per_process = 60
    writers = [[[purchase(f"p{p}-{i}", customer, amounts[(i + p) % len(amounts)]) for i in range(per_process)]]
               for p in range(2)]
    asked = sum(cents(e["data"]["amount"]) for w in writers for e in w[0])
    assert asked > start  # the two together want more than there is

    got = race(postgres_url, writers)
    results = [r for rs in got.values() for r in rs]
    assert len(results) == 2 * per_process
    approved = [r for r in results if r["status"] == "approved"]
    declined = [r for r in results if r["status"] != "approved"]
    assert all(r["duplicate"] is False for r in results)
    assert {(r["status"], r["reason"]) for r in declined} <= {("declined", "insufficient_allowance")}
    assert all(r["entries"] == [] for r in declined)
    assert approved and declined

    spent = sum(cents(r["charged"]) for r in approved)
    end = available(app, m)
    # What was approved is exactly what left the membership, and no more than was there.
    assert spent + end == start
    assert spent <= start
    # Anything declined was declined because it really did not fit (availability only falls).
    assert end < min(cents(_amount_of(r, writers)) for r in declined)

    # The approved charges form one serial history: sorted by what was left after each, every one
    # took exactly its own amount from what the previous one left.
    left_after = sorted(((cents(r["balance"]) + cents(r["overdraft_left"]), r) for r in approved),
                        key=lambda x: -x[0])
    prev = start
    for after, r in left_after:
        assert prev - cents(r["charged"]) == after, (prev, r)
        prev = after
    assert prev == end

    a = app.membership(m)["allowance"]
    assert cents(a["balance"]) >= 0
    assert 0 <= cents(a["overdraft_used"]) <= cents(a["overdraft_limit"])
    # Each process saw its own balance only go down.
    for rs in got.values():
        seen = [cents(r["balance"]) + cents(r["overdraft_left"]) for r in rs if r["status"] == "approved"]
        assert seen == sorted(seen, reverse=True)

    entries = allowance_entries(app, m)
    debits = [e for e in entries["allowance"] if e["kind"] == "debit"]
    overdraft = [e for e in entries.get("overdraft", []) if e["kind"] == "overdraft"]
    assert -sum(cents(e["amount"]) for e in debits) == sum(cents(r["from_allowance"]) for r in approved)
    assert -sum(cents(e["amount"]) for e in overdraft) == sum(cents(r["from_overdraft"]) for r in approved)
    assert len(debits) == sum(1 for r in approved if cents(r["from_allowance"]))
    assert len(overdraft) == sum(1 for r in approved if cents(r["from_overdraft"]))
    assert -sum(cents(e["amount"]) for e in debits + overdraft) == spent
    assert cents(a["overdraft_used"]) == sum(cents(r["from_overdraft"]) for r in approved)
    # Points were earned once per approved charge, never for a declined one.
    assert app.points(customer)["balance"] == sum(cents(r["charged"]) // 100 for r in approved)
    check_ledger_chains(app)


def _amount_of(result: dict, writers) -> str:
    for w in writers:
        for e in w[0]:
            if e["id"] == result["event"]:
                return e["data"]["amount"]
    raise AssertionError(result)


def test_racing_for_the_last_of_a_balance(member, postgres_url):
    app, customer, m = member("100.00", "20.00")
    first = app.post_event(purchase("warm-up", customer, "5.00"))
    assert first["status"] == "approved"
    start = available(app, m)
    assert start == 11500  # 95.00 left + 20.00 overdraft
    price = 1000
    processes, threads = 4, 8  # 32 attempts at 10.00 for 115.00
    writers = [[[purchase(f"last-{p}-{t}", customer, money(price))] for t in range(threads)] for p in range(processes)]

    got = race(postgres_url, writers)
    results = [r for rs in got.values() for r in rs]
    assert len(results) == processes * threads
    approved = [r for r in results if r["status"] == "approved"]
    declined = [r for r in results if r["status"] != "approved"]
    assert len(approved) == start // price == 11
    assert len(declined) == processes * threads - 11
    assert all((r["status"], r["reason"]) == ("declined", "insufficient_allowance") for r in declined)
    assert all(r["entries"] == [] for r in declined)
    a = app.membership(m)["allowance"]
    assert (a["balance"], a["overdraft_used"], a["overdraft_left"], a["available"]) == ("0.00", "15.00", "5.00", "5.00")
    # Every approved charge left a different amount behind: no two saw the same balance.
    lefts = sorted(cents(r["balance"]) + cents(r["overdraft_left"]) for r in approved)
    assert lefts == [start - price * k for k in range(11, 0, -1)]
    entries = allowance_entries(app, m)
    charged = -sum(cents(e["amount"]) for e in entries["allowance"] + entries["overdraft"]
                   if e["kind"] in ("debit", "overdraft"))
    assert charged == 500 + 11 * price
    check_ledger_chains(app)


def test_the_same_event_id_posted_concurrently_has_one_effect(member, postgres_url):
    app, customer, m = member("500.00", "0.00")
    rounds, processes, threads = 12, 4, 2
    payloads = [purchase(f"dup-{k}", customer, "10.00") for k in range(rounds)]
    # Every thread posts the same ids, in the same order, all released together for each id.
    writers = [[list(payloads) for _t in range(threads)] for _p in range(processes)]

    got = race(postgres_url, writers, sync_each=True)
    assert len(got) == processes * threads
    for k in range(rounds):
        answers = [rs[k] for rs in got.values()]
        assert {a["event"] for a in answers} == {f"dup-{k}"}
        firsts = [a for a in answers if a["duplicate"] is False]
        assert len(firsts) == 1, [a["duplicate"] for a in answers]
        same = [{key: v for key, v in a.items() if key != "duplicate"} for a in answers]
        assert all(s == same[0] for s in same), same
        assert same[0]["status"] == "approved"
        assert "warning" not in same[0]

    st_entries = allowance_entries(app, m)["allowance"]
    for k in range(rounds):
        debits = [e for e in st_entries if e["event"] == f"dup-{k}"]
        assert [(e["kind"], e["amount"]) for e in debits] == [("debit", "-10.00")]
    assert app.membership(m)["allowance"]["balance"] == money(50000 - rounds * 1000)
    assert app.points(customer)["balance"] == rounds * 10
    with app.engine.connect() as c:
        keys = c.scalars(sa.select(Event.key).where(Event.key.like("dup-%"))).all()
    assert sorted(keys) == sorted(p["id"] for p in payloads)
    check_ledger_chains(app)


def test_run_due_racing_purchases_in_the_next_period_closes_the_period_once(member, postgres_url):
    """run-due and purchases dated after the period end both close the period; whoever comes
    first does it, exactly once, and the purchases land in the new period."""
    app, customer, m = member("100.00", "0.00", period="monthly")  # period 0: 2024-01-01 .. 2024-01-31
    assert app.post_event(purchase("jan", customer, "30.00", at="2024-01-15T10:00:00Z"))["status"] == "approved"
    feb = "2024-02-01T09:00:00Z"
    writers = [
        [[{"run_due": "2024-02-01"}], [purchase("feb-0", customer, "10.00", at=feb)]],
        [[purchase("feb-1", customer, "10.00", at=feb)], [purchase("feb-2", customer, "10.00", at=feb)]],
        [[{"run_due": "2024-02-02"}], [purchase("feb-3", customer, "10.00", at=feb)]],
    ]
    got = race(postgres_url, writers)
    results = [r for rs in got.values() for r in rs]
    buys = [r for r in results if "event" in r]
    assert len(buys) == 4 and all(r["status"] == "approved" for r in buys)
    assert all(r["expires_on"] == "2024-02-29" for r in buys)  # charged in the new period
    assert sum(r["periods_closed"] for r in results if "periods_closed" in r) <= 1
    view = app.membership(m)
    assert (view["period"]["index"], view["allowance"]["balance"]) == (1, "60.00")
    entries = allowance_entries(app, m, end=date(2024, 3, 31))["allowance"]
    assert [(e["kind"], e["amount"]) for e in entries if e["kind"] in ("expire", "grant")] == [
        ("grant", "100.00"), ("expire", "-70.00"), ("grant", "100.00")]
    with app.engine.connect() as c:
        closes = c.scalars(sa.select(Event.key).where(Event.type == "period_ended")).all()
    assert closes == [f"period_ended:{m}:0"]
    assert app.run_due(date(2024, 2, 2))["periods_closed"] == 0
    check_ledger_chains(app)


def test_fifty_charges_and_fifty_redemptions_race_for_the_last_of_their_balances(member, postgres_url):
    """50 charges of 10.00 against 115.00 (balance + overdraft) and, for another member at the
    same time, 50 redemptions of 25 points against 310 points: exactly 11 and 12 succeed, every
    other one is declined with its reason (insufficient_allowance, insufficient_points) and
    writes nothing."""
    app, payer, m = member("100.00", "20.00")
    assert app.post_event(purchase("warm-up", payer, "5.00"))["status"] == "approved"
    saver = app.add_customer("Sam Saver")
    app.enroll(saver, PLAN_ID, ON)
    earned = app.post_event({"id": "earn", "type": "purchase", "customer": saver, "occurred_at": DAY,
                             "data": {"amount": "310.00", "pay_with": "card"}})
    assert earned["points"]["balance"] == 310
    start = available(app, m)
    assert start == 11500
    processes, per_process = 5, 10
    writers = [[[purchase(f"last-{p}-{t}", payer, "10.00")] for t in range(per_process)] +
               [[{"id": f"redeem-{p}-{t}", "type": "redemption", "customer": saver, "occurred_at": DAY,
                  "data": {"points": 25, "reward": "gift card"}}] for t in range(per_process)]
               for p in range(processes)]

    got = race(postgres_url, writers)
    results = [r for rs in got.values() for r in rs]
    charges = [r for r in results if r["type"] == "purchase"]
    redemptions = [r for r in results if r["type"] == "redemption"]
    assert len(charges) == len(redemptions) == 50

    approved = [r for r in charges if r["status"] == "approved"]
    assert len(approved) == 11
    declined = [r for r in charges if r["status"] != "approved"]
    assert all((r["status"], r["reason"]) == ("declined", "insufficient_allowance") for r in declined)
    assert all(r["entries"] == [] and "available" in r["message"] for r in declined)
    assert sorted(cents(r["balance"]) + cents(r["overdraft_left"]) for r in approved) == [
        start - 1000 * k for k in range(11, 0, -1)]
    a = app.membership(m)["allowance"]
    assert (a["balance"], a["overdraft_used"], a["available"]) == ("0.00", "15.00", "5.00")

    redeemed = [r for r in redemptions if r["status"] == "processed"]
    assert len(redeemed) == 12
    refused = [r for r in redemptions if r["status"] != "processed"]
    assert all((r["status"], r["reason"]) == ("declined", "insufficient_points") for r in refused)
    assert all(r["entries"] == [] and r["message"] for r in refused)
    assert sorted(r["points"]["balance"] for r in redeemed) == [310 - 25 * k for k in range(12, 0, -1)]
    assert app.points(saver)["balance"] == 10
    [lot] = app.points(saver)["lots"]
    assert (lot["points"], lot["remaining"]) == (310, 10)
    check_ledger_chains(app)
