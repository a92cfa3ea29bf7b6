"""Payments (the billing issue): cards are gateway tokens; each invoice is charged on its issue
day; a failed payment is retried on the plan's days (a card refused for good is not), the
membership past due, then suspended (its allowance cannot be charged), then cancelled; a later
payment restores it; a charge whose answer was lost is looked up, never taken twice. Through
the CLI contract, against the sandbox gateway's test cards."""

from __future__ import annotations

import json
from datetime import date, timedelta

import sqlalchemy as sa
import yaml

from support import event


def sql(db_url: str, query: str) -> list[tuple]:
    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(query))]
    finally:
        eng.dispose()

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly"},
                 "price": {"monthly": "30.00", "yearly": "300.00"},
                 "billing": {"anchor_day": 1, "proration": "daily", "retry_days": [1, 3, 7],
                             "suspend_after_days": 5, "cancel_after_days": 10}}}


def setup(cli, tmp_path, card: str | None, name: str = "Ann Card", on: str = "2026-03-01",
          plan: dict = PLAN) -> tuple[str, str, str | None]:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    cli("rulesets", "publish", str(path), "--effective-from", "2020-01-01")
    cid = cli.out("customers", "add", "--name", name, "--email", "ann@example.com")
    pm = cli.out("payment-methods", "add", cid, "--test-card", card) if card else None
    mid = cli.out("enroll", cid, "club", "--on", on, "--cadence", "monthly")
    return cid, mid, pm


def bill(cli, day: str) -> dict:
    out = json.loads(cli.out("billing", "run", "--as-of", day))
    assert out.pop("as_of") == day
    return out


def status(cli, mid: str) -> str:
    return cli.json("membership", "show", mid)["status"]


def test_a_good_card_pays_each_invoice_on_its_day_and_only_once(cli, tmp_path):
    cid, mid, pm = setup(cli, tmp_path, "success")
    assert pm.startswith("pm_")
    [card] = cli.json("payment-methods", "list", cid)
    assert (card["brand"], card["last4"], card["default"]) == ("visa", "4242", True)
    assert bill(cli, "2026-03-01") == {"invoices": 1, "charged": 1, "failed": 0, "retried": 0}
    assert bill(cli, "2026-03-01") == {"invoices": 0, "charged": 0, "failed": 0, "retried": 0}
    assert bill(cli, "2026-05-01") == {"invoices": 2, "charged": 2, "failed": 0, "retried": 0}
    invs = cli.json("invoices", "list", mid)
    assert [(i["status"], i["amount_due"], i["total"]) for i in invs] == [("paid", "0.00", "30.00")] * 3
    assert status(cli, mid) == "active"


def test_a_declined_card_is_retried_then_the_membership_is_past_due_suspended_and_cancelled(cli, tmp_path):
    cid, mid, _pm = setup(cli, tmp_path, "insufficient_funds")
    assert bill(cli, "2026-03-01") == {"invoices": 1, "charged": 0, "failed": 1, "retried": 0}
    assert status(cli, mid) == "past_due"
    # Past due, the allowance still pays at the till.
    [paid] = cli.post(event("till-1", "purchase", cid, "2026-03-01", amount="10.00", pay_with="membership"))
    assert paid["status"] == "approved"
    assert bill(cli, "2026-03-02") == {"invoices": 0, "charged": 0, "failed": 1, "retried": 1}  # day 1
    assert bill(cli, "2026-03-03") == {"invoices": 0, "charged": 0, "failed": 0, "retried": 0}
    assert bill(cli, "2026-03-04") == {"invoices": 0, "charged": 0, "failed": 1, "retried": 1}  # day 3
    assert status(cli, mid) == "past_due"
    assert bill(cli, "2026-03-06")["retried"] == 0  # day 5: suspended
    assert status(cli, mid) == "suspended"
    [refused] = cli.post(event("till-2", "purchase", cid, "2026-03-06", amount="10.00", pay_with="membership"))
    assert (refused["status"], refused["reason"]) == ("declined", "membership_suspended")
    assert bill(cli, "2026-03-08") == {"invoices": 0, "charged": 0, "failed": 1, "retried": 1}  # day 7, the last
    assert bill(cli, "2026-03-10") == {"invoices": 0, "charged": 0, "failed": 0, "retried": 0}
    assert bill(cli, "2026-03-11") == {"invoices": 0, "charged": 0, "failed": 0, "retried": 0}  # day 10: cancelled
    assert status(cli, mid) == "cancelled"
    [inv] = cli.json("invoices", "list", mid)
    assert (inv["status"], inv["amount_due"]) == ("uncollectible", "30.00")
    assert bill(cli, "2026-04-01")["invoices"] == 0  # a cancelled membership is not billed again


def test_a_hard_decline_is_never_retried_and_a_new_card_recovers_the_membership(cli, tmp_path, db_url):
    # Rehearsed on the company's test clock: the new card is added on the day it is charged.
    cli.env["KEEPWELL_MODE"] = "test"
    start = date.fromisoformat(cli.json("clock", "show")["today"])
    day = lambda n: (start + timedelta(days=n)).isoformat()
    cid, mid, _pm = setup(cli, tmp_path, "hard_decline", on=start.isoformat())
    assert bill(cli, day(0))["failed"] == 1
    assert bill(cli, day(4)) == {"invoices": 0, "charged": 0, "failed": 0, "retried": 0}  # no retry at all
    assert bill(cli, day(5))["failed"] == 0
    assert status(cli, mid) == "suspended"
    cli("clock", "advance", "--to", day(6))
    cli("payment-methods", "add", cid, "--test-card", "success", "--default")
    assert bill(cli, day(6)) == {"invoices": 0, "charged": 1, "failed": 0, "retried": 1}
    assert status(cli, mid) == "active"
    [inv] = cli.json("invoices", "list", mid)
    assert (inv["status"], inv["amount_due"]) == ("paid", "0.00")
    types = [t for (t,) in sql(db_url, f"SELECT type FROM events WHERE customer_id = '{cid}' ORDER BY id")]
    assert types.count("payment_failed") == 1 and "membership_suspended" in types and "payment_succeeded" in types


def test_a_charge_whose_answer_was_lost_is_looked_up_and_taken_once(cli, tmp_path, db_url):
    _cid, mid, _pm = setup(cli, tmp_path, "network_error")
    assert bill(cli, "2026-03-01") == {"invoices": 1, "charged": 1, "failed": 0, "retried": 0}
    assert bill(cli, "2026-04-01") == {"invoices": 1, "charged": 1, "failed": 0, "retried": 0}
    assert [i["status"] for i in cli.json("invoices", "list", mid)] == ["paid", "paid"]
    taken = sql(db_url, "SELECT count(*), sum(amount_cents) FROM sandbox_charges WHERE kind = 'charge'")
    assert taken == [(2, 6000)]


def test_a_member_without_a_card_is_invoiced_and_left_to_pay(cli, tmp_path):
    _cid, mid, _pm = setup(cli, tmp_path, None)
    assert bill(cli, "2026-03-20") == {"invoices": 1, "charged": 0, "failed": 0, "retried": 0}
    assert status(cli, mid) == "active"
    assert cli.json("invoices", "list", mid)[0]["status"] == "open"


def test_cards_are_a_customers_own(cli, tmp_path):
    cid, _mid, pm = setup(cli, tmp_path, "success")
    other = cli.out("customers", "add", "--name", "Bob Other")
    r = cli("enroll", other, "club", "--on", "2026-03-01", "--cadence", "monthly", "--payment-method", pm,
            expect=None)
    assert r.exit_code != 0 and "no payment method" in r.output
    second = cli.out("payment-methods", "add", cid, "--test-card", "decline")
    assert [c["default"] for c in cli.json("payment-methods", "list", cid)] == [True, False]
    cli("payment-methods", "set-default", second)
    assert [c["default"] for c in cli.json("payment-methods", "list", cid)] == [False, True]
    cli("payment-methods", "remove", second)
    assert [(c["id"], c["default"]) for c in cli.json("payment-methods", "list", cid)] == [(pm, True)]


def test_payment_webhooks_are_queued_for_endpoints_that_want_them(cli, tmp_path, db_url):
    cli("webhooks", "add", "https://billing.example/hooks", "--events", "payment.failed,payment.succeeded")
    cid, mid, _pm = setup(cli, tmp_path, "decline")
    bill(cli, "2026-03-01")
    cli("payment-methods", "add", cid, "--test-card", "success", "--default")
    today = cli.json("clock", "show")["today"]
    bill(cli, today)
    queued = sql(db_url, "SELECT rule FROM outbox WHERE kind = 'webhook' ORDER BY id")
    assert [r for (r,) in queued][:2] == ["payment.failed", "payment.succeeded"]


def test_memberships_are_listed_by_their_standing(cli, tmp_path):
    _cid, mid, _pm = setup(cli, tmp_path, "decline")
    bill(cli, "2026-03-01")
    assert [m["id"] for m in cli.json("membership", "list", "--status", "past_due")] == [mid]
    assert cli.json("membership", "list", "--status", "suspended") == []
