"""One ledger, three units: money (allowance and overdraft cents), visits and points.

Accounts hold a cached balance for speed; it changes only together with an appended entry, in
the same transaction, and `keepwell audit` checks it against the sum of the entries.

The `Book` is the ledger's part of a unit of work (`keepwell.infra.unit`): the accounts and
points lots a transaction touches, loaded once (in bulk for a batch), and the entries it
appends. Balances and lots move in memory, with undo; the unit writes the rows at its flush and
the book then updates the balances and lots that changed, one statement per kind of row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from ..infra import bulk
from ..infra.context import Ctx
from ..infra.sql import chunks, one_of
from ..infra.tables import utcnow
from ..infra.unit import Unit
from ..kernel.errors import Declined
from .models import Account, LedgerEntry, LotDraw, PointsLot

ALLOWANCE, OVERDRAFT, VISITS, POINTS = "allowance", "overdraft", "visits", "points"
MONEY_UNITS = (ALLOWANCE, OVERDRAFT)

_ACCOUNTS: sa.Table = Account.__table__  # type: ignore[assignment]
_ENTRIES: sa.Table = LedgerEntry.__table__  # type: ignore[assignment]
_LOTS: sa.Table = PointsLot.__table__  # type: ignore[assignment]
_DRAWS: sa.Table = LotDraw.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Posting:
    """Why an entry exists: the event, the ruleset id@version and the rule that produced it."""

    event_id: int
    ruleset: str
    rule: str
    effective_date: date
    period: int | None = None

    def with_rule(self, rule: str) -> Posting:
        return Posting(self.event_id, self.ruleset, rule, self.effective_date, self.period)


class Acct:
    """An account row as the book sees it (the balance moves with every posted entry)."""

    __slots__ = ("id", "company_id", "owner", "unit", "code", "balance", "stored", "currency")

    def __init__(self, id: int, company_id: int, owner: str, unit: str, code: str, balance: int, stored: int | None,
                 currency: str | None = None):
        self.id, self.company_id, self.owner, self.unit, self.code = id, company_id, owner, unit, code
        self.balance = balance
        self.stored = stored  # the balance in the database; None: the row is not inserted yet
        self.currency = currency  # money accounts: the one currency they hold


class Lot:
    """A points lot as the book sees it."""

    __slots__ = ("id", "company_id", "account_id", "entry_id", "points", "remaining", "earned_on", "expires_on",
                 "unlocks_on", "stored")

    def __init__(self, id: int, company_id: int, account_id: int, entry_id: int, points: int, remaining: int,
                 earned_on: date, expires_on: date | None, stored: int | None, unlocks_on: date | None = None):
        self.id, self.company_id, self.account_id, self.entry_id = id, company_id, account_id, entry_id
        self.points, self.remaining, self.earned_on, self.expires_on = points, remaining, earned_on, expires_on
        self.unlocks_on = unlocks_on  # held (not spendable) before this day; None: spendable at once
        self.stored = stored  # remaining in the database; None: not inserted yet

    def usable_on(self, day: date) -> bool:
        """Whether the lot's points can be spent that day: unlocked and not past their last day."""
        return (self.unlocks_on is None or self.unlocks_on <= day) and (
            self.expires_on is None or self.expires_on >= day)


class Book:
    """The ledger's working set for one transaction; see the module docstring."""

    def __init__(self, unit: Unit):
        self.unit = unit
        self.session = unit.session
        self.company_id = 0
        self.accounts: dict[tuple[str, str, str], Acct] = {}
        self.owners_loaded: set[str] = set()
        self.lots: dict[int, list[Lot]] = {}  # account id -> its lots with points left (loaded ones)
        self.new_accounts: list[Acct] = []
        self.new_lots: list[Lot] = []
        self.entries_of: dict[int, list[tuple[dict[str, Any], Acct]]] = {}  # event id -> entries posted
        self.dirty_accounts: dict[int, Acct] = {}
        self.dirty_lots: dict[int, Lot] = {}

    # --- accounts ---------------------------------------------------------------------------

    def load_owners(self, owners: list[str]) -> None:
        """Load every account of these owners (membership or customer ids) in a few queries."""
        todo = [o for o in dict.fromkeys(owners) if o not in self.owners_loaded]
        for part in chunks(self.session, todo):
            rows = self.session.execute(
                sa.select(_ACCOUNTS.c.id, _ACCOUNTS.c.owner, _ACCOUNTS.c.unit, _ACCOUNTS.c.code, _ACCOUNTS.c.balance,
                          _ACCOUNTS.c.currency)
                .where(_ACCOUNTS.c.company_id == self.company_id, one_of(self.session, _ACCOUNTS.c.owner, part)))
            for aid, owner, unit, code, balance, currency in rows:
                key = (owner, unit, code)
                if key not in self.accounts:
                    self.accounts[key] = Acct(aid, self.company_id, owner, unit, code, balance, balance, currency)
            self.owners_loaded.update(part)

    def find_account(self, owner: str, unit: str, code: str = "") -> Acct | None:
        if owner not in self.owners_loaded:
            self.load_owners([owner])
        return self.accounts.get((owner, unit, code))

    def account(self, owner: str, unit: str, code: str = "", currency: str | None = None) -> Acct:
        """The account, opened (with a zero balance, in `currency` for money) if the owner has
        none of this unit yet. A money account holds one currency: asking for it in another is
        refused (one account never mixes dollars and euros)."""
        acc = self.find_account(owner, unit, code)
        if acc is not None and currency is not None and acc.currency not in (None, currency):
            raise Declined("currency_mismatch", f"the {unit} of {owner} is in {acc.currency}, not {currency}: "
                           "one account holds one currency")
        if acc is None:
            key = (owner, unit, code)
            acc = self.accounts[key] = Acct(self.unit.ids.take(_ACCOUNTS), self.company_id, owner, unit, code, 0, None,
                                            currency)
            self.new_accounts.append(acc)

            def forget(acc: Acct = acc, key: tuple[str, str, str] = key) -> None:
                self.new_accounts.remove(acc)
                del self.accounts[key]

            self.unit.on_undo(forget)
        return acc

    def balance(self, owner: str, unit: str, code: str = "") -> int:
        acc = self.find_account(owner, unit, code)
        return acc.balance if acc else 0

    def _move(self, acc: Acct, amount: int) -> None:
        old = acc.balance
        acc.balance = old + amount
        self.unit.on_undo(lambda: setattr(acc, "balance", old))
        if acc.stored is not None:
            self.dirty_accounts[acc.id] = acc

    def post(self, acc: Acct, kind: str, amount: int, why: Posting, memo: str | None = None) -> dict[str, Any] | None:
        """Append one entry and move the cached balance with it. A zero amount writes nothing."""
        if amount == 0:
            return None
        self._move(acc, amount)
        entry = {"id": self.unit.ids.take(_ENTRIES), "company_id": acc.company_id, "account_id": acc.id, "kind": kind,
                 "amount": amount, "balance_after": acc.balance, "currency": acc.currency, "event_id": why.event_id,
                 "ruleset": why.ruleset,
                 "rule": why.rule, "period": why.period, "effective_date": why.effective_date, "memo": memo,
                 "created_at": utcnow()}
        self.unit.add_row(_ENTRIES, entry)
        self.unit.append(self.entries_of.setdefault(why.event_id, []), (entry, acc))
        return entry

    # --- points lots ------------------------------------------------------------------------

    def open_lots(self, account_id: int) -> list[Lot]:
        """The account's lots with points left, loaded once per transaction."""
        found = self.lots.get(account_id)
        if found is None:
            found = self.lots[account_id] = [
                self._lot(r) for r in self.session.execute(
                    sa.select(_LOTS).where(_LOTS.c.account_id == account_id, _LOTS.c.remaining > 0)
                    .order_by(_LOTS.c.id))]
            found += [lot for lot in self.new_lots if lot.account_id == account_id]
        return found

    def _lot(self, r: Any) -> Lot:
        return Lot(r.id, r.company_id, r.account_id, r.entry_id, r.points, r.remaining, r.earned_on, r.expires_on,
                   r.remaining, r.unlocks_on)

    def lots_drawn_by(self, account_id: int, entry_id: int) -> list[tuple[Lot, int]]:
        """The lots an entry (a redemption) drew from, and how many points from each, net of what
        was given back since; the lots are the book's own objects, whatever they hold now."""
        drawn: dict[int, int] = {}
        for lot_id, n in self.session.execute(sa.select(_DRAWS.c.lot_id, _DRAWS.c.points)
                                              .where(_DRAWS.c.entry_id == entry_id)):
            drawn[lot_id] = drawn.get(lot_id, 0) + n
        for row in self.unit.rows.get(_DRAWS.name, []):
            if row["entry_id"] == entry_id:
                drawn[row["lot_id"]] = drawn.get(row["lot_id"], 0) + row["points"]
        known = {lot.id: lot for lot in self.open_lots(account_id)}
        missing = [i for i in drawn if i not in known]
        if missing:
            for r in self.session.execute(sa.select(_LOTS).where(_LOTS.c.id.in_(missing))):
                lot = known[r.id] = self._lot(r)
                self.unit.append(self.lots[account_id], lot)
        return [(known[i], n) for i, n in sorted(drawn.items()) if n]

    def new_lot(self, acc: Acct, entry: dict[str, Any], points: int, earned_on: date, expires_on: date | None,
                unlocks_on: date | None = None) -> Lot:
        lot = Lot(self.unit.ids.take(_LOTS), acc.company_id, acc.id, entry["id"], points, points, earned_on, expires_on,
                  None, unlocks_on)
        if acc.id in self.lots:  # else loading them will find it among the new ones
            self.unit.append(self.lots[acc.id], lot)
        self.unit.append(self.new_lots, lot)
        return lot

    def draw(self, lot: Lot, points: int, entry_id: int) -> None:
        """Take points from a lot for an entry; a negative draw gives them back (a cancelled
        redemption), to the same lot with its own expiry."""
        old = lot.remaining
        lot.remaining = old - points
        self.unit.on_undo(lambda: setattr(lot, "remaining", old))
        if lot.stored is not None:
            self.dirty_lots[lot.id] = lot
        self.unit.add_row(_DRAWS, {"id": self.unit.ids.take(_DRAWS), "lot_id": lot.id, "entry_id": entry_id,
                                   "points": points})

    # --- the unit's flush -----------------------------------------------------------------------

    def before_flush(self) -> None:
        for a in self.new_accounts:
            self.unit.add_row(_ACCOUNTS, {"id": a.id, "company_id": a.company_id, "owner": a.owner, "unit": a.unit,
                                          "code": a.code, "balance": a.balance, "currency": a.currency})
        for lot in self.new_lots:
            self.unit.add_row(_LOTS, {"id": lot.id, "company_id": lot.company_id, "account_id": lot.account_id,
                                      "entry_id": lot.entry_id, "points": lot.points, "remaining": lot.remaining,
                                      "earned_on": lot.earned_on, "expires_on": lot.expires_on,
                                      "unlocks_on": lot.unlocks_on})

    def after_flush(self, writes: bulk.Writes) -> None:
        for a in self.new_accounts:
            a.stored = a.balance
        for lot in self.new_lots:
            lot.stored = lot.remaining
        changed = [a for a in self.dirty_accounts.values() if a.balance != a.stored]
        writes.update(_ACCOUNTS, [{"id": a.id, "balance": a.balance} for a in changed])
        for a in changed:
            a.stored = a.balance
        lots = [lot for lot in self.dirty_lots.values() if lot.remaining != lot.stored]
        writes.update(_LOTS, [{"id": lot.id, "remaining": lot.remaining} for lot in lots])
        for lot in lots:
            lot.stored = lot.remaining
        self.new_accounts.clear()
        self.new_lots.clear()
        self.dirty_accounts.clear()
        self.dirty_lots.clear()
        self.entries_of.clear()
        # Lots with nothing left are never looked at again.
        for aid, open_ in list(self.lots.items()):
            self.lots[aid] = [lot for lot in open_ if lot.remaining > 0]


def book(ctx: Ctx) -> Book:
    """The ledger's working set of this unit of work."""
    b = ctx.part(Book)
    b.company_id = ctx.company.id
    return b
