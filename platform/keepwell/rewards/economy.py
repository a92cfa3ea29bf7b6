"""The points economy of a company, from SQL aggregates over the ledger: points outstanding and
their liability at the point value, and per month what was earned, redeemed, expired, adjusted
and taken back by refunds, with the breakage rate (the share of used-up points that expired)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.money import format_cents
from ..ledger import POINTS
from ..ledger.models import Account, LedgerEntry, PointsLot
from .program import program

# entry kind -> the column it is counted in (redemptions cancelled count against redemptions)
COLUMNS = {"earn": "earned", "redeem": "redeemed", "redeem_cancelled": "redeemed", "expire": "expired",
           "adjust": "adjusted", "clawback": "clawed_back"}


def outstanding(ctx: Ctx, on: date) -> tuple[int, str | None]:
    """Points customers hold now, and what they are worth at the point value in force on `on`
    (None when the program gives points no value)."""
    points = int(ctx.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Account.balance), 0)).where(
        Account.company_id == ctx.company.id, Account.unit == POINTS, Account.balance > 0)) or 0)
    value = program(ctx, on).point_value
    return points, format_cents(_cents(points, value)) if value else None


def liability(ctx: Ctx, start: date, end: date) -> dict[str, Any]:
    cid = ctx.company.id
    points, worth = outstanding(ctx, end)
    held = int(ctx.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(PointsLot.remaining), 0)).where(
        PointsLot.company_id == cid, PointsLot.remaining > 0, PointsLot.unlocks_on > end)) or 0)
    customers = int(ctx.session.scalar(sa.select(sa.func.count()).select_from(Account).where(
        Account.company_id == cid, Account.unit == POINTS, Account.balance > 0)) or 0)
    year = sa.extract("year", LedgerEntry.effective_date)
    month = sa.extract("month", LedgerEntry.effective_date)
    rows = ctx.session.execute(
        sa.select(year, month, LedgerEntry.kind, sa.func.sum(LedgerEntry.amount))
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(LedgerEntry.company_id == cid, Account.unit == POINTS, LedgerEntry.effective_date >= start,
               LedgerEntry.effective_date <= end)
        .group_by(year, month, LedgerEntry.kind))
    months: dict[str, dict[str, int]] = {}
    for y, m, kind, amount in rows:
        key = f"{int(y):04d}-{int(m):02d}"
        row = months.setdefault(key, {c: 0 for c in dict.fromkeys(COLUMNS.values())})
        column = COLUMNS.get(kind, "adjusted")
        sign = 1 if column in ("earned", "adjusted") else -1
        row[column] += sign * int(amount)
    totals = {c: sum(r[c] for r in months.values()) for c in dict.fromkeys(COLUMNS.values())}
    used = totals["redeemed"] + totals["expired"]
    out: dict[str, Any] = {
        "from": start.isoformat(), "to": end.isoformat(), "outstanding_points": points,
        "pending_points": held, "customers_with_points": customers, "point_value": program(ctx, end).point_value,
        "liability": worth,
        "months": [{"month": k, **v} for k, v in sorted(months.items())], "totals": totals,
        "breakage_rate": f"{Decimal(totals['expired']) / used:.4f}" if used else None,
    }
    return out


def _cents(points: int, value: str) -> int:
    return int((Decimal(points) * Decimal(value) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
