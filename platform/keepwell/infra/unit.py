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

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from . import bulk
from .tables import Base

P = TypeVar("P", bound="Part")


class Part(Protocol):
    """An area's working state within a unit (created by `Unit.part(cls)` with the unit)."""

    def before_flush(self) -> None:
        """Add the rows this part holds back until the end (with their final values)."""

    def after_flush(self, writes: bulk.Writes) -> None:
        """Write what changed in rows that existed before (UPDATEs), once the inserts are sent."""


BLOCK_TABLES = ("events", "accounts", "ledger_entries", "points_lots", "lot_draws", "outbox")


class IdBlocks:
    """PostgreSQL: what the process knows of the sequences that hand out blocks of ids (their
    step, read once: migration 0005 makes the hot tables' sequences step by 1000)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps: dict[str, int] | None = None

    def load(self, session: Session) -> dict[str, int]:
        if self.steps is None:
            rows = session.execute(sa.text(
                "SELECT t, coalesce((SELECT increment_by FROM pg_sequences "
                "  WHERE schemaname || '.' || sequencename = pg_get_serial_sequence(t, 'id')), 1) "
                "FROM unnest(CAST(:tables AS text[])) AS t"), {"tables": list(BLOCK_TABLES)}).all()
            with self._lock:
                self.steps = {t: max(int(step), 1) for t, step in rows}
        return self.steps


class Ids:
    """Ids allocated before the rows are written, so rows can refer to each other and be inserted
    in bulk.

    PostgreSQL: the hot tables' sequences step by a block (1000): one `nextval` reserves a
    block of ids no other transaction can get. A transaction draws a block of each such table
    with one query the first time it needs an id (and another block of a table whose block runs
    out), after it holds its customers' locks: so for any one account, entries written later
    have higher ids, as they did one by one. Ids left unused are gaps, never duplicates. Other
    tables draw one id at a time. SQLite: the transaction holds the write lock (BEGIN
    IMMEDIATE), so the next id is max(id) + 1, read again after every flush."""

    def __init__(self, session: Session):
        self.session = session
        self.pg = session.get_bind().dialect.name == "postgresql"
        self.blocks: IdBlocks = session.info.get("keepwell.id_blocks") or IdBlocks()
        self._next: dict[str, int] = {}
        self._end: dict[str, int] = {}
        self.next: dict[str, int] = {}  # SQLite: the next free id

    def take(self, table: sa.Table) -> int:
        name = table.name
        if self.pg:
            n = self._next.get(name, 0)
            if n >= self._end.get(name, 0):
                n = self._draw(name)
            self._next[name] = n + 1
            return n
        following = self.next.get(name)
        if following is None:
            top = self.session.execute(sa.select(sa.func.max(table.c.id))).scalar()
            following = (top or 0) + 1
        self.next[name] = following + 1
        return following

    def _draw(self, name: str) -> int:
        steps = self.blocks.load(self.session)
        tables = [name] if self._end or name not in steps else list(steps)
        row = self.session.execute(sa.text(
            "SELECT " + ", ".join(f"nextval(pg_get_serial_sequence(:t{i}, 'id'))" for i in range(len(tables)))),
            {f"t{i}": t for i, t in enumerate(tables)}).one()
        for t, start in zip(tables, row):
            self._next[t], self._end[t] = int(start), int(start) + steps.get(t, 1)
        return self._next[name]

    def want(self, table: sa.Table, n: int) -> None:
        """A hint that about `n` ids of `table` are coming (blocks need none)."""

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

    def add(self, obj: Any) -> None:
        """Add an ORM object to the session so that `rollback` takes it out again (deleting its
        row if a flush wrote it meanwhile)."""
        self.session.add(obj)

        def undo() -> None:
            state = sa.inspect(obj)
            if state.persistent:
                self.session.delete(obj)
                self.session.flush()
            elif state.pending:
                self.session.expunge(obj)

        self._undo.append(undo)

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
        writes = bulk.Writes(self.session.connection())
        for table in Base.metadata.sorted_tables:
            rows = self.rows.get(table.name)
            if rows:
                writes.insert(table, rows)
                rows.clear()
        for p in parts:
            p.after_flush(writes)
        writes.finish()
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
