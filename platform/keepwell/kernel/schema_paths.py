"""Which part of a JSON Schema describes one place in a document: `$ref`s followed (with the
property's own title and messages kept over the shared definition's), allOf/oneOf/anyOf branches
and if/then branches taken as the document meets them. Validation messages read field labels from
it; saved rulesets take their key order from it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

if TYPE_CHECKING:  # the resolver's class is not exported by name
    from referencing._core import Resolver


def resolved(node: Any, resolver: Resolver) -> tuple[dict[str, Any], Resolver]:
    """`node` with its $ref followed; the property's own title, description and x-messages win
    over the shared definition's."""
    if not isinstance(node, dict):
        return {}, resolver
    seen = 0
    while "$ref" in node and seen < 16:
        found = resolver.lookup(node["$ref"])
        target = found.contents if isinstance(found.contents, dict) else {}
        own = {k: v for k, v in node.items() if k != "$ref"}
        merged = {**target, **own}
        if "x-messages" in target and "x-messages" in own:
            merged["x-messages"] = {**target["x-messages"], **own["x-messages"]}
        node, resolver, seen = merged, found.resolver, seen + 1
    return node, resolver


def schema_at(root: dict[str, Any], steps: list[Any], instance: Any, resolver: Resolver
              ) -> tuple[dict[str, Any], Resolver]:
    """The schema of `instance` at `steps` (keys and indexes); {} where the schema says nothing."""
    node, res = resolved(root, resolver)
    for step in steps:
        found = child(node, step, instance, res)
        if found is None:
            return {}, res
        node, res = found
        instance = _at(instance, step)
    return node, res


def _at(instance: Any, step: Any) -> Any:
    try:
        return instance[step]
    except (KeyError, IndexError, TypeError):
        return None


def child(node: dict[str, Any], step: Any, instance: Any, res: Resolver, depth: int = 0
           ) -> tuple[dict[str, Any], Resolver] | None:
    """The schema of `instance[step]`: the node's own (properties, items...) completed by what its
    allOf/oneOf/anyOf and if/then branches say of it (the envelope's `data` per event type)."""
    if depth > 8:
        return None
    found = _own_child(node, step, res)
    for branch in _branches(node, instance):
        sub, sub_res = resolved(branch, res)
        more = child(sub, step, instance, sub_res, depth + 1)
        if more is not None:
            found = more if found is None else (_merged(found[0], more[0]), more[1])
    extra = node.get("additionalProperties")
    if found is None and not isinstance(step, int) and isinstance(extra, dict):
        return resolved(extra, res)
    return found


def _own_child(node: dict[str, Any], step: Any, res: Resolver) -> tuple[dict[str, Any], Resolver] | None:
    if isinstance(step, int):
        prefix = node.get("prefixItems") or []
        if step < len(prefix):
            return resolved(prefix[step], res)
        items = node.get("items")
        return resolved(items, res) if isinstance(items, dict) else None
    props = node.get("properties") or {}
    if step in props:
        return resolved(props[step], res)
    for pattern, sub in (node.get("patternProperties") or {}).items():
        if re.search(pattern, str(step)):
            return resolved(sub, res)
    return None


def _merged(general: dict[str, Any], specific: dict[str, Any]) -> dict[str, Any]:
    out = {**general, **specific}
    for key in ("properties", "x-messages"):
        if key in general and key in specific:
            out[key] = {**general[key], **specific[key]}
    return out


def _branches(node: dict[str, Any], instance: Any) -> Iterator[Any]:
    """The sub-schemas that may say what a child is: allOf/oneOf/anyOf branches and, for if/then,
    the branch whose condition the instance meets (the event envelope's data per type)."""
    for key in ("allOf", "oneOf", "anyOf"):
        for branch in node.get(key) or []:
            if isinstance(branch, dict) and "if" in branch:
                try:
                    met = Draft202012Validator(branch["if"]).is_valid(instance)
                except Exception:  # an `if` with a $ref cannot be checked alone: try the branch
                    met = True
                yield branch.get("then" if met else "else", {})
            else:
                yield branch
