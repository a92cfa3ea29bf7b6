"""Plan policies the contractor asked for that need no billing (the billing issue): what an
unused overdraft gives at renewal (`allowance.overdraft.unused`), and what a purchase dated in
a period that has already closed does (`late_charges`)."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from support import make_app

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Club"},
        "spec": {"allowance": {"amount": "1000.00", "period": "monthly", "overdraft": {"limit": "200.00"}}}}


def plan(**changes) -> dict:
    doc = copy.deepcopy(PLAN)
    if "unused" in changes:
        doc["spec"]["allowance"]["overdraft"]["unused"] = changes["unused"]
    if "late_charges" in changes:
        doc["spec"]["late_charges"] = changes["late_charges"]
    return doc


@pytest.fixture
def svc(db_url):
    app = make_app(db_url)
    yield app
    app.close()


def member(svc, doc: dict) -> tuple[str, str]:
    svc.publish(doc, "test", date(2020, 1, 1))
    cid = svc.add_customer("Ada Lovelace")
    res = svc.enroll(cid, "club", date(2026, 1, 1))
    assert res["status"] == "processed", res
    return cid, res["membership"]


def spend(svc, cid: str, key: str, day: date, amount: str) -> dict:
    return svc.post_event({"id": key, "type": "purchase", "customer": cid, "occurred_at": f"{day}T12:00:00+00:00",
                           "data": {"amount": amount, "pay_with": "membership"}})


def allowance(svc, mid: str) -> dict:
    return svc.membership(mid)["allowance"]


def test_by_default_an_unused_overdraft_stays_available_and_is_not_added(svc):
    _cid, mid = member(svc, PLAN)
    svc.run_due(date(2026, 2, 2))
    assert (allowance(svc, mid)["balance"], allowance(svc, mid)["available"]) == ("1000.00", "1200.00")


def test_add_to_allowance_adds_the_unused_overdraft_at_renewal_and_only_then(svc):
    cid, mid = member(svc, plan(unused="add_to_allowance"))
    svc.run_due(date(2026, 2, 2))  # January: no overdraft used
    shown = allowance(svc, mid)
    assert (shown["balance"], shown["available"]) == ("1200.00", "1400.00")  # 1000 + 200, facility still there
    lines = svc.statement(mid, date(2026, 2, 1), date(2026, 2, 1))["accounts"][0]["entries"]
    [added] = [e for e in lines if e["kind"] == "overdraft_unused"]
    assert (added["amount"], added["rule"]) == ("200.00", "plan.allowance.overdraft_unused")
    # February: 1,300.00 spent, 100.00 of it from the overdraft: March renews the usual way.
    assert spend(svc, cid, "feb-big", date(2026, 2, 10), "1300.00")["status"] == "approved"
    svc.run_due(date(2026, 3, 2))
    assert allowance(svc, mid)["balance"] == "900.00"  # 1000 granted, 100 recovered, nothing added
    march = svc.statement(mid, date(2026, 3, 1), date(2026, 3, 1))["accounts"][0]["entries"]
    assert not [e for e in march if e["kind"] == "overdraft_unused"]


def test_a_late_purchase_is_charged_to_the_current_period_and_says_when_it_happened(svc):
    cid, mid = member(svc, PLAN)
    svc.run_due(date(2026, 2, 2))  # January is closed
    res = spend(svc, cid, "till-7-offline", date(2026, 1, 20), "30.00")
    assert res["status"] == "approved", res
    assert res["late"] == {"happened_on": "2026-01-20", "period": 0, "charged_to_period": 1}
    assert allowance(svc, mid)["balance"] == "970.00"
    [entry] = [e for e in res["entries"] if e["kind"] == "debit"]
    assert entry["date"] == "2026-02-01" and "purchase of 2026-01-20 (period 0)" in entry["memo"]


def test_a_plan_may_decline_late_purchases_instead(svc):
    cid, mid = member(svc, plan(late_charges="decline"))
    svc.run_due(date(2026, 2, 2))
    res = spend(svc, cid, "till-7-offline", date(2026, 1, 20), "30.00")
    assert (res["status"], res["reason"]) == ("declined", "period_closed")
    assert allowance(svc, mid)["balance"] == "1000.00"
    assert spend(svc, cid, "today", date(2026, 2, 3), "30.00")["status"] == "approved"


PROMO_PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Club"},
              "spec": {"allowance": {"amount": "1000.00", "period": "monthly"}, "discount_percent": "10",
                       "tiers": [{"id": "standard", "name": "Standard"}, {"id": "gold", "name": "Gold"}],
                       "promotions": [
                           {"id": "spring-2026", "name": "Spring sign-up", "window": {"from": "2026-03-01",
                                                                                     "to": "2026-03-31"},
                            "bonus_points": 500, "discount_percent": "5"},
                           {"id": "gold-week", "window": {"from": "2026-03-10", "to": "2026-03-16"},
                            "bonus_points": 100, "applies_to_tiers": ["gold"]}]}}


def join(svc, name: str, day: date, tier: str = "standard") -> tuple[str, dict]:
    cid = svc.add_customer(name)
    return cid, svc.enroll(cid, "club", day, tier=tier)


def test_promotions_give_their_bonus_points_to_members_who_join_in_their_window(svc):
    svc.publish(PROMO_PLAN, "test", date(2020, 1, 1))
    _a, early = join(svc, "Before Spring", date(2026, 2, 27))
    _b, spring = join(svc, "In Spring", date(2026, 3, 12))
    _c, gold = join(svc, "Gold In Spring", date(2026, 3, 12), tier="gold")
    assert (early["points"]["earned"], spring["points"]["earned"], gold["points"]["earned"]) == (0, 500, 600)
    rules = sorted(e["rule"] for e in gold["entries"] if e["account"] == "points")
    assert rules == ["plan.promotions.gold-week.bonus_points", "plan.promotions.spring-2026.bonus_points"]
    assert all(e["ruleset"] == "club@1" for e in gold["entries"] if e["account"] == "points")


def test_a_running_promotion_adds_its_discount_to_the_member_discount_on_services(svc):
    svc.publish(PROMO_PLAN, "test", date(2020, 1, 1))
    cid, _m = join(svc, "Ann", date(2026, 2, 1))

    def service(key: str, day: date) -> dict:
        return svc.post_event({"id": key, "type": "service_completed", "customer": cid,
                               "occurred_at": f"{day}T12:00:00+00:00",
                               "data": {"service_code": "REPAIR", "amount": "200.00"}})

    before, during = service("s-feb", date(2026, 2, 20)), service("s-mar", date(2026, 3, 20))
    assert (before["discount"], before["charge"], before.get("promotion")) == ("20.00", "180.00", None)
    assert (during["discount"], during["charge"], during["promotion"]) == ("30.00", "170.00", "spring-2026")
    paid = svc.post_event({"id": "p-mar", "type": "purchase", "customer": cid, "occurred_at": "2026-03-21T12:00:00+00:00",
                           "data": {"amount": "100.00", "pay_with": "membership", "apply_discount": True}})
    assert (paid["discount_percent"], paid["discount"], paid["charged"], paid["promotion"]) == (
        "15", "15.00", "85.00", "spring-2026")


def test_the_ledger_names_the_currency_and_never_mixes_two_in_one_account(svc):
    cad = copy.deepcopy(PLAN)
    cad["spec"]["currency"] = "CAD"
    svc.publish(cad, "test", date(2020, 1, 1))
    cid = svc.add_customer("Celine Tremblay")
    res = svc.enroll(cid, "club", date(2026, 1, 1))
    mid = res["membership"]
    assert {e["currency"] for e in res["entries"]} == {"CAD"}
    paid = spend(svc, cid, "p1", date(2026, 1, 5), "10.00")
    assert [e["currency"] for e in paid["entries"]] == ["CAD"]
    statement = svc.statement(mid, date(2026, 1, 1), date(2026, 1, 31))
    assert statement["accounts"][0]["currency"] == "CAD"
    # A version of the plan in another currency: moving to it is refused, balances stay in CAD.
    usd = copy.deepcopy(PLAN)
    usd["spec"]["currency"] = "USD"
    svc.publish(usd, "test", date(2020, 1, 1))
    [row] = svc.migrate("club", "club@2")
    assert "currency changes from CAD to USD" in row["problem"]
    [row] = svc.migrate("club", "club@2", apply=True)
    assert row["applied"] is False
    assert svc.audit()["ok"]


def test_the_book_refuses_an_amount_in_another_currency_than_its_accounts(svc):
    from keepwell.kernel.errors import Declined
    from keepwell.ledger import ALLOWANCE, book

    _cid, mid = member(svc, PLAN)  # USD

    def other_currency(ctx):
        b = book(ctx)
        b.load_owners([mid])
        with pytest.raises(Declined) as refused:
            b.account(mid, ALLOWANCE, currency="EUR")
        assert refused.value.reason == "currency_mismatch" and "in USD, not EUR" in refused.value.message
        return b.account(mid, ALLOWANCE, currency="USD").balance

    assert svc.run("default", other_currency) == 100000
