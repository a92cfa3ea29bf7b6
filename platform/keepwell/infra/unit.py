"""The unit of work: what one transaction has collected before it writes.

An event (or a batch of them, or a chunk of due work) changes many rows: balances move, entries
and lots are appended, an outbox message is queued. Rather than write each as it happens, the
areas collect them here, with ids allocated up front so rows can refer to each other, and
`flush` writes them in bulk: one multi-row INSERT (COPY on PostgreSQL) per table, in foreign-key
order, then each area's UPDATEs. Every change is recorded with a way to undo it, so one event's
effects (a declined purchase, a rejected event in a batch) can be taken back without a
database savepoint.

    with unit.scope():          # the frame: undone to its start on an exception;
        ...                     # the outermost one flushes when it ends

One event and a batch of events go through the same frame: a single event is a batch of one.
Areas keep their own working state (the ledger's accounts, the memberships loaded) as a
`Part` of the unit: `unit.part(Book)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from . import bulk
from .tables import Base

P = TypeVar("P", bound="Part")


class Part(Protocol):
    """An area's working state within a unit (created by `Unit.part(cls)` with the unit)."""

    def before_flush(self) -> None:
        """Add the rows this part holds back until the end (with their final values)."""

    def after_flush(self, conn: Connection) -> None:
        """Write what changed in rows that existed before (UPDATEs), once the inserts are done."""


class Ids:
    """Ids allocated before the rows are written. PostgreSQL: blocks drawn from the table's own
    sequence, so concurrent writers never collide. SQLite: the transaction holds the write lock
    (BEGIN IMMEDIATE), so the next id is max(id) + 1, read again after every flush."""

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
                top = self.session.execute(sa.select(sa.func.max(table.c.id))).scalar()
                n = (top or 0) + 1
            self.next[table.name] = n + 1
            return n
        pool = self.pool.get(table.name)
        if not pool:
            pool = self.pool[table.name] = self._draw(table)
        return pool.pop()

    def want(self, table: sa.Table, n: int) -> None:
        """A hint: about `n` ids of `table` are coming (drawn with one query)."""
        if self.pg and n > len(self.pool.get(table.name) or ()):
            self.block[table.name] = min(max(n, 8), 20000)

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


class Unit:
    """One transaction's collected writes, undo log, ids and caches; see the module docstring."""

    def __init__(self, session: Session):
        self.session = session
        self.ids = Ids(session)
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.parts: dict[type, Any] = {}
        self.memo: dict[Any, Any] = {}  # caches valid for this transaction (rulesets in force...)
        self._undo: list[Callable[[], None]] = []
        self.depth = 0

    # --- the frame --------------------------------------------------------------------------

    @contextmanager
    def scope(self) -> Iterator[Unit]:
        """Everything done inside is undone (to this scope's own start) if it raises; when the
        outermost scope ends normally, the collected rows are written."""
        mark = self.mark()
        self.depth += 1
        try:
            yield self
        except BaseException:
            self.rollback(mark)
            raise
        finally:
            self.depth -= 1
        if self.depth == 0:
            self.flush()

    def mark(self) -> int:
        return len(self._undo)

    def rollback(self, mark: int) -> None:
        """Undo everything done since `mark`, newest first."""
        while len(self._undo) > mark:
            self._undo.pop()()

    def on_undo(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def set(self, obj: Any, attr: str, value: Any) -> None:
        """Change an attribute so that `rollback` can change it back."""
        old = getattr(obj, attr)
        setattr(obj, attr, value)
        self._undo.append(lambda: setattr(obj, attr, old))

    def append(self, items: list[Any], item: Any) -> None:
        items.append(item)
        self._undo.append(items.pop)

    # --- rows ---------------------------------------------------------------------------------

    def add_row(self, table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
        """A row to insert at the next flush (taken back by `rollback`)."""
        self.append(self.rows.setdefault(table.name, []), row)
        return row

    def part(self, cls: type[P]) -> P:
        """This unit's instance of an area's working state, created on first use."""
        found = self.parts.get(cls)
        if found is None:
            found = self.parts[cls] = cls(self)  # type: ignore[call-arg]
        return found  # type: ignore[no-any-return]

    def flush(self) -> None:
        """Write everything collected: the ORM's changes, the inserts in foreign-key order, then
        each part's updates."""
        self.session.flush()
        parts = list(self.parts.values())
        for p in parts:
            p.before_flush()
        conn = self.session.connection()
        for table in Base.metadata.sorted_tables:
            rows = self.rows.get(table.name)
            if rows:
                bulk.insert(conn, table, rows)
                rows.clear()
        for p in parts:
            p.after_flush(conn)
        self._undo.clear()
        self.ids.after_flush()


def unit_of(session: Session) -> Unit:
    """The unit of the session's current transaction (a new one for a new transaction)."""
    tx = session.get_transaction()
    found = session.info.get("keepwell.unit")
    if found is not None and found[0] is tx:
        return found[1]  # type: ignore[no-any-return]
    unit = Unit(session)
    session.info["keepwell.unit"] = (tx, unit)
    return unit
