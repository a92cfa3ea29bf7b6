"""One ledger, three units: money (allowance and overdraft cents), visits and points.

Accounts hold a cached balance for speed; it changes only together with an appended entry, in
the same transaction, and `keepwell audit` checks it against the sum of the entries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .models import Account, LedgerEntry

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


def account(session: Session, company_id: int, owner: str, unit: str, code: str = "") -> Account:
    acc = session.scalar(
        sa.select(Account).where(
            Account.company_id == company_id, Account.owner == owner, Account.unit == unit, Account.code == code
        )
    )
    if acc is None:
        acc = Account(company_id=company_id, owner=owner, unit=unit, code=code, balance=0)
        session.add(acc)
        session.flush()
    return acc


def find_account(session: Session, company_id: int, owner: str, unit: str, code: str = "") -> Account | None:
    return session.scalar(
        sa.select(Account).where(
            Account.company_id == company_id, Account.owner == owner, Account.unit == unit, Account.code == code
        )
    )


def post(session: Session, acc: Account, kind: str, amount: int, why: Posting, memo: str | None = None) -> LedgerEntry | None:
    """Append one entry and move the cached balance with it. A zero amount writes nothing."""
    if amount == 0:
        return None
    acc.balance += amount
    entry = LedgerEntry(
        company_id=acc.company_id,
        account_id=acc.id,
        kind=kind,
        amount=amount,
        balance_after=acc.balance,
        event_id=why.event_id,
        ruleset=why.ruleset,
        rule=why.rule,
        period=why.period,
        effective_date=why.effective_date,
        memo=memo,
    )
    session.add(entry)
    session.flush()
    return entry


def sum_of_entries(session: Session, account_id: int, before: date | None = None) -> int:
    q = sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.account_id == account_id)
    if before is not None:
        q = q.where(LedgerEntry.effective_date < before)
    return int(session.scalar(q))
