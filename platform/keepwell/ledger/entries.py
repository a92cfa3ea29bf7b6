"""Entries as people read them: money in decimal strings, every line with its reason."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..kernel.money import format_cents
from .book import MONEY_UNITS, Acct
from .models import LedgerEntry


def amount_text(unit: str, value: int) -> str | int:
    """Money units as decimal strings; visits and points as whole numbers."""
    return format_cents(value) if unit in MONEY_UNITS else value


def account_label(unit: str, code: str) -> str:
    return f"{unit}:{code}" if code else unit


def entry_view(kind: str, amount: int, balance_after: int, rule: str, ruleset: str, effective_date: Any,
               memo: str | None, unit: str, code: str, owner: str, currency: str | None = None) -> dict[str, Any]:
    out = {"account": account_label(unit, code), "owner": owner, "kind": kind, "amount": amount_text(unit, amount),
           "balance_after": amount_text(unit, balance_after), "rule": rule, "ruleset": ruleset,
           "date": effective_date.isoformat(), "memo": memo}
    if unit in MONEY_UNITS:
        out["currency"] = currency or "USD"  # entries from before the ledger had currencies were in USD
    return out


def posted_view(entry: dict[str, Any], acc: Acct) -> dict[str, Any]:
    """An entry the book holds (posted in this transaction)."""
    return entry_view(entry["kind"], entry["amount"], entry["balance_after"], entry["rule"], entry["ruleset"],
                      entry["effective_date"], entry["memo"], acc.unit, acc.code, acc.owner, entry["currency"])


def stored_view(e: LedgerEntry, unit: str, code: str, owner: str, currency: str | None = None) -> dict[str, Any]:
    return entry_view(e.kind, e.amount, e.balance_after, e.rule, e.ruleset, e.effective_date, e.memo, unit, code, owner,
                      e.currency or currency)


def sum_of_entries(session: Session, account_id: int, before: Any = None) -> int:
    q = sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == account_id)
    if before is not None:
        q = q.where(LedgerEntry.effective_date < before)
    return int(session.scalar(q) or 0)
