"""Billing, first part (the billing issue): enrolment chooses a cadence among the plan's prices;
each billing period is invoiced in advance, the first short one prorated by the plan's policy,
the billing day kept across short months; invoices are numbered without gaps per company, and
billing twice bills once. Through the CLI contract and the API."""

from __future__ import annotations

import calendar
import copy
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from keepwell.billing import schedule

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly"},
                 "price": {"monthly": "30.00", "yearly": "300.00"},
                 "billing": {"anchor_day": 1, "proration": "daily"}}}


def publish(cli, tmp_path, doc: dict, name: str = "plan.yaml") -> None:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    cli("rulesets", "publish", str(path), "--effective-from", "2020-01-01")


def member(cli, name: str, on: str, cadence: str = "monthly") -> tuple[str, str]:
    cid = cli.out("customers", "add", "--name", name)
    return cid, cli.out("enroll", cid, "club", "--on", on, "--cadence", cadence)


def bill(cli, day: str) -> dict:
    import json

    return json.loads(cli.out("billing", "run", "--as-of", day))


def test_a_member_joining_mid_month_pays_the_days_to_the_billing_day_then_each_month(cli, tmp_path):
    publish(cli, tmp_path, PLAN)
    _cid, mid = member(cli, "Ann Stub", "2026-03-15")
    assert bill(cli, "2026-03-15") == {"as_of": "2026-03-15", "invoices": 1, "charged": 0, "failed": 0, "retried": 0}
    assert bill(cli, "2026-04-01")["invoices"] == 1
    assert bill(cli, "2026-04-01")["invoices"] == 0  # billing twice bills once
    first, second = cli.json("invoices", "list", mid)
    # 30.00 for the 17 of March's 31 days from the 15th: 16.451... -> 16.45, rounded once, half-up.
    assert (first["number"], first["status"], first["total"], first["amount_due"], first["currency"]) == (
        1, "open", "16.45", "16.45", "USD")
    assert first["lines"] == [{"kind": "proration", "description": "Comfort Club (Standard), monthly: 2026-03-15 to 2026-03-31 "
                               "(17 of 31 days)", "amount": "16.45", "tax": "0.00", "period_start": "2026-03-15",
                               "period_end": "2026-03-31"}]
    assert (second["number"], second["period_start"], second["period_end"], second["total"]) == (
        2, "2026-04-01", "2026-04-30", "30.00")
    assert cli.json("invoices", "show", "2")["lines"][0]["kind"] == "membership_fee"


def test_the_billing_day_is_kept_across_short_months(cli, tmp_path):
    doc = copy.deepcopy(PLAN)
    doc["spec"]["billing"] = {"anchor_day": 31}
    publish(cli, tmp_path, doc)
    _cid, mid = member(cli, "Bea Month-End", "2026-01-31")
    bill(cli, "2026-04-15")
    periods = [(i["period_start"], i["period_end"], i["total"]) for i in cli.json("invoices", "list", mid)]
    assert periods == [("2026-01-31", "2026-02-27", "30.00"), ("2026-02-28", "2026-03-30", "30.00"),
                       ("2026-03-31", "2026-04-29", "30.00")]


def test_full_period_and_no_proration_and_numbering_without_gaps_per_company(cli, tmp_path):
    doc = copy.deepcopy(PLAN)
    doc["spec"]["billing"]["proration"] = "full_period"
    publish(cli, tmp_path, doc)
    _a, ann = member(cli, "Ann Full", "2026-03-20")
    _b, ben = member(cli, "Ben Yearly", "2026-03-20", cadence="yearly")
    bill(cli, "2026-03-20")
    assert [i["total"] for i in cli.json("invoices", "list", ann)] == ["30.00"]
    assert [i["total"] for i in cli.json("invoices", "list", ben)] == ["300.00"]
    numbers = sorted(i["number"] for m in (ann, ben) for i in cli.json("invoices", "list", m))
    assert numbers == [1, 2]
    # Another company numbers its own from 1; a plan with no proration bills no stub.
    cli("companies", "add", "other", "--name", "Other Co")
    other = copy.deepcopy(PLAN)
    other["spec"]["billing"]["proration"] = "none"
    cli.env["KEEPWELL_COMPANY"] = "other"
    publish(cli, tmp_path, other, "other.yaml")
    _c, cal = member(cli, "Cal None", "2026-03-20")
    bill(cli, "2026-04-01")
    assert [(i["number"], i["period_start"], i["total"]) for i in cli.json("invoices", "list", cal)] == [
        (1, "2026-04-01", "30.00")]


def test_a_cadence_the_plan_does_not_price_is_refused_and_a_cancelled_membership_stops_billing(cli, tmp_path):
    publish(cli, tmp_path, PLAN)
    cid = cli.out("customers", "add", "--name", "Quinn Quarterly")
    res = cli("enroll", cid, "club", "--on", "2026-03-01", "--cadence", "quarterly", expect=1)
    assert "not billed quarterly" in res.output and "monthly, yearly" in res.output
    assert "'weekly' is not one of" in cli("enroll", cid, "club", "--on", "2026-03-01", "--cadence", "weekly", expect=2).output
    _c, mid = member(cli, "Carl Cancel", "2026-03-01")
    bill(cli, "2026-03-01")
    cli("membership", "cancel", mid, "--on", "2026-03-20")
    bill(cli, "2026-06-01")
    assert [i["period_start"] for i in cli.json("invoices", "list", mid)] == ["2026-03-01"]


def test_invoices_through_the_api_for_their_company_only(app, tmp_path):
    from keepwell.app import create_app
    from keepwell.infra.settings import Settings
    from keepwell.usecases import apikeys, billing

    app.publish(PLAN, "test", date(2020, 1, 1))
    app.add_company("other", "Other Co")
    c = create_app({"TESTING": True}, service=app, settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"})).test_client()
    h = {"Authorization": f"Bearer {apikeys.create(app, 'default', 't', ['admin'])}"}
    cid = c.post("/api/v1/customers", headers=h, json={"name": "Ann Api"}).json["id"]
    r = c.post("/api/v1/enrollments", headers=h, json={"customer": cid, "plan": "club", "on": "2026-03-15",
                                                       "cadence": "monthly"})
    assert r.status_code == 201 and r.json["billing"]["anchor_on"] == "2026-04-01"
    billing.run(app, "default", date(2026, 4, 1))
    listed = c.get(f"/api/v1/invoices?membership={r.json['membership']}", headers=h).json["invoices"]
    assert [i["total"] for i in listed] == ["16.45", "30.00"]
    assert c.get(f"/api/v1/invoices?customer={cid}", headers=h).json["invoices"] == listed
    assert c.get("/api/v1/invoices/2", headers=h).json["period_start"] == "2026-04-01"
    other = {"Authorization": f"Bearer {apikeys.create(app, 'other', 't', ['admin'])}"}
    assert c.get("/api/v1/invoices/2", headers=other).status_code == 404
    assert c.get(f"/api/v1/invoices?customer={cid}", headers=other).json["invoices"] == []
    assert c.get("/api/v1/invoices", headers=h).status_code == 422


@settings(max_examples=300, deadline=None)
@given(start=st.dates(date(2024, 1, 1), date(2030, 12, 31)), anchor_day=st.one_of(st.none(), st.integers(1, 31)),
       cadence=st.sampled_from(schedule.CADENCES), price=st.integers(0, 10**8))
def test_billing_periods_follow_each_other_on_the_billing_day_and_the_stub_is_its_share(start, anchor_day, cadence,
                                                                                          price):
    first = schedule.anchor(start, anchor_day)
    day = anchor_day or start.day
    assert start <= first < start + timedelta(days=32)
    previous_end = first - timedelta(days=1)
    for k in range(14):
        s, e = schedule.period_of(first, day, cadence, k)
        assert s == previous_end + timedelta(days=1) and e >= s
        assert s.day == min(day, calendar.monthrange(s.year, s.month)[1])  # the billing day, kept
        previous_end = e
    full_start, full_end = schedule.period_of(first, day, cadence, -1)
    assert full_end == first - timedelta(days=1) and full_start <= start or first == start
    stub = schedule.stub_amount(price, start, first, day, cadence, "daily")
    days, of = (first - start).days, (full_end - full_start).days + 1
    assert stub == int((Decimal(price) * days / of).quantize(Decimal(1), rounding=ROUND_HALF_UP)) <= price
    assert schedule.stub_amount(price, start, first, day, cadence, "none") == 0
    assert schedule.stub_amount(price, start, first, day, cadence, "full_period") == (price if first > start else 0)


def test_each_invoice_is_emailed_to_the_member_through_the_outbox(cli, tmp_path):
    from mailserver import MailServer

    publish(cli, tmp_path, PLAN)
    cid = cli.out("customers", "add", "--name", "Ann Mail", "--email", "ann@example.com")
    cli.out("enroll", cid, "club", "--on", "2026-03-15", "--cadence", "monthly")
    quiet = cli.out("customers", "add", "--name", "No Email")
    cli.out("enroll", quiet, "club", "--on", "2026-03-15", "--cadence", "monthly")
    bill(cli, "2026-03-15")
    with MailServer() as smtp:
        cli.env.update({"KEEPWELL_SMTP_HOST": "127.0.0.1", "KEEPWELL_SMTP_PORT": str(smtp.port)})
        sent = cli.json("outbox", "deliver")
        assert [o["status"] for o in sent] == ["sent"]  # one invoice email: the other member has no address
        [mail] = smtp.wait_for(1, timeout=10)
    assert mail["To"] == "ann@example.com" and mail["Subject"].startswith("Invoice ")
    assert "16.45 USD" in mail["Subject"]
    body = mail.get_body().get_content()
    assert "Comfort Club" in body and "2026-03-15 to 2026-03-31 (17 of 31 days): 16.45" in body


def _cancel_terms(cli, tmp_path, **terms) -> str:
    doc = copy.deepcopy(PLAN)
    doc["spec"]["included_services"] = [{"code": "AC_TUNE", "name": "A/C tune-up", "quantity": 2}]
    doc["spec"]["cancellation"] = terms
    publish(cli, tmp_path, doc)
    _cid, mid = member(cli, "Ann Leaving", "2026-03-01")
    bill(cli, "2026-03-01")  # invoice 1: March, 30.00
    return mid


def preview(cli, mid: str, on: str = "2026-03-10") -> dict:
    return cli.json("membership", "cancel", mid, "--on", on, "--preview")


def visit(cli, mid: str, key: str, day: str) -> None:
    from support import event

    customer = cli.json("membership", "show", mid)["customer"]["id"]
    [r] = cli.post(event(key, "service_completed", customer, day, service_code="AC_TUNE", membership=mid))
    assert r["covered"], r


def test_cancelling_shows_a_prorated_refund_by_days_with_the_fee_taken_and_changes_nothing(cli, tmp_path):
    mid = _cancel_terms(cli, tmp_path, refund="prorated", fee="5.00")
    p = preview(cli, mid)
    # 21 of March's 31 days unused after the 10th: 30.00 x 21/31 = 20.32; less the 5.00 fee.
    assert (p["refund"], p["owed"], p["currency"]) == ("15.32", "0.00", "USD")
    assert p["refund_computed"] == {"policy": "prorated", "basis": "days", "fee": "5.00", "invoice": 1,
                                    "invoiced": "30.00", "days_in_period": 31, "days_unused": 21,
                                    "visits_used": 0, "value_of_visits": "0.00"}
    assert cli.json("membership", "show", mid)["status"] == "active"  # a preview changes nothing


def test_a_usage_based_refund_charges_the_visits_taken_when_they_are_worth_more_than_the_days(cli, tmp_path):
    mid = _cancel_terms(cli, tmp_path, refund="prorated", refund_basis="usage", visit_value="20.00")
    visit(cli, mid, "v1", "2026-03-05")
    one = preview(cli, mid)
    # The 9 days had cost 9.68; one visit taken is worth 20.00: the member pays the larger.
    assert (one["refund"], one["refund_computed"]["visits_used"], one["refund_computed"]["value_of_visits"]) == (
        "10.00", 1, "20.00")
    visit(cli, mid, "v2", "2026-03-06")
    assert preview(cli, mid)["refund"] == "0.00"  # two tune-ups (40.00) outweigh the month's 30.00
    # Cancelling on the 4th, before either visit: the days count, 30.00 x 27/31 = 26.129 -> 26.13.
    assert preview(cli, mid, "2026-03-04")["refund"] == "26.13"


def test_full_refunds_within_days_of_joining_and_no_refund_plans(cli, tmp_path):
    mid = _cancel_terms(cli, tmp_path, refund="none", full_refund_within_days=14, fee="0.00")
    assert preview(cli, mid, "2026-03-10")["refund"] == "30.00"  # 9 days after joining: all of it back
    assert preview(cli, mid, "2026-03-20")["refund"] == "0.00"   # past the 14 days: the plan refunds nothing
