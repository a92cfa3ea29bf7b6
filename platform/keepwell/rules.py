"""Evaluating the published EarningRules and NotificationTriggers in force for an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .compiler import CompiledRules, compile_document, make_fact
from .models import Ruleset, RulesetVersion
from .tenancy import Ctx
from .versions import all_in_force, ref

# Published versions are immutable, so a compiled ruleset is cached by its ref and content.
_compiled: dict[tuple[str, str], CompiledRules] = {}


def compiled(rs: Ruleset, v: RulesetVersion) -> CompiledRules:
    key = (ref(rs, v), v.content_hash)
    found = _compiled.get(key)
    if found is None:
        found = _compiled[key] = compile_document(v.content, key[0])
    return found


@dataclass(frozen=True)
class Match:
    rules: CompiledRules
    rule_ids: list[str]
    fact: dict


def evaluate(ctx: Ctx, kind: str, event_type: str, on: date, data: dict, member: dict) -> list[Match]:
    fact = make_fact(event_type, on, data, member)
    out = []
    for rs, v in all_in_force(ctx.session, ctx.company.id, kind, on):
        rules = compiled(rs, v)
        fired = ctx.engine.matches(rules, fact)
        if fired:
            out.append(Match(rules, fired, fact))
    return out
