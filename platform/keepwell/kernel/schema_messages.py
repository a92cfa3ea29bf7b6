"""Validation errors in words a contractor reads: "Allowance amount must be an amount like
250.00", not "'2five0' does not match '^[0-9]{1,12}…$'".

A message is the field's label (its schema `title`, the property's own title before the shared
definition's) and a phrase for the keyword that failed. A schema overrides the phrase for a field
with `x-messages` (keyword → phrase), on the property or on the shared definition it refers to;
otherwise each keyword has a phrase built from the schema (examples, limits, choices). The path
stays with the problem (the API returns it as a pointer); it never appears in the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import Problem
from .schema_paths import schema_at

if TYPE_CHECKING:  # the resolver's class is not exported by name
    from referencing._core import Resolver

_TYPE_WORDS = {
    "string": "text", "integer": "a whole number", "number": "a number", "boolean": "yes or no",
    "array": "a list", "object": "a group of settings", "null": "empty",
}
_FORMAT_PHRASES = {
    "date": "must be a date like 2025-03-01",
    "date-time": "must be a date and time like 2025-03-01T09:30:00Z",
    "email": "must be an email address like name@example.com",
    "uri": "must be a web address like https://example.com/hook",
    "time": "must be a time like 09:30",
}
# Phrases that only quote the keyword's value; a limit of one reads better in words.
_LIMITS = {
    "minimum": "must be at least {}", "maximum": "must be at most {}", "exclusiveMinimum": "must be more than {}",
    "exclusiveMaximum": "must be less than {}", "multipleOf": "must be a multiple of {}",
    "minLength": "must be at least {} characters long", "maxLength": "must be at most {} characters long",
    "minItems": "needs at least {} entries", "maxItems": "can have at most {} entries",
    "minProperties": "needs at least {} settings", "maxProperties": "can have at most {} settings",
}
_ONE_OR_MANY = {"minLength": "must not be empty", "minItems": "needs at least one entry",
                "minProperties": "needs at least one setting"}
_REQUIRED = re.compile(r"^'(.+)' is a required property$")
_DEPENDENT = re.compile(r"^'(.+)' is a dependency of '(.+)'$")


def problems(validator: Draft202012Validator, instance: Any, resolver: Resolver, root_path: str = "",
             file: str = "") -> list[Problem]:
    """Every problem `validator` finds in `instance`, in words, sorted by where it is.
    `root_path` names the whole instance ("(document)", "(body)")."""
    found = []
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for error in errors:
        if error.context:  # oneOf/anyOf: the branch that got furthest says more than "no branch fits"
            error = max(error.context, key=lambda e: len(e.absolute_path))
        for p in _explain(error, validator.schema, instance, resolver, root_path, file):
            if p not in found:  # a date that fails both its pattern and its format is one problem
                found.append(p)
    return found


def _explain(error: ValidationError, root: dict[str, Any], instance: Any, resolver: Resolver, root_path: str,
             file: str) -> Iterator[Problem]:
    steps = list(error.absolute_path)
    field, _ = schema_at(root, steps, instance, resolver)
    keyword = str(error.validator)
    if keyword == "required":
        m = _REQUIRED.match(error.message)
        name = m.group(1) if m else ""
        child, _ = schema_at(root, [*steps, name], instance, resolver)
        label = _label(child, name)
        yield Problem(_path([*steps, name], root_path), f"{label} is required", file, label)
        return
    if keyword == "dependentRequired":
        m = _DEPENDENT.match(error.message)
        if m:
            needed, given = m.group(1), m.group(2)
            label = _label(schema_at(root, [*steps, needed], instance, resolver)[0], needed)
            other = _label(schema_at(root, [*steps, given], instance, resolver)[0], given)
            yield Problem(_path([*steps, needed], root_path), f"{label} is required when {other} is set", file, label)
            return
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        known = set(field.get("properties", {}))
        patterns = [re.compile(p) for p in field.get("patternProperties", {})]
        extras = [k for k in error.instance if k not in known and not any(p.search(k) for p in patterns)]
        where = _label(field, str(steps[-1]) if steps else "")
        for extra in extras or ["?"]:
            yield Problem(_path([*steps, extra], root_path), f"{where} has no setting “{extra}”", file, where)
        return
    label = _label(field, str(steps[-1]) if steps else "")
    yield Problem(_path(steps, root_path), f"{label} {_phrase(keyword, error, field)}", file, label)


def _phrase(keyword: str, error: ValidationError, field: dict[str, Any]) -> str:
    custom = field.get("x-messages", {})
    if keyword in custom:
        return str(custom[keyword])
    value = error.validator_value
    if keyword == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be " + " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds)
    if keyword == "format":
        return _FORMAT_PHRASES.get(str(value), f"must be a valid {value}")
    if keyword == "pattern":
        if "format" in field and str(field["format"]) in _FORMAT_PHRASES:
            return _FORMAT_PHRASES[str(field["format"])]
        examples = field.get("examples") or []
        return f"must look like {examples[0]}" if examples else "is not written the way it should be"
    if keyword == "enum":
        choices = [v if isinstance(v, str) else json.dumps(v) for v in value]
        if len(choices) <= 12:
            typed = error.instance
            shown = f" (not “{typed}”)" if isinstance(typed, (str, int)) and len(str(typed)) <= 40 else ""
            return "must be one of: " + ", ".join(choices) + shown
        return f"“{error.instance}” is not one of the {len(choices)} choices"
    if keyword == "const":
        return f"must be {value if isinstance(value, str) else json.dumps(value)}"
    if keyword in _ONE_OR_MANY and value == 1:
        return _ONE_OR_MANY[keyword]
    if keyword in _LIMITS:
        return _LIMITS[keyword].format(value)
    if keyword == "uniqueItems":
        return "lists the same entry twice"
    if keyword in ("oneOf", "anyOf"):
        return "does not match any of the forms it can take"
    if keyword in ("not", "False"):
        return "is not allowed here"
    return "is not valid here"


def _label(field: dict[str, Any], key: str) -> str:
    title = field.get("title") if isinstance(field, dict) else None
    if title:
        return str(title)
    if not key or key.isdigit():
        return "This value" if not key else "Entry"
    return words_of(key)


def words_of(key: str) -> str:
    """A key as words for a label: "anchor_day" -> "Anchor day", "tierPrice" -> "Tier price"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").replace("-", " ").strip()
    return (words[:1].upper() + words[1:]) if words else key


def _path(steps: list[Any], root_path: str) -> str:
    out = ""
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else str(s))
    return out or root_path
