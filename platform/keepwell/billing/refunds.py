"""What cancelling gives back, by the plan's cancellation terms — shown before a member or a
contractor confirms (`preview`), then given (`give_back`): a credit note on each invoice it
corrects, paid back to the card that paid it (an unpaid invoice is reduced instead).

For the invoice whose billing period holds the last day:
- `refund: full` gives back its total; `none` nothing; within `full_refund_within_days` of
  joining, every invoice so far is given back in full;
- `refund: prorated` (default) gives back the unused days' share of its total, rounded half-up
  once; with `refund_basis: usage`, a member who took more visits than the days they had pays
  for the visits instead: the refund is the total less the larger of the days used and the
  visits used (each at `visit_value`), never below zero;
- the cancellation `fee` is taken from what is given back (the answer says what is owed if the
  fee is larger).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.money import format_cents, share_of, tax_of, to_cents
from ..ledger import VISITS
from ..ledger.models import Account, LedgerEntry
from ..memberships import memberships
from .gateways import gateway
from .invoices import counter
from .models import BillingSchedule, CreditNote, Invoice, InvoiceCounter, InvoiceLine, Payment, PaymentMethod


def service_cents(ctx: Ctx, inv: Invoice) -> int:
    """What an invoice charged for the membership's own service (its fee and proration lines, not
    credits carried over from a change of tier): what a refund or a change prorates."""
    return int(ctx.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(InvoiceLine.amount_cents), 0)).where(
        InvoiceLine.invoice_id == inv.id, InvoiceLine.kind.in_(("membership_fee", "proration")))) or 0)


def visits_taken(ctx: Ctx, membership_id: str, start: date, end: date) -> int:
    """Included visits drawn between two days (both included)."""
    return int(ctx.session.scalar(
        sa.select(sa.func.count()).select_from(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id)
        .where(Account.company_id == ctx.company.id, Account.owner == membership_id, Account.unit == VISITS,
               LedgerEntry.kind == "debit", LedgerEntry.effective_date >= start, LedgerEntry.effective_date <= end))
        or 0)


def preview(ctx: Ctx, membership_id: str, on: date) -> dict[str, Any] | None:
    """The refund cancelling on `on` (the last day) would give, and how it is computed; None for a
    membership not billed here."""
    s = ctx.session.get(BillingSchedule, membership_id)
    if s is None or s.company_id != ctx.company.id:
        return None
    terms = memberships.plan_of(ctx, memberships.get(ctx, membership_id))[1]
    c = terms.cancellation
    fee = to_cents(c.get("fee", "0"))
    invoices = list(ctx.session.scalars(sa.select(Invoice).where(
        Invoice.company_id == ctx.company.id, Invoice.membership_id == membership_id).order_by(Invoice.number)))
    current = next((i for i in invoices if i.period_start <= on <= i.period_end), None)
    how: dict[str, Any] = {"policy": c.get("refund", "prorated"), "basis": c.get("refund_basis", "days"),
                           "fee": format_cents(fee)}
    within = c.get("full_refund_within_days")
    invoices = [i for i in invoices if i.status in ("open", "paid")]  # not what was written off or voided
    current = current if current in invoices else None
    joined, chain = _joined(ctx, s)
    if within is not None and (on - joined).days <= within:
        # Every invoice since joining, those of the tiers it changed from included.
        invoices = list(ctx.session.scalars(sa.select(Invoice).where(
            Invoice.company_id == ctx.company.id, Invoice.membership_id.in_(chain),
            Invoice.status.in_(("open", "paid"))).order_by(Invoice.number)))
        back = sum(i.total_cents for i in invoices)
        how.update(policy="full_within_days", days_since_joining=(on - joined).days)
    elif current is None:
        back = 0
        how["invoice"] = None
    else:
        days = (current.period_end - current.period_start).days + 1
        unused = (current.period_end - on).days
        invoiced = service_cents(ctx, current)
        how.update(invoice=current.number, invoiced=format_cents(invoiced), days_in_period=days,
                   days_unused=unused)
        if how["policy"] == "full":
            back = invoiced
        elif how["policy"] == "none":
            back = 0
        else:
            used_days = invoiced - share_of(invoiced, unused, days)
            used = used_days
            # The visits taken are always shown; only a usage basis lets them count.
            taken = visits_taken(ctx, membership_id, current.period_start, on)
            value = taken * to_cents(c.get("visit_value", "0"))
            how.update(visits_used=taken, value_of_visits=format_cents(value))
            if how["basis"] == "usage":
                used = max(used_days, value)
            back = max(invoiced - used, 0)
        if current.tax_rate and back:  # the tax charged on what is given back goes back with it
            tax_back = tax_of(back, current.tax_rate)
            how.update(tax_rate=current.tax_rate, tax=format_cents(tax_back))
            back += tax_back
    net = back - fee
    return {"refund": format_cents(max(net, 0)), "owed": format_cents(max(-net, 0)), "currency": s.currency,
            "computed": how, "refund_cents": max(net, 0),
            "from_invoices": [i.number for i in (invoices if how["policy"] == "full_within_days"
                                                 else [current] if current else [])]}


def _joined(ctx: Ctx, s: BillingSchedule) -> tuple[date, list[str]]:
    """The day the member joined (before any change of tier), and the memberships since."""
    chain = [s.membership_id]
    while s.replaces:
        before = ctx.session.get(BillingSchedule, s.replaces)
        if before is None:
            break
        s = before
        chain.append(s.membership_id)
    return s.starts_on, chain


def give_back(ctx: Ctx, membership_id: str, on: date, reason: str) -> dict[str, Any] | None:
    """Cancelling: the refund `preview` computes, as credit notes on the invoices it comes from
    (newest first, none beyond what each charged less what it already gave back)."""
    found = preview(ctx, membership_id, on)
    if found is None or not found["refund_cents"]:
        return found
    found["credit_notes"] = pay_back(ctx, membership_id, found["refund_cents"], on, reason, "cancel",
                                     found["from_invoices"])
    return found


def pay_back(ctx: Ctx, membership_id: str, amount: int, on: date, reason: str, key: str,
             numbers: list[int] | None = None) -> list[dict[str, Any]]:
    """Give `amount` back as credit notes, newest invoice first: the invoices named, then the
    membership's others and those of the memberships a change of tier replaced (a change's
    invoice may have been paid, in part or whole, by their credit). Never more than each
    invoice charged less what it gave back already."""
    left, notes = amount, []
    for inv in _refundable(ctx, membership_id, numbers or []):
        part = min(left, inv.total_cents - inv.refunded_cents - _credited_unpaid(ctx, inv))
        if part > 0:
            notes.append(credit(ctx, inv, part, on, reason, f"{key}:{membership_id}:{on.isoformat()}:{inv.number}"))
            left -= part
        if not left:
            break
    return notes


def _refundable(ctx: Ctx, membership_id: str, numbers: list[int]) -> list[Invoice]:
    def locked(q: sa.Select) -> list[Invoice]:
        return list(ctx.session.scalars(q.where(Invoice.company_id == ctx.company.id,
                                                Invoice.status.in_(("open", "paid")))
                                        .order_by(Invoice.number.desc()).with_for_update()))

    out = locked(sa.select(Invoice).where(Invoice.number.in_(numbers))) if numbers else []
    owner: str | None = membership_id
    while owner:
        out += [i for i in locked(sa.select(Invoice).where(Invoice.membership_id == owner)) if i not in out]
        s = ctx.session.get(BillingSchedule, owner)
        owner = s.replaces if s is not None else None
    return out


def _credited_unpaid(ctx: Ctx, inv: Invoice) -> int:
    """What credit notes took off an invoice before it was paid (not paid back: never charged)."""
    return int(ctx.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(
        CreditNote.amount_cents - CreditNote.refunded_cents), 0)).where(CreditNote.invoice_id == inv.id)) or 0)


def next_credit_number(ctx: Ctx) -> int:
    row: InvoiceCounter = counter(ctx)
    row.last_credit_note += 1
    return row.last_credit_note


def credit(ctx: Ctx, inv: Invoice, amount: int, on: date, reason: str, key: str) -> dict[str, Any]:
    """A credit note of `amount` on a finalised invoice: paid back to the card that paid it, or
    taken off what is still due (an unpaid invoice fully credited is void)."""
    existing = ctx.session.scalar(sa.select(CreditNote).where(CreditNote.company_id == ctx.company.id,
                                                              CreditNote.key == key))
    if existing is not None:
        return credit_view(existing)
    refunded = 0
    if inv.status == "paid":
        refunded = _refund(ctx, inv, amount, key)
    else:
        inv.amount_due_cents -= min(amount, inv.amount_due_cents)
        if inv.amount_due_cents == 0:
            inv.status, inv.next_attempt_on = "void", None
    note = CreditNote(company_id=ctx.company.id, key=key, number=next_credit_number(ctx), invoice_id=inv.id,
                      membership_id=inv.membership_id, customer_id=inv.customer_id, issued_on=on, reason=reason,
                      currency=inv.currency, amount_cents=amount, refunded_cents=refunded)
    inv.refunded_cents += refunded
    ctx.session.add(note)
    ctx.session.flush()
    return credit_view(note, inv.number)


def _refund(ctx: Ctx, inv: Invoice, amount: int, key: str) -> int:
    """Pay `amount` back to the card charge that paid the invoice; what the gateway refunded."""
    paid = ctx.session.scalar(sa.select(Payment).where(Payment.invoice_id == inv.id, Payment.kind == "charge",
                                                       Payment.status == "succeeded"))
    if paid is None:  # paid elsewhere (cash, another system): the credit note says what is owed back
        return 0
    pm = ctx.session.get(PaymentMethod, paid.payment_method_id)
    refund = Payment(company_id=ctx.company.id, key=f"refund:{key}", kind="refund", invoice_id=inv.id,
                     payment_method_id=paid.payment_method_id, amount_cents=amount, currency=inv.currency,
                     status="unknown", attempted_on=inv.paid_on or inv.issued_on)
    ctx.session.add(refund)
    ctx.session.flush()
    outcome = gateway(ctx, pm.gateway if pm else "sandbox").refund(ctx, paid.reference or "", amount, inv.currency,
                                                                   refund.key)
    refund.status, refund.reference, refund.decline_code = outcome.status, outcome.reference, outcome.decline_code
    return amount if outcome.status == "succeeded" else 0


def credit_view(note: CreditNote, invoice_number: int | None = None) -> dict[str, Any]:
    return {"number": note.number, "invoice": invoice_number, "issued_on": note.issued_on.isoformat(),
            "reason": note.reason, "currency": note.currency, "amount": format_cents(note.amount_cents),
            "refunded": format_cents(note.refunded_cents)}
