"""Invoices as documents people keep: HTML (the email's attachment source, the portal's page) and
PDF (WeasyPrint). A paid invoice is its receipt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..customers.models import Customer
from ..infra.context import Ctx
from ..infra.pdf import html_to_pdf

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
WORDS = {"open": "Due", "paid": "Paid", "void": "Void", "uncollectible": "Written off", "draft": "Draft"}


def invoice_html(ctx: Ctx, shown: dict[str, Any]) -> str:
    """An invoice (as `invoices.view` shows it) as an HTML page."""
    customer = ctx.session.get(Customer, shown["customer"])
    return _env.get_template("invoice.html").render(
        inv=shown, company=ctx.company, customer=customer, title="Receipt" if shown["status"] == "paid" else "Invoice",
        status_words=WORDS.get(shown["status"], shown["status"]))


def invoice_pdf(ctx: Ctx, shown: dict[str, Any]) -> bytes:
    return html_to_pdf(invoice_html(ctx, shown))
