"""Included services (visits) per service code: granted each period, drawn by completed services."""

from __future__ import annotations

from ..infra.context import Ctx
from ..ledger import VISITS, Posting, book
from .models import AnyMembership, Membership
from .terms import PlanTerms


def open_period(ctx: Ctx, m: AnyMembership, terms: PlanTerms, why: Posting) -> None:
    b = book(ctx)
    for svc in terms.included_services:
        b.post(
            b.account(m.id, VISITS, svc.code),
            "grant",
            svc.quantity,
            why.with_rule(f"plan.services.{svc.code}.grant"),
            memo=f"{svc.quantity} x {svc.name} for period {why.period}",
        )


def close_period(ctx: Ctx, m: AnyMembership, terms: PlanTerms, why: Posting, renew: bool) -> None:
    b = book(ctx)
    for svc in terms.included_services:
        acc = b.account(m.id, VISITS, svc.code)
        if acc.balance > 0:
            b.post(acc, "expire", -acc.balance, why.with_rule(f"plan.services.{svc.code}.unused_expired"),
                   memo="unused visits do not carry forward")
    if renew:
        open_period(ctx, m, terms, why)


def draw(ctx: Ctx, m: Membership, terms: PlanTerms, code: str, why: Posting) -> bool:
    """Use one included visit; False when the code is not covered or none is left this period.
    A visit the plan does not include can still be covered by an extra one (a reward)."""
    b = book(ctx)
    acc = b.find_account(m.id, VISITS, code) if terms.service(code) is None else b.account(m.id, VISITS, code)
    if acc is None or acc.balance <= 0:
        return False
    b.post(acc, "debit", -1, why.with_rule(f"plan.services.{code}.used"))
    return True


def usage(ctx: Ctx, m: Membership, terms: PlanTerms) -> list[dict]:
    rows = []
    b = book(ctx)
    for svc in terms.included_services:
        left = b.balance(m.id, VISITS, svc.code)
        rows.append({"code": svc.code, "name": svc.name, "quantity": svc.quantity,
                     "used": max(svc.quantity - left, 0), "left": left, "extra": max(left - svc.quantity, 0)})
    planned = {svc.code for svc in terms.included_services}
    b.find_account(m.id, VISITS)  # loads the membership's accounts
    extras = [(code, acc) for (owner, unit, code), acc in b.accounts.items()
              if owner == m.id and unit == VISITS and code not in planned and acc.balance > 0]
    for code, acc in sorted(extras, key=lambda e: e[0]):
        # an extra visit the plan does not include (a reward): shown with the included ones
        rows.append({"code": code, "name": code, "quantity": 0, "used": 0, "left": acc.balance, "extra": acc.balance})
    return rows

