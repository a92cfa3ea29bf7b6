"""Referential integrity of the event pipeline's rows, checked by the audit instead of the database.

The tables the pipeline appends to (events, accounts, ledger entries, points lots and draws, the
outbox) carry no foreign keys: checking them was most of the database's time per row written
(migration 0006). Only the pipeline writes these rows, each in the transaction that writes what
it points to; this is where a reference that points nowhere, or into another company, shows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..customers.models import Company
from ..events.models import Event
from ..ledger.models import Account, LedgerEntry, LotDraw, PointsLot
from ..messaging.models import OutboxMessage

EXAMPLES = 5  # ids reported per broken reference; the count says how many there are


def _missing(target: Any, column: Any, owner_company: Any) -> Any:
    """No row of `target` with the id in `column` and the same company as the row that names it."""
    return ~sa.exists().where(target.id == column, target.company_id == owner_company)


def _reference_checks(company_id: int | None) -> list[tuple[str, Any]]:
    """(what, query of the ids of rows whose reference is broken), all scoped to the company."""
    def rows(table: Any, broken: Any) -> Any:
        q = sa.select(table.id).where(broken)
        return q.where(table.company_id == company_id) if company_id is not None else q

    def dangling(table: Any, column: Any, target: Any) -> Any:
        return rows(table, _missing(target, column, table.company_id))

    checks = [
        ("event → company", rows(Event, ~sa.exists().where(Company.id == Event.company_id))),
        ("account → company", rows(Account, ~sa.exists().where(Company.id == Account.company_id))),
        ("ledger entry → account", dangling(LedgerEntry, LedgerEntry.account_id, Account)),
        ("ledger entry → event", dangling(LedgerEntry, LedgerEntry.event_id, Event)),
        ("points lot → account", dangling(PointsLot, PointsLot.account_id, Account)),
        ("points lot → ledger entry", dangling(PointsLot, PointsLot.entry_id, LedgerEntry)),
        ("outbox message → company", rows(OutboxMessage, ~sa.exists().where(Company.id == OutboxMessage.company_id))),
        ("outbox message → event", rows(OutboxMessage, sa.and_(
            OutboxMessage.event_id.is_not(None), _missing(Event, OutboxMessage.event_id, OutboxMessage.company_id)))),
    ]
    # A draw carries no company of its own: it belongs to its entry's, and its lot must share it.
    draws_lot = (sa.select(LotDraw.id).join(LedgerEntry, LedgerEntry.id == LotDraw.entry_id)
                 .where(_missing(PointsLot, LotDraw.lot_id, LedgerEntry.company_id)))
    draws_entry = sa.select(LotDraw.id).where(~sa.exists().where(LedgerEntry.id == LotDraw.entry_id))
    if company_id is not None:
        draws_lot = draws_lot.where(LedgerEntry.company_id == company_id)
        draws_entry = (draws_entry.join(PointsLot, PointsLot.id == LotDraw.lot_id)
                       .where(PointsLot.company_id == company_id))
    return checks + [("lot draw → points lot", draws_lot), ("lot draw → ledger entry", draws_entry)]


def broken_references(session: Session, company_id: int | None) -> list[dict[str, Any]]:
    """One problem per kind of broken reference: how many rows, and the first few ids."""
    found = []
    for what, q in _reference_checks(company_id):
        ids = list(session.execute(q.order_by(q.selected_columns[0])).scalars())
        if ids:
            found.append({"reference": what, "rows": len(ids), "examples": ids[:EXAMPLES]})
    return found
