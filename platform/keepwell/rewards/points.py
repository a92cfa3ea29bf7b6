"""Points: a customer's account of lots. Each earning is a lot with its own expiry (and, for a
purchase in its return window, the day it unlocks); a redemption or an expiry draws from lots in
the program's order and records which lots it drew from; a cancelled redemption gives the points
back to the same lots. The account's balance is the sum of its entries; it can be below what the
lots hold only by a refund's debt (policy allow_negative), which later earnings repay first."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.errors import Declined
from ..kernel.periods import add_months
from ..ledger import POINTS, Acct, Lot, Posting, book
from ..ledger.models import Account, LedgerEntry, LotDraw, PointsLot
from .program import OLDEST_FIRST

Drawn = list[tuple[Lot, int]]


def expiry_date(starts_on: date, months: int | None) -> date | None:
    """Last day points can be used: `months` after they became spendable."""
    return None if not months else add_months(starts_on, months) - timedelta(days=1)


def earn(ctx: Ctx, customer_id: str, points: int, why: Posting, expiry_months: int | None, memo: str | None = None,
         held_days: int = 0) -> int:
    """A new lot of `points`. Held points unlock `held_days` after the day they were earned and
    expire counting from then. A debt left by a refund is repaid from the new lot first."""
    if points <= 0:
        return 0
    b = book(ctx)
    acc = b.account(customer_id, POINTS)
    # A debt exists only once every lot is empty (a clawback takes what the lots hold first), so
    # the debt is the negative balance: no lots need looking at.
    owed = -acc.balance if acc.balance < 0 else 0
    entry = b.post(acc, "earn", points, why, memo=memo)
    assert entry is not None
    unlocks = why.effective_date + timedelta(days=held_days) if held_days > 0 else None
    lot = b.new_lot(acc, entry, points, why.effective_date, expiry_date(unlocks or why.effective_date, expiry_months),
                    unlocks)
    if owed > 0:
        b.draw(lot, min(owed, points), entry["id"])
    return points


def debt(ctx: Ctx, acc: Acct) -> int:
    """Points a refund took beyond what the lots held (policy allow_negative): what the lots hold
    less the balance."""
    return sum(lot.remaining for lot in book(ctx).open_lots(acc.id)) - acc.balance


def in_order(lots: list[Lot], order: str) -> list[Lot]:
    """Lots in the order a redemption uses them: the earliest earned first, or the soonest to
    expire first (lots that never expire last)."""
    if order == OLDEST_FIRST:
        return sorted(lots, key=lambda lot: (lot.earned_on, lot.id))
    return sorted(lots, key=lambda lot: (lot.expires_on is None, lot.expires_on or date.min, lot.id))


def _spendable(ctx: Ctx, account_id: int, on: date, order: str) -> list[Lot]:
    return in_order([lot for lot in book(ctx).open_lots(account_id) if lot.remaining > 0 and lot.usable_on(on)], order)


def _draw(ctx: Ctx, lots: list[Lot], points: int, entry_id: int) -> Drawn:
    b = book(ctx)
    left, drawn = points, []
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take:
            b.draw(lot, take, entry_id)
            drawn.append((lot, take))
            left -= take
    assert left == 0, "drew more points than the lots hold"
    return drawn


def usable(ctx: Ctx, customer_id: str, on: date) -> int:
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return 0
    return max(sum(lot.remaining for lot in _spendable(ctx, acc.id, on, OLDEST_FIRST)) - debt(ctx, acc), 0)


def pending(ctx: Ctx, customer_id: str, on: date) -> int:
    """Points held for a return window on `on`."""
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return 0
    return sum(lot.remaining for lot in book(ctx).open_lots(acc.id) if lot.unlocks_on and lot.unlocks_on > on)


def redeem(ctx: Ctx, customer_id: str, points: int, why: Posting, kind: str = "redeem", memo: str | None = None,
           order: str = OLDEST_FIRST) -> tuple[int, Drawn]:
    """Spend points from the spendable lots in `order`: the entry's id and the lots drawn."""
    b = book(ctx)
    acc = b.account(customer_id, POINTS)
    lots = _spendable(ctx, acc.id, why.effective_date, order)
    have = max(sum(lot.remaining for lot in lots) - debt(ctx, acc), 0)
    if points > have:
        raise Declined("insufficient_points", f"{points} points asked, {have} available", available=have,
                       asked=points)
    entry = b.post(acc, kind, -points, why, memo=memo)
    assert entry is not None
    return entry["id"], _draw(ctx, lots, points, entry["id"])


def give_back(ctx: Ctx, customer_id: str, entry_id: int, why: Posting, memo: str | None = None) -> Drawn:
    """Undo a redemption's draws: every point back to the lot it came from, with that lot's own
    expiry (a lot past its last day expires again at the next expiry run)."""
    b = book(ctx)
    acc = b.account(customer_id, POINTS)
    owed = -acc.balance if acc.balance < 0 else 0
    drawn = b.lots_drawn_by(acc.id, entry_id)
    total = sum(n for _lot, n in drawn)
    entry = b.post(acc, "redeem_cancelled", total, why, memo=memo)
    if entry is None:
        return []
    for lot, n in drawn:
        b.draw(lot, -n, entry["id"])
    if owed:  # a refund's debt is repaid first from what comes back
        _draw(ctx, [lot for lot, _n in drawn], min(owed, total), entry["id"])
    return drawn


def clawback(ctx: Ctx, customer_id: str, earned_by: int, points: int, why: Posting, allow_negative: bool,
             order: str = OLDEST_FIRST) -> dict[str, int]:
    """Take back up to `points` a refunded purchase (event `earned_by`) earned: from its own lots
    first (pending or not), then from the other spendable lots; what is left is a debt when the
    policy allows a negative balance, else not recovered."""
    b = book(ctx)
    acc = b.account(customer_id, POINTS)
    if points <= 0:
        return {"taken": 0, "pending_cancelled": 0, "debt": 0, "not_recovered": 0}
    own_entries = set(ctx.session.scalars(sa.select(LedgerEntry.id).where(
        LedgerEntry.account_id == acc.id, LedgerEntry.event_id == earned_by, LedgerEntry.kind == "earn")))
    own_entries |= {e["id"] for e, a in b.entries_of.get(earned_by, ()) if a is acc and e["kind"] == "earn"}
    lots = b.open_lots(acc.id)
    own = [lot for lot in lots if lot.entry_id in own_entries and lot.remaining > 0]
    # then the spendable lots in the program's order, then the rest (held for another purchase's
    # return window, or past their day and not expired yet): a debt is left only when all are empty
    spendable = _spendable(ctx, acc.id, why.effective_date, order)
    others = [lot for lot in spendable if lot not in own] + in_order(
        [lot for lot in lots if lot.remaining > 0 and lot not in own and lot not in spendable], order)
    from_own = min(points, sum(lot.remaining for lot in own))
    from_others = min(points - from_own, max(sum(lot.remaining for lot in others) - debt(ctx, acc), 0))
    owed = points - from_own - from_others if allow_negative else 0
    taken = from_own + from_others + owed
    entry = b.post(acc, "clawback", -taken, why, memo="points of a refunded purchase taken back")
    if entry is not None:
        pending_cancelled = sum(n for lot, n in _draw(ctx, own, from_own, entry["id"])
                                if lot.unlocks_on and lot.unlocks_on > why.effective_date)
        _draw(ctx, others, from_others, entry["id"])
    else:
        pending_cancelled = 0
    return {"taken": taken, "pending_cancelled": pending_cancelled, "debt": owed,
            "not_recovered": points - taken}


def expire_through(ctx: Ctx, customer_id: str, through: date, why: Posting) -> int:
    """Expire every lot whose last usable day is on or before `through`; one entry per lot."""
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return 0
    total = 0
    for lot in _expired_by(ctx, acc.id, through):
        amount = lot.remaining
        entry = book(ctx).post(acc, "expire", -amount, why.with_rule(f"{why.rule}:lot{lot.id}"),
                               memo=f"points earned {lot.earned_on.isoformat()} expired after {lot.expires_on}")
        if entry is None:  # this lot expired under this rule before (it was given back since)
            entry = book(ctx).post(acc, "expire", -amount, why.with_rule(f"{why.rule}:lot{lot.id}:again"),
                                   memo=f"points given back to a lot that expired after {lot.expires_on}")
        assert entry is not None
        _draw(ctx, [lot], amount, entry["id"])
        total += amount
    return total


def _expired_by(ctx: Ctx, account_id: int, through: date) -> list[Lot]:
    return in_order([lot for lot in book(ctx).open_lots(account_id) if lot.remaining > 0
                     and lot.expires_on is not None and lot.expires_on <= through], "soonest_expiring")


def expirable(ctx: Ctx, customer_id: str, through: date) -> int:
    """Points left in lots whose last usable day is on or before `through`."""
    acc = book(ctx).find_account(customer_id, POINTS)
    return sum(lot.remaining for lot in _expired_by(ctx, acc.id, through)) if acc else 0


def balance(ctx: Ctx, customer_id: str) -> int:
    return book(ctx).balance(customer_id, POINTS)


def lot_status(remaining: int, unlocks_on: date | None, expires_on: date | None, expired: bool, on: date) -> str:
    """pending (held for a return window), available, used (all spent) or expired."""
    if remaining > 0:
        if unlocks_on and unlocks_on > on:
            return "pending"
        return "expired" if expires_on and expires_on < on else "available"
    return "expired" if expired else "used"


def lots(ctx: Ctx, customer_id: str, on: date) -> list[dict]:
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return []
    expired_lots = set(ctx.session.scalars(
        sa.select(LotDraw.lot_id).join(LedgerEntry, LedgerEntry.id == LotDraw.entry_id)
        .where(LedgerEntry.account_id == acc.id, LedgerEntry.kind == "expire")))
    return [
        {"lot": lot.id, "points": lot.points, "remaining": lot.remaining, "earned_on": lot.earned_on.isoformat(),
         "expires_on": lot.expires_on.isoformat() if lot.expires_on else None,
         "unlocks_on": lot.unlocks_on.isoformat() if lot.unlocks_on else None,
         "status": lot_status(lot.remaining, lot.unlocks_on, lot.expires_on, lot.id in expired_lots, on)}
        for lot in ctx.session.scalars(sa.select(PointsLot).where(PointsLot.account_id == acc.id)
                                       .order_by(PointsLot.id))
    ]


def drawn_view(drawn: Drawn) -> list[dict]:
    return [{"lot": lot.id, "points": n, "expires_on": lot.expires_on.isoformat() if lot.expires_on else None}
            for lot, n in drawn]


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


def unlock_dates(ctx: Ctx, through: date) -> list[tuple[str, date]]:
    """(customer, unlock day) pairs of held lots with points left that unlock by `through`."""
    rows = ctx.session.execute(
        sa.select(Account.owner, PointsLot.unlocks_on)
        .join(Account, Account.id == PointsLot.account_id)
        .where(PointsLot.company_id == ctx.company.id, PointsLot.remaining > 0,
               PointsLot.unlocks_on.is_not(None), PointsLot.unlocks_on <= through)
        .distinct()
        .order_by(PointsLot.unlocks_on, Account.owner)
    )
    return [(owner, d) for owner, d in rows]


def unlocking(ctx: Ctx, customer_id: str, on: date) -> int:
    """Points of held lots that unlock on `on`."""
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return 0
    return sum(lot.remaining for lot in book(ctx).open_lots(acc.id) if lot.unlocks_on == on)


def earned_between(ctx: Ctx, customer_id: str, start: date | None, end: date) -> int:
    """Points earned from `start` (None: ever) to `end`, counting held points only once they
    unlock, less what refunds took back: what loyalty tiers count."""
    acc = book(ctx).find_account(customer_id, POINTS)
    if acc is None:
        return 0
    q = sa.select(sa.func.coalesce(sa.func.sum(PointsLot.points), 0)).where(
        PointsLot.account_id == acc.id, PointsLot.earned_on <= end,
        sa.or_(PointsLot.unlocks_on.is_(None), PointsLot.unlocks_on <= end))
    c = sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == acc.id, LedgerEntry.kind == "clawback", LedgerEntry.effective_date <= end)
    if start is not None:
        q = q.where(PointsLot.earned_on >= start)
        c = c.where(LedgerEntry.effective_date >= start)

    def counted(day: date, unlocks: date | None = None) -> bool:
        return (start is None or day >= start) and day <= end and (unlocks is None or unlocks <= end)

    b = book(ctx)  # and what this transaction wrote and has not flushed yet
    unsaved = sum(lot.points for lot in b.new_lots if lot.account_id == acc.id and counted(lot.earned_on,
                                                                                          lot.unlocks_on))
    unsaved += sum(r["amount"] for r in ctx.unit.rows.get(LedgerEntry.__tablename__, [])
                   if r["account_id"] == acc.id and r["kind"] == "clawback" and counted(r["effective_date"]))
    return int(ctx.session.scalar(q) or 0) + int(ctx.session.scalar(c) or 0) + unsaved
