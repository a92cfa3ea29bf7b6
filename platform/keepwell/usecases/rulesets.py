"""Rulesets: validate, publish, drafts, history, compare, roll back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ..infra.context import Ctx
from ..kernel.errors import InvalidDocument, NotFound, Problem
from ..kernel.schema_messages import words_of
from ..rulesets import kinds, versions
from ..rulesets.documents import load_file, parse_text
from ..rulesets.event_types import EVENT_TYPES, STRING, field_kind
from ..rulesets.key_order import ruleset_diff
from ..rulesets.key_order import ruleset_yaml as to_yaml  # a ruleset's YAML in its schema's key order
from ..rulesets.schemas import BASE_URI, schema
from ..rulesets.validation import publish_warnings, validate_ruleset
from ..rulesets.versions import Published
from .app import reading, use_case

__all__ = [
    "BASE_URI",
    "Published",
    "kind_schemas",
    "load_file",
    "parse_text",
    "schema",
    "to_yaml",
    "editable",
    "history",
    "kind_names",
    "list_rulesets",
    "publish",
    "publish_all",
    "publish_draft",
    "publish_preview",
    "PublishPreview",
    "rollback",
    "save_and_publish",
    "save_draft",
    "show",
    "diff",
    "validate",
    "version_contents",
    "versions_of",
    "ConditionField",
    "EventKind",
    "MEMBER_FIELDS",
    "event_catalog",
    "condition_values",
]


def validate(docs: list[tuple[str, object]]) -> list[Problem]:
    """Every problem of every document (file, document); empty when all can be published."""
    return [p for f, d in docs for p in validate_ruleset(d, f)]


def schema_document(name: str) -> dict[str, Any]:
    """One of the JSON Schemas requests and rulesets are validated with (`event`, `plan`,
    `common`...), as the validators use it (the event schema with every declared type)."""
    return schema(f"{name}.schema.json")


def kind_schemas() -> dict[str, str]:
    """Each ruleset kind's schema file."""
    out = {}
    for name in kinds.names():
        k = kinds.get(name)
        assert k is not None
        out[name] = k.schema
    return out


def kind_names() -> list[tuple[str, str]]:
    """(kind, what contractors call it) of every ruleset kind."""
    out = []
    for name in kinds.names():
        k = kinds.get(name)
        assert k is not None
        out.append((name, k.title))
    return out


@use_case
def publish(ctx: Ctx, doc: dict[str, Any], author: str, effective_from: date, file: str = "",
            note: str | None = None) -> Published:
    return versions.publish(ctx.session, ctx.company.id, doc, author, effective_from, note=note, file=file)


@use_case
def publish_all(ctx: Ctx, docs: list[tuple[str, object]], author: str, effective_from: date) -> list[Published]:
    """Publish every document as a new version, all or nothing: one bad file publishes none."""
    problems = validate(docs)
    if problems:
        raise InvalidDocument("nothing published", problems)
    return [versions.publish(ctx.session, ctx.company.id, doc, author, effective_from, file=f)  # type: ignore[arg-type]
            for f, doc in docs]


@reading
def list_rulesets(ctx: Ctx) -> list[dict[str, Any]]:
    return versions.list_rulesets(ctx.session, ctx.company.id)


@reading
def versions_of(ctx: Ctx, key: str) -> list[dict[str, Any]]:
    return versions.versions_of(ctx.session, ctx.company.id, key)


@reading
def show(ctx: Ctx, ref: str) -> dict[str, Any]:
    """A version (ID for the newest, ID@N for one) with its content."""
    rs, v = versions.get_version(ctx.session, ctx.company.id, ref)
    return {"ref": versions.ref(rs, v), "kind": rs.kind, "version": v.version, "content_hash": v.content_hash,
            "author": v.author, "effective_from": v.effective_from.isoformat(), "created_at": v.created_at.isoformat(),
            "note": v.note, "content": v.content}


@reading
def diff(ctx: Ctx, a: str, b: str) -> str:
    return versions.diff(ctx.session, ctx.company.id, a, b)


@reading
def version_contents(ctx: Ctx, key: str, numbers: list[int]) -> list[dict[str, Any]]:
    return [versions.get_version(ctx.session, ctx.company.id, f"{key}@{n}")[1].content for n in numbers]


@use_case
def rollback(ctx: Ctx, key: str, to_version: int, author: str, effective_from: date | None = None) -> Published:
    """Publish an older version's content again as a new version (from today, by default)."""
    return versions.rollback(ctx.session, ctx.company.id, key, to_version, author, effective_from or ctx.today())


@use_case
def save_draft(ctx: Ctx, doc: dict[str, Any], author: str) -> list[Problem]:
    """Store a draft (valid or not); the answer is its problems."""
    return versions.save_draft(ctx.session, ctx.company.id, doc, author)


@use_case
def publish_draft(ctx: Ctx, key: str, author: str, effective_from: date, note: str | None = None) -> Published:
    return versions.publish_draft(ctx.session, ctx.company.id, key, author, effective_from, note)


@use_case
def save_and_publish(ctx: Ctx, doc: dict[str, Any], author: str, effective_from: date,
                     note: str | None = None) -> Published:
    """What the editor's Publish does: the document becomes the draft, and the draft a version
    (with the change note, shown in the history)."""
    versions.save_draft(ctx.session, ctx.company.id, doc, author)
    key = (doc.get("metadata") or {}).get("id") or ""
    return versions.publish_draft(ctx.session, ctx.company.id, key, author, effective_from, note)


@dataclass(frozen=True)
class History:
    key: str
    kind: str
    rows: list[dict[str, Any]]
    in_force: int | None  # the version in force today
    has_draft: bool
    name: str = ""  # what the contractor named it


@reading
def history(ctx: Ctx, key: str) -> History:
    rs = versions.get_ruleset(ctx.session, ctx.company.id, key)
    rows = versions.versions_of(ctx.session, ctx.company.id, key)
    try:
        number: int | None = versions.in_force(ctx.session, ctx.company.id, key, ctx.today())[1].version
    except NotFound:
        number = None
    try:
        versions.get_draft(ctx.session, ctx.company.id, key)
        has_draft = True
    except NotFound:
        has_draft = False
    return History(key, rs.kind, rows, number, has_draft, rs.name)


@dataclass(frozen=True)
class Editable:
    kind: str
    doc: dict[str, Any]
    is_draft: bool
    source: str  # "the saved draft" or "id@N (latest published)"


@reading
def editable(ctx: Ctx, key: str) -> Editable:
    """What the editor opens: the saved draft, else the newest published version."""
    rs = versions.get_ruleset(ctx.session, ctx.company.id, key)
    try:
        return Editable(rs.kind, versions.get_draft(ctx.session, ctx.company.id, key).content, True, "the saved draft")
    except NotFound:
        v = versions.latest_version(ctx.session, rs.id)
        if v is None:
            return Editable(rs.kind, {}, False, "nothing yet")
        return Editable(rs.kind, v.content, False, f"{key}@{v.version} (latest published)")


@dataclass(frozen=True)
class PublishPreview:
    """What the editor's "Publish" asks to confirm: which version it makes and what changes."""

    version: int  # the number the new version gets
    current: str | None  # the newest published version now (id@N), if any
    diff: str  # unified diff of the YAML against it, in the schema's key order
    lines_changed: int
    warnings: list[Problem]  # worth a look (a tier description quoting an old price); publishing is allowed


@reading
def publish_preview(ctx: Ctx, doc: dict[str, Any]) -> PublishPreview:
    key = (doc.get("metadata") or {}).get("id") or ""
    try:
        latest = versions.latest_version(ctx.session, versions.get_ruleset(ctx.session, ctx.company.id, key).id)
    except NotFound:
        latest = None
    current = f"{key}@{latest.version}" if latest else None
    diff = ruleset_diff(latest.content if latest else None, doc, current or "(nothing published)", "this draft")
    changed = sum(1 for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))
    return PublishPreview((latest.version + 1) if latest else 1, current, diff, changed, publish_warnings(doc))


# -- what a condition may test (the admin's condition builder) ------------------------------------


@dataclass(frozen=True)
class ConditionField:
    """A field a rule's condition may test: `data.amount`, `member.tier`..."""

    name: str  # as conditions write it: "data.amount"
    title: str  # what contractors call it: "Amount"
    description: str = ""
    kind: str = "text"  # money | integer | number | boolean | text
    choices: tuple[str, ...] = ()  # the values the schema allows, when it lists them


@dataclass(frozen=True)
class EventKind:
    """One event type a rule may react to, with the fields of its data."""

    name: str
    title: str
    description: str
    fields: tuple[ConditionField, ...]


MEMBER_FIELDS = (
    ConditionField("member.tier", "Member's tier", "The tier of the customer's membership."),
    ConditionField("member.plan", "Member's plan", "The plan of the customer's membership."),
    ConditionField("member.status", "Membership status", "Active, past due, suspended, cancelled, expired, or "
                   "none when the customer has no membership.",
                   choices=("active", "past_due", "suspended", "cancelled", "expired", "none")),
    ConditionField("member.loyalty_tier", "Loyalty status", "The customer's loyalty status tier."),
)


def _condition_field(name: str, prop: dict[str, Any]) -> ConditionField:
    kind = field_kind(prop)
    if kind == STRING:
        kind = {"boolean": "boolean", "number": "number"}.get(prop.get("type", ""), "text")
    choices = tuple(v for v in prop.get("enum", ()) if isinstance(v, str))
    return ConditionField(f"data.{name}", prop.get("title") or words_of(name), prop.get("description", ""), kind,
                          choices)


def event_catalog() -> tuple[EventKind, ...]:
    """Every event type a rule may react to, with the fields of its data (titles from their schemas)."""
    out = []
    for name in EVENT_TYPES.names:
        decl = EVENT_TYPES.get(name)
        assert decl is not None
        props = decl.data.get("properties") or {}
        out.append(EventKind(name, decl.title, decl.description,
                             tuple(_condition_field(k, v) for k, v in props.items() if isinstance(v, dict))))
    return tuple(out)


@reading
def condition_values(ctx: Ctx) -> dict[str, list[tuple[str, str]]]:
    """The values the company's rulesets give member and event fields (value, label): plans,
    tiers, service codes, loyalty tiers; what the condition builder offers in its value lists."""
    plans: dict[str, str] = {}
    tiers: dict[str, str] = {}
    codes: dict[str, str] = {}
    loyalty: dict[str, str] = {}
    for row in versions.list_rulesets(ctx.session, ctx.company.id):
        if row["kind"] not in ("Plan", "EarningRules"):
            continue
        rs = versions.get_ruleset(ctx.session, ctx.company.id, row["id"])
        v = versions.latest_version(ctx.session, rs.id)
        doc = v.content if v is not None and isinstance(v.content, dict) else {}
        if row["kind"] == "EarningRules":
            for t in ((doc.get("spec") or {}).get("loyalty_tiers") or {}).get("tiers") or []:
                if isinstance(t, dict) and isinstance(t.get("id"), str):
                    loyalty.setdefault(t["id"], str(t.get("name") or t["id"]))
            continue
        plans[row["id"]] = row.get("name") or row["id"]
        for tier in (doc.get("spec") or {}).get("tiers") or []:
            if isinstance(tier, dict) and isinstance(tier.get("id"), str):
                tiers.setdefault(tier["id"], str(tier.get("name") or tier["id"]))
                for s in tier.get("included_services") or []:
                    if isinstance(s, dict) and isinstance(s.get("code"), str):
                        codes.setdefault(s["code"], str(s.get("name") or s["code"]))
    return {"member.plan": sorted(plans.items()), "member.tier": list(tiers.items()),
            "data.service_code": sorted(codes.items()), "member.loyalty_tier": list(loyalty.items())}
