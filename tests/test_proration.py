"""Changes of tier and cancellations, billed (the billing issue): hand-computed cents through
the CLI contract. A change now credits the unused days of what the current invoice charged and
charges the new price for the rest; a second change in the same period credits what the first
invoiced; a change at the period's end prorates nothing; cancelling gives back what the plan's
terms say as a credit note, paid back to the card."""

from __future__ import annotations

import copy
import json
from datetime import date

import sqlalchemy as sa
import yaml

from support import event

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly"},
                 "billing": {"anchor_day": 1},
                 "included_services": [{"code": "TUNE", "name": "Tune-up", "quantity": 2}],
                 "tiers": [{"id": "basic", "name": "Basic", "price": {"monthly": "10.00"}},
                           {"id": "premium", "name": "Premium", "price": {"monthly": "20.00"}},
                           {"id": "gold", "name": "Gold", "price": {"monthly": "30.00"}}]}}


def start(cli, tmp_path, plan: dict = PLAN, on: str = "2026-11-01", tier: str = "basic") -> tuple[str, str]:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    cli("rulesets", "publish", str(path), "--effective-from", "2020-01-01")
    cid = cli.out("customers", "add", "--name", "Ann Change", "--email", "ann@example.com")
    cli("payment-methods", "add", cid, "--test-card", "success")
    mid = cli.out("enroll", cid, "club", "--tier", tier, "--on", on, "--cadence", "monthly")
    return cid, mid


def bill(cli, day: str) -> dict:
    return json.loads(cli.out("billing", "run", "--as-of", day))


def totals(cli, cid: str) -> list[tuple[str, str, str]]:
    return [(i["period_start"], i["total"], i["status"]) for i in cli.json("invoices", "list", cid)]


def test_upgrading_halfway_then_again_prorates_each_change_against_what_was_invoiced(cli, tmp_path):
    cid, basic = start(cli, tmp_path)
    bill(cli, "2026-11-01")  # 10.00 for November, paid
    preview = cli.json("membership", "change-tier", basic, "premium", "--on", "2026-11-16", "--preview")
    # 15 of November's 30 days left: 10.00 x 15/30 back, 20.00 x 15/30 charged.
    assert (preview["credit"], preview["charge"], preview["due_now"]) == ("5.00", "10.00", "5.00")
    assert totals(cli, cid) == [("2026-11-01", "10.00", "paid")]  # a preview writes nothing
    first = cli.json("membership", "change-tier", basic, "premium", "--on", "2026-11-16")
    premium = first["membership"]
    assert (first["cancelled"], first["credit"], first["charge"], first["due_now"]) == (basic, "5.00", "10.00", "5.00")
    # The second change credits what the first invoiced for 16-30 Nov (10.00 over 15 days), not 20.00.
    second = cli.json("membership", "change-tier", premium, "gold", "--on", "2026-11-21")
    assert (second["credit"], second["charge"], second["due_now"]) == ("6.67", "10.00", "3.33")
    bill(cli, "2026-11-21")
    assert totals(cli, cid) == [("2026-11-01", "10.00", "paid"), ("2026-11-16", "5.00", "paid"),
                                ("2026-11-21", "3.33", "paid")]
    # What the member paid is what the days cost: 15 at 10.00, 5 at 20.00, 10 at 30.00 a month.
    assert 1000 + 500 + 333 == round(1000 * 15 / 30 + 2000 * 5 / 30 + 3000 * 10 / 30)
    lines = cli.json("invoices", "show", "2")["lines"]
    assert [(x["kind"], x["amount"]) for x in lines] == [("proration", "10.00"), ("proration_credit", "-5.00")]
    # December bills the new tier on the same billing day, in full.
    bill(cli, "2026-12-01")
    assert totals(cli, cid)[-1] == ("2026-12-01", "30.00", "paid")
    assert cli.json("membership", "show", second["membership"])["tier"] == "gold"


def test_a_downgrade_now_pays_the_difference_back_to_the_card(cli, tmp_path, db_url):
    cid, gold = start(cli, tmp_path, tier="gold")
    bill(cli, "2026-11-01")  # 30.00
    changed = cli.json("membership", "change-tier", gold, "basic", "--on", "2026-11-16", "--at", "now")
    # 15.00 of gold unused, 5.00 of basic for the rest: 10.00 back.
    assert (changed["credit"], changed["charge"], changed["due_now"], changed["refund"]) == (
        "15.00", "5.00", "0.00", "10.00")
    assert [n["refunded"] for n in changed["credit_notes"]] == ["10.00"]
    assert totals(cli, cid) == [("2026-11-01", "30.00", "paid"), ("2026-11-16", "0.00", "paid")]
    eng = sa.create_engine(db_url)
    with eng.connect() as c:
        assert list(c.execute(sa.text("SELECT kind, amount_cents, status FROM sandbox_charges ORDER BY kind"))) == [
            ("charge", 3000, "succeeded"), ("refund", 1000, "succeeded")]
    eng.dispose()


def test_a_downgrade_at_the_period_end_prorates_nothing(cli, tmp_path):
    cid, gold = start(cli, tmp_path, tier="gold")
    bill(cli, "2026-11-01")
    preview = cli.json("membership", "change-tier", gold, "basic", "--on", "2026-11-20", "--at", "period_end",
                       "--preview")
    assert (preview["credit"], preview["charge"], preview["due_now"], preview["effective_on"]) == (
        "0.00", "10.00", "0.00", "2026-12-01")
    waiting = cli.json("membership", "change-tier", gold, "basic", "--on", "2026-11-20", "--at", "period_end")
    assert (waiting["cancelled"], waiting["effective_on"]) == (None, "2026-12-01")
    assert cli.json("membership", "show", gold)["tier"] == "gold"  # until the period ends
    bill(cli, "2026-12-01")
    assert cli.json("membership", "show", gold)["status"] == "cancelled"
    assert totals(cli, cid) == [("2026-11-01", "30.00", "paid"), ("2026-12-01", "10.00", "paid")]
    [now] = cli.json("membership", "list", "--customer", cid, "--status", "active")
    assert (now["tier"], now["issued_on"]) == ("basic", "2026-12-01")


def cancelling(cli, tmp_path, cancellation: dict, visits: int = 0, on: str = "2026-11-10") -> tuple[dict, dict]:
    plan = copy.deepcopy(PLAN)
    plan["spec"]["cancellation"] = cancellation
    cid, mid = start(cli, tmp_path, plan)
    bill(cli, "2026-11-01")
    if visits:
        cli.post(*[event(f"visit-{i}", "service_completed", cid, "2026-11-05", service_code="TUNE")
                   for i in range(visits)])
    preview = cli.json("membership", "cancel", mid, "--on", on, "--preview")
    done = cli.json("membership", "cancel", mid, "--on", on)
    assert (done["refund"], done["refund_computed"]) == (preview["refund"], preview["refund_computed"])
    return preview, done


def test_a_prorated_cancellation_is_a_credit_note_paid_back_to_the_card(cli, tmp_path):
    preview, done = cancelling(cli, tmp_path, {"refund": "prorated"})
    # Last day the 10th: 20 of 30 days unused, 10.00 x 20/30 = 6.666... -> 6.67.
    assert (preview["refund"], preview["refund_computed"]["days_unused"]) == ("6.67", 20)
    [note] = done["credit_notes"]
    assert (note["number"], note["invoice"], note["amount"], note["refunded"]) == (1, 1, "6.67", "6.67")
    inv = cli.json("invoices", "show", "1")
    assert (inv["status"], inv["total"], inv["refunded"]) == ("paid", "10.00", "6.67")


def test_usage_based_refund_counts_the_visits_taken(cli, tmp_path):
    preview, done = cancelling(cli, tmp_path, {"refund": "prorated", "refund_basis": "usage", "visit_value": "4.00"},
                               visits=2)
    # Days used are worth 3.33; two tune-ups at 4.00 are worth 8.00: 10.00 - 8.00 back.
    c = preview["refund_computed"]
    assert (preview["refund"], c["visits_used"], c["value_of_visits"]) == ("2.00", 2, "8.00")
    assert done["credit_notes"][0]["refunded"] == "2.00"


def test_a_plan_that_refunds_nothing_gives_nothing_back(cli, tmp_path):
    preview, done = cancelling(cli, tmp_path, {"refund": "none"})
    assert (preview["refund"], done["credit_notes"]) == ("0.00", [])


def test_a_full_refund_within_the_days_after_joining_gives_back_the_fee_less_the_cancellation_fee(cli, tmp_path):
    preview, done = cancelling(cli, tmp_path, {"refund": "prorated", "full_refund_within_days": 14, "fee": "2.50"})
    assert (preview["refund"], preview["refund_computed"]["policy"]) == ("7.50", "full_within_days")
    assert done["credit_notes"][0]["refunded"] == "7.50"


def test_cancelling_at_the_period_end_refunds_nothing_and_ends_then(cli, tmp_path):
    cid, mid = start(cli, tmp_path)
    bill(cli, "2026-11-01")
    done = cli.json("membership", "cancel", mid, "--on", "2026-11-10", "--at", "period_end")
    assert (done["status"], done["ends_on"], done["refund"]) == ("active", "2026-11-30", "0.00")
    bill(cli, "2026-12-01")
    m = cli.json("membership", "show", mid)
    assert (m["status"], m["ended_on"]) == ("cancelled", "2026-11-30")
    assert totals(cli, cid) == [("2026-11-01", "10.00", "paid")]  # December is not billed


def test_notice_days_are_asked_for(cli, tmp_path):
    plan = copy.deepcopy(PLAN)
    plan["spec"]["cancellation"] = {"notice_days": 30}
    _cid, mid = start(cli, tmp_path, plan)
    today = cli.json("clock", "show")["today"]
    r = cli("membership", "cancel", mid, "--on", today, expect=None)
    assert r.exit_code != 0 and "30 days' notice" in r.output
    assert cli.json("membership", "show", mid)["status"] == "active"


def test_sales_tax_at_the_members_location_is_worked_out_per_line_and_refunded_with_what_it_was_on(cli, tmp_path):
    loc = cli.out("locations", "add", "Denver", "--tax-rate", "8.81", "--tax-name", "Denver sales tax")
    assert loc.startswith("loc_") and [x["tax_rate"] for x in cli.json("locations", "list")] == ["8.81"]
    plan = copy.deepcopy(PLAN)
    plan["spec"]["cancellation"] = {"refund": "prorated"}
    cid, basic = start(cli, tmp_path, plan, on="2026-10-16")
    cli("customers", "set", cid, "--location", "Denver", "--address", "1 Elm St, Denver CO")
    bill(cli, "2026-11-01")
    stub, november = cli.json("invoices", "list", basic)
    # 10.00 x 16/31 = 5.16; tax 8.81% of 5.16 = 0.4546 -> 0.45, half-up on the line.
    assert (stub["subtotal"], stub["tax"], stub["total"], stub["tax_rate"], stub["lines"][0]["tax"]) == (
        "5.16", "0.45", "5.61", "8.81", "0.45")
    assert (november["tax"], november["total"]) == ("0.88", "10.88")  # 0.881 -> 0.88
    # An upgrade on 16 Nov: credit 5.00, charge 10.00, each line taxed on its own:
    # 10.00 -> 0.881 -> 0.88 and -5.00 -> -0.4405 -> -0.44; due now 5.00 + 0.44.
    moved = cli.json("membership", "change-tier", basic, "premium", "--on", "2026-11-16")
    assert (moved["credit"], moved["charge"], moved["due_now"], moved["computed"]["tax"]) == (
        "5.00", "10.00", "5.44", "0.44")
    change = cli.json("invoices", "list", moved["membership"])[0]
    assert [(x["amount"], x["tax"]) for x in change["lines"]] == [("10.00", "0.88"), ("-5.00", "-0.44")]
    assert change["total"] == "5.44"
    # Cancelling on the 20th gives back 10 of the 15 days invoiced (10.00 x 10/15 = 6.67) and
    # the tax charged on them (8.81% of 6.67 = 0.5876 -> 0.59): 7.26, from the newest invoices first.
    bill(cli, "2026-11-16")
    done = cli.json("membership", "cancel", moved["membership"], "--on", "2026-11-20")
    assert (done["refund"], done["refund_computed"]["tax"]) == ("7.26", "0.59")
    assert [n["refunded"] for n in done["credit_notes"]] == ["5.44", "1.82"]
    assert cli.json("customers", "list")[0]["service_address"] == "1 Elm St, Denver CO"


def test_changing_tier_counts_what_was_used_this_period(cli, tmp_path):
    plan = copy.deepcopy(PLAN)
    plan["spec"]["allowance"]["overdraft"] = {"limit": "20.00"}
    plan["spec"]["tiers"][0]["allowance_amount"] = "150.00"  # basic: more allowance than premium's 100.00
    cid, basic = start(cli, tmp_path, plan)
    cli.post(event("till-1", "purchase", cid, "2026-11-05", amount="120.00", pay_with="membership"),
             event("visit-1", "service_completed", cid, "2026-11-06", service_code="TUNE"))
    moved = cli.json("membership", "change-tier", basic, "premium", "--on", "2026-11-16")
    now = cli.json("membership", "show", moved["membership"])
    # Premium's 100.00 less the 120.00 spent on Basic: nothing left, 20.00 carried as overdraft used.
    a = now["allowance"]
    assert (a["balance"], a["overdraft_used"], a["overdraft_left"]) == ("0.00", "20.00", "0.00")
    assert [(s["code"], s["used"], s["left"]) for s in now["services"]] == [("TUNE", 1, 1)]
    # Changing back does not hand out Basic's 150.00 again: 150.00 less the 120.00 spent.
    back = cli.json("membership", "change-tier", moved["membership"], "basic", "--on", "2026-11-20")
    again = cli.json("membership", "show", back["membership"])["allowance"]
    assert (again["balance"], again["overdraft_used"]) == ("30.00", "0.00")


def test_a_leap_february_and_a_start_on_the_31st_by_hand(cli, tmp_path):
    cid, leap = start(cli, tmp_path, on="2024-02-10")
    bill(cli, "2024-02-10")
    # 20 of leap February's 29 days: 10.00 x 20/29 = 6.896... -> 6.90.
    assert totals(cli, cid) == [("2024-02-10", "6.90", "paid")]
    moved = cli.json("membership", "change-tier", leap, "premium", "--on", "2024-02-15", "--preview")
    # From the 15th, 15 of the 20 invoiced days are unused: 6.90 x 15/20 = 5.175 -> 5.18 back;
    # 20.00 x 15/29 = 10.344... -> 10.34 charged; 5.16 due.
    assert (moved["credit"], moved["charge"], moved["due_now"]) == ("5.18", "10.34", "5.16")
    other = cli.out("customers", "add", "--name", "Dee Month-End")
    cli("payment-methods", "add", other, "--test-card", "success")
    late = cli.out("enroll", other, "club", "--tier", "basic", "--on", "2026-01-31", "--cadence", "monthly")
    bill(cli, "2026-03-01")
    # One day of January (10.00 x 1/31 = 0.32), then February and March in full.
    assert [(i["period_start"], i["period_end"], i["total"]) for i in cli.json("invoices", "list", late)] == [
        ("2026-01-31", "2026-01-31", "0.32"), ("2026-02-01", "2026-02-28", "10.00"),
        ("2026-03-01", "2026-03-31", "10.00")]


def test_the_same_figures_through_the_api(app, tmp_path):
    from keepwell.app import create_app
    from keepwell.usecases import apikeys, billing

    app.publish(PLAN, "test", date(2020, 1, 1))
    c = create_app({"TESTING": True}, service=app).test_client()
    h = {"Authorization": f"Bearer {apikeys.create(app, 'default', 'api', ['admin'])}"}
    cid = c.post("/api/v1/customers", headers=h, json={"name": "Api Member"}).json["id"]
    assert c.post(f"/api/v1/customers/{cid}/payment_methods", headers=h,
                  json={"test_card": "success"}).status_code == 201
    mid = c.post("/api/v1/enrollments", headers=h, json={"customer": cid, "plan": "club", "tier": "basic",
                                                         "on": "2026-11-01", "cadence": "monthly"}).json["membership"]
    assert c.post("/api/v1/billing/run", headers=h, json={"as_of": "2026-11-01"}).json["charged"] == 1
    preview = c.get(f"/api/v1/memberships/{mid}/tier_preview?tier=premium&on=2026-11-16", headers=h).json
    assert (preview["credit"], preview["charge"], preview["due_now"]) == ("5.00", "10.00", "5.00")
    moved = c.post(f"/api/v1/memberships/{mid}/tier", headers=h, json={"tier": "premium", "on": "2026-11-16"})
    assert moved.status_code == 201 and moved.json["due_now"] == "5.00"
    new = moved.json["membership"]
    refund = c.get(f"/api/v1/memberships/{new}/cancel_preview?on=2026-11-20", headers=h).json
    # 10 of the 15 days invoiced unused: 10.00 x 10/15 = 6.67.
    assert (refund["refund"], refund["refund_computed"]["days_unused"], refund["refund_computed"]["visits_used"]) == (
        "6.67", 10, 0)
    done = c.post(f"/api/v1/memberships/{new}/cancel", headers=h, json={"on": "2026-11-20"}).json
    assert done["refund"] == "6.67"
    # The change's 5.00 was not charged yet: the refund takes it off (void), and pays the other
    # 1.67 back to the card from November's paid invoice.
    first, change = billing.invoices_of(app, "default", customer=cid)
    assert (first["status"], first["refunded"], change["status"], change["amount_due"]) == (
        "paid", "1.67", "void", "0.00")
