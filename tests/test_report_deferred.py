"""The deferred revenue report (#18): what members were billed, what is earned by each plan's
policy (by day over the billing period, or by visit), what was given back and what is still
deferred, per membership and in total, and a roll-forward that always reconciles — on a small
known data set computed by hand, on random histories (property-based), and through the CLI."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepwell.kernel.money import to_cents
from keepwell.reporting.reports.deferred import deferred_of, earned_by_day, earned_by_visit
from keepwell.usecases import billing, memberships, reports
from support import Cli, event


def plan(pid: str, name: str, price: dict, recognition: dict | None = None, visits: int = 0,
         refund: str = "prorated") -> dict:
    spec: dict = {"price": price, "billing": {"anchor_day": 1}, "period": "yearly",
                  "cancellation": {"refund": refund}}
    if recognition:
        spec["revenue_recognition"] = recognition
    if visits:
        spec["included_services"] = [{"code": "AC_TUNE", "name": "A/C tune-up", "quantity": visits}]
    return {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": pid, "name": name}, "spec": spec}


DAY_PLAN = plan("comfort", "Comfort Club", {"yearly": "120.00", "monthly": "12.00"})
VISIT_PLAN = plan("tuneup", "Tune-up Plan", {"yearly": "100.00"}, {"policy": "by_visit"}, visits=2)


def run(app, start: str, end: str, **filters) -> dict:
    return reports.run(app, "default", "deferred-revenue", **{"from": start, "to": end}, **filters)


def section(r: dict, sid: str) -> dict:
    return next(s for s in r["sections"] if s["id"] == sid)


def join(app, name: str, pid: str, on: date, cadence: str = "yearly") -> str:
    cid = app.add_customer(name)
    return memberships.enroll(app, "default", cid, pid, on, cadence=cadence, key=f"{cid}:join")["membership"]


def visit(app, mid: str, key: str, day: str) -> None:
    customer = app.membership(mid)["customer"]["id"]
    r = app.post_event(event(key, "service_completed", customer, day, service_code="AC_TUNE", membership=mid))
    assert r["covered"], r


def known(app) -> dict[str, str]:
    app.publish(DAY_PLAN, "test", date(2020, 1, 1))
    app.publish(VISIT_PLAN, "test", date(2020, 1, 1))
    ann = join(app, "Ann Byday", "comfort", date(2025, 1, 1))
    ben = join(app, "Ben Visits", "tuneup", date(2025, 1, 1))
    cal = join(app, "Cal Cancels", "comfort", date(2025, 1, 1))
    billing.run(app, "default", date(2025, 1, 1))  # one yearly invoice each: 120.00, 100.00, 120.00
    visit(app, ben, "ben-1", "2025-02-10")
    memberships.cancel(app, "default", cal, date(2025, 3, 31))
    return {"ann": ann, "ben": ben, "cal": cal}


def by_membership(r: dict) -> dict[str, tuple[str, str, str, str]]:
    return {row["membership"]: (row["billed"], row["recognised"], row["refunded"], row["deferred"])
            for row in section(r, "memberships")["rows"]}


def test_by_day_by_visit_and_a_refund_at_the_end_of_march(app):
    m = known(app)
    r = run(app, "2025-01-01", "2025-03-31")
    rows = by_membership(r)
    # Ann, by day: 120.00 billed Jan 1 for Jan 1..Dec 31 2025 (365 days). By Mar 31, 31 + 28 + 31
    # = 90 days: 12000 x 90 / 365 = 2958.90 -> 2958 cents recognised (toward zero; the last day
    # takes the rest); 12000 - 2958 = 9042 deferred.
    assert rows[m["ann"]] == ("120.00", "29.58", "0.00", "90.42")
    # Ben, by visit: 100.00 over 2 included visits, one done on Feb 10: 50.00 earned, 50.00 deferred.
    assert rows[m["ben"]] == ("100.00", "50.00", "0.00", "50.00")
    # Cal cancelled on Mar 31 (the last day), prorated: 275 of 365 days unused (Apr 1..Dec 31):
    # 12000 x 275 / 365 = 9041.10 -> 9041 back as a credit note. The membership has ended, so
    # nothing is deferred: recognised = 12000 - 9041 = 2959.
    assert rows[m["cal"]] == ("120.00", "29.59", "90.41", "0.00")
    [totals] = section(r, "summary")["rows"]
    # 120 + 100 + 120 = 340.00 billed; 29.58 + 50.00 + 29.59 = 109.17 recognised; 90.41 refunded;
    # 90.42 + 50.00 + 0 = 140.42 deferred.
    assert totals == {"memberships": 3, "billed": "340.00", "recognised": "109.17", "refunded": "90.41",
                      "deferred": "140.42"}
    roll = {row["plan"]: row for row in section(r, "roll-forward")["rows"]}
    # Comfort Club: opening 0 (Dec 31 2024) + 240.00 - (29.58 + 29.59) - 90.41 = 90.42.
    assert roll["Comfort Club"] == {"plan": "Comfort Club", "opening": "0.00", "billed": "240.00",
                                    "recognised": "59.17", "refunded": "90.41", "closing": "90.42"}
    assert roll["Tune-up Plan"] == {"plan": "Tune-up Plan", "opening": "0.00", "billed": "100.00",
                                    "recognised": "50.00", "refunded": "0.00", "closing": "50.00"}
    assert roll["Total"] == {"plan": "Total", "opening": "0.00", "billed": "340.00", "recognised": "109.17",
                             "refunded": "90.41", "closing": "140.42"}
    assert {row["membership"]: row["policy"] for row in section(r, "memberships")["rows"]}[m["ben"]] == "by visit"


def test_the_next_quarter_opens_on_what_march_closed_and_the_last_visit_earns_the_rest(app):
    m = known(app)
    visit(app, m["ben"], "ben-2", "2025-05-05")
    r = run(app, "2025-04-01", "2025-06-30")
    rows = by_membership(r)
    # Ann by Jun 30: 90 + 30 + 31 + 30 = 181 days: 12000 x 181 / 365 = 5950.68 -> 5950; 6050 deferred.
    assert rows[m["ann"]] == ("120.00", "59.50", "0.00", "60.50")
    # Ben's second of 2 visits: all 100.00 earned.
    assert rows[m["ben"]] == ("100.00", "100.00", "0.00", "0.00")
    roll = {row["plan"]: row for row in section(r, "roll-forward")["rows"]}
    # Opening on Mar 31: 90.42 + 50.00 = 140.42; nothing billed or refunded in the quarter;
    # recognised (59.50 - 29.58) + 50.00 = 79.92; closing 140.42 - 79.92 = 60.50.
    assert roll["Total"] == {"plan": "Total", "opening": "140.42", "billed": "0.00", "recognised": "79.92",
                             "refunded": "0.00", "closing": "60.50"}
    # By plan: Tune-up opens at 50.00 and closes at 0.
    assert (roll["Tune-up Plan"]["opening"], roll["Tune-up Plan"]["closing"]) == ("50.00", "0.00")
    # Filtered to one plan, only its members.
    only = run(app, "2025-04-01", "2025-06-30", plan="tuneup")
    assert list(by_membership(only)) == [m["ben"]]


def test_unused_visits_are_released_at_the_period_end_or_at_expiry(app):
    app.publish(VISIT_PLAN, "test", date(2020, 1, 1))
    app.publish(plan("keep", "Keep Visits", {"monthly": "30.00"},
                     {"policy": "by_visit", "unused_visits": "release_at_expiry"}, visits=3), "test", date(2020, 1, 1))
    ben = join(app, "Ben Period", "tuneup", date(2025, 1, 1))
    kim = join(app, "Kim Expiry", "keep", date(2025, 1, 1), cadence="monthly")
    billing.run(app, "default", date(2025, 2, 1))  # Kim: Jan and Feb, 30.00 each
    visit(app, kim, "kim-1", "2025-01-20")
    # At Jan 31: Kim's January 30.00 over 3 visits, one done: 10.00 earned, 20.00 still deferred
    # (released only when the year's visits expire); February's line (issued Feb 1) not billed yet.
    rows = by_membership(run(app, "2025-01-01", "2025-01-31"))
    assert rows[kim] == ("30.00", "10.00", "0.00", "20.00")
    # At Feb 28: January still 20.00 deferred (the visits have not expired), February none done.
    rows = by_membership(run(app, "2025-01-01", "2025-02-28"))
    assert rows[kim] == ("60.00", "10.00", "0.00", "50.00")
    # Dec 31, after due work to Jan 1 2026: Kim's January still has 20.00 deferred, Feb..Dec's
    # 11 lines of 30.00 all of it (no visit): 20 + 330 = 350.00; 12 x 30.00 = 360.00 billed.
    app.run_due(date(2026, 1, 1))
    rows = by_membership(run(app, "2025-12-01", "2025-12-31"))
    assert rows[kim] == ("360.00", "10.00", "0.00", "350.00")
    # Ben (release at the period's end): Dec 31 2025 is the last day of the period his 100.00
    # paid for: the 2 visits he did not take are released, all of it earned.
    assert rows[ben] == ("100.00", "100.00", "0.00", "0.00")
    # Jan 1 2026: the year's unused visits expired (Kim's 2 of 3), and with them what 2025's lines
    # were still deferring: 360.00 earned. Both renewed and were billed again that day: Kim's
    # January 30.00 and Ben's 100.00 are deferred.
    rows = by_membership(run(app, "2025-12-01", "2026-01-01"))
    assert rows[kim] == ("390.00", "360.00", "0.00", "30.00")
    assert rows[ben] == ("200.00", "100.00", "0.00", "100.00")


# --- properties -----------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(amount=st.integers(-10**7, 10**7), start=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
       days=st.integers(1, 400))
def test_by_day_earns_each_line_exactly_over_its_period_and_never_goes_back(amount, start, days):
    end = start + timedelta(days=days - 1)
    earned = [earned_by_day(amount, start, end, start + timedelta(days=k)) for k in range(-1, days + 1)]
    assert earned[0] == 0 and earned[-2] == amount and earned[-1] == amount
    steps = [b - a for a, b in zip(earned, earned[1:])]
    assert all(abs(s) <= abs(amount) // days + 1 for s in steps)  # evenly, to the cent
    assert all((s >= 0) if amount >= 0 else (s <= 0) for s in steps)


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(0, 10**7), included=st.integers(1, 12), visits=st.integers(0, 20),
       refunded=st.integers(0, 10**7))
def test_by_visit_earns_a_share_per_visit_and_deferred_is_never_negative(amount, included, visits, refunded):
    earned = earned_by_visit(amount, included, visits, released=False)
    assert 0 <= earned <= amount and earned == amount * min(visits, included) // included
    assert earned_by_visit(amount, included, visits, released=True) == amount
    assert deferred_of(amount - earned, refunded) == max(amount - earned - refunded, 0)


COMPANIES = itertools.count()
STEP = st.tuples(st.sampled_from(["join", "visit", "cancel", "bill"]), st.integers(0, 3),
                 st.sampled_from(["comfort", "tuneup"]), st.sampled_from(["yearly", "monthly"]))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(1, 45), STEP), min_size=1, max_size=10),
       cut=st.integers(0, 200), length=st.integers(0, 200))
def test_the_roll_forward_reconciles_on_random_histories(app, steps, cut, length):
    slug = f"random{next(COMPANIES)}"
    app.add_company(slug, "Random Co")
    app.publish(DAY_PLAN, "test", date(2020, 1, 1), company=slug)
    app.publish(plan("tuneup", "Tune-up Plan", {"yearly": "100.00", "monthly": "9.99"}, {"policy": "by_visit"},
                     visits=2), "test", date(2020, 1, 1), company=slug)
    day, members, n = date(2025, 1, 1), [], 0
    for gap, (what, who, pid, cadence) in steps:
        day += timedelta(days=gap)
        if what == "join" or not members:
            cid = app.add_customer(f"Member {n}", company=slug)
            members.append(memberships.enroll(app, slug, cid, pid, day, cadence=cadence, key=f"j{n}")["membership"])
            n += 1
            continue
        mid = members[who % len(members)]
        shown = app.membership(mid, company=slug)
        if shown["status"] != "active":
            continue
        if what == "visit":
            app.post_event(event(f"v{n}", "service_completed", shown["customer"]["id"], day.isoformat(),
                                 service_code="AC_TUNE", membership=mid), company=slug)
            n += 1
        elif what == "cancel":
            memberships.cancel(app, slug, mid, day)
        billing.run(app, slug, day)
    start = date(2025, 1, 1) + timedelta(days=cut)
    end = start + timedelta(days=length)
    r = reports.run(app, slug, "deferred-revenue", **{"from": start.isoformat(), "to": end.isoformat()})
    roll = section(r, "roll-forward")["rows"]
    for row in roll:  # opening + billed - recognised - refunded = closing, each plan and the total
        o, b, rec, ref, c = (to_cents(row[k]) for k in ("opening", "billed", "recognised", "refunded", "closing"))
        assert o + b - rec - ref == c, row
    total = roll[-1]
    assert total["plan"] == "Total"
    for k in ("opening", "billed", "recognised", "refunded", "closing"):
        assert sum(to_cents(row[k]) for row in roll[:-1]) == to_cents(total[k])
    rows = section(r, "memberships")["rows"]
    assert sum(to_cents(x["deferred"]) for x in rows) == to_cents(total["closing"])
    assert all(to_cents(x["deferred"]) >= 0 for x in rows)
    for x in rows:
        assert to_cents(x["billed"]) - to_cents(x["recognised"]) - to_cents(x["refunded"]) == to_cents(x["deferred"])
    # Every by-day line of an active membership earns as the pure function says.
    for x in rows:
        shown = app.membership(x["membership"], company=slug)
        if x["policy"] != "by day" or shown["status"] != "active":
            continue
        lines = [line for inv in billing.invoices_of(app, slug, membership=x["membership"])
                 if inv["issued_on"] <= end.isoformat() for line in inv["lines"]]
        expected = sum(earned_by_day(to_cents(line["amount"]), date.fromisoformat(line["period_start"]),
                                     date.fromisoformat(line["period_end"]), end) for line in lines)
        assert to_cents(x["recognised"]) == expected, (x, lines)


def test_the_cli_prints_the_report_as_json(db_url, app):
    known(app)
    cli = Cli(db_url)
    out = json.loads(cli.out("report", "deferred-revenue", "--from", "2025-01-01", "--to", "2025-03-31", "--json"))
    assert [s["id"] for s in out["sections"]] == ["summary", "roll-forward", "memberships"]
    assert out["sections"][0]["rows"][0]["deferred"] == "140.42"
    assert "deferred-revenue" in cli.out("report", "list")
