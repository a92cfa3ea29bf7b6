"""One ledger, three units: money (allowance and overdraft cents), visits and points.

Accounts hold a cached balance for speed; it changes only together with an appended entry, in
the same transaction, and `keepwell audit` checks it against the sum of the entries.

Within a transaction the event pipeline works through a `Book`: the accounts, points lots and
memberships it touches are loaded once (in bulk for a batch), every row it appends (events,
ledger entries, lots, lot draws, outbox messages) is collected with an id allocated up front,
and `Book.flush` writes them with one multi-row INSERT per table and one UPDATE per changed
kind of row. `Book.mark` / `Book.rollback` undo one event's effects (a declined purchase, a
rejected event in a batch) without a database savepoint. One event and a batch of events go
through the same code: a single event is a batch of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .models import Account, Event, LedgerEntry, LotDraw, Membership, OutboxMessage, PointsLot, utcnow

ALLOWANCE, OVERDRAFT, VISITS, POINTS = "allowance", "overdraft", "visits", "points"


@dataclass(frozen=True)
class Posting:
    """Why an entry exists: the event, the ruleset id@version and the rule that produced it."""

    event_id: int
    ruleset: str
    rule: str
    effective_date: date
    period: int | None = None

    def with_rule(self, rule: str) -> "Posting":
        return replace(self, rule=rule)


class Acct:
    """An account row as the pipeline sees it (the balance moves with every posted entry)."""

    __slots__ = ("id", "company_id", "owner", "unit", "code", "balance", "stored")

    def __init__(self, id: int, company_id: int, owner: str, unit: str, code: str, balance: int, stored: int | None):
        self.id, self.company_id, self.owner, self.unit, self.code = id, company_id, owner, unit, code
        self.balance = balance
        self.stored = stored  # the balance in the database; None: the row is not inserted yet


class Lot:
    """A points lot as the pipeline sees it."""

    __slots__ = ("id", "company_id", "account_id", "entry_id", "points", "remaining", "earned_on", "expires_on", "stored")

    def __init__(self, id, company_id, account_id, entry_id, points, remaining, earned_on, expires_on, stored):
        self.id, self.company_id, self.account_id, self.entry_id = id, company_id, account_id, entry_id
        self.points, self.remaining, self.earned_on, self.expires_on = points, remaining, earned_on, expires_on
        self.stored = stored  # remaining in the database; None: not inserted yet


_ACCOUNTS = Account.__table__
_ENTRIES = LedgerEntry.__table__
_LOTS = PointsLot.__table__
_DRAWS = LotDraw.__table__
_EVENTS = Event.__table__
_OUTBOX = OutboxMessage.__table__
_MEMBERS = Membership.__table__
_MEMBER_COLUMNS = ("plan_version_id", "current_period", "expires_on", "auto_renewal", "status", "ended_on")
_TABLES = (_EVENTS, _ACCOUNTS, _ENTRIES, _LOTS, _DRAWS, _OUTBOX)
_IN_CHUNK = 500  # ids per IN (...) list


class _Ids:
    """Ids allocated before the rows are written, so rows can refer to each other and be
    inserted in bulk. PostgreSQL: blocks drawn from the table's own sequence (concurrent writers
    never collide). SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so the next
    id is max(id) + 1, read again after every flush."""

    def __init__(self, session: Session):
        self.session = session
        self.pg = session.get_bind().dialect.name == "postgresql"
        self.pool: dict[str, list[int]] = {}  # PostgreSQL: ids drawn, highest first
        self.next: dict[str, int] = {}  # SQLite: the next free id
        self.block: dict[str, int] = {}

    def take(self, table: sa.Table) -> int:
        if not self.pg:
            n = self.next.get(table.name)
            if n is None:
                self._tops()
                n = self.next[table.name]
            self.next[table.name] = n + 1
            return n
        pool = self.pool.get(table.name)
        if not pool:
            if not self.pool:
                self._draw_all()
                pool = self.pool[table.name]
            if not pool:
                pool = self.pool[table.name] = self._draw(table)
        return pool.pop()

    def want(self, table: sa.Table, n: int) -> None:
        """A hint: about `n` ids of `table` are coming (drawn with one query)."""
        if self.pg and n > len(self.pool.get(table.name) or ()):
            self.block[table.name] = min(max(n, 8), 20000)

    def _tops(self) -> None:
        """SQLite: the next id of every table the book writes, in one query."""
        cols = [sa.select(sa.func.max(t.c.id)).scalar_subquery() for t in _TABLES]
        tops = self.session.execute(sa.select(*cols)).one()
        for t, top in zip(_TABLES, tops):
            self.next.setdefault(t.name, (top or 0) + 1)

    def _draw_all(self) -> None:
        """PostgreSQL: a first block of ids of every table the book writes, in one query."""
        parts = []
        params = {}
        for i, t in enumerate(_TABLES):
            n = self.block.get(t.name, 2 if t is _ACCOUNTS else 8)
            parts.append(f"SELECT {i} AS t, nextval(pg_get_serial_sequence(:t{i}, 'id')) AS id FROM generate_series(1, :n{i})")
            params[f"t{i}"], params[f"n{i}"] = t.name, n
            self.block[t.name] = min(n * 2, 4096)
        pools: dict[str, list[int]] = {t.name: [] for t in _TABLES}
        for ti, id_ in self.session.execute(sa.text(" UNION ALL ".join(parts)), params):
            pools[_TABLES[ti].name].append(id_)
        for ids in pools.values():
            ids.sort(reverse=True)
        self.pool.update(pools)

    def _draw(self, table: sa.Table) -> list[int]:
        n = self.block.get(table.name, 8)
        self.block[table.name] = min(n * 2, 4096)
        ids = list(self.session.execute(
            sa.text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n}).scalars())
        ids.sort(reverse=True)
        return ids

    def after_flush(self) -> None:
        self.next.clear()  # SQLite: other writers in this transaction (the ORM) may have added rows


class Book:
    """The pipeline's working set for one transaction; see the module docstring."""

    def __init__(self, session: Session, company_id: int):
        self.session = session
        self.company_id = company_id
        self.ids = _Ids(session)
        self.accounts: dict[tuple[str, str, str], Acct] = {}
        self.owners_loaded: set[str] = set()
        self.lots: dict[int, list[Lot]] = {}  # account id -> its lots with points left (loaded ones)
        self.customers: dict[str, object] = {}  # id -> Customer (locked), or None: no such customer
        self.members: dict[str, list] = {}  # customer id -> all its memberships (loaded and locked)
        self.member_ids: dict[str, object] = {}  # membership id -> membership, for those
        self.event_keys: dict[str, object] = {}  # key -> stored Event, pending event, or None: none
        self.outbox_keys: set[str] = set()
        self.new_accounts: list[Acct] = []
        self.new_lots: list[Lot] = []
        self.rows: dict[str, list[dict]] = {"events": [], "ledger_entries": [], "lot_draws": [], "outbox": []}
        self.entries_of: dict[int, list[tuple[dict, Acct]]] = {}
        self.dirty_accounts: dict[int, Acct] = {}
        self.dirty_lots: dict[int, Lot] = {}
        self.dirty_members: dict[str, object] = {}
        self.undo: list[Callable[[], None]] = []
        self.depth = 0
        self.memo: dict = {}

    @classmethod
    def of(cls, session: Session, company_id: int) -> "Book":
        """This transaction's book (a new one for a new transaction)."""
        tx = session.get_transaction()
        found = session.info.get("keepwell.book")
        if found is not None and found[0] is tx and found[1].company_id == company_id:
            return found[1]
        book = cls(session, company_id)
        session.info["keepwell.book"] = (tx, book)
        return book

    # --- undo: one event's effects, without a database savepoint ------------------------------

    def mark(self) -> int:
        return len(self.undo)

    def rollback(self, mark: int) -> None:
        while len(self.undo) > mark:
            self.undo.pop()()

    def set(self, obj, attr: str, value) -> None:
        """Change an attribute (of a pending event, say) so that `rollback` can change it back."""
        old = getattr(obj, attr)
        setattr(obj, attr, value)
        self.undo.append(lambda: setattr(obj, attr, old))

    def set_member(self, m, attr: str, value) -> None:
        """Change a stored membership's column: written by `flush` with the others in one
        statement (the ORM sees the value as already stored, so it writes no UPDATE of its own)."""
        old = getattr(m, attr)
        set_committed_value(m, attr, value)
        self.undo.append(lambda: set_committed_value(m, attr, old))
        self.dirty_members[m.id] = m

    def _append(self, items: list, item) -> None:
        items.append(item)
        self.undo.append(items.pop)

    def add_row(self, table: str, row: dict) -> dict:
        self._append(self.rows[table], row)
        return row

    # --- accounts ---------------------------------------------------------------------------

    def load_owners(self, owners) -> None:
        """Load every account of these owners (membership or customer ids) in a few queries."""
        todo = [o for o in dict.fromkeys(owners) if o not in self.owners_loaded]
        for i in range(0, len(todo), _IN_CHUNK):
            part = todo[i:i + _IN_CHUNK]
            rows = self.session.execute(
                sa.select(_ACCOUNTS.c.id, _ACCOUNTS.c.owner, _ACCOUNTS.c.unit, _ACCOUNTS.c.code, _ACCOUNTS.c.balance)
                .where(_ACCOUNTS.c.company_id == self.company_id, _ACCOUNTS.c.owner.in_(part)))
            for aid, owner, unit, code, balance in rows:
                key = (owner, unit, code)
                if key not in self.accounts:
                    self.accounts[key] = Acct(aid, self.company_id, owner, unit, code, balance, balance)
            self.owners_loaded.update(part)

    def find_account(self, owner: str, unit: str, code: str = "") -> Acct | None:
        if owner not in self.owners_loaded:
            self.load_owners([owner])
        return self.accounts.get((owner, unit, code))

    def account(self, owner: str, unit: str, code: str = "") -> Acct:
        acc = self.find_account(owner, unit, code)
        if acc is None:
            key = (owner, unit, code)
            acc = self.accounts[key] = Acct(self.ids.take(_ACCOUNTS), self.company_id, owner, unit, code, 0, None)
            self.new_accounts.append(acc)

            def forget(acc=acc, key=key):
                self.new_accounts.remove(acc)
                del self.accounts[key]

            self.undo.append(forget)
        return acc

    def move(self, acc: Acct, amount: int) -> None:
        old = acc.balance
        acc.balance = old + amount
        self.undo.append(lambda: setattr(acc, "balance", old))
        if acc.stored is not None:
            self.dirty_accounts[acc.id] = acc

    def post(self, acc: Acct, kind: str, amount: int, why: Posting, memo: str | None = None) -> dict | None:
        """Append one entry and move the cached balance with it. A zero amount writes nothing."""
        if amount == 0:
            return None
        self.move(acc, amount)
        entry = {"id": self.ids.take(_ENTRIES), "company_id": acc.company_id, "account_id": acc.id, "kind": kind,
                 "amount": amount, "balance_after": acc.balance, "event_id": why.event_id, "ruleset": why.ruleset,
                 "rule": why.rule, "period": why.period, "effective_date": why.effective_date, "memo": memo}
        self._append(self.rows["ledger_entries"], entry)
        self._append(self.entries_of.setdefault(why.event_id, []), (entry, acc))
        return entry

    # --- points lots ------------------------------------------------------------------------

    def open_lots(self, account_id: int) -> list[Lot]:
        """The account's lots with points left, loaded once per transaction."""
        found = self.lots.get(account_id)
        if found is None:
            found = self.lots[account_id] = [
                Lot(r.id, r.company_id, r.account_id, r.entry_id, r.points, r.remaining, r.earned_on, r.expires_on, r.remaining)
                for r in self.session.execute(sa.select(_LOTS).where(_LOTS.c.account_id == account_id, _LOTS.c.remaining > 0)
                                              .order_by(_LOTS.c.id))]
            found += [l for l in self.new_lots if l.account_id == account_id]
        return found

    def new_lot(self, acc: Acct, entry: dict, points: int, earned_on: date, expires_on: date | None) -> Lot:
        lot = Lot(self.ids.take(_LOTS), acc.company_id, acc.id, entry["id"], points, points, earned_on, expires_on, None)
        if acc.id in self.lots:  # else loading them will find it among the new ones
            self._append(self.lots[acc.id], lot)
        self._append(self.new_lots, lot)
        return lot

    def draw(self, lot: Lot, points: int, entry_id: int) -> None:
        old = lot.remaining
        lot.remaining = old - points
        self.undo.append(lambda: setattr(lot, "remaining", old))
        if lot.stored is not None:
            self.dirty_lots[lot.id] = lot
        self.add_row("lot_draws", {"id": self.ids.take(_DRAWS), "lot_id": lot.id, "entry_id": entry_id, "points": points})

    # --- writing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything collected: inserts in foreign-key order, then the changed balances."""
        self.session.flush()  # ORM changes first (new memberships, renewed periods)
        conn = self.session.connection()
        if self.rows["events"]:
            now = utcnow()
            for r in self.rows["events"]:
                r.setdefault("received_at", now)
            _insert(conn, _EVENTS, self.rows["events"])
        if self.new_accounts:
            _insert(conn, _ACCOUNTS, [{"id": a.id, "company_id": a.company_id, "owner": a.owner, "unit": a.unit,
                                       "code": a.code, "balance": a.balance} for a in self.new_accounts])
            for a in self.new_accounts:
                a.stored = a.balance
        if self.rows["ledger_entries"]:
            now = utcnow()
            for r in self.rows["ledger_entries"]:
                r["created_at"] = now
            _insert(conn, _ENTRIES, self.rows["ledger_entries"])
        if self.new_lots:
            _insert(conn, _LOTS, [{"id": l.id, "company_id": l.company_id, "account_id": l.account_id, "entry_id": l.entry_id,
                                   "points": l.points, "remaining": l.remaining, "earned_on": l.earned_on,
                                   "expires_on": l.expires_on} for l in self.new_lots])
            for l in self.new_lots:
                l.stored = l.remaining
        if self.rows["lot_draws"]:
            _insert(conn, _DRAWS, self.rows["lot_draws"])
        if self.rows["outbox"]:
            now = utcnow()
            for r in self.rows["outbox"]:
                r.setdefault("due_at", now)
                r.setdefault("created_at", now)
            _insert(conn, _OUTBOX, self.rows["outbox"])
        changed = [a for a in self.dirty_accounts.values() if a.balance != a.stored]
        if changed:
            _update(conn, _ACCOUNTS, [{"id": a.id, "balance": a.balance} for a in changed])
            for a in changed:
                a.stored = a.balance
        lots = [l for l in self.dirty_lots.values() if l.remaining != l.stored]
        if lots:
            _update(conn, _LOTS, [{"id": l.id, "remaining": l.remaining} for l in lots])
            for l in lots:
                l.stored = l.remaining
        if self.dirty_members:
            _update(conn, _MEMBERS, [{"id": m.id, **{c: getattr(m, c) for c in _MEMBER_COLUMNS}}
                                     for m in self.dirty_members.values()])
            self.dirty_members.clear()
        for rows in self.rows.values():
            rows.clear()
        self.new_accounts.clear()
        self.new_lots.clear()
        self.dirty_accounts.clear()
        self.dirty_lots.clear()
        self.entries_of.clear()
        self.undo.clear()
        # Lots with nothing left are never looked at again.
        for aid, lots_ in list(self.lots.items()):
            self.lots[aid] = [l for l in lots_ if l.remaining > 0]
        self.ids.after_flush()


def _insert(conn, table: sa.Table, rows: list[dict]) -> None:
    """Append rows: COPY on PostgreSQL (one round trip, no SQL per row), else executemany (on
    SQLite a loop in C over one prepared statement)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= 8:  # a few rows: plain INSERTs cost less
        cols = list(rows[0])
        dumps = [sa.JSON in type(table.c[c].type).__mro__ for c in cols]
        raw = conn.connection.driver_connection
        statement = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"
        try:
            with raw.cursor() as cur:
                with cur.copy(statement) as copy:
                    for r in rows:
                        copy.write_row([json.dumps(r[c]) if d and r[c] is not None else r[c] for c, d in zip(cols, dumps)])
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):  # as SQLAlchemy's own errors: a duplicate key is retried
                raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
            raise
        return
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r), []).append(r)
    for group in groups.values():
        conn.execute(table.insert(), group)


def _update(conn, table: sa.Table, rows: list[dict]) -> None:
    """Set columns of rows by id: one UPDATE ... FROM unnest(arrays) on PostgreSQL, executemany
    on SQLite."""
    cols = [c for c in rows[0] if c != "id"]
    if conn.dialect.name == "postgresql":
        types = {c: table.c[c].type.compile(conn.dialect) for c in ["id", *cols]}
        arrays = ", ".join(f"CAST(:{c} AS {types[c]}[])" for c in ["id", *cols])
        sets = ", ".join(f"{c} = u.{c}" for c in cols)
        conn.execute(sa.text(f"UPDATE {table.name} AS t SET {sets} FROM unnest({arrays}) AS u(id, {', '.join(cols)}) "
                             "WHERE t.id = u.id"), {c: [r[c] for r in rows] for c in ["id", *cols]})
        return
    stmt = sa.update(table).where(table.c.id == sa.bindparam("_id")).values({c: sa.bindparam("_" + c) for c in cols})
    conn.execute(stmt, [{"_" + k: v for k, v in r.items()} for r in rows])


def book(ctx) -> Book:
    return Book.of(ctx.session, ctx.company.id)


def account(session: Session, company_id: int, owner: str, unit: str, code: str = "") -> Acct:
    return Book.of(session, company_id).account(owner, unit, code)


def find_account(session: Session, company_id: int, owner: str, unit: str, code: str = "") -> Acct | None:
    return Book.of(session, company_id).find_account(owner, unit, code)


def post(session: Session, acc: Acct, kind: str, amount: int, why: Posting, memo: str | None = None) -> dict | None:
    """Append one entry and move the cached balance with it. A zero amount writes nothing."""
    return Book.of(session, acc.company_id).post(acc, kind, amount, why, memo)


def sum_of_entries(session: Session, account_id: int, before: date | None = None) -> int:
    q = sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == account_id)
    if before is not None:
        q = q.where(LedgerEntry.effective_date < before)
    return int(session.scalar(q))
