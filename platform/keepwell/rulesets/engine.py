"""The rules-engine adapter. durable_rules is the matcher, used statelessly.

Each evaluation asserts the flattened event+member *fact* (a fact fires every rule it matches; a
posted event would fire only one), collects the ids of the rules that fired, and retracts the
fact again, so the engine holds nothing between evaluations and two members can never share
state. All evaluations use one session id per ruleset: durable_rules 2.0.28 corrupts its heap in
`delete_state` (SIGSEGV or "free(): invalid pointer", seen within a few hundred evaluations,
tests/test_engine.py keeps the proof), while assert-then-retract on one session stays flat in
memory and agrees with the plain-Python matcher. Rulesets are created directly, without
durable's Host, whose background dispatch threads would run actions outside our lock. Actions
only collect rule ids; effects are computed and applied by our own code, in SQL.
"""

from __future__ import annotations

import copy
import itertools
import os
import threading
from typing import Protocol

from ..kernel.errors import EngineFailure
from .compiler import CompiledRules

__all__ = ["DurableRulesEngine", "EngineFailure", "PythonEngine", "RulesEngine", "default_engine"]


class RulesEngine(Protocol):
    name: str

    def matches(self, rules: CompiledRules, fact: dict) -> list[str]:
        """Ids of every rule of `rules` that `fact` satisfies, in document order."""


SESSION = "0"


class DurableRulesEngine:
    name = "durable_rules"

    def __init__(self) -> None:
        self._rulesets: dict[str, object] = {}
        self._lock = threading.Lock()
        self._fired: list[str] = []
        self._seq = itertools.count()
        self._pid = os.getpid()

    def _ruleset(self, rules: CompiledRules):
        rs = self._rulesets.get(rules.name)
        if rs is None:
            from durable import engine as durable_engine

            # Registration mutates its input: hand it a copy, with one collecting action per rule.
            definition = copy.deepcopy(rules.definition)
            for rule_id, rule in definition.items():
                rule["run"] = self._collector(rule_id)
            try:
                rs = durable_engine.Ruleset(rules.name, None, definition)
            except Exception as exc:  # the C extension reports only an error code
                raise EngineFailure(f"the engine refused ruleset {rules.ref}: {exc}") from exc
            self._rulesets[rules.name] = rs
        return rs

    def _collector(self, rule_id: str):
        def action(_c) -> None:
            self._fired.append(rule_id)

        return action

    def facts_held(self, rules: CompiledRules) -> int:
        """How many facts the engine still holds for `rules`: always 0 between evaluations."""
        with self._lock:
            return len(self._ruleset(rules).get_facts(SESSION))

    def matches(self, rules: CompiledRules, fact: dict) -> list[str]:
        if not rules.definition:
            return []
        from durable.engine import MessageNotHandledException

        errors: list = []

        def done(error, _state) -> None:
            if error:
                errors.append(error)

        with self._lock:
            rs = self._ruleset(rules)
            message = dict(fact, sid=SESSION, id=f"{self._pid}-{next(self._seq)}")
            self._fired = []
            try:
                handle = rs.assert_fact(message)
                rs.do_actions(handle, done)
            except MessageNotHandledException:
                pass  # no rule matched: no effects
            finally:
                try:
                    rs.retract_fact(message)
                except MessageNotHandledException:
                    pass
            fired, self._fired = self._fired, []
        if errors:
            raise EngineFailure(f"rule evaluation failed in {rules.ref}: {errors[0]}")
        order = {rid: i for i, rid in enumerate(rules.order)}
        return sorted(set(fired), key=order.__getitem__)


class PythonEngine:
    """The same matching done in plain Python over the compiled tests: a second engine to
    measure beside durable_rules and to cross-check it."""

    name = "python"

    def matches(self, rules: CompiledRules, fact: dict) -> list[str]:
        return [rid for rid in rules.order if _test(rules.definition[rid]["all"][0]["m"], fact)]


def _test(t: dict, fact: dict) -> bool:
    (op, arg), = t.items()
    if op == "$and":
        return all(_test(x, fact) for x in arg)
    if op == "$or":
        return any(_test(x, fact) for x in arg)
    if op == "$ex":
        return next(iter(arg)) in fact
    if op == "$nex":
        return next(iter(arg)) not in fact
    if op.startswith("$"):
        (key, value), = arg.items()
        if key not in fact:
            return False
        have = fact[key]
        try:
            return {"$neq": have != value, "$lt": have < value, "$lte": have <= value,
                    "$gt": have > value, "$gte": have >= value}[op]
        except TypeError:
            return False
    return fact.get(op) == arg


_default: RulesEngine | None = None
_default_pid: int | None = None


def default_engine() -> RulesEngine:
    """One engine per process, created lazily (after an RQ worker forks, never before)."""
    global _default, _default_pid
    if _default is None or _default_pid != os.getpid():
        _default, _default_pid = DurableRulesEngine(), os.getpid()
    return _default
