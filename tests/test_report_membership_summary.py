"""The membership summary report (#18): members at the start and end of a range and what moved
them, by plan, tier and allowance period, on a small history whose figures are counted by hand
below; a change of tier is an upgrade or a downgrade (not a new member nor a cancellation); a
membership on a period that no longer exists is left out; the location and plan filters narrow
the figures; a filter the report does not take is refused naming it; the CLI shows the same."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from keepwell.kernel.errors import InvalidDocument
from keepwell.usecases import customers, locations, memberships, reports
from support import Cli, make_app

CLUB = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "50.00", "period": "monthly"},
                 "tiers": [{"id": "basic", "name": "Basic", "price": {"monthly": "10.00"}},
                           {"id": "plus", "name": "Plus", "price": {"monthly": "20.00"}}]}}
CARE = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "care", "name": "Home Care"},
        "spec": {"allowance": {"amount": "300.00", "period": "yearly", "auto_renewal": False},
                 "price": {"yearly": "120.00"}}}
RANGE = {"from": "2025-04-01", "to": "2025-06-30"}


def member(svc, name: str, where: str, plan: str, on: date, tier: str | None = None) -> str:
    cid = customers.add_customer(svc, "default", name, location=where)
    return memberships.enroll(svc, "default", cid, plan, on, tier=tier)["membership"]


@pytest.fixture
def history(db_url):
    """The members, and (in the comments) what each of them does in April-June 2025.

    Comfort Club is monthly and renews: a renewal is dated the first day of the new period."""
    svc = make_app(db_url)
    svc.publish(CLUB, "test", date(1970, 1, 1))
    svc.publish(CARE, "test", date(1970, 1, 1))
    for place in ("North", "South"):
        locations.add_location(svc, "default", place)
    # A, North, Basic since Jan 10: renews Apr 10, May 10, Jun 10 in the range.
    member(svc, "Ann", "North", "club", date(2025, 1, 10), "basic")
    # B, South, Basic since Mar 5: renews Apr 5 and May 5, then moves up to Plus on May 20 (B2),
    # which renews Jun 20.
    b = member(svc, "Ben", "South", "club", date(2025, 3, 5), "basic")
    memberships.change_tier(svc, "default", b, "plus", date(2025, 5, 20))
    # C, North, Plus from Apr 15 (new): renews May 15, moves down to Basic on Jun 1 (C2: no renewal
    # before Jul 1).
    c = member(svc, "Cy", "North", "club", date(2025, 4, 15), "plus")
    memberships.change_tier(svc, "default", c, "basic", date(2025, 6, 1))
    # D, South, Basic from May 2 (new): renews Jun 2, cancelled Jun 10.
    d = member(svc, "Di", "South", "club", date(2025, 5, 2), "basic")
    memberships.cancel(svc, "default", d, date(2025, 6, 10))
    # E, North, Basic Feb 1, cancelled Mar 15: over before the range, in no figure.
    e = member(svc, "Ed", "North", "club", date(2025, 2, 1), "basic")
    memberships.cancel(svc, "default", e, date(2025, 3, 15))
    # F, North, Plus from Jun 30, the last day (new, and a member at the end).
    member(svc, "Flo", "North", "club", date(2025, 6, 30), "plus")
    # G, South, Basic from Mar 31, cancelled on the first day, Apr 1.
    g = member(svc, "Gus", "South", "club", date(2025, 3, 31), "basic")
    memberships.cancel(svc, "default", g, date(2025, 4, 1))
    # H, South, Home Care (yearly, does not renew) from 2024-05-01: expires after Apr 30, 2025.
    member(svc, "Hal", "South", "care", date(2024, 5, 1))
    # I, North, Home Care from Jun 15 (new).
    member(svc, "Ivy", "North", "care", date(2025, 6, 15))
    # J, South, Home Care from Apr 20, on a "weekly" period stored before periods were narrowed to
    # the four there are: left out of every figure.
    j = member(svc, "Jo", "South", "care", date(2025, 4, 20))
    with svc.engine.begin() as conn:
        conn.execute(sa.text("UPDATE memberships SET period = 'weekly' WHERE id = :id"), {"id": j})
    svc.run_due(date(2025, 7, 1))
    yield svc
    svc.close()


def rows(result: dict) -> list[tuple]:
    (section,) = result["sections"]
    keys = [c["key"] for c in section["columns"]]
    return [tuple(r[k] for k in keys) for r in section["rows"]]


def test_the_summary_counts_each_movement_once_by_plan_tier_and_period(history):
    result = reports.run(history, "default", "membership-summary", **RANGE)
    assert (result["title"], result["filters"]) == ("Membership summary", RANGE)
    # Columns: plan, tier, period, active at start (when Apr 1 began), active at end (when Jun 30
    # closed), new, renewed, upgraded, downgraded, cancelled, expired.
    assert rows(result) == [
        # Basic: at start A, B, G (enrolled Mar 31, cancelled during Apr 1) = 3; at end A, C2 = 2;
        # new D = 1 (C2 is a change of tier); renewed A 3 + B 2 + D 1 = 6; downgraded C2 = 1;
        # cancelled D, G = 2 (B's end is its change of tier). 3 + 1 + 1 (C2 in) - 2 - 1 (B out) = 2.
        ("Comfort Club", "Basic", "Monthly", 3, 2, 1, 6, 0, 1, 2, 0),
        # Plus: at start nobody; at end B2, F = 2 (C moved down); new C, F = 2; renewed C May 15 +
        # B2 Jun 20 = 2; upgraded B2 = 1 (120.00 a year to 240.00); C's end is a change, not a
        # cancellation. 0 + 2 + 1 (B2 in) - 1 (C out) = 2.
        ("Comfort Club", "Plus", "Monthly", 0, 2, 2, 2, 1, 0, 0, 0),
        # Home Care: at start H; at end I; new I (J is on no period there is); H expired.
        ("Home Care", "Standard", "Yearly", 1, 1, 1, 0, 0, 0, 0, 1),
        # 3 + 0 + 1 = 4 at start; 2 + 2 + 1 = 5 at end = 4 + 4 new - 2 cancelled - 1 expired.
        ("Total", "", "", 4, 5, 4, 8, 1, 1, 2, 1),
    ]


def test_the_location_and_plan_filters_narrow_the_figures(history):
    north = reports.run(history, "default", "membership-summary", location="North", **RANGE)
    assert rows(north) == [
        # North: A (Basic), C then C2, F (Plus), I (Home Care); E ended before the range.
        ("Comfort Club", "Basic", "Monthly", 1, 2, 0, 3, 0, 1, 0, 0),   # A; end A, C2; A's 3 renewals
        ("Comfort Club", "Plus", "Monthly", 0, 1, 2, 1, 0, 0, 0, 0),    # C, F new; end F; C May 15
        ("Home Care", "Standard", "Yearly", 0, 1, 1, 0, 0, 0, 0, 0),    # I
        ("Total", "", "", 1, 4, 3, 4, 0, 1, 0, 0),                       # 1 + 3 new = 4 at end
    ]
    assert rows(reports.run(history, "default", "membership-summary", plan="care", **RANGE)) == [
        ("Home Care", "Standard", "Yearly", 1, 1, 1, 0, 0, 0, 0, 1), ("Total", "", "", 1, 1, 1, 0, 0, 0, 0, 1)]
    # Plus only: the Plus row (and its total).
    assert rows(reports.run(history, "default", "membership-summary", tier="plus", **RANGE))[-1] == (
        "Total", "", "", 0, 2, 2, 2, 1, 0, 0, 0)


def test_a_filter_the_report_does_not_take_is_refused_naming_it(history):
    with pytest.raises(InvalidDocument) as caught:
        reports.run(history, "default", "membership-summary", membership="mem_x", **RANGE)
    assert [p.path for p in caught.value.problems] == ["membership"]
    assert "has no filter membership" in caught.value.problems[0].message
    listed = {r["name"]: [f["name"] for f in r["filters"]] for r in reports.list_reports(history, "default")}
    assert listed["membership-summary"] == ["from", "to", "location", "plan", "tier"]


def test_the_cli_shows_the_same_figures(history, db_url):
    cli = Cli(db_url)
    data = json.loads(cli.out("report", "membership-summary", "--from", RANGE["from"], "--to", RANGE["to"],
                              "--json"))
    total = data["sections"][0]["rows"][-1]
    assert (total["plan"], total["active_start"], total["active_end"], total["new"], total["renewed"],
            total["upgraded"], total["downgraded"], total["cancelled"], total["expired"]) == (
        "Total", 4, 5, 4, 8, 1, 1, 2, 1)
    text = cli.out("report", "membership-summary", "--from", RANGE["from"], "--to", RANGE["to"],
                   "--location", "North")
    assert "Membership summary" in text and "Half-yearly" not in text and "weekly" not in text.lower()
    csv_text = cli.out("report", "membership-summary", "--from", RANGE["from"], "--to", RANGE["to"], "--csv")
    assert "Comfort Club,Plus,Monthly,0,2,2,2,1,0,0,0" in csv_text
