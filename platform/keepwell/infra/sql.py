"""Small pieces of SQL the areas share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

SQLITE_CHUNK = 500  # values per IN (...) list on SQLite
PG_CHUNK = 10000  # values per array on PostgreSQL


def one_of(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values`: on PostgreSQL `= ANY(:array)`, one parameter however many values
    (a list of literals is parsed anew each time: a cost that grew with the batch)."""
    if session.get_bind().dialect.name == "postgresql":
        item = sa.BigInteger() if isinstance(column.type, sa.Integer) else sa.String()
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(item)))
    return column.in_(list(values))


def chunks(session: Session, values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    size = PG_CHUNK if session.get_bind().dialect.name == "postgresql" else SQLITE_CHUNK
    for i in range(0, len(values), size):
        yield values[i:i + size]
