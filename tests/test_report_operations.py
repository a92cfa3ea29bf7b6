"""The operations report (#18) on a small known history: included visits entitled against
delivered, members with visits or allowance left in a period about to end, failed payments and
their recovery. Every expected figure is worked out by hand in the comments."""

from __future__ import annotations

from datetime import date

import yaml

from keepwell.usecases import billing, memberships, reports
from support import event, make_app

CLUB = yaml.safe_load("""
apiVersion: keepwell/v1
kind: Plan
metadata: {id: club, name: Comfort Club}
spec:
  allowance: {amount: "100.00", period: quarterly}
  included_services:
    - {code: AC_TUNE, quantity: 1}
    - {code: FILTER, quantity: 2}
  price: {monthly: "30.00"}
  billing: {anchor_day: 1, proration: none}
""")
BASIC = yaml.safe_load("""
apiVersion: keepwell/v1
kind: Plan
metadata: {id: basic, name: Basic Care}
spec:
  period: yearly
  included_services:
    - {code: AC_TUNE, quantity: 1}
  price: {yearly: "100.00"}
  billing: {proration: none}
""")
LITE = yaml.safe_load("""
apiVersion: keepwell/v1
kind: Plan
metadata: {id: lite, name: Priority Line}
spec:
  period: monthly
  price: {monthly: "15.00"}
  billing: {anchor_day: 1, proration: none}
""")

RANGE = {"from": "2021-01-01", "to": "2021-03-31"}


def _history(svc) -> dict[str, str]:
    for doc in (CLUB, BASIC, LITE):
        svc.publish(doc, "test", date(2020, 1, 1))
    people = {}

    def join(name: str, plan: str, on: date, card: str, cadence: str) -> str:
        c = svc.add_customer(name)
        billing.add_test_card(svc, "default", c, card, default=True)
        people[name] = c
        return memberships.enroll(svc, "default", c, plan, on, cadence=cadence)["membership"]

    # Cal: Basic, yearly from 2020-05-01: his period ends 2021-04-30 (within 30 days of Mar 31).
    # Dee: Basic from 2020-05-02: her period ends 2021-05-01 (31 days: not near).
    people["cal_m"] = join("Cal Yearly", "basic", date(2020, 5, 1), "success", "yearly")
    people["dee_m"] = join("Dee Later", "basic", date(2020, 5, 2), "success", "yearly")
    # Ben: Club, quarterly from 2020-12-15: periods Dec 15 - Mar 14, Mar 15 - Jun 14.
    # His card is declined: the Jan 1 invoice (30.00) fails on Jan 1 and on its retry on Jan 2.
    people["ben_m"] = join("Ben Declined", "club", date(2020, 12, 15), "decline", "monthly")
    # Ann: Club, quarterly from 2021-01-01: her first period is Jan 1 - Mar 31.
    people["ann_m"] = join("Ann Busy", "club", date(2021, 1, 1), "success", "monthly")
    svc.run_due(date(2021, 1, 2))
    billing.add_test_card(svc, "default", people["Ben Declined"], "success", default=True)
    svc.run_due(date(2021, 1, 4))  # the new card pays Ben's Jan 1 invoice: recovered

    def post(key: str, kind: str, who: str, day: str, **data) -> None:
        r = svc.post_event(event(key, kind, people[who], day, **data))
        assert r["status"] in ("approved", "processed"), r

    post("a-1", "service_completed", "Ann Busy", "2021-01-15", service_code="AC_TUNE")
    post("b-1", "service_completed", "Ben Declined", "2021-01-20", service_code="AC_TUNE")
    # Eve: Priority Line from Feb 1, card reported stolen: never retried, cancelled 21 days on
    # (Feb 22) and the 15.00 invoice written off.
    people["eve_m"] = join("Eve Stolen", "lite", date(2021, 2, 1), "hard_decline", "monthly")
    post("a-2", "service_completed", "Ann Busy", "2021-02-10", service_code="FILTER")
    post("a-3", "purchase", "Ann Busy", "2021-02-20", amount="40.00", pay_with="membership")
    # (due work run up to Eve's cancellation first: one run catching up from Feb 1 to April would
    # issue her Mar 1 and Apr 1 invoices before it cancels her — billing runs before collecting)
    svc.run_due(date(2021, 2, 25))
    post("b-2", "service_completed", "Ben Declined", "2021-03-20", service_code="FILTER")
    # Run on past the range: Ann's period closes on Apr 1 (her unused filter and 60.00 expire
    # that day), which the report as of Mar 31 must not see.
    svc.run_due(date(2021, 4, 5))
    return people


def _rows(out: dict, section: str) -> list[dict]:
    return next(s for s in out["sections"] if s["id"] == section)["rows"]


def _visits(rows: list[dict], key: str) -> list[tuple]:
    return [(r[key], r["entitled"], r["delivered"], r["expired"], r["delivered_pct"]) for r in rows]


def test_operations_on_a_known_history(db_url):
    svc = make_app(db_url)
    try:
        people = _history(svc)
        out = reports.run(svc, "default", "operations", **RANGE)
        basic = reports.run(svc, "default", "operations", plan="basic", **RANGE)
    finally:
        svc.close()
    assert (out["title"], out["currency"]) == ("Operations", "USD")

    assert _visits(_rows(out, "visits-by-month"), "month") == [
        # Jan: Ann's first period grants AC_TUNE 1 + FILTER 2 = 3; Ann and Ben each use an AC_TUNE: 2 of 3
        # = 66.666% -> 66.67.
        ("2021-01", 3, 2, 0, "66.67"),
        # Feb: nothing granted, Ann uses a FILTER.
        ("2021-02", 0, 1, 0, None),
        # Mar 15: Ben's second period grants 1 + 2 = 3 and his 2 unused filters of the first expire;
        # he uses a FILTER on Mar 20: 1 of 3 = 33.33. (Ann's period ends Mar 31: its expiry is dated
        # Apr 1, outside the range.)
        ("2021-03", 3, 1, 2, "33.33"),
        # 6 entitled, 4 delivered (66.67), 2 expired.
        ("Total", 6, 4, 2, "66.67"),
    ]
    assert _visits(_rows(out, "visits-by-service"), "service") == [
        ("AC_TUNE", 2, 2, 0, "100.00"),   # Ann Jan + Ben Mar granted; Ann and Ben used one each
        ("FILTER", 4, 2, 2, "50.00"),     # 2 + 2 granted; Ann Feb + Ben Mar used; Ben's 2 expired
        ("Total", 6, 4, 2, "66.67"),
    ]

    # Near the end of a period (by Apr 30) with something left at the end of Mar 31:
    # Ann: FILTER 2 - 1 = 1 left, AC_TUNE 0; allowance 100.00 - 40.00 = 60.00; period ends Mar 31.
    # Cal: AC_TUNE 1 left, no allowance; period ends Apr 30.
    # Not Ben (his period ends Jun 14), not Dee (May 1), not Eve (cancelled Feb 22, and nothing to use).
    assert [(r["customer"], r["membership"], r["plan"], r["visits"], r["services"], r["allowance"], r["period_end"])
            for r in _rows(out, "unused")] == [
        ("Ann Busy", people["ann_m"], "Comfort Club", 1, "FILTER 1", "60.00", "2021-03-31"),
        ("Cal Yearly", people["cal_m"], "Basic Care", 1, "AC_TUNE 1", "0.00", "2021-04-30"),
    ]

    pay = [(r["month"], r["attempts"], r["attempts_amount"], r["invoices"], r["invoices_amount"], r["recovered"],
            r["recovered_amount"], r["written_off"], r["recovery_rate"]) for r in _rows(out, "payments")]
    assert pay == [
        # Jan: Ben's 30.00 refused on Jan 1 and Jan 2 (2 attempts, 60.00); 1 invoice failed, paid Jan 4.
        ("2021-01", 2, "60.00", 1, "30.00", 1, "30.00", 0, "100.00"),
        # Feb: Eve's 15.00 refused once, never paid, written off: 0 of 1 recovered.
        ("2021-02", 1, "15.00", 1, "15.00", 0, "0.00", 1, "0.00"),
        ("2021-03", 0, "0.00", 0, "0.00", 0, "0.00", 0, None),
        # 3 attempts (75.00); 2 invoices (45.00), 1 recovered (30.00): 50.00%.
        ("Total", 3, "75.00", 2, "45.00", 1, "30.00", 1, "50.00"),
    ]

    # Only the Basic plan: no visits granted or used in the range; Cal alone near his period's end;
    # no payment of a Basic member failed.
    assert _visits(_rows(basic, "visits-by-month"), "month")[-1] == ("Total", 0, 0, 0, None)
    assert [r["customer"] for r in _rows(basic, "unused")] == ["Cal Yearly"]
    assert _rows(basic, "payments")[-1]["attempts"] == 0


def test_operations_through_the_api_and_as_a_csv(db_url):
    from keepwell.app import create_app
    from keepwell.infra.settings import Settings
    from keepwell.usecases import apikeys

    svc = make_app(db_url)
    try:
        _history(svc)
        c = create_app({"TESTING": True}, service=svc,
                       settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"})).test_client()
        h = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 't')}"}
        r = c.get("/api/v1/reports/operations?from=2021-01-01&to=2021-03-31&tier=standard", headers=h)
        assert r.status_code == 200, r.json
        # Every membership here is on the Standard tier: the same totals as by hand above.
        payments = next(s for s in r.json["sections"] if s["id"] == "payments")["rows"]
        assert payments[-1] == {"month": "Total", "attempts": 3, "attempts_amount": "75.00", "invoices": 2,
                                "invoices_amount": "45.00", "recovered": 1, "recovered_amount": "30.00",
                                "written_off": 1, "recovery_rate": "50.00"}
        csv = c.get("/api/v1/reports/operations?from=2021-01-01&to=2021-03-31&format=csv", headers=h)
        assert csv.status_code == 200
        assert "Ann Busy" in csv.text and "2021-03-31" in csv.text
        bad = c.get("/api/v1/reports/operations?from=2021-01-01&to=2021-03-31&membership=x", headers=h)
        assert bad.status_code == 422 and "has no filter membership" in bad.text
    finally:
        svc.close()
