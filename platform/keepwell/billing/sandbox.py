"""The sandbox gateway: the embedded default, for trying billing without a payment provider.
Deterministic test cards answer the way real banks do:

| test card            | number              | a charge...                                              |
|----------------------|---------------------|----------------------------------------------------------|
| `success`            | 4242 4242 4242 4242 | succeeds                                                 |
| `decline`            | 4000 0000 0000 0002 | is declined (`card_declined`; retried on the plan's days) |
| `insufficient_funds` | 4000 0000 0000 9995 | is declined (`insufficient_funds`; retried)              |
| `expired`            | 4000 0000 0000 0069 | is declined (`expired_card`; never retried)              |
| `hard_decline`       | 4100 0000 0000 0019 | is declined (`stolen_card`; never retried)               |
| `network_error`      | 4000 0000 0000 0259 | succeeds, but the answer is lost (a timeout): the charge  |
|                      |                     | must be looked up, not taken again                      |

The sandbox keeps its own books (`sandbox_charges`, by company and idempotency key): asked
twice with one key it answers with the first result, as real gateways do. A card number given
to `tokenize` is only matched against these; it is never stored or logged.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa

from ..kernel.errors import InvalidDocument
from .gateways import FINAL, Card, GatewayUnavailable, Outcome
from .models import SandboxCharge

# test card -> (number, what a charge does: None succeeds, else the decline code)
TEST_CARDS: dict[str, tuple[str, str | None]] = {
    "success": ("4242424242424242", None),
    "decline": ("4000000000000002", "card_declined"),
    "insufficient_funds": ("4000000000009995", "insufficient_funds"),
    "expired": ("4000000000000069", "expired_card"),
    "hard_decline": ("4100000000000019", "stolen_card"),
    "network_error": ("4000000000000259", None),
}
MESSAGES = {"card_declined": "The card was declined.", "insufficient_funds": "The card has insufficient funds.",
            "expired_card": "The card has expired.", "stolen_card": "The card was reported lost or stolen."}


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


class SandboxGateway:
    name = "sandbox"

    def test_card(self, card: str, exp_month: int = 12, exp_year: int = 2034) -> Card:
        """A token for one of the test cards, by name."""
        if card not in TEST_CARDS:
            raise InvalidDocument.field("test_card", f"{card[:30]!r} is not a test card: use one of "
                                        + ", ".join(TEST_CARDS))
        token = f"sbx_{card}_{exp_month:02d}{exp_year}_{secrets.token_hex(6)}"
        return Card(token, "visa", TEST_CARDS[card][0][-4:], exp_month, exp_year)

    @staticmethod
    def _card_of(token: str) -> str:
        return token[4:].rsplit("_", 2)[0] if token.startswith("sbx_") and token.count("_") >= 3 else ""

    def describe(self, ctx: Any, token: str) -> Card:
        """The card behind a token the sandbox's card page gave."""
        card = self._card_of(token)
        if card not in TEST_CARDS:
            raise InvalidDocument.field("token", "is not a sandbox card token (they start sbx_)")
        expiry = token.rsplit("_", 2)[1]
        return Card(token, "visa", TEST_CARDS[card][0][-4:], int(expiry[:2]), int(expiry[2:]))

    def tokenize(self, number: str, exp_month: int, exp_year: int) -> Card:
        """What the sandbox's card page does with a card typed into it: a token (the number
        itself goes no further than this function)."""
        digits = "".join(c for c in number if c.isdigit())
        if not 12 <= len(digits) <= 19 or not luhn_ok(digits):
            raise InvalidDocument.field("number", "is not a valid card number")
        name = next((n for n, (pan, _) in TEST_CARDS.items() if pan == digits), None)
        if name is None:
            raise InvalidDocument.field("number", "the sandbox takes only its test cards (e.g. 4242 4242 4242 4242)")
        return self.test_card(name, exp_month, exp_year)

    def _book(self, ctx: Any, key: str) -> SandboxCharge | None:
        return ctx.session.get(SandboxCharge, f"{ctx.company.id}:{key}")

    def _outcome(self, row: SandboxCharge) -> Outcome:
        code = row.decline_code
        return Outcome(row.status, row.reference, code, code not in FINAL, MESSAGES.get(code or "", ""))

    def charge(self, ctx: Any, token: str, amount_cents: int, currency: str, key: str) -> Outcome:
        card = self._card_of(token)
        row = self._book(ctx, key)
        if row is None:
            declined = TEST_CARDS[card][1] if card in TEST_CARDS else "incorrect_number"
            row = SandboxCharge(key=f"{ctx.company.id}:{key}", reference=f"sbxch_{secrets.token_hex(8)}",
                                kind="charge", token=token, amount_cents=amount_cents, currency=currency,
                                status="failed" if declined else "succeeded", decline_code=declined)
            ctx.session.add(row)
            ctx.session.flush()
        if card == "network_error":
            raise GatewayUnavailable("the sandbox took the charge but its answer was lost (test card network_error)")
        return self._outcome(row)

    def lookup(self, ctx: Any, key: str) -> Outcome | None:
        row = self._book(ctx, key)
        return self._outcome(row) if row is not None else None

    def refund(self, ctx: Any, charge: str, amount_cents: int, currency: str, key: str) -> Outcome:
        row = self._book(ctx, key)
        if row is None:
            taken = ctx.session.scalar(sa.select(SandboxCharge).where(SandboxCharge.reference == charge))
            refunded = ctx.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(SandboxCharge.amount_cents), 0))
                                          .where(SandboxCharge.token == charge, SandboxCharge.kind == "refund"))
            ok = taken is not None and taken.status == "succeeded" and refunded + amount_cents <= taken.amount_cents
            row = SandboxCharge(key=f"{ctx.company.id}:{key}", reference=f"sbxre_{secrets.token_hex(8)}",
                                kind="refund", token=charge, amount_cents=amount_cents, currency=currency,
                                status="succeeded" if ok else "failed",
                                decline_code=None if ok else "charge_not_refundable")
            ctx.session.add(row)
            ctx.session.flush()
        return self._outcome(row)
