"""Points: a customer's account of lots. Each earning is a lot with its own expiry; a redemption
or an expiry draws from lots (oldest expiry first) and records which lots it drew from."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.errors import Declined
from ..kernel.periods import add_months
from ..ledger import POINTS, Lot, Posting, book
from ..ledger.models import Account, PointsLot


def expiry_date(earned_on: date, months: int | None) -> date | None:
    """Last day the points can be used."""
    return None if not months else add_months(earned_on, months) - timedelta(days=1)


def earn(
    ctx: Ctx, customer_id: str, points: int, why: Posting, expiry_months: int | None, memo: str | None = None
) -> int:
    if points <= 0:
        return 0
    b = book(ctx)
    acc = b.account(customer_id, POINTS)
    entry = b.post(acc, "earn", points, why, memo=memo)
    assert entry is not None
    b.new_lot(acc, entry, points, why.effective_date, expiry_date(why.effective_date, expiry_months))
    return points


def _open_lots(ctx: Ctx, account_id: int, usable_on: date | None = None, expired_by: date | None = None) -> list[Lot]:
    lots = [lot for lot in book(ctx).open_lots(account_id) if lot.remaining > 0
            and (usable_on is None or lot.expires_on is None or lot.expires_on >= usable_on)
            and (expired_by is None or (lot.expires_on is not None and lot.expires_on <= expired_by))]
    # Oldest expiry first; lots that never expire last.
    lots.sort(key=lambda lot: (lot.expires_on is None, lot.expires_on or date.min, lot.id))
    return lots


def _draw(ctx: Ctx, lots: list[Lot], points: int, entry_id: int) -> None:
    b = book(ctx)
    left = points
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        b.draw(lot, take, entry_id)
        left -= take
    assert left == 0, "drew more points than the lots hold"


def usable(ctx: Ctx, customer_id: str, on: date) -> int:
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return 0
    return sum(lot.remaining for lot in _open_lots(ctx, acc.id, usable_on=on))


def redeem(
    ctx: Ctx, customer_id: str, points: int, why: Posting, kind: str = "redeem", memo: str | None = None
) -> None:
    b = book(ctx)
    acc = b.account(customer_id, POINTS)
    lots = _open_lots(ctx, acc.id, usable_on=why.effective_date)
    have = sum(lot.remaining for lot in lots)
    if points > have:
        raise Declined("insufficient_points", f"{points} points asked, {have} available", available=have)
    entry = b.post(acc, kind, -points, why, memo=memo)
    if entry is not None:
        _draw(ctx, lots, points, entry["id"])


def expire_through(ctx: Ctx, customer_id: str, through: date, why: Posting) -> int:
    """Expire every lot whose last usable day is on or before `through`; one entry per lot."""
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return 0
    total = 0
    for lot in _open_lots(ctx, acc.id, expired_by=through):
        amount = lot.remaining
        entry = book(ctx).post(acc, "expire", -amount, why.with_rule(f"{why.rule}:lot{lot.id}"),
                               memo=f"points earned {lot.earned_on.isoformat()} expired after {lot.expires_on}")
        assert entry is not None
        _draw(ctx, [lot], amount, entry["id"])
        total += amount
    return total


def expirable(ctx: Ctx, customer_id: str, through: date) -> int:
    """Points left in lots whose last usable day is on or before `through`."""
    acc = book(ctx).find_account(customer_id, POINTS)
    return sum(lot.remaining for lot in _open_lots(ctx, acc.id, expired_by=through)) if acc else 0


def balance(ctx: Ctx, customer_id: str) -> int:
    return book(ctx).balance(customer_id, POINTS)


def lots(ctx: Ctx, customer_id: str) -> list[dict]:
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return []
    return [
        {"lot": lot.id, "points": lot.points, "remaining": lot.remaining, "earned_on": lot.earned_on.isoformat(),
         "expires_on": lot.expires_on.isoformat() if lot.expires_on else None}
        for lot in ctx.session.scalars(sa.select(PointsLot).where(PointsLot.account_id == acc.id)
                                       .order_by(PointsLot.id))
    ]


def next_expiry_dates(ctx: Ctx, through: date) -> list[tuple[str, date]]:
    """(customer, last usable day) pairs with points left that have expired by `through`."""
    rows = ctx.session.execute(
        sa.select(Account.owner, PointsLot.expires_on)
        .join(Account, Account.id == PointsLot.account_id)
        .where(PointsLot.company_id == ctx.company.id, PointsLot.remaining > 0,
               PointsLot.expires_on.is_not(None), PointsLot.expires_on < through)
        .distinct()
        .order_by(PointsLot.expires_on, Account.owner)
    )
    return [(owner, d) for owner, d in rows]
