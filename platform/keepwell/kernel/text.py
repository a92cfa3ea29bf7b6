"""Text as it may be stored. PostgreSQL cannot hold a NUL character (U+0000), and no database
can hold half of a UTF-16 surrogate pair (JSON may carry "\\ud800" alone; it is no character),
so text holding either is refused at the boundary, on every database, with the path where it
was found. Documents from outside are also bounded in depth: nothing Keepwell reads nests 32
levels, and a document nested 100,000 deep would exhaust the stack of whatever walks it."""

from __future__ import annotations

import re

from .cards import REFUSED, has_pan
from .errors import InvalidDocument, Problem

NUL = "\x00"
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_may_hold_unstorable(text: str) -> bool:
    """Whether JSON text (ensure_ascii=False) may hold a NUL or lone surrogate: a quick test
    before walking the document for `nul_problems`."""
    return "\\u0000" in text or _SURROGATE.search(text) is not None


def _unstorable(text: str) -> str | None:
    """Why this text cannot be stored, or None."""
    if NUL in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains half of a character (a lone UTF-16 surrogate such as \\ud800), which cannot be stored"
    return None


def nul_problems(doc: object, file: str = "", path: str = "") -> list[Problem]:
    """Every string or key of a document that cannot be stored (NUL, lone surrogate), with its path."""
    if isinstance(doc, str):
        why = _unstorable(doc)
        return [Problem(path or "(document)", why, file)] if why else []
    if isinstance(doc, dict):
        out = []
        for k, v in doc.items():
            here = f"{path}.{k}" if path else str(k)
            why = _unstorable(k) if isinstance(k, str) else None
            if why:
                out.append(Problem(here, f"the key {why}", file))
            out += nul_problems(v, file, here)
        return out
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in nul_problems(v, file, f"{path}[{i}]")]
    return []


def depth_problem(doc: object, limit: int = MAX_DEPTH) -> Problem | None:
    """A problem when the document nests deeper than `limit` (walked without recursion)."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return Problem("(document)", f"nests more than {limit} levels deep")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return None


def storable(field: str, value: str | None) -> str | None:
    """Free text as stored; a NUL character, a lone surrogate or a card number is refused with
    the field's name."""
    if value is not None:
        why = _unstorable(value)
        if why:
            raise InvalidDocument.field(field, why, f"the {field} {why.split(',')[0]}")
        if has_pan(value):
            raise InvalidDocument.field(field, REFUSED, f"the {field} {REFUSED}")
    return value
