"""Memory: RSS while the engine evaluates many events; it must stay flat (nothing is kept
between evaluations). The baseline is the RSS after the first 10% of the run."""

from __future__ import annotations

import resource
import time

import keepwell.usecases  # noqa: F401  (the areas' event types: what rules may react to)
from keepwell.rulesets.compiler import compile_document, make_fact
from keepwell.rulesets.engine import DurableRulesEngine

from .rule_eval import events, rules_doc


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def run(quick: bool = False) -> dict:
    total = 20_000 if quick else 1_000_000
    engine = DurableRulesEngine()
    rules = compile_document(rules_doc(10), "mem@1")
    sample = events(5000)
    facts = [make_fact(t, d, data, m) for t, d, data, m in sample]
    checkpoints = []
    start = time.perf_counter()
    for i in range(total):
        engine.matches(rules, facts[i % len(facts)])
        if i + 1 in (total // 10, total // 2, total):
            checkpoints.append((i + 1, round(_rss_mb(), 1)))
    elapsed = time.perf_counter() - start
    base = checkpoints[0][1]
    return {"name": "memory", "events": total, "events_per_s": round(total / elapsed),
            "rss_mb": {str(n): mb for n, mb in checkpoints}, "growth_mb": round(checkpoints[-1][1] - base, 1),
            "facts_held": engine.facts_held(rules)}
