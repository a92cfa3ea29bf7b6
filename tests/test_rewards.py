"""Rewards (issue 15) through the CLI: a catalog members redeem from, lots drawn in the
program's order and given back on cancel, stock and limits, free services and credits in the
membership's ledger, fulfilment states, pending points, refunds, referrals and loyalty tiers.
Every expectation is worked out by hand in the comments."""

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
      allowance: {amount: "100.00", period: yearly}
      included_services:
        - {code: AC_TUNE, quantity: 1}
      tiers:
        - {id: basic, name: Basic}
        - {id: elite, name: Elite}
    """)

RULES = """\
apiVersion: keepwell/v1
kind: EarningRules
metadata: {id: club-points, name: Club points}
spec:
  point_value: "0.01"
  expiry: {after_months: 12, order: ORDER}
EXTRA
  rules:
    - id: spend
      when: {event: purchase}
      earn: {points: 1, per: "1.00", of: data.amount}
    - id: bonus
      when: {event: referral}
      earn: {points: 100}
    - id: referrer-reward
      when:
        event: referral_rewarded
        all: [{field: data.role, eq: referrer}]
      earn: {points: 500}
    - id: referee-reward
      when:
        event: referral_rewarded
        all: [{field: data.role, eq: referee}]
      earn: {points: 250}
"""

CATALOG = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: RewardCatalog
    metadata: {id: club-rewards, name: Club rewards}
    spec:
      rewards:
        - {id: filter-discount, name: "$25 off a filter change", type: service_discount, points: 50,
           service_code: FILTER_CHANGE, amount_off: "25.00"}
        - {id: extra-tune, name: Extra A/C tune-up, type: free_service, points: 80, service_code: AC_TUNE,
           tier_points: {elite: 60}}
        - {id: credit-10, name: $10 account credit, type: account_credit, points: 40, credit: "10.00"}
        - {id: mug, name: Comfort Club mug, type: merchandise, points: 30, inventory: 2,
           limit: {quantity: 1, per: year}}
        - {id: elite-gift, name: Elite gift, type: merchandise, points: 10, shipping: false,
           eligible: {all: [{field: member.tier, eq: elite}]}}
        - {id: spring-special, name: Spring special, type: merchandise, points: 10, shipping: false,
           seasons: [3, 4, 5]}
    """)


@pytest.fixture
def club(cli, tmp_path):
    def setup(order: str = "oldest_first", extra: str = "") -> None:
        for name, text in (("plan", PLAN), ("rules", RULES.replace("ORDER", order).replace("EXTRA\n", extra)),
                           ("catalog", CATALOG)):
            (tmp_path / f"{name}.yaml").write_text(text)
        cli("rulesets", "publish", str(tmp_path / "plan.yaml"), str(tmp_path / "rules.yaml"),
            str(tmp_path / "catalog.yaml"), "--effective-from", "2020-01-01")
    return setup


def customer(cli, name: str, tier: str | None = None, on: str = "2020-01-01") -> tuple[str, str | None]:
    c = cli.out("customers", "add", "--name", name)
    m = cli.out("enroll", c, "comfort-club", "--tier", tier, "--on", on) if tier else None
    return c, m


def buy(cli, key: str, c: str, day: str, amount: str) -> dict:
    [r] = cli.post(event(key, "purchase", c, day, amount=amount))
    assert r["status"] == "approved", r
    return r


def test_redeem_draws_lots_oldest_first_and_cancel_gives_them_back_with_their_expiry(cli, club):
    club()
    c, _m = customer(cli, "Rita Redeemer")
    buy(cli, "p1", c, "2020-01-10", "30.00")   # lot A: 30, expires 2021-01-09
    buy(cli, "p2", c, "2020-02-10", "40.00")   # lot B: 40, expires 2021-02-09
    lots = cli.json("points", "show", c)["lots"]
    a, b = lots[0]["lot"], lots[1]["lot"]

    r = cli.json("rewards", "redeem", c, "filter-discount", "--on", "2020-03-01")
    # 50 points: all 30 of A (earned first), then 20 of B
    assert (r["status"], r["points"]) == ("pending", 50)
    assert r["lots"] == [{"lot": a, "points": 30, "expires_on": "2021-01-09"},
                         {"lot": b, "points": 20, "expires_on": "2021-02-09"}]
    shown = cli.json("points", "show", c, "--on", "2020-03-01")
    assert shown["balance"] == 20 and [lot["remaining"] for lot in shown["lots"]] == [0, 20]
    assert [lot["status"] for lot in shown["lots"]] == ["used", "available"]

    back = cli.json("rewards", "cancel", r["redemption"])
    assert (back["status"], back["points_returned"]) == ("cancelled", 50)
    assert back["lots"] == [{"lot": a, "points": 30, "expires_on": "2021-01-09"},
                            {"lot": b, "points": 20, "expires_on": "2021-02-09"}]
    shown = cli.json("points", "show", c)
    assert shown["balance"] == 70 and [lot["remaining"] for lot in shown["lots"]] == [30, 40]
    # cancelling again is the same request: answered as before, nothing given back twice
    again = cli.json("rewards", "cancel", r["redemption"])
    assert (again["status"], again["duplicate"]) == ("cancelled", True)
    assert cli.json("points", "show", c)["balance"] == 70
    # and a cancelled redemption is final
    res = cli("rewards", "fulfil", r["redemption"], expect=1)
    assert "it can move to nothing" in res.output
    assert cli.json("audit")["ok"] is True


def test_a_lot_given_back_after_its_expiry_expires_again_at_the_next_run(cli, club):
    club()
    c, _m = customer(cli, "Eve Expiry")
    buy(cli, "p1", c, "2020-01-10", "60.00")   # expires 2021-01-09
    r = cli.json("rewards", "redeem", c, "filter-discount", "--on", "2020-12-01")
    assert cli.json("run-due", "--as-of", "2021-01-10")["points_expired"] == 10  # the 10 left
    back = cli.json("rewards", "cancel", r["redemption"])  # today: long after 2021-01-09
    assert back["points_returned"] == 50
    assert cli.json("points", "show", c, "--on", "2021-01-10")["lots"][0]["status"] == "expired"  # 50, past its day
    assert cli.json("run-due", "--as-of", "2021-01-11")["points_expired"] == 50
    shown = cli.json("points", "show", c)
    assert shown["balance"] == 0 and shown["lots"][0]["remaining"] == 0
    assert cli.json("audit")["ok"] is True


def test_soonest_expiring_order_differs_from_oldest_first_when_lifetimes_differ(cli, club, tmp_path):
    # Lot A earned first with a 12-month life; lot B earned later by rules with a 1-month life.
    club(order="soonest_expiring")
    c, _m = customer(cli, "Sue Soonest")
    buy(cli, "p1", c, "2020-01-10", "30.00")   # lot A: expires 2021-01-09
    short = RULES.replace("ORDER", "soonest_expiring").replace("EXTRA\n", "").replace("after_months: 12",
                                                                                     "after_months: 1")
    (tmp_path / "short.yaml").write_text(short)
    cli("rulesets", "publish", str(tmp_path / "short.yaml"), "--effective-from", "2020-02-01")
    buy(cli, "p2", c, "2020-02-10", "30.00")   # lot B: expires 2020-03-09
    r = cli.json("rewards", "redeem", c, "mug", "--on", "2020-02-20")
    assert [(lot["points"], lot["expires_on"]) for lot in r["lots"]] == [(30, "2020-03-09")]  # B first

    d, _m = customer(cli, "Olga Oldest")
    oldest = short.replace("soonest_expiring", "oldest_first")
    (tmp_path / "oldest.yaml").write_text(oldest)
    cli("rulesets", "publish", str(tmp_path / "oldest.yaml"), "--effective-from", "2020-02-15")
    buy(cli, "q1", d, "2020-01-10", "30.00")   # under the 12-month rules: expires 2021-01-09
    buy(cli, "q2", d, "2020-02-16", "30.00")   # under the 1-month rules: expires 2020-03-15
    r = cli.json("rewards", "redeem", d, "mug", "--on", "2020-02-20")
    assert [(lot["points"], lot["expires_on"]) for lot in r["lots"]] == [(30, "2021-01-09")]  # A, earned first


def test_free_service_and_credit_land_in_the_membership_ledger(cli, club):
    club()
    c, m = customer(cli, "Fred Free", "elite")
    buy(cli, "p1", c, "2020-01-10", "200.00")   # 200 points
    r = cli.json("rewards", "redeem", c, "extra-tune", "--on", "2020-01-11")
    assert (r["status"], r["points"], r["membership"]) == ("fulfilled", 60, m)  # the elite price
    services = cli.json("membership", "show", m)["services"]
    assert [(s["code"], s["left"], s["extra"]) for s in services] == [("AC_TUNE", 2, 1)]
    r2 = cli.json("rewards", "redeem", c, "credit-10", "--quantity", "2", "--on", "2020-01-12")
    assert (r2["points"], r2["credit"]) == (80, "20.00")
    assert cli.json("membership", "show", m)["allowance"]["balance"] == "120.00"
    assert cli.json("points", "show", c)["balance"] == 200 - 60 - 80
    # the credit is cancelled while unspent: the allowance goes back to 100.00
    cli.json("rewards", "cancel", r2["redemption"], "--on", "2020-01-13")
    assert cli.json("membership", "show", m)["allowance"]["balance"] == "100.00"
    # the extra visit is used: it can no longer be cancelled
    cli.post(event("s1", "service_completed", c, "2020-02-01", service_code="AC_TUNE"))
    cli.post(event("s2", "service_completed", c, "2020-02-02", service_code="AC_TUNE"))
    res = cli("rewards", "cancel", r["redemption"], "--on", "2020-02-03", expect=1)
    assert "used" in res.output


def test_stock_limits_dates_and_eligibility_decline_with_reasons(cli, club):
    club()
    c1, _ = customer(cli, "Ann One", "basic")
    c2, _ = customer(cli, "Bob Two", "elite")
    c3, _ = customer(cli, "Cy Three")
    for i, c in enumerate((c1, c2, c3)):
        buy(cli, f"p{i}", c, "2020-01-10", "100.00")
    assert cli.json("rewards", "redeem", c1, "mug", "--on", "2020-01-11")["status"] == "ordered"
    res = cli("rewards", "redeem", c1, "mug", "--on", "2020-01-12", expect=1)
    assert "at most 1 per year" in res.output                                   # limit per customer
    assert cli.json("rewards", "redeem", c2, "mug", "--on", "2020-01-12")["status"] == "ordered"
    res = cli("rewards", "redeem", c3, "mug", "--on", "2020-01-12", expect=1)
    assert "0 left" in res.output                                              # stock of 2 gone
    stock = {r["id"]: r for r in cli.json("rewards", "list", "--on", "2020-01-12")}
    assert (stock["mug"]["inventory"], stock["mug"]["in_stock"]) == (2, 0)
    res = cli("rewards", "redeem", c1, "elite-gift", "--on", "2020-01-12", expect=1)
    assert "not offered to this customer" in res.output                        # eligibility
    assert cli.json("rewards", "redeem", c2, "elite-gift", "--on", "2020-01-12")["status"] == "pending"
    res = cli("rewards", "redeem", c1, "spring-special", "--on", "2020-01-12", expect=1)
    assert "outside its dates or season" in res.output
    assert cli.json("rewards", "redeem", c1, "spring-special", "--on", "2020-04-01")["status"] == "pending"
    res = cli("rewards", "redeem", c3, "filter-discount", "--on", "2020-01-12", "--quantity", "3", expect=1)
    assert "150 points asked, 100 available" in res.output
    # the mug a customer cancels is back in stock, and their yearly limit frees up
    [mine] = cli.json("rewards", "redemptions", "--customer", c1, "--status", "ordered")
    cli.json("rewards", "cancel", mine["redemption"])
    assert cli.json("rewards", "redeem", c3, "mug", "--on", "2020-01-13")["status"] == "ordered"


def test_merchandise_goes_ordered_shipped_delivered_each_an_event(cli, club):
    club()
    c = cli.out("customers", "add", "--name", "Sid Ship", "--address", "12 Elm St, Denver CO")
    buy(cli, "p1", c, "2020-01-10", "100.00")
    r = cli.json("rewards", "redeem", c, "mug", "--on", "2020-01-11")
    [queued] = cli.json("rewards", "redemptions", "--status", "open")
    assert queued["ship_to"] == "12 Elm St, Denver CO"   # the service address on file
    assert [x["redemption"] for x in cli.json("rewards", "redemptions", "--status", "open")] == [r["redemption"]]
    assert cli.json("rewards", "fulfil", r["redemption"], "--tracking", "1Z999")["status"] == "shipped"
    res = cli("rewards", "cancel", r["redemption"], expect=1)
    assert "shipped" in res.output                    # shipped goods are not cancelled
    assert cli.json("rewards", "fulfil", r["redemption"])["status"] == "delivered"
    assert cli.json("rewards", "redemptions", "--status", "open") == []
    types = [e["type"] for e in cli.json("events", "list", "--customer", c)["events"]]
    assert types.count("redemption_changed") == 2


def test_pending_points_unlock_after_the_return_window(cli, club):
    club(extra="  pending: {days: 30}\n")
    c, _ = customer(cli, "Pam Pending")
    r = buy(cli, "p1", c, "2020-01-10", "50.00")
    assert r["points"] == {"earned": 50, "balance": 50, "pending": 50}
    shown = cli.json("points", "show", c, "--on", "2020-02-08")
    assert (shown["pending"], shown["available"]) == (50, 0)
    assert shown["lots"][0]["unlocks_on"] == "2020-02-09"
    assert shown["lots"][0]["expires_on"] == "2021-02-08"  # 12 months counted from the unlock
    res = cli("rewards", "redeem", c, "filter-discount", "--on", "2020-02-01", expect=1)
    assert "50 points asked, 0 available" in res.output
    due = cli.json("run-due", "--as-of", "2020-02-09")
    assert due["by_kind"]["points_unlock"] == 1
    assert cli.json("rewards", "redeem", c, "filter-discount", "--on", "2020-02-09")["points"] == 50


def test_refunds_take_back_points_within_the_balance_and_never_twice(cli, club):
    club()
    c, _ = customer(cli, "Ray Refund")
    buy(cli, "p1", c, "2020-01-10", "100.00")   # 100 points
    cli.json("rewards", "redeem", c, "filter-discount", "--on", "2020-01-11")  # 50 spent, 50 left
    [r] = cli.post(event("rf1", "purchase_refunded", c, "2020-01-12", purchase="p1", amount="40.00"))
    # 40% of 100 points = 40, taken from the purchase's own lot (50 left in it)
    assert (r["points_clawed_back"], r["points_not_recovered"], r["points_balance"]) == (40, 0, 10)
    [r] = cli.post(event("rf2", "purchase_refunded", c, "2020-01-13", purchase="p1"))
    # the other 60.00: 100 points in all - 40 taken = 60 due, only 10 left: within the balance
    assert (r["refunded"], r["points_clawed_back"], r["points_not_recovered"]) == ("60.00", 10, 50)
    [r] = cli.post(event("rf3", "purchase_refunded", c, "2020-01-14", purchase="p1", amount="1.00"))
    assert (r["status"], r["reason"]) == ("declined", "refund_exceeds_purchase")
    assert cli.json("points", "show", c)["balance"] == 0


def test_refund_with_a_negative_balance_is_repaid_by_later_earnings(cli, club):
    club(extra="  refunds: {clawback: allow_negative}\n")
    c, _ = customer(cli, "Nel Negative")
    buy(cli, "p1", c, "2020-01-10", "100.00")
    cli.json("rewards", "redeem", c, "filter-discount", "--quantity", "2", "--on", "2020-01-11")  # all 100 spent
    [r] = cli.post(event("rf1", "purchase_refunded", c, "2020-01-12", purchase="p1"))
    assert (r["points_clawed_back"], r["points_debt"], r["points_balance"]) == (100, 100, -100)
    buy(cli, "p2", c, "2020-01-20", "130.00")   # 130 earned: 100 repay the debt
    shown = cli.json("points", "show", c, "--on", "2020-01-20")
    assert (shown["balance"], shown["available"]) == (30, 30)
    assert shown["lots"][-1]["remaining"] == 30
    assert cli.json("audit")["ok"] is True


def test_refund_of_a_purchase_whose_points_are_pending_cancels_them(cli, club):
    club(extra="  pending: {days: 30}\n")
    c, _ = customer(cli, "Pia Pending")
    buy(cli, "p1", c, "2020-01-10", "80.00")
    [r] = cli.post(event("rf1", "purchase_refunded", c, "2020-01-15", purchase="p1", amount="80.00"))
    assert (r["points_pending_cancelled"], r["points_balance"]) == (80, 0)
    assert cli.json("points", "show", c, "--on", "2020-01-15")["pending"] == 0


def test_referral_rewards_both_sides_and_rejects_bad_codes(cli, club):
    club()
    referrer, _ = customer(cli, "Rob Referrer", "basic")
    code = cli.out("referrals", "code", referrer)
    assert len(code) == 8 and cli.out("referrals", "code", referrer) == code  # the same code each time
    friend = cli.out("customers", "add", "--name", "Fay Friend")
    cli("enroll", friend, "comfort-club", "--tier", "basic", "--on", "2020-03-01", "--referral-code", code.lower())
    assert cli.json("points", "show", referrer)["balance"] == 500
    assert cli.json("points", "show", friend)["balance"] == 250
    [ref] = cli.json("referrals", "list", referrer)["referrals"]
    assert (ref["referee"], ref["status"], ref["rewarded_on"]) == (friend, "rewarded", "2020-03-01")

    res = cli("enroll", referrer, "comfort-club", "--tier", "elite", "--on", "2020-03-02", "--allow-second",
              "--referral-code", code, expect=1)
    assert "own referral code" in res.output
    other = cli.out("customers", "add", "--name", "Gus Guest")
    [r] = cli.post(event("x1", "purchase", friend, "2020-03-03", amount="5.00", referral_code=code))
    assert (r["status"], r["reason"]) == ("declined", "referral_duplicate")
    [r] = cli.post(event("x2", "purchase", other, "2020-03-03", amount="5.00", referral_code="ZZZZZZZZ"))
    assert (r["status"], r["reason"]) == ("declined", "referral_code_unknown")
    assert "not one of this company's codes" in r["message"]


def test_referral_with_a_holding_period_pays_out_by_due_work(cli, club):
    club(extra="  referrals: {qualifying_event: enrolled, holding_days: 14}\n")
    referrer, _ = customer(cli, "Hal Holder")
    code = cli.out("referrals", "code", referrer)
    friend = cli.out("customers", "add", "--name", "Ida Invited")
    [r] = cli.post(event("x1", "purchase", friend, "2020-03-01", amount="5.00", referral_code=code))
    assert r["referral"]["status"] == "pending"          # a purchase does not qualify it
    cli("enroll", friend, "comfort-club", "--tier", "basic", "--on", "2020-03-02")
    assert cli.json("referrals", "list", referrer)["referrals"][0]["reward_on"] == "2020-03-16"
    assert cli.json("run-due", "--as-of", "2020-03-15")["by_kind"].get("referral_rewards", 0) == 0
    assert cli.json("points", "show", referrer)["balance"] == 0
    cli.json("run-due", "--as-of", "2020-03-16")
    assert cli.json("points", "show", referrer)["balance"] == 500
    assert cli.json("points", "show", friend)["balance"] == 5 + 250


LOYALTY = """\
  loyalty_tiers:
    basis: points
    window: rolling_12_months
    downgrade: at_review
    review_on: "01-01"
    tiers:
      - {id: silver, name: Silver, threshold: "100"}
      - {id: gold, name: Gold, threshold: "300", multiplier: "2"}
"""


NOTICES = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: NotificationTriggers
    metadata: {id: club-notices, name: Club notices}
    spec:
      triggers:
        - id: tier-up
          on:
            event: loyalty_tier_changed
            all: [{field: data.direction, eq: up}]
          template: tier-up
          channel: email
      templates:
        tier-up:
          subject: "Welcome to {{ data.to_name }}, {{ customer.name }}"
          email: "You have reached {{ data.to_name }} status."
    """)


def test_loyalty_tier_is_reached_at_once_multiplies_and_is_lost_at_review(cli, club, tmp_path):
    club(extra=LOYALTY)
    (tmp_path / "notices.yaml").write_text(NOTICES)
    cli("rulesets", "publish", str(tmp_path / "notices.yaml"), "--effective-from", "2020-01-01")
    c = cli.out("customers", "add", "--name", "Tia Tier", "--email", "tia@example.com")
    r = buy(cli, "p1", c, "2020-02-01", "120.00")      # 120 in 12 months: Silver
    assert (r["loyalty_tier"]["to"], r["loyalty_tier"]["direction"]) == ("silver", "up")
    r = buy(cli, "p2", c, "2020-03-01", "200.00")      # 320: Gold
    assert r["loyalty_tier"]["to"] == "gold"
    r = buy(cli, "p3", c, "2020-04-01", "10.00")       # Gold doubles: 20
    assert r["points"]["earned"] == 20
    shown = cli.json("points", "show", c, "--on", "2020-04-01")["tier"]
    assert (shown["id"], shown["name"], shown["qualifying"]) == ("gold", "Gold", 340)
    types = [e["type"] for e in cli.json("events", "list", "--customer", c)["events"]]
    assert types.count("loyalty_tier_changed") == 2
    # each step up is a message through the notification triggers
    assert [(m["template"], m["channel"]) for m in cli.json("outbox", "list")] == [("tier-up", "email")] * 2
    # review on 2021-01-01: the last 12 months (2020-01-02..2021-01-01) still hold 340: Gold stays
    cli.json("run-due", "--as-of", "2021-01-01")
    assert cli.json("points", "show", c, "--on", "2021-01-01")["tier"]["id"] == "gold"
    # review on 2022-01-01: nothing earned since 2021-01-02: no tier
    cli.json("run-due", "--as-of", "2022-01-01")
    shown = cli.json("points", "show", c, "--on", "2022-01-01")["tier"]
    assert shown["id"] is None and shown["next"]["name"] == "Silver"


def test_points_liability_and_breakage(cli, club):
    club()
    c, _ = customer(cli, "Lia Liable")
    buy(cli, "p1", c, "2020-01-10", "100.00")
    buy(cli, "p2", c, "2020-02-10", "50.00")
    cli.json("rewards", "redeem", c, "filter-discount", "--on", "2020-02-11")
    cli.json("run-due", "--as-of", "2021-01-11")     # lot 1's 50 left expire
    got = cli.json("points", "liability", "--from", "2020-01-01", "--to", "2021-01-31")
    assert (got["outstanding_points"], got["liability"]) == (50, "0.50")
    months = {m["month"]: m for m in got["months"]}
    assert months["2020-01"]["earned"] == 100 and months["2020-02"]["earned"] == 50
    assert months["2020-02"]["redeemed"] == 50 and months["2021-01"]["expired"] == 50
    assert got["breakage_rate"] == "0.5000"          # 50 expired of 100 used up


def test_manual_points_adjustment_needs_a_reason_and_names_who_made_it(cli, club):
    club()
    c, _ = customer(cli, "Al Adjust")
    done = cli.json("points", "adjust", c, "120", "--reason", "Welcome gift", "--by", "sam@acme.example",
                    "--on", "2020-02-01")
    assert (done["adjusted"], done["balance"], done["by"]) == (120, 120, "sam@acme.example")
    res = cli("points", "adjust", "--reason", "typo", "--on", "2020-02-01", c, "--", "-500", expect=1)
    assert "500 points asked, 120 available" in res.output
    res = cli("points", "adjust", c, "0", "--reason", "nothing", expect=1)
    assert "other than 0" in res.output
    [e] = [e for e in cli.json("events", "list", "--customer", c, "--type", "adjustment")["events"]]
    assert e["result"]["entries"][0]["memo"] == "Welcome gift (by sam@acme.example)"
