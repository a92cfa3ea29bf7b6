"""Evaluating the published EarningRules and NotificationTriggers in force for an event.

Published versions are immutable and only ever appended, so the compiled rules of a company are
cached and the cache is checked with one cheap query (the company's newest version) once per
transaction: a batch of events resolves the rulesets in force once per date.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from ..infra.context import Ctx
from . import kinds
from .compiler import CompiledRules, compile_document, make_fact
from .models import Ruleset, RulesetVersion

_compiled: dict[tuple[str, str], CompiledRules] = {}


def compiled(ref: str, content_hash: str, content: dict) -> CompiledRules:
    key = (ref, content_hash)
    found = _compiled.get(key)
    if found is None:
        found = _compiled[key] = compile_document(content, ref)
    return found


@dataclass(frozen=True)
class _Version:
    id: int
    effective_from: date
    version: int
    ref: str
    content_hash: str
    content: dict


@dataclass(frozen=True)
class _Index:
    by_kind: dict[str, list[list[_Version]]]  # kind -> one list per ruleset of its versions, newest effective first
    by_id: dict[int, _Version]


_index: dict[tuple[str, int], tuple[tuple, _Index]] = {}
_index_lock = threading.Lock()


def index(ctx: Ctx) -> _Index:
    """Every published version of the company, checked against the database once per transaction."""
    memo = ctx.unit.memo
    found = memo.get("rulesets.versions")
    if found is None:
        found = memo["rulesets.versions"] = _load_index(ctx)
    return found  # type: ignore[no-any-return]


def _versions_by_kind(ctx: Ctx) -> dict[str, list[list[_Version]]]:
    return index(ctx).by_kind


def _load_index(ctx: Ctx) -> _Index:
    # The newest version's id and creation time: a database that was emptied and refilled
    # (ids restarted) still gets a fresh index.
    newest = tuple(ctx.session.execute(
        sa.select(RulesetVersion.id, RulesetVersion.created_at).join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
        .where(Ruleset.company_id == ctx.company.id).order_by(RulesetVersion.id.desc()).limit(1)
    ).first() or ())
    key = (str(ctx.session.get_bind().url), ctx.company.id)
    cached = _index.get(key)
    if cached and cached[0] == newest:
        return cached[1]
    rows = ctx.session.execute(
        sa.select(Ruleset.key, Ruleset.kind, RulesetVersion)
        .join(RulesetVersion, RulesetVersion.ruleset_id == Ruleset.id)
        .where(Ruleset.company_id == ctx.company.id)
        .order_by(Ruleset.key, RulesetVersion.effective_from.desc(), RulesetVersion.version.desc())
    )
    by_kind: dict[str, dict[str, list[_Version]]] = {}
    for rkey, kind, v in rows:
        by_kind.setdefault(kind, {}).setdefault(rkey, []).append(
            _Version(v.id, v.effective_from, v.version, f"{rkey}@{v.version}", v.content_hash, v.content))
    kinds = {kind: list(per_key.values()) for kind, per_key in by_kind.items()}
    found = _Index(kinds, {v.id: v for lists in kinds.values() for versions in lists for v in versions})
    with _index_lock:
        _index[key] = (newest, found)
    return found


def version(ctx: Ctx, version_id: int) -> _Version | None:
    """A published version by id, from the cached index (None if this transaction cannot see it)."""
    return index(ctx).by_id.get(version_id)


def in_force(ctx: Ctx, kind: str, on: date) -> list[CompiledRules]:
    """The compiled version of each ruleset of `kind` in force on `on` (newest effective_from <= on)."""
    memo = ctx.unit.memo
    key = ("rulesets.in_force", kind, on)
    found = memo.get(key)
    if found is not None:
        return found
    out = []
    for versions in _versions_by_kind(ctx).get(kind, []):
        v = next((v for v in versions if v.effective_from <= on), None)
        if v is not None:
            out.append(compiled(v.ref, v.content_hash, v.content))
    memo[key] = out
    return out


def event_types(rules: CompiledRules) -> frozenset[str] | None:
    """The event types some rule of `rules` can match (every rule names its event types, and the
    compiler puts that test first), or None when that cannot be read from the definition."""
    found = _event_types.get(rules.name)
    if found is None and rules.name not in _event_types:
        found = _event_types[rules.name] = _read_event_types(rules)
    return found


_event_types: dict[str, frozenset[str] | None] = {}


def _read_event_types(rules: CompiledRules) -> frozenset[str] | None:
    out: set[str] = set()
    for rule in rules.definition.values():
        try:
            test = rule["all"][0]["m"]
        except (KeyError, IndexError, TypeError):
            return None
        if "$and" in test:
            test = test["$and"][0]
        alternatives = test["$or"] if "$or" in test else [test]
        for alt in alternatives:
            if not (isinstance(alt, dict) and len(alt) == 1 and isinstance(alt.get("type"), str)):
                return None
            out.add(alt["type"])
    return frozenset(out)


@dataclass(frozen=True)
class Match:
    rules: CompiledRules
    rule_ids: list[str]
    fact: dict


def _for_type(ctx: Ctx, kind: str, event_type: str, on: date) -> list[CompiledRules]:
    """The rulesets of `kind` in force on `on` with some rule for this event type (the others
    cannot fire: the engine is not asked)."""
    return [r for r in in_force(ctx, kind, on) if (types := event_types(r)) is None or event_type in types]


def may_fire(ctx: Ctx, event_type: str, on: date) -> bool:
    """Whether any ruleset in force on `on`, of any kind the engine evaluates, has a rule for
    this event type: when none has, no rule can react to such an event, whoever it is for."""
    return any(_for_type(ctx, kind, event_type, on) for kind in kinds.compiled_names())


def evaluate(ctx: Ctx, kind: str, event_type: str, on: date, data: dict, member) -> list[Match]:
    active = _for_type(ctx, kind, event_type, on)
    if not active:
        return []
    if callable(member):  # the member snapshot, taken only when some rule may fire
        member = member()
    fact = make_fact(event_type, on, data, member)
    out = []
    for rules in active:
        fired = ctx.rules.matches(rules, fact)
        if fired:
            out.append(Match(rules, fired, fact))
    return out
