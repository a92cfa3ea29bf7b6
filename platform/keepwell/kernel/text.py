"""Text as it may be stored: PostgreSQL cannot hold a NUL character (U+0000), so text holding
one is refused at the boundary, on every database, with the path where it was found."""

from __future__ import annotations

from .errors import InvalidDocument, Problem

NUL = "\x00"


def nul_problems(doc: object, file: str = "", path: str = "") -> list[Problem]:
    """Every NUL character in a document's strings and keys, with its path."""
    if isinstance(doc, str):
        return [Problem(path or "(document)", "contains a NUL character (\\u0000), which cannot be stored", file)] \
            if NUL in doc else []
    if isinstance(doc, dict):
        out = []
        for k, v in doc.items():
            here = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and NUL in k:
                out.append(Problem(here, "a key contains a NUL character (\\u0000), which cannot be stored", file))
            out += nul_problems(v, file, here)
        return out
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in nul_problems(v, file, f"{path}[{i}]")]
    return []


def storable(field: str, value: str | None) -> str | None:
    """Free text as stored; a NUL character is refused with the field's name."""
    if value is not None and NUL in value:
        raise InvalidDocument.field(field, "contains a NUL character (\\u0000), which cannot be stored",
                                    f"the {field} contains a NUL character (\\u0000)")
    return value
