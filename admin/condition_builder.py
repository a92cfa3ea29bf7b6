"""The condition builder: a rule's `when` (an earning rule's, a notification trigger's `on`) as
rows a contractor reads as sentences: "Amount · is at least · 100".

The builder writes the schema's own condition language (common.schema.json `when`): the event
type(s), and `all` (all of these) / `any` (any of these) lists of conditions `{field, <op>: value}`.
One field (`ConditionsField`, named like the `when` it edits, e.g. "spec-rules-0-when") holds:

    spec-rules-0-when                   the YAML box: used instead of the rows when it holds text
    spec-rules-0-when-event             the event type(s) (a multiple select)
    spec-rules-0-when-g-0-join          a group's "all" | "any"
    spec-rules-0-when-g-0-c-1-field     a row: field, operator, value
    spec-rules-0-when-g-0-c-1-op
    spec-rules-0-when-g-0-c-1-value

A value is typed by its field (from the event catalog): a money field's "100" is 100 and its
"100.00" stays "100.00" (money is written as a whole number or a decimal string), a number
field's "2.5" is 2.5, a yes/no field's "true" is true, text stays text; "is one of" takes values
separated by commas. A `when` whose every part comes back exactly (value and type) from the rows
is shown as rows; anything else (a condition with two operators, a text "100" on a money field,
a value with a comma in a list...) is shown, unchanged, as YAML in the field's box: nothing is
ever lost.

Add/remove buttons submit `_action` "add:<field>-g-<n>" (a row), "add:<field>-g" (a group),
"remove:<field>-g-<n>-c-<m>" (a row), "remove:<field>-g-<n>" (a group); schema_forms.apply_action
passes them to `ConditionsField.apply`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as _default
from functools import cache
from typing import Any

from wtforms import Field
from wtforms.utils import unset_value

from keepwell.kernel.errors import Problem
from keepwell.usecases import rulesets as uc

__all__ = ["OPERATORS", "JOINS", "ConditionsField", "FromDoc", "fits", "is_when_schema", "fields_for",
           "catalog_json"]

# The condition's operators in contractors' words; "absent" is `exists: false`.
OPERATORS: tuple[tuple[str, str], ...] = (
    ("eq", "is"), ("ne", "is not"), ("lt", "is less than"), ("lte", "is at most"), ("gt", "is more than"),
    ("gte", "is at least"), ("in", "is one of"), ("not_in", "is not one of"), ("exists", "is present"),
    ("absent", "is missing"),
)
JOINS: tuple[tuple[str, str], ...] = (("all", "All of these"), ("any", "Any one of these"))
_OP_KEYS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists")
_LISTS = ("in", "not_in")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_KEY = re.compile(r"-(?:event|g-(\d+)-(?:join|c-(\d+)-(field|op|value)))$")
NUMERIC = ("money", "integer", "number")


def is_when_schema(raw: Any) -> bool:
    """Whether a schema location is the shared `when` (event + conditions)."""
    return isinstance(raw, dict) and str(raw.get("$ref", "")).endswith("common.schema.json#/$defs/when")


# --------------------------------------------------------------------------------------------
# The catalog: which fields the chosen event types carry


@cache
def _catalog() -> dict[str, uc.EventKind]:
    return {e.name: e for e in uc.event_catalog()}


def event_choices() -> list[tuple[str, str]]:
    return [(e.name, e.title) for e in _catalog().values()]


def fields_for(events: list[str]) -> dict[str, uc.ConditionField]:
    """The fields a condition may test for these event types: the data fields every one of them
    carries, of one kind (every type's fields while none is chosen), then the member's."""
    cat = _catalog()
    chosen = [cat[e] for e in events if e in cat]
    out: dict[str, uc.ConditionField] = {}
    for e in chosen or cat.values():
        for f in e.fields:
            out.setdefault(f.name, f)
    if len(chosen) > 1:
        kinds = [{f.name: f.kind for f in e.fields} for e in chosen]
        out = {n: f for n, f in out.items() if all(k.get(n) == f.kind for k in kinds)}
    for f in uc.MEMBER_FIELDS:
        out.setdefault(f.name, f)
    return out


def catalog_json() -> str:
    """For the page's script: each event type's fields (name, title, kind, choices)."""
    cat = _catalog()
    return json.dumps({
        "events": {e.name: [[f.name, f.kind] for f in e.fields] for e in cat.values()},
        "fields": {f.name: [f.title, f.kind] for e in [*cat.values()] for f in e.fields}
        | {f.name: [f.title, f.kind] for f in uc.MEMBER_FIELDS},
        "member": [f.name for f in uc.MEMBER_FIELDS],
    })


def _kind(fields: dict[str, uc.ConditionField], name: str) -> str:
    f = fields.get(name)
    return f.kind if f is not None else "auto"


# --------------------------------------------------------------------------------------------
# Values: text <-> typed


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return v if isinstance(v, str) else json.dumps(v)


def _parse(kind: str, text: str) -> Any:
    t = text.strip()
    if kind in NUMERIC or kind == "auto":
        if _INT.fullmatch(t):
            return int(t)
        if kind in ("number", "auto") and _FLOAT.fullmatch(t):
            return float(t)
    if kind in ("boolean", "auto") and t in ("true", "false"):
        return t == "true"
    return text


def _parse_list(kind: str, text: str) -> list:
    return [_parse("text" if kind == "boolean" else kind, x.strip()) for x in text.split(",") if x.strip()]


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1, 1.0 and True are three values here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


# --------------------------------------------------------------------------------------------
# The model: events, groups of rows


@dataclass
class Row:
    field: str = ""
    op: str = "eq"
    value: str = ""
    errors: list[str] = _default(default_factory=list)

    @property
    def blank(self) -> bool:
        return self.field == "" and self.value.strip() == ""


@dataclass
class Group:
    join: str = "all"
    rows: list[Row] = _default(default_factory=list)
    errors: list[str] = _default(default_factory=list)


@dataclass
class FromDoc:
    """A `when` from a document, for a ConditionsField to show as rows."""

    value: dict


def _model_of(v: Any) -> tuple[list[str], list[Group]] | None:
    if not isinstance(v, dict) or not set(v) <= {"event", "all", "any"}:
        return None
    ev = v.get("event", [])
    events = [ev] if isinstance(ev, str) else ev
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        return None
    groups = []
    for join in ("all", "any"):
        if join not in v:
            continue
        conds = v[join]
        if not isinstance(conds, list) or not conds:
            return None
        rows = []
        for c in conds:
            if not isinstance(c, dict) or not isinstance(c.get("field"), str):
                return None
            ops = [k for k in c if k != "field"]
            if len(ops) != 1 or ops[0] not in _OP_KEYS:
                return None
            op, val = ops[0], c[ops[0]]
            if op == "exists":
                if not isinstance(val, bool):
                    return None
                rows.append(Row(c["field"], "exists" if val else "absent", ""))
            elif op in _LISTS:
                if not isinstance(val, list):
                    return None
                rows.append(Row(c["field"], op, ", ".join(_text(x) for x in val)))
            else:
                rows.append(Row(c["field"], op, _text(val)))
        groups.append(Group(join, rows))
    return events, groups


def _document(events: list[str], groups: list[Group]) -> tuple[dict, list[tuple[Group, str]]]:
    """The `when` the rows say, and any problem of a group (two "any" groups)."""
    fields = fields_for(events)
    out: dict[str, Any] = {}
    if events:
        out["event"] = events[0] if len(events) == 1 else list(events)
    problems = []
    lists: dict[str, list] = {}
    any_groups = [g for g in groups if g.join == "any" and any(not r.blank for r in g.rows)]
    for g in any_groups[1:]:
        problems.append((g, "Only one group can be “Any one of these”: choose “All of these” for this group, "
                            "or move its conditions into the other group."))
    for g in groups:
        for r in g.rows:
            if r.blank:
                continue
            kind = _kind(fields, r.field)
            if r.op in ("exists", "absent"):
                c: dict[str, Any] = {"field": r.field, "exists": r.op == "exists"}
            elif r.op in _LISTS:
                c = {"field": r.field, r.op: _parse_list(kind, r.value)}
            else:
                c = {"field": r.field, r.op if r.op in _OP_KEYS else "eq": _parse(kind, r.value)}
            lists.setdefault("any" if g.join == "any" else "all", []).append(c)
    for join in ("all", "any"):
        if join in lists:
            out[join] = lists[join]
    return out, problems


def fits(v: Any) -> bool:
    """Whether the rows show this `when` exactly (it comes back equal, with the same types)."""
    model = _model_of(v)
    if model is None or not v:
        return False
    events, groups = model
    order = {e: i for i, e in enumerate([*_catalog(), *[e for e in events if e not in _catalog()]])}
    if len(set(events)) != len(events) or events != sorted(events, key=order.__getitem__):
        return False  # a browser sends a multiple select's choices in the order of its options
    if isinstance(v.get("event"), list) and len(v["event"]) == 1:
        return False
    texts = [events, *[[r.field, r.value] for g in groups for r in g.rows]]
    if any("\n" in t or "\r" in t for ts in texts for t in ts):
        return False
    if any(r.field == "" for g in groups for r in g.rows):
        return False
    doc, _problems = _document(events, groups)
    return _same(doc, v)


# --------------------------------------------------------------------------------------------
# The field


class ConditionsField(Field):
    """A `when` edited as rows (or, when the rows cannot show it, as YAML in `data`)."""

    def __init__(self, *args: Any, node: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.node = node
        self.events: list[str] = []
        self.groups: list[Group] = []
        self.data = ""

    # -- in --------------------------------------------------------------------------------

    def process(self, formdata, data=unset_value, extra_filters=None):  # type: ignore[override]
        self.process_errors = []
        self.errors = []
        self.data, self.events, self.groups = "", [], []
        if formdata is not None and any(k == self.name or k.startswith(self.name + "-") for k in formdata):
            self._from_formdata(formdata)
        elif isinstance(data, FromDoc):
            events, groups = _model_of(data.value) or ([], [])
            self.events, self.groups = events, groups
        elif isinstance(data, str) and data:
            self.data = data
        if not self.data and not self.groups:
            self.groups = [Group("all", [Row()])]
        self.object_data = data

    def _from_formdata(self, formdata) -> None:
        self.data = (formdata.get(self.name) or "").replace("\r\n", "\n").replace("\r", "\n")
        self.events = [e for e in formdata.getlist(self.name + "-event") if e]
        groups: dict[int, Group] = {}
        rows: dict[tuple[int, int], Row] = {}
        for key in formdata:
            if not key.startswith(self.name + "-"):
                continue
            m = _KEY.fullmatch(key[len(self.name):])
            if not m or m.group(1) is None:
                continue
            g = groups.setdefault(int(m.group(1)), Group())
            if m.group(2) is None:
                g.join = "any" if formdata.get(key) == "any" else "all"
                continue
            row = rows.setdefault((int(m.group(1)), int(m.group(2))), Row())
            setattr(row, m.group(3), formdata.get(key) or "")
        for (gi, _ri), row in sorted(rows.items()):
            groups[gi].rows.append(row)
        self.groups = [groups[i] for i in sorted(groups)]

    @property
    def yaml_mode(self) -> bool:
        return bool(self.data.strip())

    # -- out -------------------------------------------------------------------------------

    def document(self, path: str, problems: list[Problem]) -> dict:
        """The `when` of the rows (empty: none); a problem of a group joins `problems`."""
        doc, bad = _document(self.events, self.groups)
        for g, message in bad:
            g.errors.append(message)
            problems.append(Problem(path, message))
        return doc

    def pairs(self) -> Iterator[tuple[str, str]]:
        """What a browser submits for this field (schema_forms.form_formdata)."""
        yield self.name, self.data  # the YAML box: empty while the rows show the conditions
        if self.yaml_mode:
            return
        for e in self.events:
            yield f"{self.name}-event", e
        for gi, g in enumerate(self.groups):
            yield f"{self.name}-g-{gi}-join", g.join
            for ri, r in enumerate(g.rows):
                for part in ("field", "op", "value"):
                    yield f"{self.name}-g-{gi}-c-{ri}-{part}", getattr(r, part)

    # -- buttons and problems ---------------------------------------------------------------

    def apply(self, verb: str, name: str) -> None:
        """An add/remove button of this builder (see the module docstring)."""
        rest = name[len(self.name):].lstrip("-").split("-")
        if rest == ["g"] and verb == "add":
            join = "any" if all(g.join == "all" for g in self.groups) else "all"
            self.groups.append(Group(join, [Row()]))
        elif len(rest) == 2 and rest[0] == "g" and rest[1].isdigit() and int(rest[1]) < len(self.groups):
            gi = int(rest[1])
            if verb == "add":
                self.groups[gi].rows.append(Row())
            else:
                del self.groups[gi]
        elif (len(rest) == 4 and rest[0] == "g" and rest[2] == "c" and rest[1].isdigit() and rest[3].isdigit()
              and int(rest[1]) < len(self.groups) and int(rest[3]) < len(self.groups[int(rest[1])].rows)
              and verb == "remove"):
            g = self.groups[int(rest[1])]
            del g.rows[int(rest[3])]
            if not g.rows and len(self.groups) > 1:
                self.groups.remove(g)
        else:
            raise ValueError(f"{name!r} is not a group or condition of {self.name}")
        if not self.groups:
            self.groups = [Group("all", [Row()])]
        for g in self.groups:
            if not g.rows:
                g.rows.append(Row())

    def add_problem(self, rest: list[str | int], message: str, rest_text: str) -> None:
        """A problem at a path inside this `when`: beside its row (all[1].gte -> the second
        condition of the "all of these" groups), else on the whole builder."""
        if not self.yaml_mode and len(rest) >= 2 and rest[0] in ("all", "any") and isinstance(rest[1], int):
            n = 0
            for g in self.groups:
                if g.join != rest[0]:
                    continue
                for r in g.rows:
                    if r.blank:
                        continue
                    if n == rest[1]:
                        r.errors.append(self._in_words(r, rest[2:], message))
                        return
                    n += 1
        if not rest and any(message in g.errors for g in self.groups):
            return  # a group's own problem, shown at the group
        if not self.yaml_mode and rest[:1] == ["event"]:
            self.event_errors.append(message)
            return
        self.errors = [*self.errors, f"{rest_text}: {message}" if rest_text else message]

    def _in_words(self, row: Row, rest: list[str | int], message: str) -> str:
        """The rules compiler's problem with a row, in the builder's words."""
        f = fields_for(self.events).get(row.field)
        title = f"“{f.title}”" if f else (f"“{row.field}”" if row.field else "This field")
        if rest == ["field"] and message.startswith("unknown field"):
            return f"{title} is not part of the chosen event: choose another field, or another event"
        if "is text: use eq" in message:
            return f"{title} is text: use “is”, “is not”, “is one of” or “is not one of”"
        if "money is a decimal string" in message:
            return f"{title} is an amount: enter a value like 100 or 99.50"
        if message.endswith("is not a whole number"):
            return f"{title} is a whole number: enter one like 3"
        if message.endswith("is not text"):
            return f"{title} is text: this value is not"
        return message

    @property
    def event_errors(self) -> list[str]:
        if not hasattr(self, "_event_errors"):
            self._event_errors: list[str] = []
        return self._event_errors

    # -- for the template ------------------------------------------------------------------

    def field_options(self, row: Row) -> list[tuple[str, list[tuple[str, str]]]]:
        """The Field select's option groups: the event's fields, the member's; a field the
        chosen events do not carry stays, marked."""
        fields = fields_for(self.events)
        data = [(n, f.title) for n, f in fields.items() if n.startswith("data.")]
        member = [(n, f.title) for n, f in fields.items() if n.startswith("member.")]
        groups = [("Event", data), ("Member", member)]
        if row.field and row.field not in fields:
            groups.append(("Other", [(row.field, f"{row.field} (not in these events)")]))
        return groups

    def event_options(self) -> list[tuple[str, str]]:
        known = event_choices()
        names = {n for n, _ in known}
        return known + [(e, f"{e} (not allowed)") for e in self.events if e not in names]

    def value_widget(self, row: Row, values: dict[str, list[tuple[str, str]]] | None = None) -> dict[str, Any]:
        """How the row's value is shown: {"type": "select", "options": [...]} for a field with
        a list of values (the schema's, or the installed plans') and the operators is / is not,
        {"type": "number"} for numbers, else {"type": "text", "hint": ...}."""
        f = fields_for(self.events).get(row.field)
        kind = f.kind if f else "auto"
        listed = [(v, v.replace("_", " ")) for v in f.choices] if f and f.choices else []
        if not listed and values and row.field in values:
            listed = [(v, f"{label} ({v})" if label != v else v) for v, label in values[row.field]]
        if kind == "boolean":
            listed = [("true", "Yes"), ("false", "No")]
        if row.op in _LISTS:
            hint = "Separate values with commas."
            if listed:
                hint += " Values: " + ", ".join(v for v, _ in listed) + "."
            return {"type": "text", "hint": hint}
        if row.op in ("exists", "absent"):
            return {"type": "text", "hint": "No value needed."}
        if listed:
            options = [("", "— choose —"), *listed]
            if row.value not in {v for v, _ in options}:
                options.append((row.value, f"{row.value} (not allowed)"))
            return {"type": "select", "options": options}
        if kind in NUMERIC and (row.value.strip() == "" or _FLOAT.fullmatch(row.value.strip())):
            hint = "An amount, e.g. 100 or 99.50." if kind == "money" else ""
            return {"type": "number", "step": "1" if kind == "integer" else "any", "hint": hint}
        return {"type": "text", "hint": ""}

    @staticmethod
    def company_values() -> dict[str, list[tuple[str, str]]]:
        """The value lists the editor's view put in `g.kw_condition_values` (none outside a request)."""
        from flask import g, has_app_context

        return (g.get("kw_condition_values") or {}) if has_app_context() else {}

    @staticmethod
    def operators() -> tuple[tuple[str, str], ...]:
        return OPERATORS

    @staticmethod
    def joins() -> tuple[tuple[str, str], ...]:
        return JOINS

