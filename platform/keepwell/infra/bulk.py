"""Writing many rows at once: COPY on PostgreSQL, executemany on SQLite; and setting columns of
many rows by id in one statement."""

from __future__ import annotations

import json
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection


def insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Append rows: COPY on PostgreSQL (one round trip, no SQL per row), else executemany (on
    SQLite a loop in C over one prepared statement)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= 8:  # a few rows: plain INSERTs cost less
        _copy(conn, table, rows)
        return
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r), []).append(r)
    for group in groups.values():
        conn.execute(table.insert(), group)


def _copy(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    import psycopg

    cols = list(rows[0])
    dumps = [isinstance(table.c[c].type, sa.JSON) for c in cols]
    raw: Any = conn.connection.driver_connection
    statement = f"COPY {table.name} ({', '.join(cols)}) FROM STDIN"
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:
            for r in rows:
                copy.write_row([_json(r[c]) if d and r[c] is not None else r[c] for c, d in zip(cols, dumps)])
    except psycopg.Error as exc:  # as SQLAlchemy's own errors, so that a duplicate key is retried
        raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson will not write (an integer past 64 bits): as SQLAlchemy would
        return json.dumps(value)


def update(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Set columns of rows by id: one UPDATE ... FROM unnest(arrays) on PostgreSQL, executemany
    on SQLite."""
    if not rows:
        return
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
