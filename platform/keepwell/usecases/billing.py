"""Billing: run what is due to be billed and collected, read invoices, keep payment methods."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..billing import documents, invoices, payment_methods, payments
from ..billing.gateways import gateway
from ..infra.context import Ctx
from ..kernel.text import storable
from . import due
from .app import Keepwell, reading, use_case

__all__ = ["add_card_token", "add_test_card", "gateways", "invoice", "invoice_document", "invoices_of",
           "payment_methods_of", "remove_payment_method", "run", "sandbox_card", "set_default_payment_method"]


def gateways(stripe_api_key: str | None, stripe_api_base: str, timeout: float) -> dict[str, Any]:
    """The payment gateways beside the built-in sandbox: Stripe when a key is given."""
    if not stripe_api_key:
        return {}
    from ..billing.stripe_gateway import StripeGateway

    return {"stripe": StripeGateway(stripe_api_key, stripe_api_base, timeout)}


def run(app: Keepwell, company: str, as_of: date) -> dict[str, Any]:
    """Invoice every billing period begun by `as_of` and collect what is due (charges, retries,
    changes of standing) — the embedded mode's billing; workers do the same as due work.
    Running it twice bills and charges once."""
    done = due.run(app, company, as_of, kinds={"billing", "collect"})
    return {"as_of": as_of.isoformat(), "invoices": done.invoices_issued, "charged": done.charged,
            "failed": done.failed, "retried": done.retried}


@reading
def invoices_of(ctx: Ctx, membership: str | None = None, customer: str | None = None) -> list[dict[str, Any]]:
    return invoices.listing(ctx, membership, customer)


@reading
def invoice(ctx: Ctx, number: int) -> dict[str, Any]:
    return invoices.by_number(ctx, number)


@use_case
def pay_invoice(ctx: Ctx, number: int) -> dict[str, Any]:
    """Charge an open invoice now with the card that pays it; the invoice as it stands after."""
    payments.pay_now(ctx, invoices.find(ctx, number, lock=True), ctx.today())
    return invoices.by_number(ctx, number)


@use_case
def add_test_card(ctx: Ctx, customer: str, card: str, default: bool = False) -> dict[str, Any]:
    """A sandbox test card for a customer (`success`, `decline`...): its payment method."""
    token = gateway(ctx, "sandbox").test_card(card)  # type: ignore[attr-defined]
    return payment_methods.view(payment_methods.add(ctx, customer, "sandbox", token, default))


@use_case
def add_card_token(ctx: Ctx, customer: str, gateway_name: str, token: str, default: bool = False) -> dict[str, Any]:
    """A card tokenised by a gateway's own page (the number never reaches Keepwell)."""
    storable("token", token)  # a card number given as the token is refused, and not quoted back
    card = gateway(ctx, gateway_name).describe(ctx, token)
    return payment_methods.view(payment_methods.add(ctx, customer, gateway_name, card, default))


@reading
def payment_methods_of(ctx: Ctx, customer: str) -> list[dict[str, Any]]:
    return payment_methods.listing(ctx, customer)


@use_case
def set_default_payment_method(ctx: Ctx, pm: str) -> dict[str, Any]:
    return payment_methods.view(payment_methods.set_default(ctx, pm))


@use_case
def remove_payment_method(ctx: Ctx, pm: str) -> dict[str, Any]:
    return payment_methods.view(payment_methods.remove(ctx, pm))


@reading
def invoice_document(ctx: Ctx, number: int, kind: str = "pdf") -> bytes:
    """An invoice as a PDF (or its HTML): a paid one is its receipt."""
    shown = invoices.by_number(ctx, number)
    return documents.invoice_pdf(ctx, shown) if kind == "pdf" else documents.invoice_html(ctx, shown).encode()


def sandbox_card(number: str, exp_month: int, exp_year: int) -> dict[str, Any]:
    """The sandbox card page: a typed test card as a token (the number goes no further)."""
    from ..billing.sandbox import SandboxGateway

    if not 1 <= exp_month <= 12 or not 2000 <= exp_year <= 2100:
        from ..kernel.errors import InvalidDocument

        raise InvalidDocument.field("exp", "Enter the expiry as a month (1-12) and a year, like 12 and 2030.")
    card = SandboxGateway().tokenize(number, exp_month, exp_year)
    return {"token": card.reference, "last4": card.last4, "brand": card.brand}
