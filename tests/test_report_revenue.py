"""The recurring revenue report (#18): MRR and ARR at each month's end, their movement (new,
expansion, contraction, churn) adding up month by month, lifetime value per plan and tier and a
12-month forecast from the renewal rate — on a small known data set computed by hand."""

from __future__ import annotations

from datetime import date

from keepwell.kernel.money import to_cents
from keepwell.usecases import memberships, reports

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"period": "monthly", "billing": {"anchor_day": 1}, "cancellation": {"refund": "none"},
                 "tiers": [{"id": "bronze", "name": "Bronze", "price": {"monthly": "30.00", "yearly": "300.00"}},
                           {"id": "gold", "name": "Gold", "price": {"monthly": "50.00"}}]}}


def join(app, name: str, on: date, cadence: str) -> str:
    cid = app.add_customer(name)
    return memberships.enroll(app, "default", cid, "club", on, tier="bronze", cadence=cadence,
                              key=f"{cid}:join")["membership"]


def section(r: dict, sid: str) -> dict:
    return next(s for s in r["sections"] if s["id"] == sid)


def history(app) -> None:
    app.publish(PLAN, "test", date(2020, 1, 1))
    ann = join(app, "Ann Upgrades", date(2025, 1, 1), "monthly")  # ARR 30.00 x 12 = 360.00
    join(app, "Ben Yearly", date(2025, 1, 15), "yearly")  # ARR 300.00
    app.run_due(date(2025, 2, 1))
    cal = join(app, "Cal Leaves", date(2025, 2, 1), "monthly")  # ARR 360.00
    memberships.change_tier(app, "default", ann, "gold", date(2025, 2, 10), "now")  # ARR 50.00 x 12 = 600.00
    app.run_due(date(2025, 3, 19))
    memberships.cancel(app, "default", cal, date(2025, 3, 20))
    app.run_due(date(2025, 3, 31))


def test_mrr_moves_by_new_expansion_and_churn_and_adds_up_each_month(app):
    history(app)
    r = reports.run(app, "default", "recurring-revenue", **{"from": "2025-01-01", "to": "2025-03-31"})
    rows = section(r, "movement")["rows"]
    # January: Ann 360.00 + Ben 300.00 = 660.00 ARR, MRR 55.00, both new.
    # February: Cal new (+360.00 ARR: MRR 85.00 - 55.00 = 30.00); Ann to Gold (+240.00 ARR:
    # MRR 105.00 - 85.00 = 20.00 expansion, not churn and new); ARR 1260.00.
    # March: Cal cancelled (-360.00 ARR: 30.00 churn); ARR 900.00, MRR 75.00.
    assert [(x["month"], x["opening"], x["new"], x["expansion"], x["contraction"], x["churn"], x["closing"],
             x["arr"], x["new_members"], x["members"]) for x in rows] == [
        ("2025-01", "0.00", "55.00", "0.00", "0.00", "0.00", "55.00", "660.00", 2, 2),
        ("2025-02", "55.00", "30.00", "20.00", "0.00", "0.00", "105.00", "1260.00", 1, 3),
        ("2025-03", "105.00", "0.00", "0.00", "0.00", "30.00", "75.00", "900.00", 0, 2)]
    for x in rows:
        assert (to_cents(x["opening"]) + to_cents(x["new"]) + to_cents(x["expansion"]) - to_cents(x["contraction"])
                - to_cents(x["churn"])) == to_cents(x["closing"])
    summary = {x["figure"]: x for x in section(r, "summary")["rows"]}
    assert (summary["MRR"]["value"], summary["ARR"]["value"], summary["MRR"]["members"]) == ("75.00", "900.00", 2)


def test_lifetime_value_renewal_rate_and_forecast(app):
    history(app)
    r = reports.run(app, "default", "recurring-revenue", **{"from": "2025-01-01", "to": "2025-03-31"})
    ltv = {x["tier"]: x for x in section(r, "lifetime")["rows"]}
    # Bronze: ARR at the month ends 660.00 (Ann, Ben), 660.00 (Ben, Cal), 300.00 (Ben): 1620.00
    # over 5 member-month-ends / 12 = 27.00 a month. One ended (Cal; Ann changed tier). Members in
    # force each month: Jan 2 (Ann, Ben), Feb 3 (Ann until the 10th, Ben, Cal), Mar 2 (Ben, Cal):
    # 7. Churn 1/7 = 14.29% a month, lifetime 7 months, value 27.00 x 7 = 189.00.
    assert ltv["bronze"] == {"plan": "Comfort Club", "tier": "bronze", "members": 1, "average": "27.00",
                             "churned": 1, "member_months": 7, "churn_rate": "14.29", "lifetime": "7.00",
                             "ltv": "189.00"}
    # Gold: Ann from Feb 10, 600.00 ARR at two month ends: 50.00 a month; none left: the 120-month
    # cap, 50.00 x 120 = 6000.00.
    assert ltv["gold"] == {"plan": "Comfort Club", "tier": "gold", "members": 1, "average": "50.00", "churned": 0,
                           "member_months": 2, "churn_rate": "0.00", "lifetime": "120.00", "ltv": "6000.00"}
    # Monthly membership periods renewed: Ann (bronze) Feb 1, Ben Feb 15 and Mar 15, Cal Mar 1,
    # Ann (gold) Mar 10: 5; Cal ended without renewing: 5 / 6 = 83.33%.
    assert section(r, "renewals")["rows"] == [{"period": "monthly", "renewed": 5, "ended": 1, "rate": "83.33"}]
    # Forecast from MRR 75.00: April 75.00 x 5/6 = 62.50; May 75.00 x 25/36 = 52.083 -> 52.08.
    forecast = section(r, "forecast")["rows"]
    assert forecast[:2] == [{"month": "2025-04", "revenue": "62.50"}, {"month": "2025-05", "revenue": "52.08"}]
    assert len(forecast) == 12
    summary = {x["figure"]: x for x in section(r, "summary")["rows"]}
    assert summary["Renewal rate in the range"]["rate"] == "83.33"
    assert to_cents(summary["Forecast revenue, next 12 months"]["value"]) == sum(to_cents(x["revenue"])
                                                                                   for x in forecast)
    # The same figures for one tier only: Gold's MRR is 50.00 at the end of March.
    gold = reports.run(app, "default", "recurring-revenue", **{"from": "2025-01-01", "to": "2025-03-31",
                                                              "tier": "gold"})
    assert section(gold, "movement")["rows"][-1]["closing"] == "50.00"
    # Ann's move from Bronze is new business for the Gold-only view (Bronze is not in it).
    assert section(gold, "movement")["rows"][1]["new"] == "50.00"


def test_the_api_and_the_pdf_show_the_chart(app, db_url):
    from keepwell.app import create_app
    from keepwell.infra.settings import Settings
    from keepwell.usecases import apikeys

    history(app)
    c = create_app({"TESTING": True}, service=app,
                   settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"})).test_client()
    h = {"Authorization": f"Bearer {apikeys.create(app, 'default', 't', ['admin'])}"}
    got = c.get("/api/v1/reports/recurring-revenue?from=2025-01-01&to=2025-03-31", headers=h)
    assert got.status_code == 200, got.json
    assert section(got.json, "movement")["rows"][-1]["closing"] == "75.00"
    pdf = c.get("/api/v1/reports/recurring-revenue?from=2025-01-01&to=2025-03-31&format=pdf", headers=h)
    assert pdf.status_code == 200 and pdf.data[:4] == b"%PDF"
