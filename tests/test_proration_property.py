"""Property (the billing issue): for any sequence of tier changes and a cancellation, what a
member is invoiced less what is refunded is what the days they had cost — each day at its
tier's monthly price over the days of its month — give or take the half-cent each prorated share
rounds (two per change, one for the first short month, one for the refund)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepwell.kernel.money import to_cents
from keepwell.usecases import billing, memberships

TIERS = ("bronze", "silver", "gold")


def plan(prices: list[int]) -> dict:
    return {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Club"},
            "spec": {"allowance": {"amount": "100.00", "period": "yearly"}, "billing": {"anchor_day": 1},
                     "cancellation": {"refund": "prorated"},
                     "tiers": [{"id": t, "name": t.title(), "price": {"monthly": f"{p // 100}.{p % 100:02d}"}}
                               for t, p in zip(TIERS, prices, strict=True)]}}


def owed(prices: list[int], joined: date, last: date, changes: list[tuple[date, int]], first: int) -> Fraction:
    total, tier, d = Fraction(0), first, joined
    todo = list(changes)
    while d <= last:
        while todo and todo[0][0] <= d:
            tier = todo.pop(0)[1]
        total += Fraction(prices[tier], calendar.monthrange(d.year, d.month)[1])
        d += timedelta(days=1)
    return total


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prices=st.lists(st.integers(300, 9000), min_size=3, max_size=3),
       joined=st.integers(0, 27), first=st.integers(0, 2),
       steps=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 2)), max_size=4),
       tail=st.integers(0, 40))
def test_invoices_less_refunds_are_what_the_days_cost(app, prices, joined, first, steps, tail):
    app.publish(plan(prices), "test", date(2020, 1, 1))
    cid = app.add_customer(f"Member {len(app.company_slugs())}-{prices}-{joined}-{steps}")
    billing.add_test_card(app, "default", cid, "success")
    day = date(2026, 3, 1) + timedelta(days=joined)
    mid = memberships.enroll(app, "default", cid, "club", day, tier=TIERS[first], cadence="monthly",
                             key=f"{cid}:join")["membership"]
    joined_on, tier, changes = day, first, []
    for gap, to in steps:
        if to == tier:
            continue
        billing.run(app, "default", day + timedelta(days=gap))
        day += timedelta(days=gap)
        mid = memberships.change_tier(app, "default", mid, TIERS[to], day, "now").membership
        tier = to
        changes.append((day, to))
    last = day + timedelta(days=tail)
    billing.run(app, "default", last)
    memberships.cancel(app, "default", mid, last)
    billing.run(app, "default", last)
    invs = billing.invoices_of(app, "default", customer=cid)
    assert all(i["status"] == "paid" for i in invs)
    paid = sum(to_cents(i["total"]) - to_cents(i["refunded"]) for i in invs)
    expected = owed(prices, joined_on, last, changes, first)
    assert abs(paid - expected) <= Fraction(2 * len(changes) + 2, 2), (paid, float(expected), invs)
