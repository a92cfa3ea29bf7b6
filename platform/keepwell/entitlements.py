"""Included services (visits) per service code: granted each period, drawn by completed services."""

from __future__ import annotations

from .ledger import VISITS, Posting, account, find_account, post
from .models import Membership
from .plans import PlanTerms
from .tenancy import Ctx


def open_period(ctx: Ctx, m: Membership, terms: PlanTerms, why: Posting) -> None:
    for svc in terms.included_services:
        acc = account(ctx.session, ctx.company.id, m.id, VISITS, svc.code)
        post(ctx.session, acc, "grant", svc.quantity, why.with_rule(f"plan.services.{svc.code}.grant"),
             memo=f"{svc.quantity} x {svc.name} for period {why.period}")


def close_period(ctx: Ctx, m: Membership, terms: PlanTerms, why: Posting, renew: bool) -> None:
    for svc in terms.included_services:
        acc = account(ctx.session, ctx.company.id, m.id, VISITS, svc.code)
        if acc.balance > 0:
            post(ctx.session, acc, "expire", -acc.balance, why.with_rule(f"plan.services.{svc.code}.unused_expired"),
                 memo="unused visits do not carry forward")
    if renew:
        open_period(ctx, m, terms, why)


def draw(ctx: Ctx, m: Membership, terms: PlanTerms, code: str, why: Posting) -> bool:
    """Use one included visit; False when the code is not covered or none is left this period."""
    if terms.service(code) is None:
        return False
    acc = account(ctx.session, ctx.company.id, m.id, VISITS, code)
    if acc.balance <= 0:
        return False
    post(ctx.session, acc, "debit", -1, why.with_rule(f"plan.services.{code}.used"))
    return True


def usage(ctx: Ctx, m: Membership, terms: PlanTerms) -> list[dict]:
    rows = []
    for svc in terms.included_services:
        acc = find_account(ctx.session, ctx.company.id, m.id, VISITS, svc.code)
        left = acc.balance if acc else 0
        rows.append({"code": svc.code, "name": svc.name, "quantity": svc.quantity,
                     "used": max(svc.quantity - left, 0), "left": left})
    return rows

