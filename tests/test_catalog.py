"""The event catalog and the event JSON Schema describe the same events: both are made from the
areas' declarations, and this checks the assembly (every type, its fields, the enum rulesets use)."""

from __future__ import annotations

from keepwell.events import registry
from keepwell.rulesets.event_types import EVENT_TYPES
from keepwell.rulesets.schemas import schema


def _data_fields_by_type() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for branch in schema("event.schema.json")["allOf"]:
        cond = branch["if"]["properties"]["type"]
        types = cond.get("enum") or [cond["const"]]
        fields = set(branch["then"]["properties"]["data"]["properties"])
        for t in types:
            out[t] = fields
    return out


def test_every_event_type_has_the_same_fields_in_both():
    from_schema = _data_fields_by_type()
    assert set(from_schema) == set(EVENT_TYPES.names)
    for t in EVENT_TYPES.names:
        assert set(EVENT_TYPES.data_fields(t)) == from_schema[t], t


def test_event_type_enum_matches():
    assert set(schema("common.schema.json")["$defs"]["event_type"]["enum"]) == set(EVENT_TYPES.names)


def test_every_declared_type_has_a_handler_and_platform_types_reserve_their_keys():
    handled = registry.types()
    assert set(handled) == set(EVENT_TYPES.names)
    assert {"period_ended", "renewed", "expired", "points_expired", "migrated"} <= EVENT_TYPES.platform_only
    for name in EVENT_TYPES.platform_only:
        assert EVENT_TYPES.get(name).key_prefix == f"{name}:", name
