"""The points economy report (#18) on a small known history: every figure below is worked out by
hand in the comments, from the events the test posts, not read back from the code."""

from __future__ import annotations

from datetime import date

import yaml

from keepwell.usecases import billing, memberships, reports, rewards
from support import event

PLAN = yaml.safe_load("""
apiVersion: keepwell/v1
kind: Plan
metadata: {id: club, name: Comfort Club}
spec:
  allowance: {amount: "100.00", period: monthly}
  included_services:
    - {code: AC_TUNE, quantity: 1}
  price: {monthly: "30.00"}
  billing: {anchor_day: 1, proration: none}
""")

RULES = yaml.safe_load("""
apiVersion: keepwell/v1
kind: EarningRules
metadata: {id: club-points, name: Club points}
spec:
  point_value: "0.01"
  expiry: {after_months: 3}
  rules:
    - id: spend
      description: 1 point per whole dollar.
      when: {event: purchase}
      earn: {points: 1, per: "1.00", of: data.amount}
    - id: tune-up
      description: 50 points for a tune-up.
      when:
        event: service_completed
        all:
          - {field: data.service_code, in: [AC_TUNE]}
      earn: {points: 50}
    - id: double-days
      description: Double points the first week of February.
      when: {event: purchase}
      window: {from: "2021-02-01", to: "2021-02-07"}
      earn: {points: 1, per: "1.00", of: data.amount}
      multiplier: "2"
""")

CATALOG = yaml.safe_load("""
apiVersion: keepwell/v1
kind: RewardCatalog
metadata: {id: club-rewards, name: Club rewards}
spec:
  rewards:
    - {id: filter-discount, name: "$25 off a filter change", type: service_discount, points: 50,
       service_code: FILTER_CHANGE, amount_off: "25.00"}
    - {id: mug, name: Comfort Club mug, type: merchandise, points: 30, shipping: false}
""")


def _history(svc) -> tuple[str, str, str]:
    for doc in (PLAN, RULES, CATALOG):
        svc.publish(doc, "test", date(2020, 1, 1))
    ann, ben, cal = svc.add_customer("Ann Earner"), svc.add_customer("Ben Payer"), svc.add_customer("Cal Guest")
    for who in (ann, ben):
        billing.add_test_card(svc, "default", who, "success", default=True)
        memberships.enroll(svc, "default", who, "club", date(2021, 1, 1), cadence="monthly")

    def post(key: str, kind: str, who: str, day: str, **data) -> dict:
        r = svc.post_event(event(key, kind, who, day, **data))
        assert r["status"] in ("approved", "processed"), r
        return r

    # Before the range: Cal earns 60 (usable through 2021-02-19; expires in February).
    post("c-nov", "purchase", cal, "2020-11-20", amount="60.00")
    # January: Ann earns 120 (spend) and 50 (tune-up).
    post("a-jan", "purchase", ann, "2021-01-05", amount="120.00")
    post("a-tune", "service_completed", ann, "2021-01-10", service_code="AC_TUNE")
    # February: Ann earns 40 (spend) + 2 x 40 = 80 (double-days promotion).
    post("a-feb", "purchase", ann, "2021-02-03", amount="40.00")
    rewards.redeem(svc, "default", ann, "filter-discount", on=date(2021, 2, 10))   # -50
    mug = rewards.redeem(svc, "default", ann, "mug", on=date(2021, 2, 12))           # -30
    rewards.change_redemption(svc, "default", mug["redemption"], "cancelled", on=date(2021, 2, 15))  # +30 back
    svc.run_due(date(2021, 2, 20))  # Cal's 60 expire; invoices of Jan 1 and Feb 1 are paid
    # March: Ann redeems 20 for a gift card (no catalog reward), loses 10 by hand; Cal earns 25.
    post("a-gift", "redemption", ann, "2021-03-01", points=20, reward="gift card")
    rewards.adjust_points(svc, "default", ann, -10, "double-counted visit", "office", on=date(2021, 3, 10))
    post("c-mar", "purchase", cal, "2021-03-05", amount="25.00")
    svc.run_due(date(2021, 3, 31))  # the invoices of Mar 1 paid; Ann's lots (Apr 4 on) do not expire yet
    return ann, ben, cal


def _rows(out: dict, section: str) -> list[dict]:
    return next(s for s in out["sections"] if s["id"] == section)["rows"]


def test_points_economy_on_a_known_history(db_url):
    from support import make_app

    svc = make_app(db_url)
    try:
        _history(svc)
        out = reports.run(svc, "default", "points", **{"from": "2021-01-01", "to": "2021-03-31"})
    finally:
        svc.close()
    assert (out["title"], out["currency"], out["filters"]) == (
        "Points economy", "USD", {"from": "2021-01-01", "to": "2021-03-31"})

    months = [(r["month"], r["earned"], r["redeemed"], r["expired"], r["adjusted"], r["clawed_back"], r["net"])
              for r in _rows(out, "months")]
    assert months == [
        # Jan: earned 120 + 50 = 170, nothing else.
        ("2021-01", 170, 0, 0, 0, 0, 170),
        # Feb: earned 40 + 80 = 120; redeemed 50 + 30 - 30 (mug cancelled) = 50; Cal's 60 expired;
        # net 120 - 50 - 60 = 10.
        ("2021-02", 120, 50, 60, 0, 0, 10),
        # Mar: earned 25 (Cal); redeemed 20 (gift card); adjusted -10; net 25 - 20 - 10 = -5.
        ("2021-03", 25, 20, 0, -10, 0, -5),
        # 170 + 120 + 25 = 315 earned; 70 redeemed; 60 expired; net 170 + 10 - 5 = 175.
        ("Total", 315, 70, 60, -10, 0, 175),
    ]

    [o] = _rows(out, "outstanding")
    # Ann: 170 + 120 - 50 - 30 + 30 - 20 - 10 = 210; Cal: 60 - 60 + 25 = 25 -> 235 points, 2 customers
    # (= 60 held before the range + the range's net 175). At 0.01 a point: 2.35.
    # Breakage: of the 70 + 60 = 130 points used up, 60 expired: 46.153...% -> 46.15.
    assert o == {"on": "2021-03-31", "points": 235, "customers": 2, "point_value": "0.01", "liability": "2.35",
                 "breakage": "46.15"}

    # The mug was cancelled: it is not a redemption any more. The gift card was 20 points outside
    # the catalog. Values at 1 cent a point.
    assert [(r["reward"], r["type"], r["redemptions"], r["quantity"], r["points"], r["value"])
            for r in _rows(out, "rewards")] == [
        ("$25 off a filter change", "Service discount", 1, 1, 50, "0.50"),
        ("Points redeemed outside the catalog", "", 1, 1, 20, "0.20"),
    ]

    # spend: 120 + 40 (Ann) + 25 (Cal) = 185 in 3 entries; double-days 80; tune-up 50. Of 315:
    # 185/315 = 58.730% -> 58.73, 80/315 = 25.396% -> 25.40, 50/315 = 15.873% -> 15.87.
    assert [(r["rule"], r["kind"], r["ruleset"], r["times"], r["points"], r["share"])
            for r in _rows(out, "earning")] == [
        ("spend", "Rule", "club-points@1", 3, 185, "58.73"),
        ("double-days", "Promotion", "club-points@1", 1, 80, "25.40"),
        ("tune-up", "Rule", "club-points@1", 1, 50, "15.87"),
    ]
    assert _rows(out, "earning")[1]["description"] == "Double points the first week of February."

    [roi] = _rows(out, "roi")
    # Cost: 70 points redeemed x 0.01 = 0.70. Earners in the range: Ann and Cal (Cal has no invoices);
    # Ann paid 30.00 on Jan 1, Feb 1 and Mar 1 = 90.00. Ben paid 90.00 too but earned nothing: not
    # counted. Return: (90.00 - 0.70) / 0.70 = 12757.142...% -> 12757.14.
    assert roi == {"redeemed": 70, "cost": "0.70", "earners": 2, "revenue": "90.00", "roi": "12757.14"}


def test_points_report_in_a_spreadsheet_and_a_chart(db_url):
    from openpyxl import load_workbook

    from support import make_app

    svc = make_app(db_url)
    try:
        _history(svc)
        f = reports.export(svc, "default", "points", "xlsx", **{"from": "2021-01-01", "to": "2021-03-31"})
        a_month = reports.run(svc, "default", "points", **{"from": "2021-02-01", "to": "2021-02-28"})
    finally:
        svc.close()
    import io

    book = load_workbook(io.BytesIO(f.content), read_only=True)
    rows = [[c for c in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    assert ["2021-02", 120, 50, 60, 0, 0, 10] in rows
    # February alone: 50 redeemed, 60 expired -> breakage 60 / 110 = 54.545...% -> 54.55; at Feb 28 Ann holds
    # 170 + 120 - 50 = 240 and Cal 0: 240 points, 2.40.
    [o] = _rows(a_month, "outstanding")
    assert (o["points"], o["customers"], o["liability"], o["breakage"]) == (240, 1, "2.40", "54.55")
