"""Rule evaluation: events/s through Keepwell's compiled rulesets (fact, match, points) against
the same rules evaluated by durable_rules' C core alone (assert the fact, read the names of the
rules that matched, retract it: no Python action layer), against the same rules written in
durable_rules' own DSL (its Python layer: closures and promises), and against plain Python
computing the same points (the floor). Keepwell is measured as it runs: the exact cache of
answers (`CachedEngine`) in front of the C path."""

from __future__ import annotations

import itertools
import time
from datetime import date
from decimal import Decimal

import keepwell.usecases  # noqa: F401  (the areas' event types: what rules may react to)
from keepwell.rulesets.compiler import compile_document, make_fact
from keepwell.rulesets.engine import CachedEngine, DurableRulesEngine, PythonEngine

TIERS = ["basic", "silver", "gold"]
CODES = ["AC_TUNE", "FURNACE_TUNE", "FILTER", "IAQ_CHECK", "DUCT_CLEAN"]


def rules_doc(n: int) -> dict:
    rules = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            rules.append({"id": f"r{i}", "when": {"event": "purchase", "all": [{"field": "data.amount", "gte": f"{(i % 50) * 10}.00"}]},
                          "earn": {"points": 1, "per": "1.00", "of": "data.amount"}})
        elif kind == 1:
            rules.append({"id": f"r{i}", "when": {"event": "service_completed", "all": [{"field": "data.service_code", "eq": CODES[i % 5]}]},
                          "earn": {"points": 25 + i}})
        elif kind == 2:
            rules.append({"id": f"r{i}", "when": {"event": "purchase", "all": [{"field": "member.tier", "eq": TIERS[i % 3]}]},
                          "earn": {"points": 10}})
        else:
            rules.append({"id": f"r{i}", "when": {"event": "purchase", "all": [{"field": "data.amount", "gte": "100.00"}]},
                          "window": {"from": "2024-03-01", "to": "2024-05-31"}, "earn": {"points": 50}, "multiplier": "2"})
    return {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": f"bench{n}", "name": "Bench"},
            "spec": {"tier_multipliers": {"gold": "2", "silver": "1.5"}, "rules": rules}}


def events(count: int) -> list[tuple[str, date, dict, dict]]:
    out = []
    for i in range(count):
        tier = TIERS[i % 3]
        day = date(2024, 1 + i % 12, 1 + i % 28)
        if i % 3 == 2:
            out.append(("service_completed", day, {"service_code": CODES[i % 5]}, {"tier": tier}))
        else:
            out.append(("purchase", day, {"amount": f"{(i * 37) % 900}.{i % 100:02d}", "pay_with": "card"}, {"tier": tier}))
    return out


def keepwell_rate(doc: dict, evs, engine) -> tuple[float, int]:
    rules = compile_document(doc, f"{doc['metadata']['id']}@1")
    total = 0
    start = time.perf_counter()
    for etype, day, data, member in evs:
        fact = make_fact(etype, day, data, member)
        for rid in engine.matches(rules, fact):
            total += rules.earn[rid].points_for(fact, rules.tier_multipliers)
    return len(evs) / (time.perf_counter() - start), total


_names = itertools.count()


def durable_dsl_rate(doc: dict, evs) -> tuple[float, int]:
    """The same rules in durable_rules' DSL, evaluated the same stateless way."""
    from durable import lang as L
    from durable.engine import MessageNotHandledException

    name = f"dsl_{doc['metadata']['id']}_{next(_names)}"
    fired: list = []
    mult = {k: Decimal(v) for k, v in doc["spec"]["tier_multipliers"].items()}
    with L.ruleset(name):
        for r in doc["spec"]["rules"]:
            i = int(r["id"][1:])
            kind = i % 4
            if kind == 0:
                cond = (L.m.type == "purchase") & (L.m.d_amount >= (i % 50) * 1000)
            elif kind == 1:
                cond = (L.m.type == "service_completed") & (L.m.d_service_code == CODES[i % 5])
            elif kind == 2:
                cond = (L.m.type == "purchase") & (L.m.m_tier == TIERS[i % 3])
            else:
                cond = (L.m.type == "purchase") & (L.m.d_amount >= 10000) & (L.m.local_date >= "2024-03-01") & (L.m.local_date <= "2024-05-31")

            L.when_all(cond)(_collector(fired, r))
    total = 0
    start = time.perf_counter()
    for n, (etype, day, data, member) in enumerate(evs):
        fact = {"sid": "0", "id": str(n), "type": etype, "local_date": day.isoformat(), "m_tier": member["tier"]}
        if "amount" in data:
            fact["d_amount"] = int(Decimal(data["amount"]) * 100)
        if "service_code" in data:
            fact["d_service_code"] = data["service_code"]
        fired.clear()
        try:
            L.assert_fact(name, fact)
        except MessageNotHandledException:
            pass
        try:
            L.retract_fact(name, fact)
        except MessageNotHandledException:
            pass
        for r in fired:
            total += _points(r, fact, mult)
    return len(evs) / (time.perf_counter() - start), total


def _collector(fired: list, rule: dict):
    # durable_rules treats a two-argument action as asynchronous: close over the rule instead.
    def action(c):
        fired.append(rule)

    action.__name__ = rule["id"]
    return action


def _points(r: dict, fact: dict, mult: dict) -> int:
    earn = r["earn"]
    base = earn["points"] * (fact.get("d_amount", 0) // 100) if "per" in earn else earn["points"]
    m = Decimal(r.get("multiplier", "1")) * mult.get(fact["m_tier"], Decimal(1))
    return int(base * m)


def durable_c_rate(doc: dict, evs) -> tuple[float, int]:
    """The C core alone, on the same facts: assert, read which rules matched, retract."""
    import json

    import durable_rules_engine as core

    rules = compile_document(doc, f"{doc['metadata']['id']}@1")
    handle = core.create_ruleset(f"c_{doc['metadata']['id']}_{next(_names)}", json.dumps(rules.definition))
    total = 0
    facts = [make_fact(etype, day, data, member) for etype, day, data, member in evs]
    start = time.perf_counter()
    for n, fact in enumerate(facts):
        message = json.dumps(dict(fact, sid="0", id=str(n)))
        fired = []
        result = core.assert_fact(handle, message)
        if result[0] != 1:
            started = core.start_action_for_state(handle, result[1])
            pending = started[1] if started else None
            while pending:
                fired.extend(json.loads(pending))
                pending = core.complete_and_start_action(handle, result[1])
        core.retract_fact(handle, message)
        for rid in fired:
            total += rules.earn[rid].points_for(fact, rules.tier_multipliers)
    seconds = time.perf_counter() - start
    # make_fact is Keepwell's own work, outside the baseline's timing: add it back in fairness
    start = time.perf_counter()
    for etype, day, data, member in evs:
        make_fact(etype, day, data, member)
    seconds += time.perf_counter() - start
    return len(evs) / seconds, total


def python_rate(doc: dict, evs) -> tuple[float, int]:
    """The floor: plain Python tests over the same facts (no engine at all)."""
    return keepwell_rate(doc, evs, PythonEngine())


def run(quick: bool = False) -> dict:
    count = 2000 if quick else 30000
    evs = events(count)
    out = {}
    for n in (10, 100):
        doc = rules_doc(n)
        engine = CachedEngine(DurableRulesEngine())  # a fresh cache: its misses are part of the run
        keepwell_rate(doc, evs[:200], DurableRulesEngine())  # warm-up: registration once per process
        kw, kw_points = keepwell_rate(doc, evs, engine)
        uncached, _ = keepwell_rate(doc, evs, engine.inner)
        c_path, c_points = durable_c_rate(doc, evs)
        dsl, dsl_points = durable_dsl_rate(doc, evs)
        py, py_points = python_rate(doc, evs)
        if not (kw_points == c_points == dsl_points == py_points):
            raise AssertionError(f"engines disagree on points: {kw_points} {c_points} {dsl_points} {py_points}")
        out[f"rules_{n}"] = {"events": count, "keepwell_per_s": round(kw), "keepwell_uncached_per_s": round(uncached),
                             "durable_c_per_s": round(c_path), "durable_dsl_per_s": round(dsl),
                             "python_per_s": round(py), "ratio_vs_durable_c": round(c_path / kw, 3),
                             "ratio_vs_durable": round(dsl / kw, 3), "ratio_vs_python": round(py / kw, 3),
                             "cache_signatures": engine.misses, "points": kw_points}
    return {"name": "rule_eval", "ratio_vs_durable": max(v["ratio_vs_durable"] for v in out.values()),
            "ratio_vs_durable_c": max(v["ratio_vs_durable_c"] for v in out.values()), "target": "<= 1.0 of the C path",
            "sizes": out}
