"""Catalog redemptions racing on one PostgreSQL database: the last units of a reward's stock and
the last of a customer's points each go to exactly as many redemptions as they cover.

Every thread has a Keepwell app of its own (its own engine and connection pool, as separate web
or worker processes have), connected and warmed up before the race; all of them wait on one
threading.Barrier and then redeem at the same moment through the use case the CLI and the API
call (`keepwell.usecases.rewards.redeem`). What stands between them is the conditional UPDATE of
the stock row and the row lock on the customer (README, "Scaling out").
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from keepwell.kernel.errors import Declined
from keepwell.usecases import rewards
from kwmodels import Account, LedgerEntry, LotDraw, PointsLot
from support import DEFAULT, App, make_app

pytestmark = pytest.mark.postgres_only

START = date(2020, 1, 1)  # in the past: the product refuses days more than a day ahead
BUY_ON = "2020-02-01T12:00:00Z"
ON = date(2020, 2, 2)  # the day everyone redeems
DEADLINE = 120  # seconds: no thread may wait longer than this

POINTS = {
    "apiVersion": "keepwell/v1", "kind": "EarningRules",
    "metadata": {"id": "race-points", "name": "Race points"},
    "spec": {"rules": [{"id": "spend", "when": {"event": "purchase"},
                        "earn": {"points": 1, "per": "1.00", "of": "data.amount"}}]},
}
CATALOG = {
    "apiVersion": "keepwell/v1", "kind": "RewardCatalog",
    "metadata": {"id": "race-rewards", "name": "Race rewards"},
    "spec": {"rewards": [
        {"id": "mug", "name": "Mug", "type": "merchandise", "points": 30, "inventory": 3},
        {"id": "filter", "name": "$10 off a filter", "type": "service_discount", "points": 30,
         "service_code": "FILTER", "amount_off": "10.00"},
    ]},
}


@pytest.fixture
def shop(postgres_url) -> Iterator[App]:
    app = make_app(postgres_url)
    app.publish(POINTS, "test", START)
    app.publish(CATALOG, "test", START)
    yield app
    app.close()


def customer_with(app: App, name: str, points: int) -> str:
    c = app.add_customer(name)
    res = app.post_event({"id": f"buy-{c}", "type": "purchase", "customer": c, "occurred_at": BUY_ON,
                          "data": {"amount": f"{points}.00"}})
    assert res["status"] == "approved" and res["points"]["balance"] == points, res
    return c


def race(url: str, jobs: list[Callable[[App], Any]]) -> list[tuple[str, Any]]:
    """Run each job in a thread of its own with an app of its own, all released together by a
    barrier; each result is ("ok", answer), ("declined", Declined) or ("error", traceback)."""
    barrier = threading.Barrier(len(jobs))
    results: list[tuple[str, Any] | None] = [None] * len(jobs)

    def run(i: int, job: Callable[[App], Any]) -> None:
        app = None
        try:
            app = App.at(url)
            app.audit()  # connect, and load the company's rulesets, before the race
            barrier.wait(timeout=DEADLINE)
            results[i] = ("ok", job(app))
        except Declined as exc:
            results[i] = ("declined", exc)
        except BaseException:
            results[i] = ("error", traceback.format_exc())
            barrier.abort()
        finally:
            if app is not None:
                app.close()

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not any(t.is_alive() for t in threads), f"threads did not finish within {DEADLINE}s"
    errors = [r[1] for r in results if r is not None and r[0] == "error"]
    assert not errors, "\n".join(errors)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def redeem(customer: str, reward: str) -> Callable[[App], dict]:
    return lambda app: rewards.redeem(app, DEFAULT, customer, reward, quantity=1, on=ON)


def lots_agree_with_their_draws(app: App) -> None:
    """Every lot: remaining == points - its draws; every account: balance == its entries; the audit."""
    with app.engine.connect() as c:
        drawn = dict(c.execute(sa.select(LotDraw.lot_id, sa.func.sum(LotDraw.points)).group_by(LotDraw.lot_id)).all())
        for lot_id, pts, remaining in c.execute(sa.select(PointsLot.id, PointsLot.points, PointsLot.remaining)):
            assert remaining == pts - int(drawn.get(lot_id, 0)) and 0 <= remaining <= pts, (lot_id, pts, remaining)
        sums = dict(c.execute(sa.select(LedgerEntry.account_id, sa.func.sum(LedgerEntry.amount))
                              .group_by(LedgerEntry.account_id)).all())
        for acc_id, balance in c.execute(sa.select(Account.id, Account.balance)):
            assert balance == int(sums.get(acc_id, 0)), (acc_id, balance)
    report = app.audit()
    assert report["ok"], report


def test_eight_customers_race_for_three_mugs(shop, postgres_url):
    # 8 customers with 100 points each; a mug costs 30 and there are 3 of them
    customers = [customer_with(shop, f"Racer {i}", 100) for i in range(8)]
    results = race(postgres_url, [redeem(c, "mug") for c in customers])

    won = [(c, r) for c, (kind, r) in zip(customers, results) if kind == "ok"]
    lost = [(c, r) for c, (kind, r) in zip(customers, results) if kind == "declined"]
    assert len(won) == 3 and len(lost) == 5, results
    assert all(r["status"] == "ordered" and r["points"] == 30 for _c, r in won)
    assert all(exc.reason == "out_of_stock" for _c, exc in lost), [(e.reason, str(e)) for _c, e in lost]
    assert all("0 left, 1 asked" in str(exc) for _c, exc in lost), [str(e) for _c, e in lost]

    [mug] = [r for r in rewards.catalog_list(shop, DEFAULT, on=ON) if r["id"] == "mug"]
    assert (mug["inventory"], mug["in_stock"]) == (3, 0)
    # the winners paid 30 each (100 - 30 = 70 left); a declined redemption took nothing
    for c, _r in won:
        assert rewards.points(shop, DEFAULT, c, on=ON)["balance"] == 70
    for c, _exc in lost:
        assert rewards.points(shop, DEFAULT, c, on=ON)["balance"] == 100
    ordered = rewards.list_redemptions(shop, DEFAULT, status="ordered")
    assert sorted(r["customer"] for r in ordered) == sorted(c for c, _r in won)
    assert sorted(r["redemption"] for r in ordered) == sorted(r["redemption"] for _c, r in won)
    lots_agree_with_their_draws(shop)


def test_six_redemptions_race_for_the_points_of_two(shop, postgres_url):
    # 70 points; a filter discount costs 30: two fit (60), a third would need 90
    saver = customer_with(shop, "Sam Saver", 70)
    results = race(postgres_url, [redeem(saver, "filter") for _ in range(6)])

    won = [r for kind, r in results if kind == "ok"]
    lost = [r for kind, r in results if kind == "declined"]
    assert len(won) == 2 and len(lost) == 4, results
    assert all(r["status"] == "pending" and r["points"] == 30 for r in won)
    # one saw 70 - 30 = 40 left, the other 40 - 30 = 10: no two spent from the same balance
    assert sorted(r["balance"] for r in won) == [10, 40]
    assert all(exc.reason == "insufficient_points" for exc in lost), [(e.reason, str(e)) for e in lost]
    assert all(str(exc) == "30 points asked, 10 available" for exc in lost), [str(e) for e in lost]

    shown = rewards.points(shop, DEFAULT, saver, on=ON)
    assert (shown["balance"], shown["available"]) == (10, 10)  # 70 - 2 x 30
    [lot] = shown["lots"]
    assert (lot["points"], lot["remaining"]) == (70, 10)
    assert len(rewards.list_redemptions(shop, DEFAULT, customer=saver)) == 2
    with shop.engine.connect() as c:
        kinds = c.scalars(sa.select(LedgerEntry.kind).order_by(LedgerEntry.id)).all()
    assert kinds == ["earn", "redeem", "redeem"]  # one entry per redemption that went through
    lots_agree_with_their_draws(shop)
