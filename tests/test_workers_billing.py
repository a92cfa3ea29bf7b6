"""Billing through real workers (the billing issue): `keepwell run-due` enqueues the billing and
collection units, burst RQ workers on Redis run them against the sandbox gateway — invoices
issued, cards charged, a declined card retried on the plan's day and its member told through
the HVAC pack's notification triggers (read from a real SMTP server), a charge whose answer was
lost found again and never taken twice — and the embedded `keepwell billing run` gives the same."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from mailserver import MailServer, wait_until
from support import Cli
from test_payments import sql
from test_workers import PLAN, burst, pg, redis_server, redis_url, today, worker_env  # noqa: F401

pytestmark = pytest.mark.postgres_only
CARDS = ("success", "insufficient_funds", "network_error")


def enrol_three(cli: Cli, company: str | None = None) -> dict[str, str]:
    out = {}
    for card in CARDS:
        args = ["--company", company] if company else []
        cid = cli.out(*args, "customers", "add", "--name", f"Card {card}", "--email", f"{card}@example.com")
        cli(*args, "payment-methods", "add", cid, "--test-card", card)
        out[card] = cli.out(*args, "enroll", cid, PLAN, "--on", today().isoformat(), "--cadence", "monthly")
    return out


def collected(cli: Cli, ms: dict[str, str], company: str | None = None) -> dict[str, list[tuple]]:
    args = ["--company", company] if company else []
    return {card: [(i["status"], i["amount_due"], [(p["status"], p["decline_code"]) for p in i["payments"]])
                   for i in cli.json(*args, "invoices", "list", mid)] for card, mid in ms.items()}


def test_workers_bill_charge_and_retry_as_the_embedded_billing_run_does(pg, postgres_url, redis_url, tmp_path):
    ms = enrol_three(pg)
    day0, day1 = today(), today() + timedelta(days=1)
    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port)
        # Issuing an invoice makes its charge due: two rounds of due work, as the workers' ticks do.
        for _ in range(2):
            pg.json("run-due", "--as-of", day0.isoformat())
            log = burst(env, tmp_path)
            assert "Traceback" not in log, log[-3000:]
        after_day0 = collected(pg, ms)
        [first] = pg.json("invoices", "list", ms["success"])
        due = first["total"]  # this month from today, by the day (HVAC bills on the 1st)
        assert after_day0 == {
            "success": [("paid", "0.00", [("succeeded", None)])],
            "insufficient_funds": [("open", due, [("failed", "insufficient_funds")])],
            "network_error": [("paid", "0.00", [("succeeded", None)])]}
        assert pg.json("membership", "show", ms["insufficient_funds"])["status"] == "past_due"
        # The lost answer was looked up: the sandbox took that card once.
        assert sql(postgres_url, "SELECT count(*) FROM sandbox_charges WHERE kind = 'charge' AND token LIKE "
                    "'sbx_network_error%'") == [(1,)]

        # The next day the declined card is tried again (retry_days starts at 1).
        pg.json("run-due", "--as-of", day1.isoformat())
        assert "Traceback" not in burst(env, tmp_path)
        # (on the last day of a month, the next day also bills the next month: the first invoice is the one)
        assert collected(pg, ms)["insufficient_funds"][0] == (
            "open", due, [("failed", "insufficient_funds"), ("failed", "insufficient_funds")])

        # Dunning went out through the pack's trigger, once per failure, to the member.
        wait_until(lambda: sum("could not take" in m["Subject"] for m in smtp.messages) >= 2, 20,
                   what="two dunning emails")
        failed = [m for m in smtp.messages if "could not take" in m["Subject"]]
        assert Counter(m["To"] for m in failed) == Counter({"insufficient_funds@example.com": 2})
        assert "try your card again on" in failed[0].get_content()

    # The embedded billing run gives the same, in another company.
    pg("companies", "add", "twin", "--name", "Twin Heating", "--timezone", "America/Denver")
    pg("--company", "twin", "packs", "install", "hvac")
    twins = enrol_three(pg, "twin")
    pg("--company", "twin", "billing", "run", "--as-of", day0.isoformat())
    assert collected(pg, twins, "twin") == after_day0
