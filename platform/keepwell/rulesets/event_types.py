"""The catalog of event types: what events exist and the typed fields of their `data`.

Nothing is listed here by hand. Each area declares its event types where it handles them
(`keepwell.events.registry.event_type`), and the declaration lands in this catalog: the name,
the JSON Schema of its data, and whether only the platform raises it. From that one
declaration come the event schema that validates incoming events (`rulesets.schemas`), the
list of types a rule may react to, and the field types the compiler needs to turn "250.00"
into cents. Adding a type touches one module: the one that declares and handles it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

MONEY, STRING, INTEGER = "money", "string", "integer"
COMMON = "https://keepwell.dev/schemas/common.schema.json#/$defs/"


def common(name: str) -> dict[str, str]:
    """A reference to a shared definition of common.schema.json (money, date, slug...)."""
    return {"$ref": COMMON + name}


def data_schema(required: list[str], **properties: Any) -> dict[str, Any]:
    """The JSON Schema of an event's `data`: these fields and no others."""
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": required}


REASON = {"title": "Reason", "description": "Why it happened.", "type": "string", "minLength": 1}
REFERRAL_CODE = {"title": "Referral code", "description": "The code of the customer who referred this one "
                 "(the referee gives it once; both are rewarded when the referral qualifies).", "type": "string",
                 "minLength": 4, "maxLength": 20}


@dataclass(frozen=True)
class EventDecl:
    """One event type as rulesets and validation see it (the handler lives with the events)."""

    name: str
    data: dict[str, Any]  # JSON Schema of the event's `data` object
    title: str = ""
    description: str = ""
    platform_only: bool = False  # raised by Keepwell itself (due work, enrolment...), never posted
    key_prefix: str | None = None  # ids starting with it are the platform's own
    fields: dict[str, str] = field(default_factory=dict)  # data field -> money | integer | string


def field_kind(prop: dict[str, Any]) -> str:
    """What the compiler makes of a data field: money (cents), a whole number, or text."""
    ref = prop.get("$ref", "")
    if ref.endswith("money"):
        return MONEY
    if prop.get("type") == "integer":
        return INTEGER
    return STRING


class EventTypes:
    def __init__(self) -> None:
        self._types: dict[str, EventDecl] = {}
        self._member_fields: dict[str, str] = {}
        self._lock = threading.Lock()
        self.generation = 0  # changes with every declaration: caches built from the catalog check it
        self._derived: dict[str, Any] = {}

    def declare(self, name: str, data: dict[str, Any], *, title: str = "", description: str = "",
                platform_only: bool = False, key_prefix: str | None = None) -> EventDecl:
        props = data.get("properties") or {}
        decl = EventDecl(name, data, title or name.replace("_", " ").capitalize(), description, platform_only,
                         key_prefix, {k: field_kind(v) for k, v in props.items()})
        with self._lock:
            if name in self._types and self._types[name] != decl:
                raise ValueError(f"event type {name!r} is declared twice")
            self._types[name] = decl
            self.generation += 1
            self._derived.clear()
        return decl

    def declare_member_fields(self, fields: dict[str, str]) -> None:
        """What a condition may ask about the member (`member.tier`...), besides the event's data."""
        with self._lock:
            self._member_fields = {**self._member_fields, **fields}
            self.generation += 1

    def _loaded(self) -> dict[str, EventDecl]:
        if not self._types:
            raise RuntimeError("no event types are declared: the areas are not loaded (import keepwell.usecases)")
        return self._types

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._loaded())

    def get(self, name: str) -> EventDecl | None:
        return self._loaded().get(name)

    @property
    def platform_only(self) -> frozenset[str]:
        found = self._derived.get("platform_only")
        if found is None:
            found = self._derived["platform_only"] = frozenset(n for n, d in self._loaded().items() if d.platform_only)
        return found  # type: ignore[no-any-return]

    @property
    def reserved_prefixes(self) -> tuple[str, ...]:
        found = self._derived.get("reserved")
        if found is None:
            found = self._derived["reserved"] = tuple(d.key_prefix for d in self._loaded().values() if d.key_prefix)
        return found  # type: ignore[no-any-return]

    @property
    def member_fields(self) -> dict[str, str]:
        return self._member_fields  # read only: declare_member_fields changes it

    def data_fields(self, name: str) -> dict[str, str]:
        decl = self.get(name)
        return decl.fields if decl else {}

    def field_type(self, event_types: list[str], name: str) -> str | None:
        """Type of `data.x` or `member.x` for the given event types; None when any of them lacks it."""
        scope, _, key = name.partition(".")
        if scope == "member":
            return self._member_fields.get(key)
        if scope != "data":
            return None
        types = {self.data_fields(t).get(key) for t in event_types}
        if None in types or len(types) != 1:
            return None
        return types.pop()


EVENT_TYPES = EventTypes()
