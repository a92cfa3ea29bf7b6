"""The rules-engine adapter. durable_rules is the matcher, used statelessly.

Each evaluation asserts the flattened event+member *fact* (a fact fires every rule it matches; a
posted event would fire only one), reads the names of the rules that matched from durable_rules'
C core, and retracts the fact again, so the engine holds nothing between evaluations and two
members can never share state. All evaluations use one session id per ruleset: durable_rules
2.0.28 corrupts its heap in `delete_state` (SIGSEGV or "free(): invalid pointer", seen within a
few hundred evaluations, tests/test_engine.py keeps the proof), while assert-then-retract on one
session stays flat in memory and agrees with the plain-Python matcher. Rulesets are created in
the C core directly: neither durable's Host (whose background threads would run actions outside
our lock) nor its Python action layer (closures, promises: three quarters of the time per event)
is used. No action runs; effects are computed and applied by our own code, in SQL.

`CachedEngine` answers most evaluations without the engine at all, exactly: which rules match a
fact depends only on where each field a rule tests falls relative to the constants it is
compared with, so the answer is kept per such *signature* (a few dozen per ruleset in practice).
"""

from __future__ import annotations

import bisect
import copy
import itertools
import json
import os
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from ..kernel.errors import EngineFailure
from .compiler import CompiledRules

__all__ = ["CachedEngine", "DurableRulesEngine", "EngineFailure", "PythonEngine", "RulesEngine", "default_engine"]


class RulesEngine(Protocol):
    name: str

    def matches(self, rules: CompiledRules, fact: dict) -> list[str]:
        """Ids of every rule of `rules` that `fact` satisfies, in document order."""


SESSION = "0"
_NOT_HANDLED, _OBSERVED, _QUEUED = 1, 2, 3  # durable_rules' result codes of an assert


class DurableRulesEngine:
    name = "durable_rules"

    def __init__(self) -> None:
        self._rulesets: dict[str, Any] = {}
        self._order: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._pid = os.getpid()

    def _handle(self, rules: CompiledRules) -> Any:
        handle = self._rulesets.get(rules.name)
        if handle is None:
            import durable_rules_engine as core

            # The C core keeps the rules' names as the names of their actions; none is run.
            definition = copy.deepcopy(rules.definition)
            try:
                handle = core.create_ruleset(rules.name, json.dumps(definition, ensure_ascii=False))
            except core.error as exc:  # the C extension reports only an error code
                raise EngineFailure(f"the engine refused ruleset {rules.ref}: {exc}") from exc
            self._rulesets[rules.name] = handle
            self._order[rules.name] = {rid: i for i, rid in enumerate(rules.order)}
        return handle

    def facts_held(self, rules: CompiledRules) -> int:
        """How many facts the engine still holds for `rules`: always 0 between evaluations."""
        import durable_rules_engine as core

        with self._lock:
            return len(json.loads(core.get_facts(self._handle(rules), SESSION)))

    def matches(self, rules: CompiledRules, fact: dict) -> list[str]:
        if not rules.definition:
            return []
        import durable_rules_engine as core

        with self._lock:
            handle = self._handle(rules)
            message = json.dumps(dict(fact, sid=SESSION, id=f"{self._pid}-{next(self._seq)}"), ensure_ascii=False)
            fired: list[str] = []
            try:
                result = core.assert_fact(handle, message)
                if result[0] != _NOT_HANDLED:
                    state = 0 if result[0] == _QUEUED else result[1]
                    started = core.start_action_for_state(handle, state)
                    pending = started[1] if started else None
                    while pending:
                        fired.extend(json.loads(pending))
                        pending = core.complete_and_start_action(handle, state)
            except core.error as exc:
                raise EngineFailure(f"rule evaluation failed in {rules.ref}: {exc}") from exc
            finally:
                try:
                    core.retract_fact(handle, message)
                except core.error:
                    pass  # nothing was asserted
            order = self._order[rules.name]
        return sorted(set(fired), key=order.__getitem__)


class CachedEngine:
    """An exact cache of another engine's answers, by signature (see the module docstring).

    For every field a ruleset tests, its constants are sorted; a fact's signature records, per
    field, whether it is there and where its value falls among the constants (the insertion
    point and whether it equals one). Two facts with one signature satisfy exactly the same
    tests, so the first one's answer serves both; fields no rule tests pass through untouched.
    A value that cannot be placed exactly (of another type than its constants, or a number
    beyond what the engine's doubles hold) is evaluated by the engine, uncached."""

    def __init__(self, inner: RulesEngine, capacity: int = 4096):
        self.inner = inner
        self.name = f"cached {inner.name}"
        self.capacity = capacity  # signatures kept per ruleset; past that, answers are not kept
        self._plans: dict[str, _Plan] = {}
        self._answers: dict[str, dict[tuple, tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def matches(self, rules: CompiledRules, fact: dict) -> list[str]:
        plan = self._plans.get(rules.name)
        if plan is None:
            plan = self._plans[rules.name] = _Plan(rules.definition)
            self._answers[rules.name] = {}
        signature = plan.signature(fact)
        if signature is None:
            return self.inner.matches(rules, fact)
        answers = self._answers[rules.name]
        found = answers.get(signature)
        if found is None:
            self.misses += 1
            found = tuple(self.inner.matches(rules, fact))
            with self._lock:
                if len(answers) < self.capacity:
                    answers[signature] = found
        else:
            self.hits += 1
        return list(found)

    def facts_held(self, rules: CompiledRules) -> int:
        held = getattr(self.inner, "facts_held", None)
        return int(held(rules)) if held else 0


_EXACT = 2 ** 53  # integers the engine's doubles hold exactly


class _Plan:
    """For one ruleset: each tested field and its sorted constants (None: only tested for presence)."""

    def __init__(self, definition: dict):
        consts: dict[str, set] = {}
        for rule in definition.values():
            for key, value in _comparisons(rule["all"][0]["m"]):
                consts.setdefault(key, set())
                if value is not _PRESENCE:
                    consts[key].add(value)
        self.fields: list[tuple[str, list | None, type | None]] = []
        self.exact = True
        for key in sorted(consts):
            values = consts[key]
            kinds = {_kind(v) for v in values}
            if not values:
                self.fields.append((key, None, None))
            elif len(kinds) == 1 and None not in kinds:
                self.fields.append((key, sorted(values), kinds.pop()))
            else:  # constants of mixed types: no exact ordering to place a value in
                self.exact = False

    def signature(self, fact: dict) -> tuple | None:
        if not self.exact:
            return None
        out: list = []
        for key, consts, kind in self.fields:
            if key not in fact:
                out.append(None)
                continue
            value = fact[key]
            if consts is None:
                out.append(True)
                continue
            if _kind(value) is not kind or (kind is int and abs(value) >= _EXACT):
                return None
            i = bisect.bisect_left(consts, value)
            out.append((i, i < len(consts) and consts[i] == value))
        return tuple(out)


_PRESENCE = object()


def _kind(value: Any) -> type | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int
    if isinstance(value, str):
        return str
    return None


def _comparisons(test: dict) -> Iterator[tuple[str, Any]]:
    """Every (field, constant) a test compares, and (field, _PRESENCE) for existence tests."""
    ((op, arg),) = test.items()
    if op in ("$and", "$or"):
        for t in arg:
            yield from _comparisons(t)
    elif op in ("$ex", "$nex"):
        yield next(iter(arg)), _PRESENCE
    elif op.startswith("$"):
        ((key, value),) = arg.items()
        yield key, value
    else:
        yield op, arg


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
        _default, _default_pid = CachedEngine(DurableRulesEngine()), os.getpid()
    return _default
