"""Collecting invoices: charging the member's card when an invoice is issued, retrying a failed
payment on the plan's days, and the membership's standing while it is unpaid — due work (kind
"collect"), so the workers and `keepwell billing run` do exactly the same.

Each step of an invoice is dated on its own day (a run that catches up does them in order):
- the first charge on the day the invoice is issued; a retry on each of the plan's `retry_days`
  after the first failure (a card refused for good is not retried; a new default card is
  charged at the next run);
- past due from the first failure; suspended `suspend_after_days` after it (the allowance
  cannot be charged and included visits are not covered); cancelled `cancel_after_days`
  after it, the invoice written off as uncollectible;
- a payment that succeeds restores a past-due or suspended membership and says so.
An invoice of a membership that has ended since (a change of tier, a cancellation) is still
collected: it is owed for the days it covered (a refund took its part off by a credit note).
A charge that got no answer is looked up by its idempotency key before anything is charged
again; the key is the invoice's and the attempt's, so a charge is never taken twice.
Each step raises an event (payment_succeeded, payment_failed, membership_suspended, cancelled)
that notification triggers and webhooks react to: that is how members are told (dunning).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ..events import due, pipeline
from ..events.due import DueUnit
from ..infra.context import Ctx
from ..kernel.errors import Declined
from ..kernel.money import format_cents
from ..memberships import memberships
from .gateways import GatewayUnavailable, Outcome, gateway
from .models import BillingSchedule, Invoice, Payment, PaymentMethod
from .payment_methods import to_charge

MOST_STEPS = 40  # steps one unit takes for one invoice (lookups, retries, changes of standing)


@dataclass(frozen=True)
class Dunning:
    retry_days: tuple[int, ...] = (1, 3, 7)
    suspend_after_days: int = 7
    cancel_after_days: int = 21

    @classmethod
    def of(cls, billing: dict[str, Any]) -> Dunning:
        return cls(tuple(billing.get("retry_days", cls.retry_days)), billing.get("suspend_after_days", 7),
                   billing.get("cancel_after_days", 21))


def _plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    rows = ctx.session.execute(sa.select(Invoice.id, Invoice.customer_id, Invoice.next_attempt_on, Invoice.attempts)
                               .where(Invoice.company_id == ctx.company.id, Invoice.status == "open",
                                      Invoice.next_attempt_on <= as_of)
                               .order_by(Invoice.next_attempt_on, Invoice.id))
    return [DueUnit("collect", f"due:collect:{iid}:{on.isoformat()}:{n}", cid, str(iid), as_of)
            for iid, cid, on, n in rows]


def _run(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    inv = ctx.session.get(Invoice, int(unit.subject), with_for_update=True)
    tally = {"unit": unit.key, "charged": 0, "failed": 0, "retried": 0}
    if inv is None or inv.company_id != ctx.company.id or inv.customer_id != unit.customer:
        return tally
    for _ in range(MOST_STEPS):
        if inv.status != "open" or inv.next_attempt_on is None or inv.next_attempt_on > unit.as_of:
            break
        if not step(ctx, inv, inv.next_attempt_on, tally):
            break
    return tally


def _payments(ctx: Ctx, inv: Invoice) -> list[Payment]:
    return list(ctx.session.scalars(sa.select(Payment).where(Payment.invoice_id == inv.id, Payment.kind == "charge")
                                    .order_by(Payment.id)))


def pay_now(ctx: Ctx, inv: Invoice, day: date) -> dict[str, Any]:
    """Charge an open invoice now, when the member (or the office) asks, with the card that pays
    it — the same card again too, though its retry is not due (the member may have sorted it)."""
    if inv.status != "open" or inv.amount_due_cents <= 0:
        raise Declined("nothing_due", f"invoice {inv.number} has nothing to pay")
    tally: dict[str, Any] = {"charged": 0, "failed": 0, "retried": 0}
    step(ctx, inv, day, tally, asked=True)
    return tally


def step(ctx: Ctx, inv: Invoice, day: date, tally: dict[str, Any], asked: bool = False) -> bool:
    """What is due for an invoice on `day`; False when the gateway did not answer (try again
    at the next run). `asked`: charge now, whatever the retry schedule says."""
    m = memberships.get(ctx, inv.membership_id, lock=True)
    policy = Dunning.of(memberships.plan_of(ctx, m)[1].billing)
    tried = _payments(ctx, inv)
    last = tried[-1] if tried else None
    if last is not None and last.status == "unknown":
        try:
            found = gateway(ctx, _gateway_of(ctx, last)).lookup(ctx, last.key)
        except GatewayUnavailable:
            return False
        if found is not None:  # the charge did happen (or was refused): its answer, at last
            return _settled(ctx, m, inv, last, found, day, policy, tally)
        last.status, last.decline_code = "failed", "no_answer"  # it never reached the gateway
    pm = to_charge(ctx, ctx.session.get(BillingSchedule, inv.membership_id), inv.customer_id)
    if pm is None:  # no card: the invoice waits (adding a card has it charged at the next run)
        inv.next_attempt_on = None
        return True
    if asked or _charge_due(inv, last, pm.id, day, policy):
        attempt = inv.attempts + 1
        pay = Payment(company_id=ctx.company.id, key=f"invoice-{inv.number}-attempt-{attempt}", kind="charge",
                      invoice_id=inv.id, payment_method_id=pm.id, amount_cents=inv.amount_due_cents,
                      currency=inv.currency, status="unknown", attempted_on=day)
        inv.attempts = attempt
        tally["retried"] += 1 if attempt > 1 else 0
        ctx.session.add(pay)
        ctx.session.flush()
        try:
            outcome = gateway(ctx, pm.gateway).charge(ctx, pm.reference, pay.amount_cents, pay.currency, pay.key)
        except GatewayUnavailable:
            inv.next_attempt_on = day  # looked up at once, before anything else is tried
            return True
        return _settled(ctx, m, inv, pay, outcome, day, policy, tally)
    _standing(ctx, m, inv, day, policy)
    return True


def _gateway_of(ctx: Ctx, pay: Payment) -> str:
    pm = ctx.session.get(PaymentMethod, pay.payment_method_id)
    return pm.gateway if pm is not None else "sandbox"


def _charge_due(inv: Invoice, last: Payment | None, pm_id: str, day: date, policy: Dunning) -> bool:
    if last is None or inv.failed_on is None:
        return True
    if last.payment_method_id != pm_id:
        return True  # another card since the last failure
    retry = _next_retry(inv, last, policy)
    return retry is not None and retry <= day


def _next_retry(inv: Invoice, last: Payment, policy: Dunning) -> date | None:
    done = inv.attempts - 1  # retries made so far
    if not last.retryable or inv.failed_on is None or done >= len(policy.retry_days):
        return None
    return inv.failed_on + timedelta(days=policy.retry_days[done])


def _settled(ctx: Ctx, m: Any, inv: Invoice, pay: Payment, outcome: Outcome, day: date, policy: Dunning,
             tally: dict[str, Any]) -> bool:
    pay.status, pay.reference = outcome.status, outcome.reference
    pay.decline_code, pay.retryable = outcome.decline_code, outcome.retryable
    moment = ctx.midday_of(day)
    if outcome.status == "succeeded":
        tally["charged"] += 1
        inv.status, inv.paid_on, inv.amount_due_cents, inv.next_attempt_on = "paid", day, 0, None
        restored = m.standing
        _post(ctx, f"payment_succeeded:{inv.number}", "payment_succeeded", m, moment, {
            "membership": m.id, "invoice": inv.number, "amount": format_cents(pay.amount_cents),
            "attempt": inv.attempts, **({"restored_from": restored} if restored else {})})
        return True
    tally["failed"] += 1
    inv.failed_on = inv.failed_on or day
    retry = _next_retry(inv, pay, policy)
    standing = "suspended" if m.standing == "suspended" else "past_due"
    _post(ctx, f"payment_failed:{inv.number}:{inv.attempts}", "payment_failed", m, moment, {
        "membership": m.id, "invoice": inv.number, "amount": format_cents(pay.amount_cents), "attempt": inv.attempts,
        "decline_code": outcome.decline_code or "declined", "message": outcome.message or "The payment failed.",
        "will_retry": retry is not None, **({"retry_on": retry.isoformat()} if retry else {}), "standing": standing,
        "cancels_on": (inv.failed_on + timedelta(days=policy.cancel_after_days)).isoformat()})
    _standing(ctx, m, inv, day, policy)
    return True


def _standing(ctx: Ctx, m: Any, inv: Invoice, day: date, policy: Dunning) -> None:
    """The membership's standing on `day`, and the day the invoice's next step is due."""
    assert inv.failed_on is not None
    suspend_on = inv.failed_on + timedelta(days=policy.suspend_after_days)
    cancel_on = inv.failed_on + timedelta(days=policy.cancel_after_days)
    moment = ctx.midday_of(day)
    if day >= cancel_on:
        inv.status, inv.next_attempt_on = "uncollectible", None
        if m.status != "active":
            return  # ended meanwhile (a change of tier, a cancellation): what it owes is written off
        _post(ctx, f"nonpayment:{m.id}:{inv.number}", "cancelled", m, moment, {
            "membership": m.id, "reason": f"invoice {inv.number} unpaid {policy.cancel_after_days} days",
            "refund": "none"})
        return
    if day >= suspend_on and m.standing != "suspended" and m.status == "active":
        _post(ctx, f"membership_suspended:{m.id}:{inv.number}", "membership_suspended", m, moment, {
            "membership": m.id, "invoice": inv.number, "amount": format_cents(inv.amount_due_cents),
            "cancels_on": cancel_on.isoformat()})
    last = _payments(ctx, inv)[-1]
    steps = [d for d in (_next_retry(inv, last, policy), suspend_on, cancel_on) if d is not None and d > day]
    inv.next_attempt_on = min(steps)


def _post(ctx: Ctx, key: str, type_: str, m: Any, moment: str, data: dict[str, Any]) -> None:
    pipeline.post(ctx, {"id": key, "type": type_, "customer": m.customer_id, "occurred_at": moment, "data": data},
                  trusted=True)


def start(inv: Invoice) -> None:
    """A new invoice with something to pay is charged on its issue day."""
    inv.next_attempt_on = inv.issued_on if inv.amount_due_cents > 0 else None


due.kind("collect", 16, _plan, _run)
