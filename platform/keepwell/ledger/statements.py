"""Statements read like a bank statement: opening balance, every entry with its reason, closing."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from .book import MONEY_UNITS
from .entries import account_label, amount_text, stored_view, sum_of_entries
from .models import Account, LedgerEntry


def for_owner(ctx: Ctx, owner: str, start: date, end: date, event_keys: Any) -> dict[str, Any]:
    """Every account of `owner` (a membership or a customer) between two dates. `event_keys`
    maps event ids to the keys people know them by (the events area's lookup)."""
    accounts = list(ctx.session.scalars(
        sa.select(Account).where(Account.company_id == ctx.company.id, Account.owner == owner)
        .order_by(Account.unit, Account.code)
    ))
    sections = []
    for acc in accounts:
        opening = sum_of_entries(ctx.session, acc.id, before=start)
        entries = list(
            ctx.session.scalars(
                sa.select(LedgerEntry)
                .where(
                    LedgerEntry.account_id == acc.id,
                    LedgerEntry.effective_date >= start,
                    LedgerEntry.effective_date <= end,
                )
                .order_by(LedgerEntry.effective_date, LedgerEntry.id)
            )
        )
        keys = event_keys(ctx, {e.event_id for e in entries})
        lines = []
        running = opening
        for entry in entries:
            running += entry.amount
            line = stored_view(entry, acc.unit, acc.code, acc.owner, acc.currency)
            line.update(event=keys.get(entry.event_id), balance=amount_text(acc.unit, running))
            lines.append(line)
        sections.append({"account": account_label(acc.unit, acc.code), "unit": acc.unit,
                         **({"currency": acc.currency or "USD"} if acc.unit in MONEY_UNITS else {}),
                         "opening": amount_text(acc.unit, opening), "closing": amount_text(acc.unit, running),
                         "entries": lines})
    return {"owner": owner, "from": start.isoformat(), "to": end.isoformat(), "accounts": sections}
