"""WTForms generated from the ruleset JSON Schemas, for the admin UI.

    form = build_form("Plan", doc)                  # GET: a form showing a document
    form = build_form("Plan", None, request.form)   # POST: what the browser sent
    if action := request.form.get("_action"):       # "add another" / "remove" buttons
        form = apply_action(form, action)           # re-render, nothing else happens
    doc = form.to_document()                        # raises InvalidDocument for unreadable YAML
    attach_errors(form, validate_ruleset(doc))      # each Problem next to its field

The form is a tree that mirrors the schema: an object is a `FormField` (a fieldset), an array of
objects a `FieldList` of them (a repeatable group), a scalar one input. Field names follow the
JSON paths: "spec.tiers[0].name" is the field named "spec-tiers-0-name".

Nothing is ever lost on the way document -> form -> document: a scalar that breaks its schema
stays in its field as typed (a word in a number field, "weekly" in a select as a "(not allowed)"
option, a non-date in a text input) so its error shows there; what a field cannot hold at all (a
key the schema does not know, an empty string/list/object, null, a multi-line string in a
one-line input, a list where an object belongs...) goes into the object's "Other settings
(YAML)" textarea (`_extra`), and a subtree the generator cannot represent as fields (unions, maps such as
`tier_multipliers`, the condition language outside a rule's `when`) is one YAML textarea. A rule's
`when` is the condition builder (condition_builder.py): rows of field, operator and value, or its
YAML in one textarea when the rows cannot show it exactly.
Defaults are only shown (placeholders, "— (default: …)" options), never written into the
document.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from types import SimpleNamespace
from typing import Any
from urllib.parse import urldefrag, urljoin

import yaml
from werkzeug.datastructures import MultiDict
from wtforms import FieldList, Form, FormField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.form import BaseForm
from wtforms.widgets import DateInput

from keepwell.kernel.errors import InvalidDocument, Problem
from keepwell.kernel.schema_messages import words_of
from keepwell.usecases.rulesets import BASE_URI, kind_schemas, parse_text, to_yaml
from keepwell.usecases.rulesets import schema as load_schema

from . import condition_builder as conditions

__all__ = [
    "Node", "SchemaForm", "build_form", "apply_action", "attach_errors", "field_for_path",
    "form_formdata", "json_path_of", "inline_refs", "EXTRA", "Section",
]

EXTRA = "_extra"  # per object: the YAML of what its fields cannot hold
_ABSENT = object()
_MISSING = object()
# Where a setting shown by another field (x-same-as) was written in the document: "here" (only
# here), "also" (here and at the field that shows it, with the same value) or "" (not here).
SAME_HERE, SAME_ALSO = "here", "also"


@dataclass(frozen=True)
class _Same:
    where: str

SCALAR_KINDS = ("text", "textarea", "money", "date", "integer", "number", "boolean", "enum")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LONG_TEXT = 300  # strings without a pattern and longer than this (or unbounded) get a textarea


# --------------------------------------------------------------------------------------------
# Schema -> Node tree


@dataclass
class Node:
    """What the generator made of one schema location.

    kind: const | text | textarea | money | date | integer | number | boolean | enum
          | lines (array of scalars, one per line) | group (object) | repeat (array of objects)
          | yaml (anything else, edited as YAML) | extra (an object's leftovers, as YAML)
          | conditions (a rule's `when`: the condition builder, admin/condition_builder.py)
    """

    kind: str
    key: str
    title: str
    description: str = ""
    required: bool = False
    default: Any = _MISSING
    const: Any = _MISSING
    choices: dict[str, Any] = field(default_factory=dict)  # enum: submitted text -> value
    children: dict[str, Node] = field(default_factory=dict)  # group
    item: Node | None = None  # repeat (a group) / lines (a scalar)
    schema: dict = field(default_factory=dict, repr=False)  # the resolved schema
    section: str = ""  # x-section: the id of the page section (of the root's x-sections) it is shown in
    layout: str = ""  # x-layout: "columns" shows a repeatable group as a table, a column per item
    same_as: str = ""  # x-same-as: the JSON path of the field that shows this setting (kind "same")

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

    @property
    def placeholder(self) -> str:
        if not self.has_default:
            return ""
        return _yaml_text(self.default).strip() if self.kind == "yaml" else _scalar_text(self.default)


class _Resolver:
    """$ref resolution across the schema files (by $id), with an injectable document."""

    def __init__(self, overrides: dict[str, dict] | None = None):
        self.docs: dict[str, dict] = {}
        for name in ("common.schema.json", *kind_schemas().values()):
            s = load_schema(name)
            self.docs[s.get("$id", BASE_URI + name)] = s
        self.docs.update(overrides or {})

    def lookup(self, ref: str, base: str) -> tuple[dict, str]:
        uri, fragment = urldefrag(urljoin(base, ref))
        doc = self.docs.get(uri)
        if doc is None:
            raise KeyError(f"cannot resolve $ref {ref!r} from {base!r}")
        target: Any = doc
        for part in [p for p in fragment.split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target[int(part)] if isinstance(target, list) else target[part]
        return target, uri

    def resolve(self, schema: Any, base: str, seen: tuple = ()) -> tuple[dict, str, tuple]:
        """The schema with its $ref followed (sibling keywords win) and allOf merged."""
        if not isinstance(schema, dict):
            return ({} if schema is True else {"not": {}}), base, seen
        while "$ref" in schema:
            ref = schema["$ref"]
            key = urljoin(base, ref)
            if key in seen:
                return {"$comment": "recursive", "x-recursive": True}, base, seen
            seen = (*seen, key)
            target, base = self.lookup(ref, base)
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part, _b, _s = self.resolve(part, base, seen)
                for k, v in part.items():
                    if k == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **v}
                    elif k == "required":
                        merged["required"] = [*merged.get("required", []), *v]
                    elif k in ("title", "description", "default") and k in merged:
                        continue
                    elif k in merged and merged[k] != v:
                        merged["x-union"] = True  # conflicting constraints: edit as YAML
                    else:
                        merged[k] = v
            schema = merged
        return schema, base, seen


def _is_union(s: dict) -> bool:
    if s.get("x-union") or s.get("x-recursive") or "if" in s or "not" in s:
        return True
    for k in ("oneOf", "anyOf"):
        # oneOf/anyOf that only choose which properties are required (e.g. "exactly one of on
        # and before") constrain the object, they do not change its shape: the fields stay.
        if k in s and not all(isinstance(b, dict) and set(b) <= {"required", "title", "description"}
                              for b in s[k]):
            return True
    t = s.get("type")
    return isinstance(t, list) and len([x for x in t if x != "null"]) > 1


def _type_of(s: dict) -> str | None:
    t = s.get("type")
    if isinstance(t, list):
        t = [x for x in t if x != "null"]
        t = t[0] if len(t) == 1 else None
    if t is None:
        if "properties" in s:
            return "object"
        if "items" in s:
            return "array"
    return t


def _looks_decimal(s: dict) -> bool:
    """A string holding a decimal number (money, percent, multiplier): its pattern takes "12.5"
    and refuses words."""
    p = s.get("pattern")
    if not p:
        return False
    try:
        rx = re.compile(p)
    except re.error:
        return False
    return bool(rx.search("12.5")) and not rx.search("abc") and not rx.search("ABC")


def _compile(raw: Any, base: str, key: str, required: bool, res: _Resolver, seen: tuple = (),
             depth: int = 0) -> Node:
    s, base, seen = res.resolve(raw, base, seen)
    node = Node("yaml", key, s.get("title") or words_of(key), s.get("description", ""), required,
                s.get("default", _MISSING), schema=s, section=s.get("x-section", ""), layout=s.get("x-layout", ""))
    if depth > 12:
        return node
    if isinstance(s.get("x-same-as"), str):
        # The same setting at a second place of the document (e.g. spec.allowance.auto_renewal and
        # spec.auto_renewal): one field shows it, this one only remembers where the value was written.
        node.kind, node.same_as = "same", s["x-same-as"]
        return node
    if conditions.is_when_schema(raw):
        node.kind = "conditions"
        return node
    if "const" in s:
        node.kind, node.const = "const", s["const"]
        return node
    if _is_union(s):
        return node
    if "enum" in s:
        values = s["enum"]
        texts = [v if isinstance(v, str) else json.dumps(v) for v in values]
        if all(v is None or isinstance(v, (str, int, float, bool)) for v in values) and len(set(texts)) == len(texts):
            node.kind, node.choices = "enum", dict(zip(texts, values))
        return node
    t = _type_of(s)
    if t == "object":
        props = s.get("properties")
        if not props or "patternProperties" in s or "maxProperties" in s or "propertyNames" in s:
            return node  # maps and pick-N objects: YAML
        if not all(_IDENT.fullmatch(k) and k != EXTRA for k in props):
            return node
        req = set(s.get("required", []))
        children = {k: _compile(v, base, k, k in req, res, seen, depth + 1) for k, v in props.items()}
        n_yaml = sum(c.kind == "yaml" for c in children.values())
        if n_yaml >= 2 and 2 * n_yaml >= len(children):
            return node  # mostly things forms cannot show (e.g. `when`): one YAML field reads better
        node.kind, node.children = "group", children
    elif t == "array":
        items = s.get("items")
        if not isinstance(items, dict) or "prefixItems" in s or "contains" in s:
            return node
        item = _compile(items, base, f"{key}_item", True, res, seen, depth + 1)
        if not items.get("title") and item.title == words_of(f"{key}_item"):
            item.title = node.title[:-1] if node.title.endswith("s") else f"{node.title} item"
        if item.kind == "group":
            node.kind, node.item = "repeat", item
        elif item.kind in SCALAR_KINDS and item.kind != "boolean":
            node.kind, node.item = "lines", item
    elif t == "string":
        if s.get("format") == "date":
            node.kind = "date"
        elif _looks_decimal(s):
            node.kind = "money"
        elif "pattern" not in s and "format" not in s and (s.get("maxLength") or math.inf) > _LONG_TEXT:
            node.kind = "textarea"
        else:
            node.kind = "text"
    elif t in ("integer", "number", "boolean"):
        node.kind = t
    return node


# --------------------------------------------------------------------------------------------
# Values: document <-> the text each field holds


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _yaml_text(value: Any) -> str:
    text = to_yaml(value)
    try:
        exact = parse_text(text) == value
    except InvalidDocument:
        exact = False
    if not exact:  # PyYAML writes some line breaks (U+0085, U+2028...) raw when allow_unicode: escape all
        text = yaml.safe_dump(value, sort_keys=False, allow_unicode=False, default_flow_style=False)
    return text[:-4] if text.endswith("\n...\n") else text


def _one_line(v: Any) -> bool:
    return isinstance(v, str) and v != "" and "\n" not in v and "\r" not in v


def _fits(node: Node, v: Any) -> bool:
    """Whether the field made for `node` shows `v` exactly (so it comes back unchanged)."""
    k = node.kind
    if k == "const":
        return type(v) is type(node.const) and v == node.const
    if k == "same":
        return isinstance(v, _Same)  # a value of its own (one that disagrees) is kept in the leftovers
    if k in ("text", "money"):
        return _one_line(v)
    if k == "textarea":
        return isinstance(v, str) and v != "" and "\r" not in v
    # A value a field cannot take (a word in a number field, a value outside an enum, a date that
    # is no date) stays in that field as typed, so validation errors show next to it: numbers and
    # date inputs fall back to plain text, selects get an extra "(not allowed)" option.
    if k == "date":
        return _one_line(v)
    if k == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (_one_line(v) and not _INT.fullmatch(v.strip()))
    if k == "number":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return math.isfinite(v)
        return _one_line(v) and not _INT.fullmatch(v.strip()) and not _FLOAT.fullmatch(v.strip())
    if k == "boolean":
        return isinstance(v, bool) or (_one_line(v) and v not in ("true", "false"))
    if k == "enum":
        return (any(type(c) is type(v) and c == v for c in node.choices.values())
                or (_one_line(v) and v not in node.choices))
    if k == "group":
        return isinstance(v, dict) and v != {}
    if k == "repeat":
        return isinstance(v, list) and v != [] and all(isinstance(x, dict) for x in v)
    if k == "lines":
        return (isinstance(v, list) and v != [] and
                all(_fits(node.item, x) and _one_line(_scalar_text(x)) and _scalar_text(x).strip() == _scalar_text(x)
                    for x in v))
    return True  # yaml: anything


def _to_values(node: Node, v: Any) -> Any:
    """The data a field of `node` is processed with, for a value that fits it."""
    k = node.kind
    if k == "const":
        return _scalar_text(node.const)
    if k == "same":
        return v.where
    if k == "enum":
        return next((t for t, c in node.choices.items() if type(c) is type(v) and c == v), v)
    if k in SCALAR_KINDS:
        return _scalar_text(v)
    if k == "lines":
        return "\n".join(_to_values(node.item, x) for x in v)
    if k == "conditions":
        return conditions.FromDoc(v) if conditions.fits(v) else _yaml_text(v)
    if k == "group":
        return _group_values(node, v)
    if k == "repeat":
        return [_group_values(node.item, x) for x in v]
    return _yaml_text(v)


def _group_values(node: Node, doc: dict) -> SimpleNamespace:
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, v in doc.items():
        child = node.children.get(key) if isinstance(key, str) else None
        if child is not None and _fits(child, v):
            values[key] = _to_values(child, v)
        else:
            extra[key] = v
    for key, child in node.children.items():  # a new document gets its fixed values (apiVersion, kind)
        if child.kind == "const" and child.required and key not in doc:
            values[key] = _scalar_text(child.const)
    values[EXTRA] = _yaml_text(extra) if extra else ""
    return SimpleNamespace(**values)


def _textarea_text(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def _parse_scalar(node: Node, text: str) -> Any:
    k = node.kind
    if k == "integer" or k == "number":
        t = text.strip()
        if _INT.fullmatch(t):
            return int(t)
        if k == "number" and _FLOAT.fullmatch(t):
            return float(t)
        return text  # not a number: kept as typed, the schema says what is wrong
    if k == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if k == "enum":
        return node.choices.get(text, text)
    if k == "const":
        return node.const
    return text


# --------------------------------------------------------------------------------------------
# WTForms classes


class _Kw:
    """Mixin: every generated field knows its Node (`field.node`)."""

    def __init__(self, *args, node: Node | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.node = node


class KwString(_Kw, StringField):
    pass


def _is_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


class KwDate(_Kw, StringField):
    """<input type=date>; a value that is no date is shown in a text input (a date input would
    drop it)."""

    widget = DateInput()

    def __call__(self, **kwargs):
        if self.data and not _is_date(str(self.data)):
            kwargs.setdefault("type", "text")
        return super().__call__(**kwargs)


class KwTextArea(_Kw, TextAreaField):
    pass


class KwHidden(_Kw, HiddenField):
    pass


class KwSelect(_Kw, SelectField):
    def process_data(self, value):
        self.data = "" if value is None else str(value)

    def post_process(self, formdata=None):
        super().post_process(formdata)
        if self.data and self.data not in {c.value for c in self.choices}:  # keep what is not allowed, marked
            self.choices = [*self.choices, SelectChoice(self.data, f"{self.data} (not allowed)")]


class KwFormField(_Kw, FormField):
    pass


class KwFieldList(_Kw, FieldList):
    pass


class SchemaForm(Form):
    """A generated form for one object of the schema; the root one for a whole document.

    Fields are in schema order, named by property; `form[key]` gets one (properties whose
    names clash with Form attributes, e.g. `data`, are only reachable that way)."""

    node: Node
    kind: str = ""
    aliases: tuple = ()  # root form: (x-same-as path, path of the field showing it)

    class Meta:
        csrf = False  # CSRFProtect of the app checks the token; these are plain wtforms forms

    def __init__(self, formdata=None, obj=None, prefix="", data=None, meta=None, **kwargs):
        meta_obj = self._wtforms_meta()
        if meta is not None and isinstance(meta, dict):
            meta_obj.update_values(meta)
        BaseForm.__init__(self, self._unbound_fields, meta=meta_obj, prefix=prefix)
        reserved = set(dir(type(self)))
        for name, f in self._fields.items():
            if name.isidentifier() and name not in reserved:
                setattr(self, name, f)
        self.process(formdata, obj, data=data, **kwargs)

    # -- document ---------------------------------------------------------------------------

    def to_document(self) -> dict:
        """The document this form shows: fields in schema order, empty optional fields left out,
        numbers and booleans typed by the schema, plus whatever the `_extra` textareas hold.
        Raises InvalidDocument (problems with JSON paths, for attach_errors) if a YAML textarea
        cannot be read."""
        problems: list[Problem] = []
        doc = _collect_group(self, self.node, "", problems)
        if problems:
            raise InvalidDocument("the form has YAML that cannot be read", problems)
        for here, there in self.aliases:  # a setting shown by one field goes back where it was written
            marker = _field_named(self, "-".join(here))
            where = marker.data if marker is not None else ""
            parent = _get(doc, there[:-1])
            value = parent.get(there[-1], _ABSENT) if isinstance(parent, dict) else _ABSENT
            if where not in (SAME_HERE, SAME_ALSO) or value is _ABSENT:
                continue
            if where == SAME_HERE:
                del parent[there[-1]]
            _put(doc, self.node, here, copy.deepcopy(value))
        return doc

    @property
    def extra_field(self):
        return self._fields[EXTRA]

    def sections(self, opened: Iterable[str] | None = None, focus: str = "") -> Sections | None:
        """The page sections of a root form whose schema has `x-sections` (None: no sections).

        Each schema property with an `x-section` is shown in that section; an object without one
        whose properties have sections is dissolved into them (its problems shown above the
        sections, its leftovers in "Other settings" at the end, with any field of no section). A
        section is open when it holds a problem or the field `focus` (the name of the field an
        add/remove button changed), else when its id is in `opened` (the sections open when the
        page was sent), else as the schema says (`open`)."""
        declared = self.node.schema.get("x-sections")
        if not declared:
            return None
        found = Sections()
        by_id: dict[str, Section] = {}
        for d in declared:
            sec = Section(d["id"], d.get("title") or words_of(d["id"]), d.get("description", ""),
                          bool(d.get("open", False)))
            by_id[sec.id] = sec
            found.sections.append(sec)
        other = Section("other", _EXTRA_NODE_TITLE.replace(" (YAML)", ""), "", True)

        def walk(form: SchemaForm, dissolved: bool) -> None:
            for key, f in form._fields.items():
                node = f.node
                if key == EXTRA:
                    if dissolved and (f.data or f.errors):
                        other.fields.append(f)
                elif node.kind in ("const", "same"):
                    found.hidden.append(f)
                elif node.section in by_id:
                    by_id[node.section].fields.append(f)
                elif node.kind == "group" and _has_sections(node):
                    if f.form.form_errors:
                        found.notes.append(f)
                    walk(f.form, True)
                else:
                    other.fields.append(f)

        walk(self, True)
        if other.fields:
            found.sections.append(other)
        shown = set(opened) if opened is not None else None
        for sec in found.sections:
            sec.problems = sum(_problem_count(f) for f in sec.fields)
            holds_focus = bool(focus) and any(focus == f.name or focus.startswith(f.name + "-") for f in sec.fields)
            sec.open = bool(sec.problems) or holds_focus or (sec.id in shown if shown is not None else sec.open)
        return found

    def iter_fields(self) -> Iterator:
        """The fields to render: every schema field, and `_extra` only when it holds something."""
        for name, f in self._fields.items():
            if name != EXTRA or f.data or f.errors:
                yield f


@dataclass
class Section:
    """One collapsible part of a sectioned form page: its fields, whether it shows open, its problems."""

    id: str
    title: str
    description: str = ""
    open: bool = False
    fields: list = field(default_factory=list)
    problems: int = 0


@dataclass
class Sections:
    sections: list[Section] = field(default_factory=list)
    hidden: list = field(default_factory=list)  # fixed values and x-same-as markers: hidden inputs
    notes: list = field(default_factory=list)  # dissolved objects with problems of their own


def _has_sections(node: Node) -> bool:
    return any(c.section or (c.kind == "group" and _has_sections(c)) for c in node.children.values())


def _problem_count(f) -> int:
    if isinstance(f, FieldList):
        return len(list(f.errors or [])) + sum(_problem_count(e) for e in f.entries)
    if isinstance(f, FormField):
        return len(f.form.form_errors) + sum(_problem_count(c) for c in f.form._fields.values())
    return len(f.errors) if isinstance(f.errors, (list, tuple)) else 0


def _unbound(node: Node):
    k = node.kind
    common = dict(label=node.title, description=node.description, node=node)
    ph = {"placeholder": node.placeholder} if node.placeholder else {}
    if k in ("const", "same"):
        return KwHidden(default="", **common)
    if k == "text":
        return KwString(default="", render_kw=ph, **common)
    if k == "money":
        return KwString(default="", render_kw={"inputmode": "decimal", "autocomplete": "off", **ph}, **common)
    if k in ("integer", "number"):
        mode = "numeric" if k == "integer" else "decimal"
        return KwString(default="", render_kw={"inputmode": mode, "autocomplete": "off", **ph}, **common)
    if k == "date":
        return KwDate(default="", render_kw=ph, **common)
    if k == "textarea":
        return KwTextArea(default="", render_kw={"rows": 3, **ph}, **common)
    if k == "lines":
        hint = "One per line."
        if node.item.kind == "enum":
            hint += " Allowed: " + ", ".join(node.item.choices) + "."
        desc = f"{node.description} {hint}".strip()
        return KwTextArea(default="", render_kw={"rows": 3, **ph}, **{**common, "description": desc})
    if k == "conditions":
        return conditions.ConditionsField(**common)
    if k in ("boolean", "enum"):
        if k == "boolean":
            opts = [("true", "Yes"), ("false", "No")]
        else:
            opts = [(t, words_of(t) if isinstance(v, str) else t) for t, v in node.choices.items()]
        if node.has_default:
            d = node.default
            shown = dict(opts).get(_scalar_text(d) if not isinstance(d, str) else d, _scalar_text(d))
            empty = f"— (default: {shown})"
        else:
            empty = "— choose —" if node.required else "—"
        choices = [SelectChoice("", empty)] + [SelectChoice(v, lbl) for v, lbl in opts]
        return KwSelect(default="", choices=choices, validate_choice=False, **common)
    if k == "group":
        return KwFormField(_form_class(node), **common)
    if k == "repeat":
        entry = KwFormField(_form_class(node.item), label=node.item.title, description=node.item.description,
                            node=node.item)
        return KwFieldList(entry, min_entries=0, **common)
    return KwTextArea(default="", render_kw={"rows": 4, "spellcheck": "false", **ph}, **common)  # yaml


_EXTRA_NODE_TITLE = "Other settings (YAML)"
_EXTRA_NODE_HELP = ("Settings this form has no field for, or values its fields cannot show, kept as "
                    "written. Edit them as YAML; a field's own value wins over a key repeated here.")


def _form_class(node: Node, name: str = "") -> type[SchemaForm]:
    fields = [(k, _unbound(c)) for k, c in node.children.items()]
    extra = Node("extra", EXTRA, _EXTRA_NODE_TITLE, _EXTRA_NODE_HELP)
    fields.append((EXTRA, KwTextArea(label=extra.title, description=extra.description, default="",
                                     render_kw={"rows": 4, "spellcheck": "false"}, node=extra)))
    cls = type(name or f"{node.key.title().replace('_', '')}Form", (SchemaForm,), {"node": node})
    type.__setattr__(cls, "_unbound_fields", fields)  # keep schema order (FormMeta would sort by creation)
    return cls


def _root_class(kind: str, schema: dict | None) -> type[SchemaForm]:
    if schema is None:
        return _cached_root_class(kind)
    return _make_root_class(kind, copy.deepcopy(schema))


@cache
def _cached_root_class(kind: str) -> type[SchemaForm]:
    if kind not in kind_schemas():
        raise ValueError(f"unknown ruleset kind {kind!r} (one of {', '.join(kind_schemas())})")
    return _make_root_class(kind, None)


def _make_root_class(kind: str, schema: dict | None) -> type[SchemaForm]:
    base = BASE_URI + kind_schemas().get(kind, f"{kind}.schema.json")
    overrides = None
    if schema is not None:
        base = schema.get("$id", base)
        overrides = {base: schema}
    res = _Resolver(overrides)
    root = _compile(res.docs[base], base, "", True, res)
    if root.kind != "group":
        raise ValueError(f"the schema of {kind} is not an object with properties")
    cls = _form_class(root, f"{kind}Form")
    cls.kind = kind
    cls.aliases = tuple(_aliases(root, []))
    return cls


def _aliases(node: Node, path: list[str]) -> Iterator[tuple[list[str], list[str | int]]]:
    """(path of each x-same-as field, path of the field that shows it), outside repeatable groups."""
    for key, child in node.children.items():
        if child.kind == "same":
            target = _parse_path(child.same_as)
            if not target or any(isinstance(t, int) for t in target):
                raise ValueError(f"x-same-as of {_format_path([*path, key])}: {child.same_as!r} is not a field path")
            yield [*path, key], target
        elif child.kind == "group":
            yield from _aliases(child, [*path, key])


def _get(doc: Any, tokens: Iterable[str | int]) -> Any:
    for t in tokens:
        if not isinstance(doc, dict) or t not in doc:
            return _ABSENT
        doc = doc[t]
    return doc


def _same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _fold_same(doc: dict, aliases) -> dict:
    """The document as the form shows it: a setting written at an x-same-as place is shown by
    the field it names (a value that disagrees with that field's stays where it is, as a leftover)."""
    if not aliases:
        return doc
    doc = copy.deepcopy(doc)
    for here, there in aliases:
        holder, target = _get(doc, here[:-1]), _get(doc, there[:-1])
        if not (isinstance(holder, dict) and here[-1] in holder and isinstance(target, dict)):
            continue
        value, shown = holder[here[-1]], target.get(there[-1], _ABSENT)
        if shown is _ABSENT:
            target[there[-1]] = value
            holder[here[-1]] = _Same(SAME_HERE)
        elif _same_value(shown, value):
            holder[here[-1]] = _Same(SAME_ALSO)
    return doc


def _node_at(node: Node, tokens: Iterable[str | int]) -> Node | None:
    for t in tokens:
        node = node.children.get(t) if isinstance(t, str) else None  # type: ignore[assignment]
        if node is None:
            return None
    return node


def _in_schema_order(d: dict, node: Node | None) -> dict:
    if node is None:
        return d
    first = {k: d[k] for k in node.children if k in d}
    return {**first, **{k: v for k, v in d.items() if k not in first}}


def _put(doc: dict, root: Node, tokens: list[str], value: Any) -> None:
    """Set doc[tokens] = value, making the objects on the way, keeping each object's schema order."""
    if len(tokens) > 1:
        inner = doc.get(tokens[0])
        inner = dict(inner) if isinstance(inner, dict) else {}
        _put(inner, root.children.get(tokens[0]) or Node("group", tokens[0], tokens[0]), tokens[1:], value)
        value = inner
    doc[tokens[0]] = value
    reordered = _in_schema_order(doc, root)
    doc.clear()
    doc.update(reordered)


# --------------------------------------------------------------------------------------------
# Public API


def build_form(kind: str, doc: dict | None = None, formdata=None, *, schema: dict | None = None) -> SchemaForm:
    """The form for a ruleset of `kind`: showing `doc` (None: a new document), or, when
    `formdata` (a MultiDict, e.g. request.form) is given, what the browser submitted (doc is
    then ignored). `schema` replaces the kind's schema (tests; $refs to other files still work)."""
    cls = _root_class(kind, schema)
    if formdata is not None:
        return cls(formdata=formdata)
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise ValueError("a ruleset document is a mapping; edit it in the YAML view")
    return cls(obj=_group_values(cls.node, _fold_same(doc, cls.aliases)))


def _collect(f, node: Node, path: str, problems: list[Problem]) -> Any:
    k = node.kind
    if k == "same":
        return _ABSENT  # written by SchemaForm.to_document from the field that shows the setting
    if k == "group":
        out = _collect_group(f.form, node, path, problems)
        return out if out else _ABSENT
    if k == "repeat":
        items = [_collect_group(e.form, node.item, f"{path}[{i}]", problems) for i, e in enumerate(f.entries)]
        return items if items else _ABSENT
    if k == "conditions" and not f.yaml_mode:
        when = f.document(path, problems)
        return when if when else _ABSENT
    if k in ("textarea", "lines", "yaml", "conditions"):
        text = _textarea_text(f.data)
    else:
        text = "" if f.data is None else str(f.data)
    if k == "lines":
        items = [line.strip() for line in text.split("\n") if line.strip()]
        return [_parse_scalar(node.item, x) for x in items] if items else _ABSENT
    if k in ("yaml", "conditions"):
        if not text.strip():
            return _ABSENT
        try:
            return parse_text(text)
        except InvalidDocument as exc:
            problems.extend(Problem(path or "(document)", f"YAML {p.path}: {p.message}") for p in exc.problems)
            return _ABSENT
    if text == "":
        return _ABSENT
    return _parse_scalar(node, text)


def _collect_group(form: SchemaForm, node: Node, path: str, problems: list[Problem]) -> dict:
    values: dict[str, Any] = {}
    for key, child in node.children.items():
        v = _collect(form._fields[key], child, _join(path, key), problems)
        if v is not _ABSENT:
            values[key] = v
    extra: dict = {}
    text = _textarea_text(form._fields[EXTRA].data)
    if text.strip():
        try:
            parsed = parse_text(text)
        except InvalidDocument as exc:
            parsed = {}
            problems.extend(Problem(_join(path, EXTRA), f"YAML {p.path}: {p.message}") for p in exc.problems)
        if isinstance(parsed, dict):
            extra = parsed
        elif parsed is not None:
            problems.append(Problem(_join(path, EXTRA), "must be YAML key: value lines (a mapping)"))
    out: dict = {}
    for key in node.children:  # schema order; a field's value wins over the same key in _extra
        if key in values:
            out[key] = values[key]
        elif key in extra:
            out[key] = extra[key]
    for key, v in extra.items():
        if key not in node.children:
            out[key] = v
    return out


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}['{key.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}']"


_TOKEN = re.compile(r"\.?([^.\[\]'\s][^.\[\]]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


def _parse_path(path: str) -> list[str | int] | None:
    """"spec.tiers[0].name" -> ["spec", "tiers", 0, "name"]; None for "(document)" and the like."""
    p = path.strip()
    if p.startswith("$"):
        p = p[1:]
    if p in ("", "(document)"):
        return []
    tokens: list[str | int] = []
    pos = 0
    while pos < len(p):
        m = _TOKEN.match(p, pos)
        if not m or m.end() == pos:
            return None
        if m.group(1) is not None:
            tokens.append(m.group(1))
        elif m.group(2) is not None:
            tokens.append(int(m.group(2)))
        else:
            tokens.append(re.sub(r"\\(.)", r"\1", m.group(3)))
        pos = m.end()
    return tokens


def _format_path(tokens: Iterable[str | int]) -> str:
    out = ""
    for t in tokens:
        out = _join(out, t)
    return out


def _locate(form: SchemaForm, tokens: list[str | int]):
    """Follow `tokens` as far as the form goes: (field or None, the form holding it, used)."""
    cur_form, cur_field, used = form, None, 0
    while used < len(tokens):
        t = tokens[used]
        if isinstance(cur_field, FieldList):
            if not isinstance(t, int) or t >= len(cur_field.entries):
                break
            cur_field = cur_field.entries[t]
            cur_form = cur_field.form
        elif cur_field is None or isinstance(cur_field, FormField):
            if not isinstance(t, str) or t not in cur_form._fields:
                break
            cur_field = cur_form._fields[t]
            if isinstance(cur_field, FormField):
                cur_form = cur_field.form
        else:
            break  # a scalar or YAML field: the rest of the path is inside its value
        used += 1
    return cur_field, cur_form, used


def field_for_path(form: SchemaForm, path: str, *, exact: bool = False):
    """The field for a JSON path ("spec.tiers[0].name" -> field "spec-tiers-0-name"): the deepest
    field on the path (a FormField for an object, a FieldList for an array, the YAML textarea for
    a path into a YAML subtree); None for the document itself, or if `exact` and the path does
    not end at a field."""
    tokens = _parse_path(path)
    if tokens is None:
        return None
    f, _form, used = _locate(form, tokens)
    if exact and used < len(tokens):
        return None
    return f


def json_path_of(field) -> str:
    """The JSON path of a generated field, from its name: "spec-tiers-0-name" -> "spec.tiers[0].name"."""
    parts = field.name.split("-") if field.name else []
    return _format_path(int(p) if p.isdigit() else p for p in parts)


def _add_error(field, message: str) -> None:
    field.errors = [*field.errors, message] if isinstance(field.errors, (list, tuple)) else [message]


def attach_errors(form: SchemaForm, problems: Iterable[Problem]) -> None:
    """Put each Problem next to its field: the deepest field its JSON path reaches (the rest of
    the path prefixes the message; a missing field's problem has the missing field's path);
    paths the form does not have go to the form-level errors of the deepest object (`form_errors`)."""
    for p in problems:
        tokens = _parse_path(p.path)
        if tokens is None:
            form.form_errors.append(p.message)
            continue
        f, holder, used = _locate(form, tokens)
        node = getattr(f, "node", None)
        if node is not None and node.kind == "same":  # shown by another field: the error goes there
            shown = field_for_path(form, node.same_as)
            if shown is not None:
                f, used = shown, len(tokens)
        rest = tokens[used:]
        message = f"{_format_path(rest)}: {p.message}" if rest else p.message
        if isinstance(f, FieldList):
            _add_error(f, message)
        elif isinstance(f, conditions.ConditionsField):
            f.add_problem(rest, p.message, _format_path(rest))
        elif f is None or isinstance(f, FormField):
            if rest and holder._fields[EXTRA].data:
                _add_error(holder._fields[EXTRA], message)  # a key kept in the YAML leftovers
            else:
                holder.form_errors.append(message)
        else:
            _add_error(f, message)


def _pairs(form: SchemaForm, prefix: str) -> Iterator[tuple[str, str]]:
    for key, f in form._fields.items():
        name = prefix + key
        if isinstance(f, FieldList):
            for i, entry in enumerate(f.entries):
                yield from _pairs(entry.form, f"{name}-{i}-")
        elif isinstance(f, FormField):
            yield from _pairs(f.form, name + "-")
        elif isinstance(f, conditions.ConditionsField):
            yield from f.pairs()
        else:
            yield name, "" if f.data is None else str(f.data)


def form_formdata(form: SchemaForm) -> MultiDict:
    """What a browser would submit for this form (names renumbered 0..n-1 in each list)."""
    return MultiDict(list(_pairs(form, form._prefix)))


def _name_for(target: str) -> str:
    if "." in target or "[" in target:
        tokens = _parse_path(target) or []
        return "-".join(str(t) for t in tokens)
    return target


def apply_action(form: SchemaForm, action: str) -> SchemaForm:
    """Perform an "add:<list field name>" or "remove:<entry field name>" button (the value of the
    submitted `_action`; JSON paths such as "add:spec.tiers" work too) and return the form to
    re-render: nothing else changes, nothing is validated."""
    verb, _, target = action.partition(":")
    name = _name_for(target.strip())
    fd = form_formdata(form)
    if verb in ("add", "remove") and isinstance(_field_in(form, name), conditions.ConditionsField):
        new = type(form)(formdata=fd)
        _field_in(new, name).apply(verb, name)  # a condition row or group of the builder
        return new
    if verb == "remove":
        parent, _, index = name.rpartition("-")
        lst = _field_named(form, parent)
        if not (isinstance(lst, FieldList) and index.isdigit()):
            raise ValueError(f"{target!r} is not an item of a repeatable group")
        fd = MultiDict([(k, v) for k, v in fd.items(multi=True) if k != name and not k.startswith(name + "-")])
        return type(form)(formdata=fd)
    if verb == "add":
        new = type(form)(formdata=fd)
        lst = _field_named(new, name)
        if not isinstance(lst, FieldList):
            raise ValueError(f"{target!r} is not a repeatable group")
        lst.append_entry()
        return new
    raise ValueError(f"unknown action {action!r} (add:<field> or remove:<field>)")


def _field_named(form: SchemaForm, name: str):
    tokens: list[str | int] = [int(p) if p.isdigit() else p for p in name.split("-")] if name else []
    f, _holder, used = _locate(form, tokens)
    return f if used == len(tokens) and tokens else None


def _field_in(form: SchemaForm, name: str):
    """The field a name is in or of (the builder for its rows' names)."""
    tokens: list[str | int] = [int(p) if p.isdigit() else p for p in name.split("-")] if name else []
    return _locate(form, tokens)[0] if tokens else None


def inline_refs(kind: str, schema: dict | None = None) -> dict:
    """The kind's schema with every $ref replaced by its target (sibling keywords kept), for
    tools that cannot follow references across files (hypothesis-jsonschema)."""
    base = BASE_URI + kind_schemas()[kind]
    res = _Resolver({base: schema} if schema is not None else None)

    def walk(node: Any, base: str, seen: tuple) -> Any:
        if isinstance(node, list):
            return [walk(x, base, seen) for x in node]
        if not isinstance(node, dict):
            return node
        while "$ref" in node:
            key = urljoin(base, node["$ref"])
            if key in seen:
                raise ValueError(f"recursive $ref {key}")
            seen = (*seen, key)
            target, base = res.lookup(node["$ref"], base)
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return {k: walk(v, base, seen) for k, v in node.items() if k not in ("$defs", "$id", "$schema")}

    return walk(res.docs[base], base, ())
