"""Validation of ruleset documents and events against the JSON Schemas in schemas/, plus the
checks a schema cannot express (rules that must compile, tiers that must be unique...).
Every problem is reported, each with its JSON path, never just the first.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from .errors import Problem
from .resources import schemas_dir

KIND_SCHEMAS = {
    "Plan": "plan.schema.json",
    "EarningRules": "earning_rules.schema.json",
    "NotificationTriggers": "notification_triggers.schema.json",
}
BASE_URI = "https://keepwell.dev/schemas/"


@cache
def _registry() -> tuple[Registry, dict[str, dict]]:
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(schemas_dir()).glob("*.json"))}
    registry = Registry().with_resources(
        (s.get("$id", BASE_URI + name), Resource.from_contents(s)) for name, s in schemas.items()
    )
    return registry, schemas


def schema(name: str) -> dict:
    return _registry()[1][name]


@cache
def _validator(name: str) -> Draft202012Validator:
    registry, schemas = _registry()
    return Draft202012Validator(
        schemas[name], registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _path(error) -> str:
    # "$.spec.rules[2].when" reads better without the leading "$." for contractors.
    p = error.json_path
    return "(document)" if p == "$" else p[2:] if p.startswith("$.") else p


def _schema_problems(name: str, doc: object, file: str) -> list[Problem]:
    problems = []
    for error in sorted(_validator(name).iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        if error.context:  # oneOf/anyOf: the branch errors say more than "is not valid under any"
            best = max(error.context, key=lambda e: len(e.absolute_path))
            problems.append(Problem(_path(best), best.message, file))
        else:
            problems.append(Problem(_path(error), error.message, file))
    return problems


def nul_problems(doc: object, file: str = "", path: str = "") -> list[Problem]:
    """Text holding a NUL character (U+0000): valid JSON, but PostgreSQL cannot store it, so it is
    refused up front on every database rather than failing at the INSERT."""
    if isinstance(doc, str):
        return [Problem(path or "(document)", "contains a NUL character (\\u0000), which cannot be stored", file)] \
            if "\x00" in doc else []
    if isinstance(doc, dict):
        out = []
        for k, v in doc.items():
            here = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and "\x00" in k:
                out.append(Problem(here, "a key contains a NUL character (\\u0000), which cannot be stored", file))
            out += nul_problems(v, file, here)
        return out
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in nul_problems(v, file, f"{path}[{i}]")]
    return []


def validate_ruleset(doc: object, file: str = "") -> list[Problem]:
    """All problems with a ruleset document; empty when it can be published."""
    if not isinstance(doc, dict):
        return [Problem("(document)", "a ruleset is a mapping with apiVersion, kind, metadata and spec", file)]
    if nul := nul_problems(doc, file):
        return nul
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in KIND_SCHEMAS:  # a list or mapping is not hashable
        return [Problem("kind", f"{kind!r} is not one of {sorted(KIND_SCHEMAS)}", file)]
    problems = _schema_problems(KIND_SCHEMAS[kind], doc, file)
    if problems:
        return problems
    return [Problem(p.path, p.message, file) for p in _semantic_problems(kind, doc)]


def _semantic_problems(kind: str, doc: dict) -> list[Problem]:
    from .compiler import compile_document
    from .errors import CompileError
    from .plans import plan_problems

    if kind == "Plan":
        return plan_problems(doc)
    problems: list[Problem] = []
    try:
        compile_document(doc, "check@0")
    except CompileError as exc:
        problems.extend(exc.problems)
    if kind == "NotificationTriggers":
        problems.extend(_template_problems(doc))
    return problems


def _template_problems(doc: dict) -> list[Problem]:
    from .notify import template_names

    spec = doc.get("spec") or {}
    known = set(spec.get("templates") or {}) | template_names()
    return [
        Problem(f"spec.triggers[{i}].template", f"no template {t['template']!r}: define it in spec.templates "
                f"or use a shipped one ({', '.join(sorted(template_names()))})")
        for i, t in enumerate(spec.get("triggers") or []) if t.get("template") not in known
    ]


def validate_event(payload: object) -> list[Problem]:
    if not isinstance(payload, dict):
        return [Problem("(event)", "an event is a JSON object with id, type, customer, occurred_at and data")]
    return nul_problems(payload) or _schema_problems("event.schema.json", payload, "")
