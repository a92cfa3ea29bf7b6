"""Reward points through the CLI: earning rules, tier multipliers, promotion windows in company
time, redemption from the oldest-expiring lots, expiry by run-due, manual adjustments."""

from __future__ import annotations

import textwrap

import pytest

from support import event

PLAN = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: comfort-club, name: Comfort Club}
    spec:
      period: yearly
      included_services:
        - {code: AC_TUNE, quantity: 1}
      tiers:
        - {id: silver, name: Silver}
        - {id: gold, name: Gold}
    """)

RULES = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: EarningRules
    metadata: {id: club-points, name: Club points}
    spec:
      point_value: "0.01"
      expiry: {after_months: 12}
      tier_multipliers: {silver: "1.5", gold: "2"}
      rules:
        - id: spend
          description: 1 point per whole dollar.
          when: {event: purchase}
          earn: {points: 1, per: "1.00", of: data.amount}
        - id: tune-up
          when:
            event: service_completed
            all:
              - {field: data.service_code, in: [AC_TUNE]}
          earn: {points: 50}
        - id: referral
          when: {event: referral}
          earn: {points: 500}
          tier_multiplier: false
        - id: black-friday
          when: {event: purchase}
          window: {from: "2020-11-27", to: "2020-11-29"}
          earn: {points: 1, per: "1.00", of: data.amount}
          multiplier: "3"
          tier_multiplier: false
    """)


@pytest.fixture
def club(cli, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert cli.out("rulesets", "publish", str(plan), str(rules)).splitlines() == ["comfort-club@1", "club-points@1"]

    def customer(name: str, tier: str | None = None) -> str:
        c = cli.out("customers", "add", "--name", name)
        if tier:
            cli("enroll", c, "comfort-club", "--tier", tier, "--on", "2020-01-01")
        return c

    return customer


def earned(cli, ev: dict) -> int:
    [r] = cli.post(ev)
    assert r["status"] in ("approved", "processed"), r
    return r["points"]["earned"]


def point_entries(result: dict) -> list[tuple]:
    return [(e["kind"], e["amount"], e["rule"], e["ruleset"]) for e in result["entries"] if e["account"] == "points"]


def lots(cli, customer: str) -> list[tuple]:
    return [(l["points"], l["remaining"], l["earned_on"], l["expires_on"]) for l in cli.json("points", "show", customer)["lots"]]


def test_points_per_event_with_tier_multipliers_and_floor(cli, club):
    silver, gold, guest = club("Sam Silver", "silver"), club("Gil Gold", "gold"), club("Gus Guest")

    [r] = cli.post(event("s-1", "purchase", silver, "2020-02-03", amount="10.99"))
    assert r["points"] == {"earned": 15, "balance": 15}  # floor(10.99) = 10, x1.5
    assert point_entries(r) == [("earn", 15, "spend", "club-points@1")]
    assert earned(cli, event("s-2", "purchase", silver, "2020-02-04", amount="13.99")) == 19  # 13 x 1.5 = 19.5 -> 19
    assert earned(cli, event("s-3", "purchase", silver, "2020-02-05", amount="0.99")) == 0
    assert earned(cli, event("g-1", "purchase", gold, "2020-02-03", amount="10.99")) == 20
    assert earned(cli, event("n-1", "purchase", guest, "2020-02-03", amount="10.99")) == 10  # no tier: 1x

    [r] = cli.post(event("s-4", "service_completed", silver, "2020-02-06", service_code="AC_TUNE"))
    assert r["points"]["earned"] == 75 and r["covered"] is True
    assert point_entries(r) == [("earn", 75, "tune-up", "club-points@1")]
    assert earned(cli, event("g-2", "service_completed", gold, "2020-02-06", service_code="AC_TUNE")) == 100
    assert earned(cli, event("g-3", "service_completed", gold, "2020-02-07", service_code="FURNACE_TUNE")) == 0

    [r] = cli.post(event("g-4", "referral", gold, "2020-02-08", referred_name="Nia Neighbour"))
    assert r["points"] == {"earned": 500, "balance": 620}  # tier_multiplier: false
    assert point_entries(r) == [("earn", 500, "referral", "club-points@1")]
    assert earned(cli, event("n-2", "referral", guest, "2020-02-08", referred_name="Otto Other")) == 500

    shown = cli.json("points", "show", silver)
    assert shown["customer"]["name"] == "Sam Silver"
    assert shown["balance"] == 15 + 19 + 75
    assert [(l["points"], l["remaining"], l["earned_on"], l["expires_on"]) for l in shown["lots"]] == [
        (15, 15, "2020-02-03", "2021-02-02"),
        (19, 19, "2020-02-04", "2021-02-03"),
        (75, 75, "2020-02-06", "2021-02-05"),
    ]
    assert cli.json("points", "show", gold)["balance"] == 620
    assert cli.json("points", "show", guest)["balance"] == 510
    text = cli.out("points", "show", silver)
    assert "Sam Silver: 109 points" in text and "expires 2021-02-02" in text


@pytest.mark.parametrize("when,local,points", [
    ("2020-11-26T23:59:59-07:00", "2020-11-26", 15),   # the evening before: spend only
    ("2020-11-27T06:59:59Z", "2020-11-26", 15),        # already the 27th in UTC, not in Denver
    ("2020-11-27T00:00:00-07:00", "2020-11-27", 45),   # first moment of the window: 15 + 3 x 10
    ("2020-11-28T12:00:00-07:00", "2020-11-28", 45),
    ("2020-11-29T23:59:59-07:00", "2020-11-29", 45),   # last day is included
    ("2020-11-30T06:30:00Z", "2020-11-29", 45),        # the 30th in UTC, still the 29th in Denver
    ("2020-11-30T07:00:00Z", "2020-11-30", 15),        # midnight in Denver: the window is over
])
def test_promotion_applies_only_inside_its_window_in_company_time(cli, club, when, local, points):
    silver = club("Sam Silver", "silver")
    [r] = cli.post(event("bf-1", "purchase", silver, when, amount="10.00"))
    assert r["local_date"] == local
    assert r["points"] == {"earned": points, "balance": points}
    expected = [("earn", 15, "spend", "club-points@1")]
    if points == 45:
        expected.append(("earn", 30, "black-friday", "club-points@1"))
    assert point_entries(r) == expected


def test_redemption_uses_oldest_expiring_lots_first(cli, club):
    c = club("Rita Redeemer")
    # Posted out of order: the lot earned later is created first.
    assert earned(cli, event("p-june", "purchase", c, "2020-06-01", amount="60.00")) == 60
    assert earned(cli, event("p-jan", "purchase", c, "2020-01-10", amount="100.00")) == 100
    assert lots(cli, c) == [(60, 60, "2020-06-01", "2021-05-31"), (100, 100, "2020-01-10", "2021-01-09")]

    [r] = cli.post(event("r-1", "redemption", c, "2020-07-01", points=120, reward="gift card"))
    assert (r["status"], r["redeemed"], r["reward"]) == ("processed", 120, "gift card")
    assert r["points"] == {"earned": 0, "balance": 40}
    assert point_entries(r) == [("redeem", -120, "points.redeem", "club-points@1")]
    assert lots(cli, c) == [(60, 40, "2020-06-01", "2021-05-31"), (100, 0, "2020-01-10", "2021-01-09")]

    [no] = cli.post(event("r-2", "redemption", c, "2020-07-02", points=41))
    assert (no["status"], no["reason"], no["available"], no["entries"]) == ("declined", "insufficient_points", 40, [])
    assert "41" in no["message"] and "40" in no["message"]
    shown = cli.json("points", "show", c)
    assert shown["balance"] == 40
    assert [l["remaining"] for l in shown["lots"]] == [40, 0]

    [ok] = cli.post(event("r-3", "redemption", c, "2020-07-03", points=40))
    assert ok["points"]["balance"] == 0
    assert [l["remaining"] for l in cli.json("points", "show", c)["lots"]] == [0, 0]
    assert cli.json("audit")["ok"] is True


def test_expired_lot_cannot_be_redeemed_even_before_run_due(cli, club):
    c = club("Eli Late")
    earned(cli, event("p-1", "purchase", c, "2020-01-10", amount="100.00"))  # usable through 2021-01-09
    earned(cli, event("p-2", "purchase", c, "2020-06-01", amount="30.00"))   # usable through 2021-05-31
    [no] = cli.post(event("r-1", "redemption", c, "2021-01-10", points=31))
    assert (no["status"], no["reason"], no["available"]) == ("declined", "insufficient_points", 30)
    [ok] = cli.post(event("r-2", "redemption", c, "2021-01-09", points=100))  # the last usable day
    assert ok["status"] == "processed"
    assert lots(cli, c) == [(100, 0, "2020-01-10", "2021-01-09"), (30, 30, "2020-06-01", "2021-05-31")]


def test_run_due_expires_exactly_the_remaining_points_once(cli, club):
    c = club("Pat Points")
    earned(cli, event("p-1", "purchase", c, "2020-03-15", amount="75.00"))   # lot 1: usable through 2021-03-14
    cli.post(event("r-1", "redemption", c, "2020-04-01", points=25))
    earned(cli, event("p-2", "purchase", c, "2020-09-01", amount="10.00"))   # lot 2: usable through 2021-08-31
    assert cli.json("points", "show", c)["balance"] == 60

    due = cli.json("run-due", "--as-of", "2021-03-14")  # the last usable day: nothing expires yet
    assert due["points_expired"] == 0
    assert cli.json("points", "show", c)["balance"] == 60

    due = cli.json("run-due", "--as-of", "2021-03-15")
    assert due["points_expired"] == 50
    shown = cli.json("points", "show", c)
    assert shown["balance"] == 10
    assert [(l["points"], l["remaining"], l["expires_on"]) for l in shown["lots"]] == [(75, 0, "2021-03-14"), (10, 10, "2021-08-31")]

    again = cli.json("run-due", "--as-of", "2021-03-15")
    assert again["points_expired"] == 0
    later = cli.json("run-due", "--as-of", "2021-04-01")
    assert later["points_expired"] == 0
    assert cli.json("points", "show", c)["balance"] == 10
    assert "0 point(s) expired" in cli.out("run-due", "--as-of", "2021-04-01")

    # The second lot goes when its own time comes, and the ledger still adds up.
    assert cli.json("run-due", "--as-of", "2021-09-01")["points_expired"] == 10
    assert cli.json("points", "show", c)["balance"] == 0
    assert cli.json("audit")["ok"] is True


def test_late_event_points_expire_even_when_that_date_was_expired_before(cli, club):
    """A back-dated event posted after run-due handled its expiry date: its lot still expires
    (it used to be stuck forever, and every run-due reported the old expiry again)."""
    c = club("Lou Late")
    earned(cli, event("p-1", "purchase", c, "2020-03-15T09:00:00-06:00", amount="10.00"))  # usable through 2021-03-14
    assert cli.json("run-due", "--as-of", "2021-03-20")["points_expired"] == 10
    earned(cli, event("p-2", "purchase", c, "2020-03-15T15:00:00-06:00", amount="20.00"))  # same day, posted late
    assert lots(cli, c) == [(10, 0, "2020-03-15", "2021-03-14"), (20, 20, "2020-03-15", "2021-03-14")]

    assert cli.json("run-due", "--as-of", "2021-03-21")["points_expired"] == 20
    shown = cli.json("points", "show", c)
    assert shown["balance"] == 0 and [l["remaining"] for l in shown["lots"]] == [0, 0]
    assert cli.json("run-due", "--as-of", "2021-03-22")["points_expired"] == 0
    assert cli.json("audit")["ok"] is True


def test_adjustment_changes_points(cli, club):
    c = club("Ada Adjusted")
    earned(cli, event("p-1", "purchase", c, "2020-02-01", amount="120.00"))
    [r] = cli.post(event("adj-1", "adjustment", c, "2020-02-02", unit="points", amount="-50", reason="returned item"))
    assert (r["status"], r["adjusted"]) == ("processed", {"unit": "points", "amount": -50})
    [e] = r["entries"]
    assert (e["account"], e["kind"], e["amount"], e["balance_after"], e["rule"], e["memo"]) == (
        "points", "adjust", -50, 70, "manual.adjustment", "returned item")
    shown = cli.json("points", "show", c)
    assert shown["balance"] == 70
    assert [l["remaining"] for l in shown["lots"]] == [70]

    [up] = cli.post(event("adj-2", "adjustment", c, "2020-03-01", unit="points", amount="30", reason="apology"))
    assert up["points"]["balance"] == 100
    assert lots(cli, c)[-1] == (30, 30, "2020-03-01", "2021-02-28")

    [no] = cli.post(event("adj-3", "adjustment", c, "2020-03-02", unit="points", amount="-101", reason="too much"))
    assert (no["status"], no["reason"]) == ("declined", "insufficient_points")
    assert cli.json("points", "show", c)["balance"] == 100
