"""The Stripe adapter (the billing issue), against localstripe — a stateful fake Stripe server
run on loopback by the test: cards tokenised by Stripe (as Stripe.js does, here by the stripe
library against the fake), membership invoices charged as PaymentIntents, a decline retried
and recovered by a new card, a refund paid back; a charge is found again by its key."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import stripe
import yaml

from keepwell.billing.stripe_gateway import StripeGateway

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly"}, "billing": {"anchor_day": 1},
                 "cancellation": {"refund": "prorated"},
                 "tiers": [{"id": "basic", "name": "Basic", "price": {"monthly": "30.00"}}]}}
KEY = "sk_test_keepwell"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def localstripe():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "localstripe", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + 30
    while True:  # until it answers (a condition, not a fixed sleep)
        try:
            with socket.create_connection(("localhost", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("localstripe did not start")
            time.sleep(0.05)
    # localstripe keeps its books in /tmp/localstripe.pickle across runs: start from none.
    urllib.request.urlopen(urllib.request.Request(f"{base}/_config/data", method="DELETE"), timeout=10).close()
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def stripe_card(base: str, number: str) -> str:
    """What Stripe.js does in the member's browser: the card goes to Stripe, a pm_ id comes back."""
    client = stripe.StripeClient(KEY, base_addresses={"api": base})
    pm = client.v1.payment_methods.create(params={"type": "card", "card": {
        "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    return pm.id


def test_memberships_are_charged_and_refunded_through_stripe(cli, tmp_path, localstripe):
    cli.env.update({"KEEPWELL_STRIPE_API_KEY": KEY, "KEEPWELL_STRIPE_API_BASE": localstripe})
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN))
    cli("rulesets", "publish", str(path), "--effective-from", "2020-01-01")
    cid = cli.out("customers", "add", "--name", "Ada Stripe", "--email", "ada@example.com")
    declining = stripe_card(localstripe, "4000000000000341")  # attaches, then every charge is declined
    added = cli.json("payment-methods", "add-token", cid, "--gateway", "stripe", "--token", declining)
    assert (added["gateway"], added["brand"], added["last4"], added["exp_year"]) == ("stripe", "visa", "0341", 2034)
    mid = cli.out("enroll", cid, "club", "--on", "2026-03-01", "--cadence", "monthly")
    run = json.loads(cli.out("billing", "run", "--as-of", "2026-03-01"))
    assert (run["charged"], run["failed"]) == (0, 1)
    assert cli.json("membership", "show", mid)["status"] == "past_due"
    [inv] = cli.json("invoices", "list", mid)
    assert inv["payments"][0]["decline_code"] == "card_declined"
    good = cli.json("payment-methods", "add-token", cid, "--gateway", "stripe", "--token",
                    stripe_card(localstripe, "4242424242424242"), "--default")
    assert good["default"]
    run = json.loads(cli.out("billing", "run", "--as-of", "2026-03-02"))
    assert (run["charged"], run["retried"]) == (1, 1)
    assert cli.json("membership", "show", mid)["status"] == "active"
    client = stripe.StripeClient(KEY, base_addresses={"api": localstripe})
    intents = client.v1.payment_intents.list(params={"limit": 100}).data
    [paid] = [pi for pi in intents if pi.status == "succeeded"]
    assert (paid.amount, paid.currency) == (3000, "usd")
    done = cli.json("membership", "cancel", mid, "--on", "2026-03-10")
    assert [n["refunded"] for n in done["credit_notes"]] == ["20.32"]  # 21 of 31 days of 30.00
    [refund] = client.v1.refunds.list(params={"limit": 10}).data
    assert (refund.amount, refund.payment_intent) == (2032, paid.id)


def test_a_charge_is_found_again_by_its_key(localstripe):
    gw = StripeGateway(KEY, localstripe)
    ctx = type("Ctx", (), {"company": type("Company", (), {"id": 7})()})()
    token = stripe_card(localstripe, "4242424242424242")
    assert gw.lookup(ctx, "invoice-1-attempt-1") is None
    taken = gw.charge(ctx, token, 1234, "USD", "invoice-1-attempt-1")
    assert taken.status == "succeeded"
    found = gw.lookup(ctx, "invoice-1-attempt-1")
    assert found is not None and (found.status, found.reference) == ("succeeded", taken.reference)
    assert gw.lookup(type("Ctx", (), {"company": type("Company", (), {"id": 8})()})(), "invoice-1-attempt-1") is None
