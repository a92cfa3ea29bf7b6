"""Included services through the CLI: covered visits, the member discount once they are used up,
codes the plan does not include, the reset at the end of a period and non-members."""

from __future__ import annotations

import textwrap

import pytest

from support import event

PLAN = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: tune-club, name: Tune Club}
    spec:
      period: yearly
      included_services:
        - {code: AC_TUNE, name: A/C tune-up, quantity: 2}
        - {code: FURNACE_TUNE, name: Furnace tune-up, quantity: 1}
      discount_percent: "10"
    """)


@pytest.fixture
def member(cli, tmp_path):
    f = tmp_path / "plan.yaml"
    f.write_text(PLAN)
    assert cli.out("rulesets", "publish", str(f)) == "tune-club@1"
    customer = cli.out("customers", "add", "--name", "Carrier Willis")
    membership = cli.out("enroll", customer, "tune-club", "--on", "2020-01-01")
    return customer, membership


def services(cli, membership: str) -> dict[str, tuple[int, int, int]]:
    return {s["code"]: (s["used"], s["left"], s["quantity"]) for s in cli.json("membership", "show", membership)["services"]}


def test_fresh_membership_has_every_included_service(cli, member):
    _customer, m = member
    shown = cli.json("membership", "show", m)
    assert shown["services"] == [
        {"code": "AC_TUNE", "name": "A/C tune-up", "quantity": 2, "used": 0, "left": 2, "extra": 0},
        {"code": "FURNACE_TUNE", "name": "Furnace tune-up", "quantity": 1, "used": 0, "left": 1, "extra": 0},
    ]
    assert shown["discount_percent"] == "10"
    assert shown["allowance"] is None
    assert "AC_TUNE" in cli.out("membership", "show", m)


def test_covered_service_costs_nothing_and_is_counted(cli, member):
    customer, m = member
    [r] = cli.post(event("job-1", "service_completed", customer, "2020-04-01", service_code="AC_TUNE", amount="150.00"))
    assert (r["status"], r["covered"], r["charge"], r["membership"]) == ("processed", True, "0.00", m)
    assert "discount" not in r
    assert r["services"] == [{"code": "AC_TUNE", "name": "A/C tune-up", "quantity": 2, "used": 1, "left": 1, "extra": 0}]
    [e] = r["entries"]
    assert (e["account"], e["kind"], e["amount"], e["balance_after"], e["rule"], e["ruleset"]) == (
        "visits:AC_TUNE", "debit", -1, 1, "plan.services.AC_TUNE.used", "tune-club@1")
    assert services(cli, m) == {"AC_TUNE": (1, 1, 2), "FURNACE_TUNE": (0, 1, 1)}

    [r] = cli.post(event("job-2", "service_completed", customer, "2020-05-01", service_code="FURNACE_TUNE"))
    assert (r["covered"], r["charge"]) == (True, "0.00")
    assert services(cli, m) == {"AC_TUNE": (1, 1, 2), "FURNACE_TUNE": (1, 0, 1)}


def test_used_up_service_gets_the_member_discount(cli, member):
    customer, m = member
    for i in (1, 2):
        [r] = cli.post(event(f"ac-{i}", "service_completed", customer, f"2020-0{i + 3}-01", service_code="AC_TUNE"))
        assert r["covered"] is True
    [third] = cli.post(event("ac-3", "service_completed", customer, "2020-07-01", service_code="AC_TUNE", amount="150.00"))
    assert (third["covered"], third["charge"], third["discount"], third["membership"]) == (False, "135.00", "15.00", m)
    assert third["entries"] == []
    assert services(cli, m)["AC_TUNE"] == (2, 0, 2)
    # Without a price there is nothing to charge or discount, and still no visit is drawn.
    [fourth] = cli.post(event("ac-4", "service_completed", customer, "2020-07-02", service_code="AC_TUNE"))
    assert fourth["covered"] is False and "charge" not in fourth and fourth["entries"] == []
    assert services(cli, m)["AC_TUNE"] == (2, 0, 2)


def test_code_not_in_the_plan_is_not_covered(cli, member):
    customer, m = member
    [r] = cli.post(event("duct-1", "service_completed", customer, "2020-04-01", service_code="DUCT_CLEAN", amount="99.99"))
    assert (r["covered"], r["membership"], r["discount"], r["charge"]) == (False, m, "10.00", "89.99")
    assert r["entries"] == []
    assert services(cli, m) == {"AC_TUNE": (0, 2, 2), "FURNACE_TUNE": (0, 1, 1)}


def test_period_end_resets_grants_and_expires_unused_visits(cli, member):
    customer, m = member
    cli.post(event("ac-1", "service_completed", customer, "2020-04-01", service_code="AC_TUNE"))
    assert services(cli, m) == {"AC_TUNE": (1, 1, 2), "FURNACE_TUNE": (0, 1, 1)}

    cli("run-due", "--as-of", "2020-12-31")  # the last day of the period: nothing yet
    assert services(cli, m) == {"AC_TUNE": (1, 1, 2), "FURNACE_TUNE": (0, 1, 1)}

    assert cli.json("run-due", "--as-of", "2021-01-01")["periods_closed"] == 1
    shown = cli.json("membership", "show", m)
    assert (shown["period"]["index"], shown["expires_on"]) == (1, "2021-12-31")
    assert services(cli, m) == {"AC_TUNE": (0, 2, 2), "FURNACE_TUNE": (0, 1, 1)}

    st = cli.json("statement", m, "--from", "2020-01-01", "--to", "2021-12-31")
    by_account = {a["account"]: a for a in st["accounts"]}
    ac = [(e["date"], e["kind"], e["amount"], e["rule"], e["event"]) for e in by_account["visits:AC_TUNE"]["entries"]]
    assert ac[0][:4] == ("2020-01-01", "grant", 2, "plan.services.AC_TUNE.grant")
    assert ac[1:] == [
        ("2020-04-01", "debit", -1, "plan.services.AC_TUNE.used", "ac-1"),
        ("2021-01-01", "expire", -1, "plan.services.AC_TUNE.unused_expired", f"period_ended:{m}:0"),
        ("2021-01-01", "grant", 2, "plan.services.AC_TUNE.grant", f"period_ended:{m}:0"),
    ]
    assert (by_account["visits:AC_TUNE"]["opening"], by_account["visits:AC_TUNE"]["closing"]) == (0, 2)
    furnace = [(e["date"], e["kind"], e["amount"]) for e in by_account["visits:FURNACE_TUNE"]["entries"]]
    assert furnace == [("2020-01-01", "grant", 1), ("2021-01-01", "expire", -1), ("2021-01-01", "grant", 1)]

    # Nothing carries over: the new period has exactly two A/C tune-ups, then the discount.
    for i in (2, 3):
        [r] = cli.post(event(f"ac-{i}", "service_completed", customer, f"2021-0{i}-01", service_code="AC_TUNE"))
        assert r["covered"] is True
    [r] = cli.post(event("ac-4", "service_completed", customer, "2021-04-01", service_code="AC_TUNE", amount="150.00"))
    assert (r["covered"], r["charge"]) == (False, "135.00")

    assert cli.json("run-due", "--as-of", "2021-01-01")["periods_closed"] == 0  # once only
    assert cli.json("audit")["ok"] is True


def test_fully_used_service_has_nothing_to_expire(cli, member):
    customer, m = member
    cli.post(event("f-1", "service_completed", customer, "2020-10-01", service_code="FURNACE_TUNE"))
    cli("run-due", "--as-of", "2021-01-01")
    st = cli.json("statement", m, "--from", "2020-01-01", "--to", "2021-12-31")
    furnace = next(a for a in st["accounts"] if a["account"] == "visits:FURNACE_TUNE")
    assert [(e["kind"], e["amount"]) for e in furnace["entries"]] == [("grant", 1), ("debit", -1), ("grant", 1)]
    assert services(cli, m)["FURNACE_TUNE"] == (0, 1, 1)


def test_service_after_period_end_lands_in_the_new_period_before_run_due(cli, member):
    customer, m = member
    cli.post(event("ac-1", "service_completed", customer, "2020-03-01", service_code="AC_TUNE"))
    cli.post(event("ac-2", "service_completed", customer, "2020-06-01", service_code="AC_TUNE"))
    [r] = cli.post(event("ac-3", "service_completed", customer, "2021-02-01", service_code="AC_TUNE"))
    assert (r["covered"], r["services"][0]["left"]) == (True, 1)
    assert cli.json("membership", "show", m)["period"]["index"] == 1


def test_non_member_service_is_simply_not_covered(cli, member):
    _customer, m = member
    guest = cli.out("customers", "add", "--name", "Walk In")
    [r] = cli.post(event("g-1", "service_completed", guest, "2020-04-01", service_code="AC_TUNE", amount="150.00"))
    assert (r["status"], r["covered"], r["membership"], r["charge"]) == ("processed", False, None, "150.00")
    assert "discount" not in r
    assert r["entries"] == []
    [r] = cli.post(event("g-2", "service_completed", guest, "2020-04-02", service_code="AC_TUNE"))
    assert (r["covered"], r["membership"]) == (False, None) and "charge" not in r
    assert services(cli, m) == {"AC_TUNE": (0, 2, 2), "FURNACE_TUNE": (0, 1, 1)}
