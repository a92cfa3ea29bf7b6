"""Validation of ruleset documents and events against the JSON Schemas, plus the checks a schema
cannot express (rules that must compile, tiers that must be unique...). Every problem is
reported, each with its path, never just the first."""

from __future__ import annotations

from typing import Any

from ..kernel import schema_messages
from ..kernel.errors import CompileError, Problem
from ..kernel.text import nul_problems
from . import kinds
from .schemas import EVENT_SCHEMA, fast_event_validator, resolver, validator


def schema_problems(name: str, doc: object, file: str = "") -> list[Problem]:
    """Every way `doc` breaks schema `name`, in words (see messages), each with its path."""
    return schema_messages.problems(validator(name), doc, resolver(name), "(document)", file)


def validate_ruleset(doc: object, file: str = "") -> list[Problem]:
    """All problems with a ruleset document; empty when it can be published."""
    if not isinstance(doc, dict):
        return [Problem("(document)", "a ruleset is a mapping with apiVersion, kind, metadata and spec", file)]
    if nul := nul_problems(doc, file):
        return nul
    kind = kinds.get(doc.get("kind"))  # a list or mapping as kind is simply not one
    if kind is None:
        return [Problem("kind", f"{doc.get('kind')!r} is not one of {sorted(kinds.names())}", file)]
    problems = schema_problems(kind.schema, doc, file)
    if problems:
        return problems
    return [Problem(p.path, p.message, file) for p in semantic_problems(kind, doc)]


def semantic_problems(kind: kinds.Kind, doc: dict[str, Any]) -> list[Problem]:
    from .compiler import compile_document

    problems: list[Problem] = []
    if kind.compiled:
        try:
            compile_document(doc, "check@0")
        except CompileError as exc:
            problems.extend(exc.problems)
    for check in kind.checks:
        problems.extend(check(doc))
    return problems


def publish_warnings(doc: object) -> list[Problem]:
    """What is worth a second look before `doc` is published (it can be published all the same)."""
    kind = kinds.get(doc.get("kind")) if isinstance(doc, dict) else None
    if kind is None:
        return []
    return [w for check in kind.warnings for w in check(doc)]  # type: ignore[arg-type]


def is_valid_event(payload: object) -> bool:
    """True only when `validate_event` would find no problem (the fast path of ingest)."""
    return bool(fast_event_validator().is_valid(payload)) and not nul_problems(payload)


def validate_event(payload: object) -> list[Problem]:
    if not isinstance(payload, dict):
        return [Problem("(event)", "an event is a JSON object with id, type, customer, occurred_at and data")]
    return nul_problems(payload) or schema_problems(EVENT_SCHEMA, payload)
