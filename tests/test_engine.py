"""The durable_rules adapter: every matching rule applies, evaluations are stateless, limits are
enforced by the compiler with clear errors, and a plain-Python engine agrees with it."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepwell.kernel.errors import CompileError, EngineLimit
from keepwell.rulesets.compiler import MAX_RULES, compile_document, make_fact
from keepwell.rulesets.engine import DurableRulesEngine, PythonEngine


def rules_doc(*rules, **spec) -> dict:
    return {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": "r", "name": "R"},
            "spec": {"rules": list(rules), **spec}}


OVERLAPPING = rules_doc(
    {"id": "spend", "when": {"event": "purchase"}, "earn": {"points": 1, "per": "1.00", "of": "data.amount"}},
    {"id": "big-ticket", "when": {"event": "purchase", "all": [{"field": "data.amount", "gte": "200.00"}]}, "earn": {"points": 50}},
    {"id": "gold-bonus", "when": {"event": "purchase", "all": [{"field": "member.tier", "eq": "gold"}]}, "earn": {"points": 25}},
    tier_multipliers={"gold": "2"},
)


@pytest.fixture(scope="module")
def durable():
    return DurableRulesEngine()


def test_three_overlapping_rules_all_apply(durable):
    rules = compile_document(OVERLAPPING, "r@1")
    fact = make_fact("purchase", date(2020, 3, 2), {"amount": "250.00"}, {"tier": "gold", "status": "active"})
    fired = durable.matches(rules, fact)
    assert fired == ["spend", "big-ticket", "gold-bonus"]
    assert [rules.earn[r].points_for(fact, rules.tier_multipliers) for r in fired] == [500, 100, 50]


def test_no_match_means_no_effects(durable):
    rules = compile_document(OVERLAPPING, "r@1")
    assert durable.matches(rules, make_fact("referral", date(2020, 1, 1), {"referred_name": "Bo"}, {})) == []


def test_five_thousand_members_in_a_row_stay_apart(durable):
    """Past the engine's 1,024 live sessions, and without two members sharing state."""
    rules = compile_document(OVERLAPPING, "r@1")
    for i in range(5000):
        tier = "gold" if i % 3 == 0 else "basic"
        amount = f"{100 + i % 250}.00"
        fact = make_fact("purchase", date(2020, 3, 2), {"amount": amount}, {"tier": tier})
        fired = durable.matches(rules, fact)
        expected = ["spend"] + (["big-ticket"] if 100 + i % 250 >= 200 else []) + (["gold-bonus"] if tier == "gold" else [])
        assert fired == expected, (i, fired)
    assert durable.facts_held(rules) == 0  # nothing stays behind in the engine


def test_same_rules_are_registered_once_per_process(durable):
    a = compile_document(OVERLAPPING, "r@1")
    b = compile_document(OVERLAPPING, "r@2")  # same rules, another version: same engine ruleset
    assert a.name == b.name
    fact = make_fact("purchase", date(2020, 3, 2), {"amount": "5.00"}, {})
    assert durable.matches(a, fact) == durable.matches(b, fact) == ["spend"]


def test_too_many_rules_is_a_clear_error():
    many = [{"id": f"r{i}", "when": {"event": "purchase"}, "earn": {"points": 1}} for i in range(MAX_RULES + 1)]
    with pytest.raises(EngineLimit) as e:
        compile_document(rules_doc(*many), "r@1")
    assert e.value.problems[0].path == "spec.rules"
    assert "at most 400" in e.value.problems[0].message


def test_rule_without_event_is_rejected():
    """A rule on member state alone would re-fire forever in the engine."""
    doc = rules_doc({"id": "state-only", "when": {"all": [{"field": "member.tier", "eq": "gold"}]}, "earn": {"points": 1}})
    with pytest.raises(CompileError) as e:
        compile_document(doc, "r@1")
    assert [p.path for p in e.value.problems] == ["spec.rules[0].when.event"]


def test_every_compile_error_is_reported_with_its_path():
    doc = rules_doc(
        {"id": "a", "when": {"event": "purchase", "all": [{"field": "data.amont", "gt": "1.00"}]}, "earn": {"points": 1}},
        {"id": "b", "when": {"event": "purchase", "all": [{"field": "data.amount", "gt": "1.005"}]}, "earn": {"points": 1}},
        {"id": "c", "when": {"event": "purchase", "any": [{"field": "data.pay_with", "gt": "card"}]}, "earn": {"points": 1}},
    )
    with pytest.raises(CompileError) as e:
        compile_document(doc, "r@1")
    paths = [p.path for p in e.value.problems]
    assert paths == ["spec.rules[0].when.all[0].field", "spec.rules[1].when.all[0].gt", "spec.rules[2].when.any[0].gt"]
    assert "data.amont" in e.value.problems[0].message


def test_too_many_fields_in_one_message_is_refused(monkeypatch):
    from keepwell.rulesets import compiler

    monkeypatch.setattr(compiler, "MAX_FACT_FIELDS", 8)
    with pytest.raises(EngineLimit):
        make_fact("purchase", date(2020, 1, 1), {"amount": "1.00", "description": "x", "category": "y"}, {"tier": "t"})


conditions = st.sampled_from([
    {"field": "data.amount", "gte": "100.00"},
    {"field": "data.amount", "lt": "50.00"},
    {"field": "data.amount", "in": ["10.00", "20.00"]},
    {"field": "data.pay_with", "eq": "membership"},
    {"field": "data.pay_with", "not_in": ["cash", "card"]},
    {"field": "data.category", "exists": True},
    {"field": "data.category", "exists": False},
    {"field": "member.tier", "in": ["gold", "silver"]},
    {"field": "member.tier", "ne": "basic"},
])


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(st.tuples(st.lists(conditions, max_size=3), st.lists(conditions, max_size=2)), min_size=1, max_size=6),
    amount=st.integers(0, 30000),
    pay_with=st.sampled_from(["membership", "card", "cash", "other"]),
    category=st.one_of(st.none(), st.sampled_from(["parts", "labor"])),
    tier=st.sampled_from(["gold", "silver", "basic", ""]),
    day=st.dates(date(2020, 1, 1), date(2020, 12, 31)),
)
def test_durable_rules_and_python_engine_agree(rules, amount, pay_with, category, tier, day):
    doc = rules_doc(*[
        {"id": f"r{i}", "when": {"event": "purchase", "all": all_, **({"any": any_} if any_ else {})},
         "earn": {"points": 1}, **({"window": {"from": "2020-03-01", "to": "2020-05-31"}} if i % 2 else {})}
        for i, (all_, any_) in enumerate(rules)
    ])
    compiled = compile_document(doc, "r@1")
    data = {"amount": f"{amount // 100}.{amount % 100:02d}", "pay_with": pay_with}
    if category:
        data["category"] = category
    fact = make_fact("purchase", day, data, {"tier": tier})
    # Hundreds of distinct rulesets in one process: the run that used to crash durable_rules'
    # delete_state must now agree with the plain-Python matcher on every example.
    assert _SHARED.matches(compiled, fact) == PythonEngine().matches(compiled, fact)
    assert _SHARED.facts_held(compiled) == 0


_SHARED = DurableRulesEngine()
