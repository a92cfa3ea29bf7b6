"""Reading ruleset documents from YAML or JSON without letting the parser guess types.

PyYAML's safe_load turns 2024-01-31 into a date; a ruleset's dates must stay strings until the
schema has checked them, so the timestamp resolver is removed (unquoted dates are fine).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml

from ..kernel.errors import InvalidDocument, Problem


class _StrictLoader(yaml.SafeLoader):
    pass


# YAML 1.1 also reads on/off/yes/no as booleans, which would turn a trigger's `on:` key into
# True: only true/false are booleans here, as in YAML 1.2 and JSON.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_text(text: str, source: str = "") -> object:
    """Parse YAML (a superset of JSON) into plain data; a syntax error becomes a Problem."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
        reason = getattr(exc, "problem", None) or str(exc)
        raise InvalidDocument("not valid YAML/JSON", [Problem(where, reason, source)]) from None


def load_file(path: str | Path) -> object:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidDocument("cannot read file", [Problem("$", exc.strerror or str(exc), str(path))]) from None
    return parse_text(text, str(path))


def canonical_json(doc: object) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(doc: object) -> str:
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def to_yaml(doc: object) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)
