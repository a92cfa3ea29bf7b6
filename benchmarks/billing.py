"""A billing run at scale: N monthly members, each with a sandbox card, invoiced and charged by
`billing.run` (an invoice numbered under the company's counter lock, its line, the charge with its
idempotency key, the sandbox's own books, a payment_succeeded event, the invoice email in the
outbox) — against a plain INSERT of the same invoice, line and payment rows (the database's own
limit). Every membership must end with exactly one paid invoice and one charge: none lost, none
taken twice."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import sqlalchemy as sa

from keepwell.billing.models import Invoice, InvoiceLine, Payment, SandboxCharge
from keepwell.usecases import billing, customers, memberships, rulesets

from .common import COMPANY, fresh_app

ON = date(2026, 3, 1)
PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Club"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly"}, "price": {"monthly": "29.00"},
                 "billing": {"anchor_day": 1}}}


def _members(app, n: int) -> None:
    rulesets.publish(app, COMPANY, PLAN, "bench", date(1970, 1, 1))
    for i in range(n):
        cid = customers.add_customer(app, COMPANY, f"Member {i}", f"m{i}@example.com")
        billing.add_test_card(app, COMPANY, cid, "success")
        memberships.enroll(app, COMPANY, cid, "club", ON, cadence="monthly")


def _insert_seconds(app, n: int) -> float:
    """The same rows written by plain INSERTs in one transaction (then removed, outside the timing)."""
    now = datetime.now(UTC)
    with app.database.engine.begin() as conn:
        company = conn.scalar(sa.text("select id from companies where slug = 'default'"))
        first = (conn.scalar(sa.select(sa.func.coalesce(sa.func.max(Invoice.id), 0))) or 0) + 1
        start = time.perf_counter()
        conn.execute(sa.insert(Invoice.__table__), [
            {"id": first + i, "company_id": company, "key": f"bench:{i}", "number": 10_000_000 + i,
             "membership_id": f"mem_{i}", "customer_id": f"cus_{i}", "status": "paid", "currency": "USD",
             "issued_on": ON, "period_start": ON, "period_end": ON, "subtotal_cents": 2900, "tax_cents": 0,
             "total_cents": 2900, "amount_due_cents": 0, "created_at": now, "attempts": 1, "refunded_cents": 0}
            for i in range(n)])
        conn.execute(sa.insert(InvoiceLine.__table__), [
            {"invoice_id": first + i, "kind": "membership_fee", "description": "Club", "amount_cents": 2900,
             "period_start": ON, "period_end": ON, "tax_cents": 0} for i in range(n)])
        conn.execute(sa.insert(Payment.__table__), [
            {"company_id": company, "key": f"bench:{i}", "kind": "charge", "invoice_id": first + i,
             "payment_method_id": "pm_bench", "amount_cents": 2900, "currency": "USD", "status": "succeeded",
             "retryable": True, "attempted_on": ON, "created_at": now} for i in range(n)])
        seconds = time.perf_counter() - start
        conn.execute(sa.delete(Payment.__table__).where(Payment.key.like("bench:%")))
        conn.execute(sa.delete(InvoiceLine.__table__).where(InvoiceLine.invoice_id >= first))
        conn.execute(sa.delete(Invoice.__table__).where(Invoice.key.like("bench:%")))
    return seconds


def run(database: str, quick: bool = False) -> dict:
    n = 100 if quick else 2000
    with fresh_app(database) as app:
        _members(app, n)
        insert_s = _insert_seconds(app, n)
        start = time.perf_counter()
        done = billing.run(app, COMPANY, ON)
        seconds = time.perf_counter() - start
        again = billing.run(app, COMPANY, ON)
        with app.database.engine.connect() as conn:
            paid = conn.scalar(sa.select(sa.func.count()).select_from(Invoice).where(Invoice.status == "paid"))
            taken = conn.scalar(sa.select(sa.func.count()).select_from(SandboxCharge))
    assert done["invoices"] == done["charged"] == paid == taken == n, (done, paid, taken)
    assert again["invoices"] == again["charged"] == 0, again
    return {"name": f"billing_{database}", "memberships": n, "run_seconds": round(seconds, 2),
            "per_s": round(n / seconds), "ms_per_membership": round(1000 * seconds / n, 2),
            "insert_seconds": round(insert_s, 3), "ratio_vs_insert": round(seconds / insert_s, 1),
            "lost": n - paid, "doubled": taken - n}
