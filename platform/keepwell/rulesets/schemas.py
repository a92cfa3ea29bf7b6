"""The JSON Schemas (schemas/ holds the files) as Keepwell validates with them.

Two documents are completed from the event catalog when they are loaded, so that the list of
event types lives in one place: `common.schema.json`'s `event_type` gets the declared names as
its enum, and `event.schema.json` (the envelope: id, type, customer, occurred_at, data) gets one
branch per event type with the schema of its data.
"""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from ..infra.resources import schemas_dir

if TYPE_CHECKING:  # the resolver's class is not exported by name
    from referencing._core import Resolver
from .event_types import EVENT_TYPES

BASE_URI = "https://keepwell.dev/schemas/"
EVENT_SCHEMA = "event.schema.json"

_lock = threading.Lock()
_built: dict[str, Any] = {"generation": -1}


def _files() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(schemas_dir()).glob("*.json"))}


def _completed() -> dict[str, dict[str, Any]]:
    schemas = _files()
    names = list(EVENT_TYPES.names)
    common = schemas["common.schema.json"]
    common["$defs"]["event_type"] = {**common["$defs"]["event_type"], "enum": names}
    envelope = schemas[EVENT_SCHEMA]
    branches = []
    for name in names:
        decl = EVENT_TYPES.get(name)
        assert decl is not None
        data = {"title": f"Data for {name}", "description": decl.description or f"Details of a {name} event.",
                **copy.deepcopy(decl.data)}
        branches.append({"if": {"required": ["type"], "properties": {"type": {"const": name}}},
                         "then": {"required": ["data"], "properties": {"data": data}}})
    envelope["allOf"] = branches
    return schemas


def _state() -> dict[str, Any]:
    if _built["generation"] != EVENT_TYPES.generation:
        with _lock:
            if _built["generation"] != EVENT_TYPES.generation:
                schemas = _completed()
                registry = Registry().with_resources(
                    (s.get("$id", BASE_URI + name), Resource.from_contents(s)) for name, s in schemas.items())
                _built.clear()
                _built.update(generation=EVENT_TYPES.generation, schemas=schemas, registry=registry, validators={},
                              fast=None)
    return _built


def schema(name: str) -> dict[str, Any]:
    """A schema document as Keepwell uses it (event.schema.json with its branches filled in)."""
    return _state()["schemas"][name]  # type: ignore[no-any-return]


def validator(name: str) -> Draft202012Validator:
    """The validator that reports every problem with its path (the `jsonschema` library)."""
    state = _state()
    found = state["validators"].get(name)
    if found is None:
        found = state["validators"][name] = Draft202012Validator(
            state["schemas"][name], registry=state["registry"], format_checker=Draft202012Validator.FORMAT_CHECKER)
    return found  # type: ignore[no-any-return]


def resolver(name: str) -> Resolver:
    """Follows the $refs of schema `name` (for the words of its validation messages)."""
    state = _state()
    registry: Registry = state["registry"]
    return registry.resolver(base_uri=state["schemas"][name].get("$id", BASE_URI + name))


def fast_event_validator() -> Any:
    """A compiled validator (`jsonschema-rs`) for the question "is this event valid?" only:
    about a hundred times faster than asking for the problems, and used for nothing else."""
    state = _state()
    if state["fast"] is None:
        import jsonschema_rs

        schemas = state["schemas"]
        registry = jsonschema_rs.Registry(
            [(s.get("$id", BASE_URI + name), s) for name, s in schemas.items() if name != EVENT_SCHEMA])
        state["fast"] = jsonschema_rs.validator_for(schemas[EVENT_SCHEMA], registry=registry, validate_formats=True)
    return state["fast"]
