"""Invoices: made from a billing schedule, one per membership and period, finalised at once
(numbered without gaps per company, immutable from then on: corrections will be credit notes)."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from ..customers import locations
from ..customers.models import Customer
from ..infra.context import Ctx
from ..infra.database import is_postgres
from ..infra.sql import chunks, one_of
from ..kernel.errors import InvalidDocument, NotFound
from ..kernel.money import format_cents, tax_of
from ..messaging import outbox
from . import documents, payments
from .models import CreditNote, Invoice, InvoiceCounter, InvoiceLine, Payment


def counter(ctx: Ctx) -> InvoiceCounter:
    """The company's numbering, under its row lock (so two transactions never take the same
    number, and a rolled-back one gives its number back)."""
    q = sa.select(InvoiceCounter).where(InvoiceCounter.company_id == ctx.company.id)
    found = ctx.session.scalar(q.with_for_update() if is_postgres(ctx.session) else q)
    if found is None:
        found = InvoiceCounter(company_id=ctx.company.id, last_number=0, last_credit_note=0)
        ctx.session.add(found)
    return found


def next_number(ctx: Ctx) -> int:
    """The company's next invoice number."""
    row = counter(ctx)
    row.last_number += 1
    return row.last_number


def location_of(ctx: Ctx, customer_id: str) -> Any:
    """The location a customer is served at (its sales tax), if any."""
    who = ctx.session.get(Customer, customer_id)
    return locations.of_customer(ctx, who.location_id if who is not None else None)


def issue(ctx: Ctx, key: str, membership_id: str, customer_id: str, currency: str, issued_on: date,
          lines: list[dict[str, Any]]) -> Invoice | None:
    """A finalised invoice of these lines (None when it exists already: billing twice bills once)."""
    if ctx.session.scalar(sa.select(Invoice.id).where(Invoice.company_id == ctx.company.id, Invoice.key == key)):
        return None
    subtotal = sum(line["amount_cents"] for line in lines)
    who = ctx.session.get(Customer, customer_id)
    place = location_of(ctx, customer_id)
    # Tax per line, at the rate of the location the member is served at, each rounded on its own.
    rate = place.tax_rate if place is not None else "0"
    lines = [{**line, "tax_cents": tax_of(line["amount_cents"], rate)} for line in lines]
    tax = sum(line["tax_cents"] for line in lines)
    inv = Invoice(company_id=ctx.company.id, key=key, number=next_number(ctx), membership_id=membership_id,
                  customer_id=customer_id, status="open", currency=currency, issued_on=issued_on,
                  period_start=min(line["period_start"] for line in lines),
                  period_end=max(line["period_end"] for line in lines), subtotal_cents=subtotal, tax_cents=tax,
                  total_cents=subtotal + tax, amount_due_cents=subtotal + tax,
                  tax_rate=rate if place is not None else None, tax_name=place.tax_name if place is not None else None)
    payments.start(inv)
    ctx.session.add(inv)
    ctx.session.flush()
    ctx.session.add_all([InvoiceLine(invoice_id=inv.id, **line) for line in lines])
    ctx.session.flush()
    # Sent to the member by email through the outbox, in this transaction (never for an invoice
    # rolled back); a member without an email address gets none (the invoice is there to read).
    if who is not None and who.email:
        shown = view(ctx, inv)
        outbox.add(ctx, key=f"invoice:{inv.number}", event_id=None, customer_id=customer_id, kind="notification",
                   channel="email", template="invoice_issued", audience="customer", ruleset=None, rule=None,
                   payload={"membership": membership_id, "data": shown,
                            "attach": [{"filename": f"invoice-{inv.number}.pdf",
                                        "html": documents.invoice_html(ctx, shown)}]})
    return inv


def _related(ctx: Ctx, ids: list[int]) -> dict[str, dict[int, list[Any]]]:
    """The lines, payments and credit notes of these invoices, a query each (not three an invoice)."""
    out: dict[str, dict[int, list[Any]]] = {"lines": {}, "payments": {}, "notes": {}}
    for part in chunks(ctx.session, ids):
        for name, model, order in (("lines", InvoiceLine, InvoiceLine.id), ("payments", Payment, Payment.id),
                                   ("notes", CreditNote, CreditNote.number)):
            for row in ctx.session.scalars(sa.select(model).where(one_of(ctx.session, model.invoice_id, part))
                                           .order_by(order)):
                out[name].setdefault(row.invoice_id, []).append(row)
    return out


def view(ctx: Ctx, inv: Invoice, related: dict[str, dict[int, list[Any]]] | None = None) -> dict[str, Any]:
    got = related if related is not None else _related(ctx, [inv.id])
    return {"number": inv.number, "status": inv.status, "membership": inv.membership_id, "customer": inv.customer_id,
            "issued_on": inv.issued_on.isoformat() if inv.issued_on else None, "currency": inv.currency,
            "period_start": inv.period_start.isoformat(), "period_end": inv.period_end.isoformat(),
            "subtotal": format_cents(inv.subtotal_cents), "tax": format_cents(inv.tax_cents),
            "total": format_cents(inv.total_cents), "amount_due": format_cents(inv.amount_due_cents),
            "refunded": format_cents(inv.refunded_cents), "paid_on": inv.paid_on.isoformat() if inv.paid_on else None,
            "next_attempt_on": inv.next_attempt_on.isoformat() if inv.next_attempt_on else None,
            "payments": [{"kind": p.kind, "amount": format_cents(p.amount_cents), "status": p.status,
                          "on": p.attempted_on.isoformat(), "decline_code": p.decline_code}
                         for p in got["payments"].get(inv.id, [])],
            "credit_notes": [{"number": n.number, "issued_on": n.issued_on.isoformat(), "reason": n.reason,
                              "amount": format_cents(n.amount_cents), "refunded": format_cents(n.refunded_cents)}
                             for n in got["notes"].get(inv.id, [])],
            "tax_rate": inv.tax_rate, "tax_name": inv.tax_name,
            "lines": [{"kind": x.kind, "description": x.description, "amount": format_cents(x.amount_cents),
                       "tax": format_cents(x.tax_cents),
                       "period_start": x.period_start.isoformat(), "period_end": x.period_end.isoformat()}
                      for x in got["lines"].get(inv.id, [])]}


def listing(ctx: Ctx, membership: str | None = None, customer: str | None = None) -> list[dict[str, Any]]:
    """A membership's or a customer's invoices (one of them), oldest first."""
    if not (membership or customer):
        raise InvalidDocument.field("membership", "name a membership or a customer")
    q = sa.select(Invoice).where(Invoice.company_id == ctx.company.id)
    q = q.where(Invoice.membership_id == membership) if membership else q.where(Invoice.customer_id == customer)
    found = list(ctx.session.scalars(q.order_by(Invoice.number)))
    related = _related(ctx, [inv.id for inv in found])
    return [view(ctx, inv, related) for inv in found]


def find(ctx: Ctx, number: int, lock: bool = False) -> Invoice:
    q = sa.select(Invoice).where(Invoice.company_id == ctx.company.id, Invoice.number == number)
    inv = ctx.session.scalar(q.with_for_update() if lock else q)
    if inv is None:
        raise NotFound(f"no invoice {number}")
    return inv


def by_number(ctx: Ctx, number: int) -> dict[str, Any]:
    return view(ctx, find(ctx, number))
