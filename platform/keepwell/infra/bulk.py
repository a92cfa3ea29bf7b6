"""Writing many rows at once, with as few round trips as the database allows.

`Writes` collects one flush's inserts and updates. On PostgreSQL a table with many new rows is
sent by COPY (one round trip, no SQL per row); the rest — a few rows of a table, and every
update — go out together in one pipeline (psycopg's pipeline mode: every statement sent, then
one wait for all the answers), so a single event's writes cost one round trip, not one per
table. On SQLite, executemany (a loop in C over one prepared statement).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

COPY_FROM = 8  # rows of one table from which COPY costs less than an INSERT in the pipeline


class Writes:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.postgresql = conn.dialect.name == "postgresql"
        self._pipelined: list[tuple[str, Any, bool]] = []  # (SQL, parameters, executemany?)

    def insert(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Append rows (each group of rows with the same columns as one statement)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(tuple(r), []).append(r)
        for cols, group in groups.items():
            if not self.postgresql:
                self.conn.execute(table.insert(), group)
            elif len(group) >= COPY_FROM:
                self._copy(table, list(cols), group)
            else:
                json_cols = [_is_json(table, c) for c in cols]
                values = ", ".join("%s::json" if j else "%s" for j in json_cols)
                self._pipelined.append((
                    f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({values})",
                    [tuple(_json(r[c]) if j and r[c] is not None else r[c] for c, j in zip(cols, json_cols))
                     for r in group], True))

    def update(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Set columns of rows by id: one UPDATE ... FROM unnest(arrays) on PostgreSQL."""
        if not rows:
            return
        cols = [c for c in rows[0] if c != "id"]
        if not self.postgresql:
            stmt = (sa.update(table).where(table.c.id == sa.bindparam("_id"))
                    .values({c: sa.bindparam("_" + c) for c in cols}))
            self.conn.execute(stmt, [{"_" + k: v for k, v in r.items()} for r in rows])
            return
        types = {c: table.c[c].type.compile(self.conn.dialect) for c in ["id", *cols]}
        arrays = ", ".join(f"%({c})s::{types[c]}[]" for c in ["id", *cols])
        sets = ", ".join(f"{c} = u.{c}" for c in cols)
        self._pipelined.append((
            f"UPDATE {table.name} AS t SET {sets} FROM unnest({arrays}) AS u(id, {', '.join(cols)}) WHERE t.id = u.id",
            {c: [r[c] for r in rows] for c in ["id", *cols]}, False))

    def finish(self) -> None:
        """Send what waits for the pipeline, and wait for every answer."""
        if not self._pipelined:
            return
        import psycopg

        raw: Any = self.conn.connection.driver_connection
        work, self._pipelined = self._pipelined, []
        try:
            with raw.pipeline(), raw.cursor() as cur:
                for statement, params, many in work:
                    self._announce(cur, statement, params, many)
                    if many:
                        cur.executemany(statement, params)
                    else:
                        cur.execute(statement, params)
        except psycopg.Error as exc:  # as SQLAlchemy's own errors, so that a duplicate key is retried
            raise sa.exc.DBAPIError.instance(work[0][0], None, exc, psycopg.Error) from exc

    def _announce(self, cursor: Any, statement: str, params: Any, many: bool) -> None:
        # Statements sent on the driver's connection are still seen by SQLAlchemy's listeners
        # (tracing, statement counts, the reliability tests' fault injection).
        for listener in self.conn.dispatch.before_cursor_execute:
            listener(self.conn, cursor, statement, params, None, many)

    def _copy(self, table: sa.Table, cols: list[str], rows: list[dict[str, Any]]) -> None:
        import psycopg

        json_cols = [_is_json(table, c) for c in cols]
        raw: Any = self.conn.connection.driver_connection
        statement = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"
        try:
            with raw.cursor() as cur, cur.copy(statement) as copy:
                self._announce(cur, statement, None, False)
                for r in rows:
                    copy.write_row([_json(r[c]) if j and r[c] is not None else r[c] for c, j in zip(cols, json_cols)])
        except psycopg.Error as exc:
            raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _is_json(table: sa.Table, column: str) -> bool:
    return isinstance(table.c[column].type, sa.JSON)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson will not write (an integer past 64 bits): as SQLAlchemy would
        return json.dumps(value)
