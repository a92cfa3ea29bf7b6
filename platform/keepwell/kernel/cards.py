"""Card numbers (PANs) never enter Keepwell: found in what comes in, they are refused; found in
an error message or a log line, they are masked. A card number here is 13 to 19 digits (spaces
or dashes between them allowed), standing on its own (not inside a word or an id), with a card
network's prefix that passes the Luhn check — which a phone number or an amount practically
never does."""

from __future__ import annotations

import re
from typing import Any

# Digits, groups of them one space or dash apart, standing on their own: a run inside a word or
# an id (cus_51473614734694df, random hex) is part of that, not a card number someone typed.
_RUN = re.compile(r"(?<![A-Za-z0-9_])\d+(?:[ -]\d+)*(?![A-Za-z0-9_])")
_NETWORK = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|4[4-9]|5)|35|62)")
MASK = "[card number removed]"
REFUSED = "looks like a card number: Keepwell never takes card numbers (cards are added through the payment gateway)"


def luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_pan(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and bool(_NETWORK.match(digits)) and luhn(digits)


def _holds_pan(run: str) -> bool:
    """Whether consecutive groups of a run of digits make a card number ("4111 1111 1111 1111",
    but also the "4111111111111111" of "4111111111111111 401")."""
    groups = re.split(r"[ -]", run)
    for i in range(len(groups)):
        digits = ""
        for g in groups[i:]:
            digits += g
            if len(digits) > 19:
                break
            if _is_pan(digits):
                return True
    return False


def _runs(text: str) -> list[re.Match[str]]:
    return [m for m in _RUN.finditer(text) if sum(c.isdigit() for c in m.group(0)) >= 13]


def has_pan(text: str) -> bool:
    return any(_holds_pan(m.group(0)) for m in _runs(text))


def mask(text: str) -> str:
    """The text with every card number in it replaced."""
    if not any(c.isdigit() for c in text):
        return text
    return _RUN.sub(lambda m: MASK if sum(c.isdigit() for c in m.group(0)) >= 13 and _holds_pan(m.group(0))
                    else m.group(0), text)


def find_pan(value: Any, path: str = "") -> str | None:
    """The path of the first string in a JSON-like value holding a card number (keys included)."""
    if isinstance(value, str):
        return path if has_pan(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if has_pan(str(k)):
                return sub
            found = find_pan(v, sub)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = find_pan(v, f"{path}[{i}]")
            if found is not None:
                return found
    elif isinstance(value, int) and not isinstance(value, bool):
        return path if has_pan(str(value)) else None
    return None
