"""The Stripe gateway, through Stripe's official library. Cards are tokenised by Stripe itself
(Stripe.js or Elements in the browser give a PaymentMethod id, pm_...): no card number ever
reaches Keepwell. Charges are PaymentIntents confirmed off-session; refunds are Refunds of
them. Every call sends Keepwell's idempotency key, and each PaymentIntent carries it in its
metadata so that a charge whose answer was lost can be found again (`lookup`)."""

from __future__ import annotations

from typing import Any

import stripe

from .gateways import FINAL, Card, GatewayUnavailable, Outcome

KEY_FIELD = "keepwell_key"


class StripeGateway:
    name = "stripe"

    def __init__(self, api_key: str, api_base: str = "https://api.stripe.com", timeout: float = 20.0):
        # No retries of its own: a charge without an answer is looked up by Keepwell, then retried.
        self.client = stripe.StripeClient(api_key, base_addresses={"api": api_base}, max_network_retries=0,
                                          http_client=stripe.new_default_http_client(timeout=timeout))

    def describe(self, ctx: Any, token: str) -> Card:
        try:
            pm = self.client.v1.payment_methods.retrieve(token)
        except stripe.APIConnectionError as exc:
            raise GatewayUnavailable(str(exc)) from exc
        except stripe.InvalidRequestError as exc:
            from ..kernel.errors import InvalidDocument

            raise InvalidDocument.field("token", "Stripe does not know this card token") from exc
        card = pm.card
        assert card is not None
        return Card(pm.id, str(card.brand), str(card.last4), int(card.exp_month), int(card.exp_year))

    def charge(self, ctx: Any, token: str, amount_cents: int, currency: str, key: str) -> Outcome:
        scoped = f"{ctx.company.id}:{key}"
        try:
            pi = self.client.v1.payment_intents.create(
                params={"amount": amount_cents, "currency": currency.lower(), "payment_method": token,
                        "payment_method_types": ["card"], "confirm": True, "off_session": True,
                        "metadata": {KEY_FIELD: scoped}},
                options={"idempotency_key": f"charge-{scoped}"})
        except stripe.CardError as exc:
            return _declined(exc)
        except stripe.APIConnectionError as exc:
            raise GatewayUnavailable(str(exc)) from exc
        return _outcome(pi)

    def lookup(self, ctx: Any, key: str) -> Outcome | None:
        scoped = f"{ctx.company.id}:{key}"
        try:
            try:
                found = list(self.client.v1.payment_intents.search(
                    params={"query": f"metadata['{KEY_FIELD}']:'{scoped}'"}).data)
            except stripe.InvalidRequestError:  # no search API (localstripe): the latest ones, by hand
                found = [pi for pi in self.client.v1.payment_intents.list(params={"limit": 100}).data
                         if pi.metadata is not None and pi.metadata.to_dict().get(KEY_FIELD) == scoped]
        except stripe.APIConnectionError as exc:
            raise GatewayUnavailable(str(exc)) from exc
        return _outcome(found[0]) if found else None

    def refund(self, ctx: Any, charge: str, amount_cents: int, currency: str, key: str) -> Outcome:
        try:
            r = self.client.v1.refunds.create(params={"payment_intent": charge, "amount": amount_cents},
                                           options={"idempotency_key": f"refund-{ctx.company.id}:{key}"})
        except stripe.InvalidRequestError as exc:
            return Outcome("failed", None, "charge_not_refundable", False, exc.user_message or str(exc))
        except stripe.APIConnectionError as exc:
            raise GatewayUnavailable(str(exc)) from exc
        return Outcome("succeeded" if r.status in ("succeeded", "pending") else "failed", r.id)


def _outcome(pi: Any) -> Outcome:
    if pi.status == "succeeded":
        return Outcome("succeeded", pi.id)
    error = pi.last_payment_error
    code = (getattr(error, "decline_code", None) or getattr(error, "code", None)) if error else None
    return Outcome("failed", pi.id, code or pi.status, (code or "") not in FINAL,
                   getattr(error, "message", "") if error else "")


def _declined(exc: stripe.CardError) -> Outcome:
    code = getattr(exc, "decline_code", None) or exc.code or "card_declined"
    pi = (exc.error.payment_intent if exc.error is not None else None)
    return Outcome("failed", getattr(pi, "id", None) if pi else None, code, code not in FINAL,
                   exc.user_message or str(exc))
