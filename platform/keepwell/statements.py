"""Statements read like a bank statement: opening balance, every entry with its reason, closing."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from . import memberships
from .events import entry_dict
from .ledger import sum_of_entries
from .models import Account, Event, LedgerEntry
from .money import format_cents
from .tenancy import Ctx


def for_owner(ctx: Ctx, owner: str, start: date, end: date) -> dict:
    accounts = list(ctx.session.scalars(
        sa.select(Account).where(Account.company_id == ctx.company.id, Account.owner == owner)
        .order_by(Account.unit, Account.code)
    ))
    sections = []
    for acc in accounts:
        money = acc.unit in ("allowance", "overdraft")
        fmt = format_cents if money else (lambda v: v)
        opening = sum_of_entries(ctx.session, acc.id, before=start)
        rows = ctx.session.execute(
            sa.select(LedgerEntry, Event.key)
            .join(Event, Event.id == LedgerEntry.event_id)
            .where(LedgerEntry.account_id == acc.id, LedgerEntry.effective_date >= start, LedgerEntry.effective_date <= end)
            .order_by(LedgerEntry.effective_date, LedgerEntry.id)
        )
        lines = []
        running = opening
        for entry, event_key in rows:
            running += entry.amount
            line = entry_dict(entry, acc.unit, acc.code, acc.owner)
            line.update(event=event_key, balance=fmt(running))
            lines.append(line)
        sections.append({"account": f"{acc.unit}:{acc.code}" if acc.code else acc.unit, "unit": acc.unit,
                         "opening": fmt(opening), "closing": fmt(running), "entries": lines})
    return {"owner": owner, "from": start.isoformat(), "to": end.isoformat(), "accounts": sections}


def membership_statement(ctx: Ctx, membership_id: str, start: date, end: date) -> dict:
    m = memberships.get(ctx, membership_id)
    out = for_owner(ctx, m.id, start, end)
    out["membership"] = memberships.view(ctx, m)
    return out
