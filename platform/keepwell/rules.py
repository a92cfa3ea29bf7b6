"""Evaluating the published EarningRules and NotificationTriggers in force for an event.

Published versions are immutable and only ever appended, so the compiled rules of a company are
cached and the cache is checked with one cheap query: the company's newest version.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from .compiler import CompiledRules, compile_document, make_fact
from .models import Ruleset, RulesetVersion
from .tenancy import Ctx

_compiled: dict[tuple[str, str], CompiledRules] = {}


def compiled(ref: str, content_hash: str, content: dict) -> CompiledRules:
    key = (ref, content_hash)
    found = _compiled.get(key)
    if found is None:
        found = _compiled[key] = compile_document(content, ref)
    return found


@dataclass(frozen=True)
class _Version:
    effective_from: date
    version: int
    ref: str
    content_hash: str
    content: dict


_index: dict[tuple[str, int], tuple[tuple, dict[str, list[list[_Version]]]]] = {}
_index_lock = threading.Lock()


def _versions_by_kind(ctx: Ctx) -> dict[str, list[list[_Version]]]:
    """kind -> one list per ruleset of its versions, newest effective first."""
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
            _Version(v.effective_from, v.version, f"{rkey}@{v.version}", v.content_hash, v.content))
    index = {kind: list(per_key.values()) for kind, per_key in by_kind.items()}
    with _index_lock:
        _index[key] = (newest, index)
    return index


def in_force(ctx: Ctx, kind: str, on: date) -> list[CompiledRules]:
    """The compiled version of each ruleset of `kind` in force on `on` (newest effective_from <= on)."""
    out = []
    for versions in _versions_by_kind(ctx).get(kind, []):
        v = next((v for v in versions if v.effective_from <= on), None)
        if v is not None:
            out.append(compiled(v.ref, v.content_hash, v.content))
    return out


@dataclass(frozen=True)
class Match:
    rules: CompiledRules
    rule_ids: list[str]
    fact: dict


def evaluate(ctx: Ctx, kind: str, event_type: str, on: date, data: dict, member: dict) -> list[Match]:
    active = in_force(ctx, kind, on)
    if not active:
        return []
    fact = make_fact(event_type, on, data, member)
    out = []
    for rules in active:
        fired = ctx.engine.matches(rules, fact)
        if fired:
            out.append(Match(rules, fired, fact))
    return out
