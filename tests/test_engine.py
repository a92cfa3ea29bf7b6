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


# --- the exact cache of answers: the same answers as the engine, on every fact -------------------

from keepwell.rulesets.engine import CachedEngine  # noqa: E402

values = st.one_of(st.integers(-5, 40000), st.sampled_from(["membership", "card", "cash", "other", "", "é"]))
operators = st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists"])


@st.composite
def random_condition(draw):
    field = draw(st.sampled_from(["data.amount", "data.pay_with", "data.category", "member.tier", "data.service_code"]))
    op = draw(operators)
    if op == "exists":
        return {"field": field, "exists": draw(st.booleans())}
    if field == "data.amount":
        cents = draw(st.integers(0, 30000))
        text = f"{cents // 100}.{cents % 100:02d}"
        return {"field": field, op: [text, f"{cents // 200}.00"] if op in ("in", "not_in") else text}
    if op in ("lt", "lte", "gt", "gte"):
        op = draw(st.sampled_from(["eq", "ne"]))
    word = draw(st.sampled_from(["membership", "card", "gold", "silver", "parts", "AC_TUNE", "FURNACE_TUNE"]))
    return {"field": field, op: [word, "cash"] if op in ("in", "not_in") else word}


@st.composite
def random_ruleset(draw):
    rules = []
    for i in range(draw(st.integers(1, 12))):
        events = draw(st.sampled_from([["purchase"], ["purchase", "service_completed"], ["service_completed"]]))
        fields = ["data.amount", "data.pay_with", "data.category"] if events == ["purchase"] else ["data.amount"]
        cond = [c for c in draw(st.lists(random_condition(), max_size=3))
                if c["field"] in fields + ["member.tier"] or (events == ["service_completed"] and c["field"] == "data.service_code")]
        any_ = [c for c in draw(st.lists(random_condition(), max_size=2)) if c["field"] in fields + ["member.tier"]]
        window = draw(st.sampled_from([None, {"from": "2020-03-01", "to": "2020-05-31"}, {"from": "2020-06-15", "to": "2020-06-15"}]))
        rules.append({"id": f"r{i}", "when": {"event": events, "all": cond, **({"any": any_} if any_ else {})},
                      "earn": {"points": 1}, **({"window": window} if window else {})})
    return rules_doc(*rules)


@st.composite
def random_fact(draw):
    etype = draw(st.sampled_from(["purchase", "service_completed", "referral"]))
    data: dict = {}
    if etype != "referral":
        if draw(st.booleans()) or etype == "purchase":
            cents = draw(st.one_of(st.integers(0, 30000), st.sampled_from([0, 1, 5000, 10000, 20000, 29999])))
            data["amount"] = f"{cents // 100}.{cents % 100:02d}"
    else:
        data["referred_name"] = "Neighbour"
    if etype == "purchase":
        data["pay_with"] = draw(st.sampled_from(["membership", "card", "cash", "other"]))
        if draw(st.booleans()):
            data["category"] = draw(st.sampled_from(["parts", "labor", "é"]))
    if etype == "service_completed":
        data["service_code"] = draw(st.sampled_from(["AC_TUNE", "FURNACE_TUNE", "DUCT"]))
    day = draw(st.sampled_from([date(2020, 2, 29), date(2020, 3, 1), date(2020, 5, 31), date(2020, 6, 1),
                                date(2020, 6, 15), date(2020, 12, 31)]))
    tier = draw(st.sampled_from(["gold", "silver", "basic", ""]))
    return make_fact(etype, day, data, {"tier": tier, "status": "active"})


@settings(max_examples=300, deadline=None)
@given(doc=random_ruleset(), facts=st.lists(random_fact(), min_size=1, max_size=40))
def test_the_cache_answers_exactly_as_the_engine_does(doc, facts):
    """300 random rulesets, each over up to 40 random facts (many sharing signatures): the cached
    answers, the engine's and the plain-Python matcher's are the same for every fact."""
    compiled = compile_document(doc, "r@1")
    cached = CachedEngine(_SHARED)
    for fact in facts + facts:  # the second time round, every answer comes from the cache
        want = PythonEngine().matches(compiled, fact)
        assert _SHARED.matches(compiled, fact) == want
        assert cached.matches(compiled, fact) == want, (fact, doc)
    assert cached.hits >= len(facts)


def test_the_cache_keeps_a_few_signatures_for_many_events():
    rules = compile_document(OVERLAPPING, "r@1")
    cached = CachedEngine(_SHARED)
    for i in range(3000):
        fact = make_fact("purchase", date(2020, 3, 2), {"amount": f"{i}.{i % 100:02d}"}, {"tier": ["gold", "basic"][i % 2]})
        assert cached.matches(rules, fact) == PythonEngine().matches(rules, fact)
    # amount below, at or above 200.00, by tier gold or not: a handful of signatures, not 3,000
    assert cached.misses <= 8 and cached.hits >= 2990
