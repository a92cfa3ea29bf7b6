"""Ledger entries, lot draws and published ruleset versions are append-only in the database itself:
the migration's triggers refuse UPDATE and DELETE, whether it comes from SQLAlchemy Core or from
the ORM, and nothing moves afterwards."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from kwmodels import Event, LedgerEntry, LotDraw, RulesetVersion

PLAN = {
    "apiVersion": "keepwell/v1", "kind": "Plan",
    "metadata": {"id": "vip-customer", "name": "VIP Customer"},
    "spec": {"allowance": {"amount": "1000.00", "period": "half_yearly", "overdraft": {"limit": "200.00"}}},
}
POINTS = {
    "apiVersion": "keepwell/v1", "kind": "EarningRules",
    "metadata": {"id": "points", "name": "Points"},
    "spec": {"expiry": {"after_months": 12},
             "rules": [{"id": "spend", "when": {"event": "purchase"}, "earn": {"points": 1, "per": "1.00", "of": "data.amount"}}]},
}

# Per table: the model, and a change to try on one of its rows.
TABLES = {
    "ledger_entries": (LedgerEntry, "amount", 1),
    "lot_draws": (LotDraw, "points", 1),
    "ruleset_versions": (RulesetVersion, "author", "mallory"),
}


@pytest.fixture
def history(app):
    """A member who spent 250.00 of a 1000.00 allowance (earning 250 points) and redeemed 100 points."""
    app.publish(PLAN, "owner", date(2020, 1, 1))
    app.publish(POINTS, "owner", date(2020, 1, 1))
    customer = app.add_customer("Ada Lovelace")
    m = app.enroll(customer, "vip-customer", date(2024, 1, 1))["membership"]
    bought = app.post_event({"id": "pos-1", "type": "purchase", "customer": customer,
                             "occurred_at": "2024-02-01T10:00:00Z", "data": {"amount": "250.00", "pay_with": "membership"}})
    assert bought["status"] == "approved"
    redeemed = app.post_event({"id": "red-1", "type": "redemption", "customer": customer,
                               "occurred_at": "2024-02-02T10:00:00Z", "data": {"points": 100}})
    assert redeemed["status"] == "processed"
    return app, customer, m


def target_row(app, table: str) -> int:
    """The row to tamper with: the purchase's allowance debit, the redemption's draw, the plan's version."""
    with app.engine.connect() as c:
        if table == "ledger_entries":
            q = (sa.select(LedgerEntry.id).join(Event, Event.id == LedgerEntry.event_id)
                 .where(Event.key == "pos-1", LedgerEntry.kind == "debit"))
        elif table == "lot_draws":
            q = (sa.select(LotDraw.id).join(LedgerEntry, LedgerEntry.id == LotDraw.entry_id)
                 .join(Event, Event.id == LedgerEntry.event_id).where(Event.key == "red-1"))
        else:
            q = sa.select(RulesetVersion.id).where(RulesetVersion.content["metadata"]["id"].as_string() == "vip-customer")
        ids = c.scalars(q).all()
    assert len(ids) == 1, ids
    return ids[0]


def snapshot(app, customer: str, m: str) -> dict:
    with app.engine.connect() as c:
        rows = {name: [tuple(r) for r in c.execute(sa.select(model).order_by(model.id)).all()]
                for name, (model, _col, _val) in TABLES.items()}
    return {
        "rows": rows,
        "allowance": app.membership(m)["allowance"],
        "points": app.points(customer),
        "statement": app.statement(m, date(2024, 1, 1), date(2024, 12, 31)),
    }


def check_unchanged(app, customer: str, m: str, before: dict) -> None:
    after = snapshot(app, customer, m)
    assert after == before
    assert after["allowance"]["balance"] == "750.00"
    assert after["points"]["balance"] == 150
    report = app.audit()
    assert report["ok"], report["drift"]


@pytest.mark.parametrize("table", sorted(TABLES))
@pytest.mark.parametrize("action", ["update", "delete"])
def test_core_statements_are_refused(history, table, action):
    app, customer, m = history
    model, column, value = TABLES[table]
    row = target_row(app, table)
    before = snapshot(app, customer, m)
    if action == "update":
        stmt = sa.update(model).where(model.id == row).values({column: value})
    else:
        stmt = sa.delete(model).where(model.id == row)
    with pytest.raises(sa.exc.DBAPIError, match=f"append-only table {table}"), app.engine.begin() as c:
        c.execute(stmt)
    check_unchanged(app, customer, m, before)


@pytest.mark.parametrize("table", sorted(TABLES))
@pytest.mark.parametrize("action", ["update", "delete"])
def test_orm_changes_are_refused(history, table, action):
    app, customer, m = history
    model, column, value = TABLES[table]
    row = target_row(app, table)
    before = snapshot(app, customer, m)
    with Session(app.engine) as session, pytest.raises(sa.exc.DBAPIError, match=f"append-only table {table}"):
        with session.begin():
            obj = session.get(model, row)
            assert obj is not None
            if action == "update":
                setattr(obj, column, value)
            else:
                session.delete(obj)
    check_unchanged(app, customer, m, before)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_replacing_a_row_is_refused(history, table):
    """An insert that overwrites an existing row is an UPDATE in disguise: SQLite's INSERT OR REPLACE
    (which deletes the old row), PostgreSQL's INSERT ... ON CONFLICT DO UPDATE."""
    app, customer, m = history
    model, column, value = TABLES[table]
    row = target_row(app, table)
    before = snapshot(app, customer, m)
    with app.engine.connect() as c:
        values = dict(c.execute(sa.select(model).where(model.id == row)).mappings().one())
    values[column] = value
    if app.engine.dialect.name == "sqlite":
        stmt = sa.insert(model).prefix_with("OR REPLACE").values(values)
    else:
        from sqlalchemy.dialects.postgresql import insert

        stmt = insert(model).values(values).on_conflict_do_update(index_elements=[model.id], set_={column: value})
    with pytest.raises(sa.exc.DBAPIError, match=f"append-only table {table}"), app.engine.begin() as c:
        c.execute(stmt)
    check_unchanged(app, customer, m, before)


@pytest.mark.parametrize("action", ["update", "delete"])
def test_whole_table_statements_are_refused(history, action):
    """Not one row of any append-only table can be changed or removed by a bulk statement either."""
    app, customer, m = history
    before = snapshot(app, customer, m)
    for table, (model, column, value) in TABLES.items():
        stmt = sa.update(model).values({column: value}) if action == "update" else sa.delete(model)
        with pytest.raises(sa.exc.DBAPIError, match=f"append-only table {table}"), app.engine.begin() as c:
            c.execute(stmt)
    check_unchanged(app, customer, m, before)
    # And the ledger still takes new entries afterwards.
    again = app.post_event({"id": "pos-2", "type": "purchase", "customer": customer,
                            "occurred_at": "2024-02-03T10:00:00Z", "data": {"amount": "50.00", "pay_with": "membership"}})
    assert (again["status"], again["balance"]) == ("approved", "700.00")
