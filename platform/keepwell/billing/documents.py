"""Invoices as documents people keep: HTML (the email's attachment source, the portal's page) and
PDF (WeasyPrint). A paid invoice is its receipt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..customers.models import Customer
from ..infra.context import Ctx
from ..infra.pdf import html_to_pdf, render_html

TEMPLATES = Path(__file__).parent / "templates"
WORDS = {"open": "Due", "paid": "Paid", "void": "Void", "uncollectible": "Written off", "draft": "Draft"}


def invoice_html(ctx: Ctx, shown: dict[str, Any]) -> str:
    """An invoice (as `invoices.view` shows it) as an HTML page."""
    customer = ctx.session.get(Customer, shown["customer"])
    return render_html(
        TEMPLATES, "invoice.html", inv=shown, company=ctx.company, customer=customer,
        title="Receipt" if shown["status"] == "paid" else "Invoice",
        status_words=WORDS.get(shown["status"], shown["status"]))


def invoice_pdf(ctx: Ctx, shown: dict[str, Any]) -> bytes:
    return html_to_pdf(invoice_html(ctx, shown))
