"""The retention and churn report (#18): retention by monthly enrolment cohort (a member who
changes tier stays in their cohort), the renewal rate, the churn rate of each month and the
conversion of non-member customers served, on a small history whose figures are counted by hand
below; the location filter narrows them; a filter it does not take is refused naming it; the API
answers the same figures."""

from __future__ import annotations

from datetime import date

import pytest

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.kernel.errors import InvalidDocument
from keepwell.reporting import catalog
from keepwell.usecases import apikeys, customers, locations, memberships, reports
from support import event, make_app

CLUB = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "50.00", "period": "monthly"},
                 "tiers": [{"id": "basic", "name": "Basic", "price": {"monthly": "10.00"}},
                           {"id": "plus", "name": "Plus", "price": {"monthly": "20.00"}}]}}
CARE = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "care", "name": "Home Care"},
        "spec": {"allowance": {"amount": "300.00", "period": "yearly", "auto_renewal": False},
                 "price": {"yearly": "120.00"}}}
RANGE = {"from": "2025-01-01", "to": "2025-04-30"}


@pytest.fixture
def history(db_url):
    """January to April 2025. Comfort Club is monthly and renews (a renewal is dated the first day
    of the new period); Home Care is yearly and does not renew."""
    svc = make_app(db_url)
    svc.publish(CLUB, "test", date(1970, 1, 1))
    svc.publish(CARE, "test", date(1970, 1, 1))
    for place in ("North", "South"):
        locations.add_location(svc, "default", place)
    who = {}

    def member(key: str, where: str, plan: str, on: date, tier: str | None = None) -> str:
        who[key] = customers.add_customer(svc, "default", key, location=where)
        return memberships.enroll(svc, "default", who[key], plan, on, tier=tier)["membership"]

    def served(key: str, where: str | None, on: str, kind: str = "purchase") -> None:
        if key not in who:
            who[key] = customers.add_customer(svc, "default", key, location=where)
        data = {"amount": "40.00", "pay_with": "card"} if kind == "purchase" else {"service_code": "REPAIR"}
        svc.post_event(event(f"{key}-{on}", kind, who[key], on, **data))

    member("A", "North", "club", date(2025, 1, 10), "basic")   # stays; renews Feb 10, Mar 10, Apr 10
    b = member("B", "South", "club", date(2025, 1, 20), "basic")
    memberships.cancel(svc, "default", b, date(2025, 2, 15))   # mid-period, before any renewal
    c = member("C", "North", "club", date(2025, 1, 25), "basic")  # renews Feb 25
    c2 = memberships.change_tier(svc, "default", c, "plus", date(2025, 3, 1)).membership  # C2 renews Apr 1
    memberships.cancel(svc, "default", c2, date(2025, 4, 10))  # mid-period (Apr 1 - Apr 30)
    member("D", "South", "club", date(2025, 2, 5), "basic")    # stays; renews Mar 5, Apr 5
    e = member("E", "North", "club", date(2025, 3, 3), "plus")  # period Mar 3 - Apr 2
    memberships.cancel(svc, "default", e, date(2025, 4, 2))    # on its period's last day: at term
    x = member("X", "North", "club", date(2024, 12, 1), "basic")  # renews Jan 1 (its Dec period's end)
    memberships.cancel(svc, "default", x, date(2025, 1, 15))
    member("H", "South", "care", date(2024, 2, 1))             # expires after Jan 31, 2025
    # Customers served: P1 twice, P2, P4, P5 never members; E on the day she enrolled (not a member
    # when the day began) and again as a member; A as a member; B after her membership ended; P3
    # before the range.
    served("P1", "North", "2025-02-03")
    served("P1", "North", "2025-04-01")
    served("P2", "South", "2025-03-10", "service_completed")
    served("P4", "South", "2025-04-20", "service_completed")
    served("P5", "North", "2025-01-05")
    served("E", None, "2025-03-03")
    served("E", None, "2025-03-20")
    served("A", None, "2025-02-10")
    served("B", None, "2025-03-05")
    served("P3", "North", "2024-12-20")
    svc.run_due(date(2025, 5, 2))
    yield svc
    svc.close()


def section(result: dict, sid: str) -> list[tuple]:
    s = next(s for s in result["sections"] if s["id"] == sid)
    keys = [c["key"] for c in s["columns"]]
    return [tuple(r[k] for k in keys) for r in s["rows"]]


def test_cohorts_renewals_churn_and_conversion(history):
    result = reports.run(history, "default", "churn", **RANGE)
    assert result["title"] == "Retention and churn"
    empty = [None] * 12
    # Cohorts (enrolments in the range; C2 is a change of tier, X and H enrolled before). Month k
    # is reached when the first day of the k-th month after the cohort's is on or before Apr 30.
    assert section(result, "cohorts") == [
        # January: A, B, C = 3. Month 1 (Feb 1): all three (B ended Feb 15) = 100.00; month 2
        # (Mar 1): A, C = 2/3 = 66.67; month 3 (Apr 1): A and C, whose change of tier to C2 went
        # on until Apr 10 = 66.67; month 4 (May 1) is after the range.
        ("2025-01", 3, "100.00", "66.67", "66.67", *empty[3:]),
        ("2025-02", 1, "100.00", "100.00", *empty[2:]),  # D: Mar 1 and Apr 1
        ("2025-03", 1, "100.00", *empty[1:]),            # E ended Apr 2, not before Apr 1
        ("2025-04", 0, *empty),                          # nobody enrolled
    ]
    # Periods whose last day is in the range: renewals dated Jan 2 - May 1: A 3 (Feb 10, Mar 10,
    # Apr 10) + C 1 (Feb 25) + C2 1 (Apr 1) + D 2 (Mar 5, Apr 5) = 7 (X's renewal of Jan 1 ends a
    # December period); expired H (Jan 31) = 1; cancelled at term E (Apr 2) = 1 (B, C2 and X were
    # cancelled mid-period). 7 / (7 + 1 + 1) = 77.78%.
    assert section(result, "renewals") == [(7, 1, 1, 9, "77.78")]
    assert section(result, "churn") == [
        ("2025-01", 2, 2, "100.00"),  # at start X, H; X cancelled Jan 15, H expired Jan 31: 2/2
        ("2025-02", 3, 1, "33.33"),   # A, B, C; B cancelled Feb 15: 1/3
        ("2025-03", 3, 0, "0.00"),    # A, C, D; C's end on Mar 1 is a change of tier, not churn
        ("2025-04", 4, 2, "50.00"),   # A, C2, D, E; E (Apr 2) and C2 (Apr 10) ended: 2/4
    ]
    # Sold: A, B, C, D, E = 5 (C2 is a change). Non-members served: P1, P2, P4, P5, E (Mar 3), B
    # (Mar 5) = 6 (A was a member; P3 before the range). 5/6 = 83.33%.
    assert section(result, "conversion") == [(5, 6, "83.33")]


def test_the_retention_chart_has_a_line_per_cohort_with_the_months_reached(history):
    def build(ctx):
        r = catalog.run(ctx, "churn", catalog.params(ctx, "churn", RANGE))
        return r.section("cohorts").chart

    chart = history.run("default", build, read_only=True)
    assert chart.kind == "line" and chart.labels[0] == "Month 1" and len(chart.labels) == 12
    # The cohorts with members, each up to the last month reached (the empty April cohort has no line).
    assert chart.series == {"2025-01": [100.0, 66.67, 66.67], "2025-02": [100.0, 100.0], "2025-03": [100.0]}
    pdf = reports.export(history, "default", "churn", "pdf", **RANGE)
    assert pdf.content.startswith(b"%PDF") and pdf.filename == "churn-2025-01-01-to-2025-04-30.pdf"


def test_the_location_filter_narrows_the_figures(history):
    north = reports.run(history, "default", "churn", location="North", **RANGE)
    empty = [None] * 12
    # North: A, C (C2), E, X; P1, P5 (and P3, before the range).
    assert section(north, "cohorts") == [
        ("2025-01", 2, "100.00", "100.00", "100.00", *empty[3:]),  # A, C (C2 to Apr 10)
        ("2025-02", 0, *empty), ("2025-03", 1, "100.00", *empty[1:]), ("2025-04", 0, *empty)]
    # Renewals: A 3 + C 1 + C2 1 = 5; E cancelled at term = 1. 5/6 = 83.33%.
    assert section(north, "renewals") == [(5, 0, 1, 6, "83.33")]
    assert section(north, "churn") == [
        ("2025-01", 1, 1, "100.00"),  # X
        ("2025-02", 2, 0, "0.00"),    # A, C
        ("2025-03", 2, 0, "0.00"),    # A, C
        ("2025-04", 3, 2, "66.67"),   # A, C2, E; E and C2 ended: 2/3
    ]
    # Sold A, C, E = 3; non-members served P1, P5, E = 3: 100.00%.
    assert section(north, "conversion") == [(3, 3, "100.00")]
    # The Home Care plan: H expired, nothing renewed; no enrolment in the range.
    care = reports.run(history, "default", "churn", plan="care", **RANGE)
    assert section(care, "renewals") == [(0, 1, 0, 1, "0.00")]
    assert section(care, "conversion")[0][0] == 0


def test_a_filter_the_report_does_not_take_is_refused_naming_it(history):
    with pytest.raises(InvalidDocument) as caught:
        reports.run(history, "default", "churn", customer="cus_x", **RANGE)
    assert [p.path for p in caught.value.problems] == ["customer"]
    assert "Retention and churn report has no filter customer" in caught.value.problems[0].message


def test_the_api_answers_the_same_figures(history):
    settings = Settings.from_env({"KEEPWELL_SECRET_KEY": "k"})
    client = create_app({"TESTING": True}, service=history, settings=settings).test_client()
    auth = {"Authorization": f"Bearer {apikeys.create(history, 'default', 'reports', ['read'])}"}
    r = client.get("/api/v1/reports/churn?from=2025-01-01&to=2025-04-30", headers=auth)
    assert r.status_code == 200
    assert section(r.json, "renewals") == [(7, 1, 1, 9, "77.78")]
    assert section(r.json, "conversion") == [(5, 6, "83.33")]
    r = client.get("/api/v1/reports/churn?from=2025-01-01&to=2025-04-30&membership=mem_x", headers=auth)
    assert r.status_code == 422 and [e["pointer"] for e in r.json["errors"]] == ["/membership"]
    r = client.get("/api/v1/reports/churn?from=2025-01-01&to=2025-04-30&format=csv", headers=auth)
    assert r.status_code == 200 and "Renewal rate" in r.get_data(as_text=True)
