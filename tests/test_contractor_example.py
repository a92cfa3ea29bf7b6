"""The contractor's own example, the overdraft cases and month ends, through the CLI."""

from __future__ import annotations

import textwrap

import pytest

from support import event

VIP = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: vip-customer, name: VIP Customer}
    spec:
      allowance:
        amount: "1000.00"
        period: half_yearly
        auto_renewal: %s
        overdraft: {limit: "200.00"}
    """)


@pytest.fixture
def vip(cli, tmp_path):
    def setup(auto_renewal: bool = True, on: str = "2020-01-01"):
        f = tmp_path / "vip.yaml"
        f.write_text(VIP % ("true" if auto_renewal else "false"))
        assert cli.out("rulesets", "publish", str(f)) == "vip-customer@1"
        customer = cli.out("customers", "add", "--name", "Ada Lovelace", "--email", "ada@example.com")
        membership = cli.out("enroll", customer, "vip-customer", "--on", on)
        return customer, membership

    return setup


def test_vip_half_yearly_resets_to_amount_and_moves_expiry(cli, vip):
    customer, m = vip()
    shown = cli.json("membership", "show", m)
    assert shown["status"] == "active"
    assert shown["plan"] == "vip-customer@1"
    assert shown["tier"] == "standard"
    assert shown["expires_on"] == "2020-06-30"
    assert shown["allowance"] == {"amount": "1000.00", "balance": "1000.00", "overdraft_limit": "200.00",
                                  "overdraft_used": "0.00", "overdraft_left": "200.00", "available": "1200.00"}

    [r] = cli.post(event("pos-1017", "purchase", customer, "2020-03-02T10:15:00-07:00", amount="250.00", pay_with="membership"))
    assert r["status"] == "approved"
    assert r["customer"]["name"] == "Ada Lovelace"
    assert (r["balance"], r["overdraft_left"], r["expires_on"]) == ("750.00", "200.00", "2020-06-30")

    cli("run-due", "--as-of", "2020-06-30")  # the last day of the period: nothing is due yet
    assert cli.json("membership", "show", m)["allowance"]["balance"] == "750.00"

    cli("run-due", "--as-of", "2020-07-01")
    shown = cli.json("membership", "show", m)
    assert shown["allowance"]["balance"] == "1000.00"  # unused 750 did not carry forward
    assert shown["expires_on"] == "2020-12-31"

    cli("run-due", "--as-of", "2021-01-01")
    shown = cli.json("membership", "show", m)
    assert (shown["allowance"]["balance"], shown["expires_on"]) == ("1000.00", "2021-06-30")


def test_statement_explains_the_period_end(cli, vip):
    customer, m = vip()
    cli.post(event("pos-1", "purchase", customer, "2020-03-02", amount="250.00", pay_with="membership"))
    cli("run-due", "--as-of", "2020-07-01")
    st = cli.json("statement", m, "--from", "2020-01-01", "--to", "2020-07-31")
    allowance = next(a for a in st["accounts"] if a["account"] == "allowance")
    lines = [(e["date"], e["kind"], e["amount"], e["rule"], e["ruleset"]) for e in allowance["entries"]]
    assert lines == [
        ("2020-01-01", "grant", "1000.00", "plan.allowance.grant", "vip-customer@1"),
        ("2020-03-02", "debit", "-250.00", "plan.allowance.debit", "vip-customer@1"),
        ("2020-07-01", "expire", "-750.00", "plan.allowance.unused_expired", "vip-customer@1"),
        ("2020-07-01", "grant", "1000.00", "plan.allowance.grant", "vip-customer@1"),
    ]
    assert allowance["entries"][1]["event"] == "pos-1"
    assert (allowance["opening"], allowance["closing"]) == ("0.00", "1000.00")
    # Text form reads like a bank statement too.
    text = cli.out("statement", m, "--from", "2020-01-01", "--to", "2020-07-31")
    assert "unused_expired" in text and "pos-1" in text


def test_overdraft_used_is_deducted_from_next_period(cli, vip):
    customer, m = vip()
    [r] = cli.post(event("pos-1", "purchase", customer, "2020-05-01", amount="1150.00", pay_with="membership"))
    assert (r["status"], r["from_allowance"], r["from_overdraft"]) == ("approved", "1000.00", "150.00")
    assert (r["balance"], r["overdraft_used"], r["overdraft_left"]) == ("0.00", "150.00", "50.00")
    cli("run-due", "--as-of", "2020-07-01")
    a = cli.json("membership", "show", m)["allowance"]
    assert (a["balance"], a["overdraft_used"], a["overdraft_left"]) == ("850.00", "0.00", "200.00")


def test_unused_overdraft_facility_carries_forward(cli, vip):
    customer, m = vip()
    cli.post(event("pos-1", "purchase", customer, "2020-02-01", amount="900.00", pay_with="membership"))
    cli("run-due", "--as-of", "2020-07-01")
    # The facility was never touched: next period it is there in full, with the full allowance.
    [r] = cli.post(event("pos-2", "purchase", customer, "2020-08-01", amount="1200.00", pay_with="membership"))
    assert (r["status"], r["balance"], r["overdraft_used"], r["overdraft_left"]) == ("approved", "0.00", "200.00", "0.00")


def test_purchase_past_overdraft_is_declined_and_debits_nothing(cli, vip):
    customer, m = vip()
    [ok] = cli.post(event("pos-1", "purchase", customer, "2020-02-01", amount="1100.00", pay_with="membership"))
    assert ok["status"] == "approved"
    [no] = cli.post(event("pos-2", "purchase", customer, "2020-02-02", amount="100.01", pay_with="membership"))
    assert no["status"] == "declined"
    assert no["reason"] == "insufficient_allowance"
    assert "100.01" in no["message"] and "100.00" in no["message"]
    assert no["entries"] == []
    a = cli.json("membership", "show", m)["allowance"]
    assert (a["balance"], a["overdraft_used"]) == ("0.00", "100.00")
    # Exactly the rest of the facility still goes through.
    [last] = cli.post(event("pos-3", "purchase", customer, "2020-02-03", amount="100.00", pay_with="membership"))
    assert (last["status"], last["overdraft_left"]) == ("approved", "0.00")


def test_auto_renewal_off_expires_at_period_end(cli, vip):
    customer, m = vip(auto_renewal=False)
    cli.post(event("pos-1", "purchase", customer, "2020-02-01", amount="100.00", pay_with="membership"))
    cli("run-due", "--as-of", "2020-07-01")
    shown = cli.json("membership", "show", m)
    assert shown["status"] == "expired"
    assert shown["ended_on"] == "2020-06-30"
    assert shown["allowance"]["balance"] == "0.00"  # the remainder expired with the membership
    [r] = cli.post(event("pos-2", "purchase", customer, "2020-07-02", amount="10.00", pay_with="membership"))
    assert (r["status"], r["reason"]) == ("declined", "no_membership")


def test_late_purchase_closes_the_ended_period_first(cli, vip):
    """A purchase dated in the next period, before run-due ran, lands in the new period."""
    customer, m = vip()
    cli.post(event("pos-1", "purchase", customer, "2020-03-01", amount="400.00", pay_with="membership"))
    [r] = cli.post(event("pos-2", "purchase", customer, "2020-07-05", amount="100.00", pay_with="membership"))
    assert (r["status"], r["balance"], r["expires_on"]) == ("approved", "900.00", "2020-12-31")
    cli("run-due", "--as-of", "2020-07-06")  # the period end already happened: nothing twice
    assert cli.json("membership", "show", m)["allowance"]["balance"] == "900.00"


def test_run_due_twice_changes_nothing(cli, vip):
    customer, m = vip()
    first = cli.json("run-due", "--as-of", "2021-01-01")
    assert first["periods_closed"] == 2
    again = cli.json("run-due", "--as-of", "2021-01-01")
    assert again["periods_closed"] == 0
    st = cli.json("statement", m, "--from", "2020-01-01", "--to", "2021-12-31")
    grants = [e for a in st["accounts"] for e in a["entries"] if e["kind"] == "grant"]
    assert len(grants) == 3


MONTHLY = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: monthly-care, name: Monthly Care}
    spec:
      allowance: {amount: "50.00", period: monthly}
    """)


def test_month_end_issue_date_keeps_its_day(cli, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(MONTHLY)
    cli("rulesets", "publish", str(f))
    c = cli.out("customers", "add", "--name", "Jan Thirtyone")
    m = cli.out("enroll", c, "monthly-care", "--on", "2020-01-31")
    expiries = []
    for as_of in ("2020-02-29", "2020-03-31", "2020-04-30", "2020-05-31"):
        cli("run-due", "--as-of", as_of)
        expiries.append(cli.json("membership", "show", m)["expires_on"])
    # Periods start Jan 31, Feb 29, Mar 31, Apr 30, May 31: each ends the day before the next.
    assert expiries == ["2020-03-30", "2020-04-29", "2020-05-30", "2020-06-29"]
    shown = cli.json("membership", "show", m)
    assert shown["period"] == {"kind": "monthly", "index": 4, "start": "2020-05-31", "end": "2020-06-29"}


def test_event_belongs_to_the_period_of_its_local_date(cli, vip):
    """23:30 in Denver on June 30 is July 1 in UTC, but the purchase is in the first period."""
    customer, m = vip()
    [r] = cli.post(event("pos-late", "purchase", customer, "2020-06-30T23:30:00-06:00", amount="10.00", pay_with="membership"))
    assert (r["local_date"], r["expires_on"], r["balance"]) == ("2020-06-30", "2020-06-30", "990.00")
    [r] = cli.post(event("pos-next", "purchase", customer, "2020-07-01T06:30:00Z", amount="10.00", pay_with="membership"))
    # 06:30 UTC is 00:30 in Denver on July 1: the new period, after the reset.
    assert (r["local_date"], r["expires_on"], r["balance"]) == ("2020-07-01", "2020-12-31", "990.00")
