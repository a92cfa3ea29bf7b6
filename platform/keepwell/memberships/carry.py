"""A change of tier mid-period: the new tier's allowance and included visits, less what the
member already used this period on the old tier (so changing tier never hands out a second
allowance or a second tune-up).

- Visits: for each service both tiers include, the visits used on the old tier this period are
  drawn from the new tier's (down to none left).
- Allowance: what was spent this period on the old tier — its grant less what is left, plus
  overdraft used — comes off the new tier's allowance; what the new allowance cannot cover is
  carried as overdraft used (repaid from the next period's grant, as overdraft always is).
Each carried amount is its own entry, naming the change's event and the rule
`plan.tier_change.*`, so the statement explains it.
"""

from __future__ import annotations

from ..infra.context import Ctx
from ..kernel.money import format_cents
from ..ledger import ALLOWANCE, OVERDRAFT, VISITS, Posting, book
from . import allowance
from .models import Membership
from .terms import PlanTerms


def carry_usage(ctx: Ctx, old: Membership, old_terms: PlanTerms, new: Membership, new_terms: PlanTerms,
                why: Posting) -> dict:
    b = book(ctx)
    carried: dict = {"visits": {}, "allowance": "0.00"}
    for svc in new_terms.included_services:
        before = old_terms.service(svc.code)
        if before is None:
            continue
        used = max(before.quantity - b.balance(old.id, VISITS, svc.code), 0)
        acc = b.account(new.id, VISITS, svc.code)
        take = min(used, max(acc.balance, 0))
        if take:
            b.post(acc, "debit", -take, why.with_rule(f"plan.tier_change.{svc.code}.used"),
                   memo=f"{take} x {svc.name} used on {old_terms.tier_name} this period")
            carried["visits"][svc.code] = take
    if old_terms.has_allowance and new_terms.has_allowance:
        was = allowance.state(ctx, old, old_terms)
        spent = max(was.amount - max(was.balance, 0), 0) + was.overdraft_used
        bal = b.account(new.id, ALLOWANCE, currency=new_terms.currency)
        od = b.account(new.id, OVERDRAFT, currency=new_terms.currency)
        from_balance = min(spent, max(bal.balance, 0))
        memo = f"spent on {old_terms.tier_name} this period"
        if from_balance:
            b.post(bal, "debit", -from_balance, why.with_rule("plan.tier_change.allowance_used"), memo=memo)
        if spent - from_balance:
            b.post(od, "overdraft", -(spent - from_balance), why.with_rule("plan.tier_change.overdraft_used"),
                   memo=memo)
        carried["allowance"] = format_cents(spent)
    return carried
