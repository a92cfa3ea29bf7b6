"""The compiler's field catalog and the event JSON Schema describe the same events."""

from __future__ import annotations

from keepwell import catalog
from keepwell.validation import schema


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
    assert set(from_schema) == set(catalog.EVENT_TYPES)
    for t in catalog.EVENT_TYPES:
        assert set(catalog.DATA_FIELDS[t]) == from_schema[t], t


def test_event_type_enum_matches():
    assert set(schema("common.schema.json")["$defs"]["event_type"]["enum"]) == set(catalog.EVENT_TYPES)
