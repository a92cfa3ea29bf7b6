"""Payment gateways: what Keepwell asks of one (charge a card token, look a charge up by its
idempotency key, refund a charge) and what it answers. Two implementations: the built-in
sandbox (`billing.sandbox`, the embedded default) and Stripe (`billing.stripe_gateway`).

Every call carries an idempotency key made from what it is for (invoice, attempt): asked twice
— a retry after a timeout, a transaction retried after a lost race, a crash before commit — the
gateway answers with the first result and moves money once. A charge that got no answer is
looked up by its key before anything is charged again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..kernel.errors import Declined


@dataclass(frozen=True)
class Card:
    """A tokenised card as the gateway describes it: never its number."""

    reference: str  # the gateway's token (e.g. a Stripe payment method id)
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | failed
    reference: str | None = None  # the gateway's id of the charge or refund
    decline_code: str | None = None  # card_declined | insufficient_funds | expired_card | stolen_card ...
    retryable: bool = True  # False: the bank refused for good; trying the card again is pointless
    message: str = ""


class GatewayUnavailable(Exception):
    """No answer from the gateway (a timeout, a dropped connection): whether money moved is
    unknown until the charge is looked up by its key."""


class Gateway(Protocol):
    name: str

    def describe(self, ctx: Any, token: str) -> Card: ...

    def charge(self, ctx: Any, token: str, amount_cents: int, currency: str, key: str) -> Outcome: ...

    def lookup(self, ctx: Any, key: str) -> Outcome | None: ...

    def refund(self, ctx: Any, charge: str, amount_cents: int, currency: str, key: str) -> Outcome: ...


# Decline codes a retry cannot fix: the member must give another card.
FINAL = frozenset({"expired_card", "stolen_card", "lost_card", "pickup_card", "incorrect_number",
                   "invalid_account", "card_not_supported", "do_not_try_again", "fraudulent"})


def gateway(ctx: Any, name: str) -> Gateway:
    """The gateway a payment method was tokenised by (built by the composition root)."""
    found = (ctx.gateways or {}).get(name)
    if found is None:
        raise Declined("gateway_unavailable", f"the {name} payment gateway is not set up on this server")
    return found  # type: ignore[no-any-return]
