"""Reconciliation: every cached balance against the sum of its ledger, every lot against its draws.
The references between the ledger's rows are checked by keepwell.reporting.integrity."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .models import Account, LedgerEntry, LotDraw, PointsLot


def run(session: Session, company_id: int | None = None) -> dict[str, Any]:
    sums = (
        sa.select(LedgerEntry.account_id, sa.func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    q = sa.select(Account, sa.func.coalesce(sums.c.total, 0)).outerjoin(sums, sums.c.account_id == Account.id)
    if company_id is not None:
        q = q.where(Account.company_id == company_id)
    drift: list[dict[str, Any]] = []
    checked = 0
    for acc, total in session.execute(q):
        checked += 1
        if int(total) != acc.balance:
            drift.append({"account": acc.id, "owner": acc.owner, "unit": acc.unit, "code": acc.code,
                          "cached": acc.balance, "ledger": int(total)})
    draws = sa.select(LotDraw.lot_id, sa.func.sum(LotDraw.points).label("drawn")).group_by(LotDraw.lot_id).subquery()
    lq = sa.select(PointsLot, sa.func.coalesce(draws.c.drawn, 0)).outerjoin(draws, draws.c.lot_id == PointsLot.id)
    if company_id is not None:
        lq = lq.where(PointsLot.company_id == company_id)
    lots_checked = 0
    for lot, drawn in session.execute(lq):
        lots_checked += 1
        if lot.points - int(drawn) != lot.remaining or lot.remaining < 0:
            drift.append({"lot": lot.id, "points": lot.points, "drawn": int(drawn), "remaining": lot.remaining})
    # The overdraft facility is never exceeded and allowances never go below zero.
    negative = session.execute(
        sa.select(Account).where(Account.unit.in_(("allowance", "visits")), Account.balance < 0)
    ).scalars().all()
    for acc in negative:
        if company_id is None or acc.company_id == company_id:
            drift.append({"account": acc.id, "owner": acc.owner, "unit": acc.unit, "negative_balance": acc.balance})
    # A points balance is what its lots hold less a refund's debt (policy allow_negative): never
    # more than the lots hold, and below zero only once every lot is empty (a debt is repaid first).
    in_lots_q = (sa.select(PointsLot.account_id, sa.func.sum(PointsLot.remaining).label("held"))
            .group_by(PointsLot.account_id).subquery())
    pq = (sa.select(Account, sa.func.coalesce(in_lots_q.c.held, 0))
          .outerjoin(in_lots_q, in_lots_q.c.account_id == Account.id)
          .where(Account.unit == "points"))
    if company_id is not None:
        pq = pq.where(Account.company_id == company_id)
    for acc, in_lots in session.execute(pq):
        if acc.balance > int(in_lots) or (acc.balance < 0 and int(in_lots) > 0):
            drift.append({"account": acc.id, "owner": acc.owner, "unit": acc.unit, "balance": acc.balance,
                          "in_lots": int(in_lots)})
    # One currency per account: no entry in another currency than its account's.
    mixed = (sa.select(LedgerEntry.id, Account.id, Account.currency, LedgerEntry.currency)
             .join(Account, Account.id == LedgerEntry.account_id)
             .where(LedgerEntry.currency.is_not(None), Account.currency.is_not(None),
                    LedgerEntry.currency != Account.currency))
    if company_id is not None:
        mixed = mixed.where(Account.company_id == company_id)
    for entry_id, account_id, held, written in session.execute(mixed):
        drift.append({"entry": entry_id, "account": account_id, "account_currency": held, "entry_currency": written})
    return {"accounts_checked": checked, "lots_checked": lots_checked, "drift": drift, "ok": not drift}
