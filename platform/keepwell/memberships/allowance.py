"""The prepaid allowance of a membership and its overdraft facility.

Two accounts per membership: `allowance` (the balance, never below zero) and `overdraft` (what
was drawn from the facility, as a negative balance). Overdraft used in a period is recovered from
the next period's grant; the facility itself is restored as it is repaid, so an unused facility
simply carries forward.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..infra.context import Ctx
from ..kernel.errors import Declined
from ..kernel.money import format_cents
from ..ledger import ALLOWANCE, OVERDRAFT, Posting, book
from .models import AnyMembership, Membership
from .terms import PlanTerms


@dataclass(frozen=True)
class AllowanceState:
    amount: int
    balance: int
    overdraft_limit: int
    overdraft_used: int

    @property
    def overdraft_left(self) -> int:
        return max(self.overdraft_limit - self.overdraft_used, 0)

    @property
    def available(self) -> int:
        return max(self.balance, 0) + self.overdraft_left

    def to_dict(self) -> dict:
        return {
            "amount": format_cents(self.amount),
            "balance": format_cents(self.balance),
            "overdraft_limit": format_cents(self.overdraft_limit),
            "overdraft_used": format_cents(self.overdraft_used),
            "overdraft_left": format_cents(self.overdraft_left),
            "available": format_cents(self.available),
        }


def state(ctx: Ctx, m: Membership, terms: PlanTerms) -> AllowanceState:
    b = book(ctx)
    return AllowanceState(
        amount=terms.allowance_cents,
        balance=b.balance(m.id, ALLOWANCE),
        overdraft_limit=terms.overdraft_limit_cents,
        overdraft_used=-b.balance(m.id, OVERDRAFT),
    )


def open_period(ctx: Ctx, m: AnyMembership, terms: PlanTerms, why: Posting) -> None:
    if terms.has_allowance:
        b = book(ctx)
        acc = b.account(m.id, ALLOWANCE, currency=terms.currency)
        b.post(acc, "grant", terms.allowance_cents, why.with_rule("plan.allowance.grant"),
               memo=f"allowance for period {why.period}")


def charge(ctx: Ctx, m: Membership, terms: PlanTerms, cents: int, why: Posting, memo: str | None = None) -> dict:
    """Debit the allowance, then the overdraft up to its limit; past that, decline and debit nothing."""
    if not terms.has_allowance:
        raise Declined("no_allowance", f"plan {terms.plan_id} has no allowance to pay with")
    b = book(ctx)
    bal, od = b.account(m.id, ALLOWANCE, currency=terms.currency), b.account(m.id, OVERDRAFT, currency=terms.currency)
    before = state(ctx, m, terms)
    if cents > before.available:
        raise Declined(
            "insufficient_allowance",
            f"charge of {format_cents(cents)} exceeds what is available ({format_cents(before.available)}: "
            f"balance {format_cents(max(before.balance, 0))} + overdraft left {format_cents(before.overdraft_left)})",
            available=format_cents(before.available),
        )
    from_balance = min(cents, max(bal.balance, 0))
    from_overdraft = cents - from_balance
    b.post(bal, "debit", -from_balance, why.with_rule("plan.allowance.debit"), memo=memo)
    b.post(od, "overdraft", -from_overdraft, why.with_rule("plan.allowance.overdraft"), memo=memo)
    return {"charged": format_cents(cents), "from_allowance": format_cents(from_balance),
            "from_overdraft": format_cents(from_overdraft)}


def close_period(ctx: Ctx, m: AnyMembership, terms: PlanTerms, why: Posting, renew: bool) -> None:
    """End of a period: the unused remainder expires (policy), the new grant arrives, and the
    overdraft used is recovered from it. Each step is its own entry, so the statement explains it."""
    if not terms.has_allowance:
        return
    b = book(ctx)
    bal, od = b.account(m.id, ALLOWANCE, currency=terms.currency), b.account(m.id, OVERDRAFT, currency=terms.currency)
    if bal.balance > 0 and (terms.unused_policy == "expire" or not renew):
        b.post(bal, "expire", -bal.balance, why.with_rule("plan.allowance.unused_expired"),
               memo="unused allowance does not carry forward")
    if not renew:
        return
    b.post(bal, "grant", terms.allowance_cents, why.with_rule("plan.allowance.grant"),
           memo=f"allowance for period {why.period}")
    used = -od.balance
    if used == 0 and terms.overdraft_unused == "add_to_allowance":
        # The contractor's words: "If overdraft amount is not used, the overdraft value should be
        # carry forward and added along with the allowance amount on next auto renewal."
        b.post(bal, "overdraft_unused", terms.overdraft_limit_cents, why.with_rule("plan.allowance.overdraft_unused"),
               memo="no overdraft used last period: the overdraft limit is added to this period's allowance")
    recover = min(used, max(bal.balance, 0))
    if recover > 0:
        b.post(bal, "overdraft_recovery", -recover, why.with_rule("plan.allowance.overdraft_recovery"),
               memo="overdraft used last period, deducted from this period's allowance")
        b.post(od, "overdraft_recovery", recover, why.with_rule("plan.allowance.overdraft_recovery"))


def adjust(ctx: Ctx, m: Membership, terms: PlanTerms, cents: int, why: Posting, reason: str) -> None:
    b = book(ctx)
    bal = b.account(m.id, ALLOWANCE, currency=terms.currency)
    if bal.balance + cents < 0:
        raise Declined(
            "insufficient_allowance",
            f"adjustment would take the allowance below zero ({format_cents(bal.balance)} left)",
        )
    b.post(bal, "adjust", cents, why.with_rule("manual.adjustment"), memo=reason)

