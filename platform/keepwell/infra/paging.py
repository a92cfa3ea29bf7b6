"""Lists people page through: search, filters, a sort order and pages, over any SELECT."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..kernel.errors import InvalidDocument

MAX_PAGE = 500
MAX_PAGES = 10_000_000  # a page number past this is past any list's end: no offset a database must overflow on


@dataclass(frozen=True)
class ListQuery:
    """What a list is asked for. `filters` map a filter's name to the value it must equal (or,
    for dates, `<name>_from` / `<name>_to` bounds); `page_size` 0 means every row (exports)."""

    search: str = ""
    filters: Mapping[str, str] = field(default_factory=dict)
    sort: str = ""
    descending: bool = True
    page: int = 0
    page_size: int = 50


_PHONE_LIKE = re.compile(r"[0-9 ()+.\-]+")


@dataclass(frozen=True)
class Listing:
    """How one list is read: its SELECT, what search looks in, what it can be filtered and
    sorted by (names to columns)."""

    select: sa.Select[Any]
    search: tuple[Any, ...] = ()
    # Phone numbers are stored as +13035550100: what is typed like a phone number ("303-555-0100",
    # "(303) 555") is looked for in these by its digits.
    search_digits: tuple[Any, ...] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)
    date_filters: Mapping[str, Any] = field(default_factory=dict)
    sorts: Mapping[str, Any] = field(default_factory=dict)
    default_sort: str = ""
    tiebreak: Any = None
    # What counts the rows when nothing is searched or filtered, where counting `select` would
    # join tables that change no count (the ledger's 70,000 entries joined to their accounts and
    # events at 10,000 members: 50-100 ms; the entries alone, from an index: a few).
    count_all: sa.Select[Any] | None = None


def fetch(
    session: Session, listing: Listing, q: ListQuery, row: Callable[[Any], dict[str, Any]] = dict
) -> tuple[list[dict[str, Any]], int]:
    """The rows of one page (each made by `row` from a result row) and the count of all."""
    stmt = listing.select
    narrowed = False
    if q.search.strip() and listing.search:
        narrowed = True
        like = f"%{q.search.strip()}%"
        found = [sa.cast(col, sa.String).ilike(like) for col in listing.search]
        digits = "".join(ch for ch in q.search if ch.isdigit())
        if len(digits) >= 4 and _PHONE_LIKE.fullmatch(q.search.strip()):
            found += [col.like(f"%{digits}%") for col in listing.search_digits]
        stmt = stmt.where(sa.or_(*found))
    for name, value in q.filters.items():
        if value in (None, ""):
            continue
        if name in listing.filters:
            stmt = stmt.where(listing.filters[name] == value)
            narrowed = True
        for suffix, op in (("_from", "__ge__"), ("_to", "__le__")):
            base = name.removesuffix(suffix)
            if name.endswith(suffix) and base in listing.date_filters:
                stmt = stmt.where(getattr(listing.date_filters[base], op)(_day(name, value)))
                narrowed = True
    counted = stmt if narrowed or listing.count_all is None else listing.count_all
    total = int(session.scalar(sa.select(sa.func.count()).select_from(counted.order_by(None).subquery())) or 0)
    key = q.sort if q.sort in listing.sorts else listing.default_sort
    order = []
    if key:
        col = listing.sorts[key]
        order.append(col.desc() if q.descending else col.asc())
    if listing.tiebreak is not None:
        order.append(listing.tiebreak.desc() if q.descending else listing.tiebreak.asc())
    stmt = stmt.order_by(*order)
    if q.page_size:
        size = min(max(q.page_size, 1), MAX_PAGE)
        stmt = stmt.limit(size).offset(min(max(q.page, 0), MAX_PAGES) * size)  # past the last page: empty
    return [row(r) for r in session.execute(stmt).mappings()], total


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidDocument.field(name, "enter a date (YYYY-MM-DD)", f"{value!r} is not a date") from None
