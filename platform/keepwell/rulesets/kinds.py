"""Ruleset kinds (Plan, EarningRules, NotificationTriggers...): each has a JSON Schema in
schemas/ and, where a schema cannot say everything, checks of its own. The area that gives a
kind its meaning registers it (memberships the Plan, rewards the EarningRules...), so a new kind
is added where it is used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..kernel.errors import Problem

Check = Callable[[dict[str, Any]], list[Problem]]


@dataclass
class Kind:
    name: str
    schema: str  # file name in schemas/
    title: str  # what contractors call it
    compiled: bool = False  # has rules for the engine (checked by compiling them)
    checks: list[Check] = field(default_factory=list)
    warnings: list[Check] = field(default_factory=list)  # worth a look before publishing; never block it


_KINDS: dict[str, Kind] = {}


def register(name: str, schema: str, title: str, compiled: bool = False) -> Kind:
    found = _KINDS.get(name)
    if found is None:
        found = _KINDS[name] = Kind(name, schema, title, compiled)
    return found


def add_check(name: str, check: Check) -> None:
    """A check across fields of documents of `name`, run once the schema passes."""
    if check not in _KINDS[name].checks:
        _KINDS[name].checks.append(check)


def add_warning(name: str, check: Check) -> None:
    """Something to show before publishing a document of `name` (a description quoting an old price)."""
    if check not in _KINDS[name].warnings:
        _KINDS[name].warnings.append(check)


def get(name: object) -> Kind | None:
    return _KINDS.get(name) if isinstance(name, str) else None


def names() -> tuple[str, ...]:
    if not _KINDS:
        raise RuntimeError("no ruleset kinds are registered: the areas are not loaded (import keepwell.usecases)")
    return tuple(_KINDS)


def compiled_names() -> tuple[str, ...]:
    """The kinds whose rules the engine evaluates against events."""
    return tuple(k.name for k in _KINDS.values() if k.compiled)
