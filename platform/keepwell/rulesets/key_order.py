"""Rulesets keep their schema's key order (apiVersion, kind, metadata, spec; a plan's settings in
the order its schema lists them), so a form save, a YAML edit and a pack install of the same
settings read alike, and Compare shows only what changed. Keys the schema does not know keep
their place after the known ones."""

from __future__ import annotations

import difflib
from typing import Any

from ..kernel.schema_paths import child, resolved
from . import kinds
from .documents import to_yaml
from .schemas import resolver, schema


def ruleset_yaml(doc: Any) -> str:
    """The YAML people read, save and compare: in the schema's key order."""
    return to_yaml(in_schema_order(doc))


def ruleset_diff(before: Any, after: Any, from_name: str, to_name: str) -> str:
    """Unified diff of two rulesets' YAML in the schema's key order (`before` None: nothing yet)."""
    old = ruleset_yaml(before).splitlines(keepends=True) if before is not None else []
    return "".join(difflib.unified_diff(old, ruleset_yaml(after).splitlines(keepends=True), from_name, to_name))


def in_schema_order(doc: Any) -> Any:
    """`doc` with every mapping's keys in its schema's order (a document of no known kind as is)."""
    kind = kinds.get(doc.get("kind")) if isinstance(doc, dict) else None
    if kind is None:
        return doc
    node, res = resolved(schema(kind.schema), resolver(kind.schema))
    return _ordered(doc, node, res)


def _ordered(value: Any, node: dict[str, Any], res: Any) -> Any:
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            found = child(node, i, value, res)
            out.append(_ordered(item, *found) if found else item)
        return out
    if not isinstance(value, dict):
        return value
    order = _property_order(node, res)
    keys = sorted(value, key=lambda k: order.get(k, len(order)))  # stable: unknown keys keep their order
    ordered = {}
    for key in keys:
        found = child(node, key, value, res)
        ordered[key] = _ordered(value[key], *found) if found else value[key]
    return ordered


def _property_order(node: dict[str, Any], res: Any) -> dict[str, int]:
    """Each key's place: the node's own properties first, then those its branches add."""
    names: list[str] = list(node.get("properties") or {})
    for branch_key in ("allOf", "oneOf", "anyOf"):
        for branch in node.get(branch_key) or []:
            sub, _ = resolved(branch, res)
            names.extend(n for n in sub.get("properties") or {} if n not in names)
    return {n: i for i, n in enumerate(names)}
