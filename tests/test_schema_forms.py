"""The schema-driven admin forms: document -> form -> document loses nothing, errors land on their
fields, repeatable groups grow and shrink without JavaScript, and the schema alone decides what
the form shows."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from werkzeug.datastructures import MultiDict
from wtforms import Form

from keepwell.interfaces.admin import condition_builder
from keepwell.interfaces.admin.schema_forms import (
    EXTRA,
    SchemaForm,
    apply_action,
    attach_errors,
    build_form,
    field_for_path,
    form_formdata,
    inline_refs,
    json_path_of,
)
from keepwell.kernel.errors import InvalidDocument, Problem
from keepwell.rulesets.documents import parse_text, to_yaml
from keepwell.rulesets.schemas import schema
from keepwell.rulesets.validation import validate_ruleset
from keepwell.usecases import packs
from keepwell.usecases.rulesets import kind_schemas

ADMIN = Path(__file__).resolve().parents[1] / "admin"
KINDS = list(kind_schemas())


def _pack_documents() -> list[tuple[str, dict]]:
    out = []
    for pack in packs.available():
        for file, doc in packs.documents(pack):
            out.append((f"{pack.name}/{Path(file).name}", doc))
    return out


PACK_DOCS = _pack_documents()


def _doc(kind: str, pack: str = "hvac") -> dict:
    return copy.deepcopy(next(d for name, d in PACK_DOCS if name.startswith(pack + "/") and d["kind"] == kind))


@pytest.fixture(scope="module")
def app():
    return Flask(__name__, template_folder=str(ADMIN / "templates"))


def render(app, form, macro: str = "schema_form") -> str:
    with app.app_context():
        return render_template_string(
            f'{{% from "keepwell/_schema_form.html" import {macro} %}}{{{{ {macro}(form) }}}}', form=form)


class Browser(HTMLParser):
    """What a browser submits for a rendered form body: inputs (not buttons), each select's chosen
    option (else the first; a multiple select: every chosen one, perhaps none), textareas without
    the newline after <textarea> and with CRLF lines."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.pairs: list[tuple[str, str]] = []
        self._textarea: list | None = None
        self._select: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "reset", "image") or (kind in ("checkbox", "radio") and "checked" not in a):
                return
            value = a.get("value") or ""
            if kind not in ("hidden",):
                value = value.replace("\r", "").replace("\n", "")  # value sanitization of text inputs
            self.pairs.append((a["name"], value))
        elif tag == "textarea":
            self._textarea = [a["name"], ""]
        elif tag == "select":
            self._select = {"name": a["name"], "first": None, "chosen": None, "multiple": "multiple" in a,
                            "all": []}
        elif tag == "option" and self._select is not None:
            value = a.get("value") or ""
            if self._select["first"] is None:
                self._select["first"] = value
            if "selected" in a:
                self._select["chosen"] = value
                self._select["all"].append(value)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            if text.startswith("\r\n"):
                text = text[2:]
            elif text.startswith("\n"):
                text = text[1:]
            text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
            self.pairs.append((name, text))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            s = self._select
            if s["multiple"]:
                self.pairs.extend((s["name"], v) for v in s["all"])
                self._select = None
                return
            self.pairs.append((s["name"], s["chosen"] if s["chosen"] is not None else s["first"] or ""))
            self._select = None


def browser_submit(html: str, **extra: str) -> MultiDict:
    b = Browser()
    b.feed(html)
    b.close()
    return MultiDict(b.pairs + list(extra.items()))


# -- round trips ---------------------------------------------------------------------------------


def test_every_kind_has_a_form_and_packs_cover_all_kinds():
    assert {d["kind"] for _, d in PACK_DOCS} == set(KINDS)
    for kind in KINDS:
        form = build_form(kind)
        assert isinstance(form, Form) and isinstance(form, SchemaForm)
        assert form.meta.csrf is False
        assert form.to_document() == {"apiVersion": "keepwell/v1", "kind": kind}  # no defaults injected


@pytest.mark.parametrize("name,doc", PACK_DOCS, ids=[n for n, _ in PACK_DOCS])
def test_pack_documents_round_trip(name, doc):
    form = build_form(doc["kind"], doc)
    out = form.to_document()
    assert out == doc
    assert list(out) == ["apiVersion", "kind", "metadata", "spec"]  # schema order
    assert build_form(doc["kind"], None, form_formdata(form)).to_document() == doc
    # shipped documents need no leftovers: every value sits in a field of its own
    assert "_extra" not in "".join(k for k, v in form_formdata(form).items() if v)


@pytest.mark.parametrize("name,doc", PACK_DOCS, ids=[n for n, _ in PACK_DOCS])
def test_pack_documents_round_trip_through_the_browser(app, name, doc):
    html = render(app, build_form(doc["kind"], doc))
    posted = browser_submit(html, csrf_token="x", _action="")
    assert build_form(doc["kind"], None, posted).to_document() == doc


EDGE_CASES = [
    # unknown keys, wrong types, empty objects/strings/lists, multi-line one-line strings, nulls,
    # bad dates, values outside an enum: all kept in the objects' "Other settings (YAML)"
    {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "p", "name": "Two\nlines", "colour": "red"},
     "spec": {"period": "weekly", "auto_renewal": "yes", "priority": "high", "emergency": {}, "currency": "",
              "tiers": [{"id": "a", "name": "A", "priority": 2.5, "included_services": []},
                        {}, {"id": "b", "name": "B", "price": {"monthly": 5}}],
              "promotions": [{"id": "x", "window": {"from": "2025-02-30", "to": "2025-03-01"},
                              "applies_to_tiers": ["a", " b", "c"]},
                             {"id": "y", "window": {"from": "2025-01-01", "to": "2025-12-31"},
                              "applies_to_tiers": ["a", "b"], "bonus_points": 0}],
              "cancellation": None}},
    {"apiVersion": "keepwell/v2", "kind": "EarningRules", "metadata": {"id": "e", "name": "E"},
     "spec": {"rules": [{"id": "r", "when": {"event": ["purchase", "referral"], "any": []},
                         "earn": {"points": 10, "per": "1.00", "of": "data.amount"},
                         "window": {"from": "2025-01-01", "to": "2025-01-31"}, "tier_multiplier": False,
                         "description": "line one\nline two\n"}],
              "tier_multipliers": {}, "expiry": {"after_months": 12}}},
    {"apiVersion": "keepwell/v1", "kind": "NotificationTriggers", "metadata": {"id": "n", "name": "N"},
     "spec": {"triggers": {"not": "a list"}, "templates": {"t": {"email": "Hi {{ customer.name }}"},
                                                        "nel": {"email": "\x85µ", "sms": "a\u2028b\x00"}}}},
    {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "p", "name": "P"}, "spec": {}},
]


@pytest.mark.parametrize("doc", EDGE_CASES)
def test_nothing_is_lost_even_for_invalid_documents(app, doc):
    form = build_form(doc["kind"], doc)
    assert form.to_document() == doc
    assert build_form(doc["kind"], None, form_formdata(form)).to_document() == doc
    assert build_form(doc["kind"], None, browser_submit(render(app, form))).to_document() == doc


def test_leftovers_are_shown_as_yaml_and_a_field_value_wins_over_them(app):
    doc = EDGE_CASES[0]
    form = build_form("Plan", doc)
    extra = form["spec"].form[EXTRA]
    assert parse_text(extra.data) == {"emergency": {}, "currency": "", "cancellation": None}
    # a bad value of the right shape stays in its own field, where its error will be shown
    assert form["spec"].form["priority"].data == "high"
    assert form["spec"].form["period"].data == "weekly"
    assert field_for_path(form, "spec.tiers[0].priority").data == ""  # 2.5: not an integer's text, kept aside
    assert "priority: 2.5" in field_for_path(form, "spec.tiers[0]._extra").data
    html = render(app, form)
    assert '<option selected value="weekly">weekly (not allowed)</option>' in html
    assert ('id="spec-promotions-0-window-from" name="spec-promotions-0-window-from" type="text" '
            'value="2025-02-30"') in html  # no date: a text input, so it is not dropped
    assert 'id="spec-_extra"' in html and "Other settings (YAML)" in html
    assert 'id="spec-allowance-_extra"' not in html  # empty leftovers are not rendered
    posted = browser_submit(html)
    posted["spec-period"] = "monthly"
    assert build_form("Plan", None, posted).to_document()["spec"]["period"] == "monthly"


def test_typed_values_survive_validation_and_rebuilding(app):
    """Validate rebuilds the form from the document: what the user typed is still in its field,
    with its error."""
    posted = form_formdata(build_form("Plan", _doc("Plan")))
    posted["spec-tiers-0-priority"] = "soon"
    posted["spec-cancellation-refund"] = "half"
    posted["spec-auto_renewal"] = "maybe"
    doc = build_form("Plan", None, posted).to_document()
    assert doc["spec"]["tiers"][0]["priority"] == "soon" and doc["spec"]["cancellation"]["refund"] == "half"
    problems = validate_ruleset(doc)
    form = build_form("Plan", doc)
    attach_errors(form, problems)
    for path, typed in [("spec.tiers[0].priority", "soon"), ("spec.cancellation.refund", "half"),
                        ("spec.auto_renewal", "maybe")]:
        f = field_for_path(form, path, exact=True)
        assert f.data == typed and f.errors, path
    assert form.to_document() == doc
    assert build_form("Plan", None, browser_submit(render(app, form))).to_document() == doc


def test_yaml_subtrees_and_unreadable_yaml(app):
    doc = _doc("EarningRules")
    form = build_form("EarningRules", doc)
    when = field_for_path(form, "spec.rules[0].when")  # the condition builder, whose box takes YAML too
    assert when.node.kind == "conditions" and when.name == "spec-rules-0-when" and not when.yaml_mode
    assert when.document("", []) == doc["spec"]["rules"][0]["when"]
    assert field_for_path(form, "spec.tier_multipliers").node.kind == "yaml"
    posted = form_formdata(form)
    posted["spec-rules-0-when"] = "event: [purchase\n"
    posted["spec-_extra"] = "- not\n- a mapping\n"
    bad = build_form("EarningRules", None, posted)
    with pytest.raises(InvalidDocument) as exc:
        bad.to_document()
    paths = sorted(p.path for p in exc.value.problems)
    assert paths == ["spec._extra", "spec.rules[0].when"]
    attach_errors(bad, exc.value.problems)
    assert bad["spec"].form["rules"].entries[0].form["when"].errors[0].startswith("YAML line")
    assert bad["spec"].form[EXTRA].errors == ["must be YAML key: value lines (a mapping)"]
    html = render(app, bad)
    assert 'id="spec-rules-0-when-errors"' in html and 'id="spec-_extra-errors"' in html


# -- hypothesis: documents generated from the schemas ---------------------------------------------
# hypothesis-jsonschema 0.23.1 cannot draw objects with hypothesis >= 6.16x (it calls the removed
# `many.more()`), so objects are composed here and everything else comes from from_schema.


def _strategy(s: dict) -> st.SearchStrategy:
    props = s.get("properties")
    if s.get("type") == "object" and props:
        req = [k for k in props if k in s.get("required", [])]
        opt = [k for k in props if k not in req]
        strategies = {k: _strategy(v) for k, v in props.items()}
        lo = max(0, s.get("minProperties", 0) - len(req))
        hi = min(len(opt), s.get("maxProperties", len(props)) - len(req))

        @st.composite
        def obj(draw):
            chosen = st.lists(st.sampled_from(opt), unique=True, min_size=lo, max_size=hi) if opt else st.just([])
            keys = req + draw(chosen)
            return {k: draw(strategies[k]) for k in keys}

        return obj()
    if s.get("type") == "object" and isinstance(s.get("additionalProperties"), dict):
        names = from_schema(s.get("propertyNames", {"type": "string"}))
        return st.dictionaries(names, _strategy(s["additionalProperties"]), max_size=3)
    if s.get("type") == "array" and isinstance(s.get("items"), dict) and s["items"].get("type") == "object":
        return st.lists(_strategy(s["items"]), min_size=s.get("minItems", 0), max_size=3)
    return from_schema(s)


_STRATEGIES = {kind: _strategy(inline_refs(kind)) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_generated_documents_round_trip(app, kind):
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(_STRATEGIES[kind])
    def check(doc):
        form = build_form(kind, doc)
        assert form.to_document() == doc
        assert build_form(kind, None, form_formdata(form)).to_document() == doc
        assert build_form(kind, None, browser_submit(render(app, form))).to_document() == doc

    check()


def test_generated_documents_are_schema_documents():
    """The composed strategy really draws documents of the schemas (so the round trip covers them)."""
    validator = Draft202012Validator(inline_refs("Plan"))
    valid = []

    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(_STRATEGIES["Plan"])
    def check(doc):
        valid.append(validator.is_valid(doc))

    check()
    assert sum(valid) >= len(valid) // 2


# -- errors next to their fields ------------------------------------------------------------------


def test_bad_allowance_amount_is_shown_at_the_amount(app):
    doc = _doc("Plan")
    doc["spec"]["allowance"]["amount"] = "12.345"
    problems = validate_ruleset(doc)
    assert [p.path for p in problems] == ["spec.allowance.amount"]
    form = build_form("Plan", doc)
    attach_errors(form, problems)
    amount = field_for_path(form, "spec.allowance.amount")
    assert amount.name == "spec-allowance-amount" and amount.errors == [problems[0].message]
    html = render(app, form)
    i = html.index('id="spec-allowance-amount-errors"')
    assert html.index('for="spec-allowance-amount"') < i < html.index('for="spec-allowance-period"')
    assert "Allowance amount must be an amount like 250.00" in html[i:i + 300]
    assert "^[0-9]" not in html  # no regular expression shown to a contractor
    assert 'aria-describedby="spec-allowance-amount-help spec-allowance-amount-errors"' in html
    assert 'aria-invalid="true"' in html


def test_bad_tier_fields_and_missing_tier_name(app):
    doc = _doc("Plan")
    doc["spec"]["tiers"][1]["priority"] = 9
    del doc["spec"]["tiers"][2]["name"]
    doc["spec"]["tiers"][0]["included_services"] = [{"code": "lower", "quantity": 1}]
    problems = validate_ruleset(doc)
    assert {p.path for p in problems} == {"spec.tiers[1].priority", "spec.tiers[2].name",
                                          "spec.tiers[0].included_services[0].code"}
    form = build_form("Plan", doc)
    attach_errors(form, problems)
    assert field_for_path(form, "spec.tiers[1].priority").errors == ["Scheduling priority must be at most 5"]
    assert field_for_path(form, "spec.tiers[2].name").errors == ["Tier name is required"]
    assert field_for_path(form, "spec.tiers[0].included_services[0].code").errors
    assert not form.form_errors
    html = render(app, form)
    assert 'id="spec-tiers-1-priority-errors"' in html and 'id="spec-tiers-2-name-errors"' in html


def test_semantic_problems_land_on_their_fields():
    doc = _doc("Plan")
    doc["spec"]["tiers"][1]["id"] = doc["spec"]["tiers"][0]["id"]
    problems = validate_ruleset(doc)
    assert problems
    form = build_form("Plan", doc)
    attach_errors(form, problems)
    for p in problems:
        f = field_for_path(form, p.path)
        assert f is not None and (p.message in " ".join(f.errors or []) or p.message in str(f.errors)), p


def test_bad_earning_rule(app):
    doc = _doc("EarningRules")
    doc["spec"]["rules"][1]["earn"]["points"] = -5
    doc["spec"]["rules"][2]["when"]["all"] = [{"field": "data.amount", "gte": "10", "lt": "20"}]
    doc["spec"]["rules"][3]["earn"]["per"] = "1.00"  # needs `of`
    problems = validate_ruleset(doc)
    form = build_form("EarningRules", doc)
    attach_errors(form, problems)
    assert {p.path for p in problems} >= {"spec.rules[1].earn.points", "spec.rules[3].earn.of"}
    assert field_for_path(form, "spec.rules[1].earn.points").errors
    assert field_for_path(form, "spec.rules[3].earn.of").errors == ["Of field is required when For every is set"]
    when = form["spec"].form["rules"].entries[2].form["when"]
    assert any(e.startswith("all[0]: ") for e in when.errors)  # a path inside a YAML subtree
    html = render(app, form)
    assert 'id="spec-rules-1-earn-points-errors"' in html and 'id="spec-rules-2-when-errors"' in html


def test_document_level_and_unknown_paths_are_form_errors(app):
    form = build_form("Plan", _doc("Plan"))
    attach_errors(form, [Problem("(document)", "whole thing is wrong"), Problem("spec.nope[3]", "odd"),
                         Problem("spec.tiers[7].name", "no such tier"), Problem("kind", "bad kind")])
    assert form.form_errors == ["whole thing is wrong"]
    assert form["spec"].form.form_errors == ["nope[3]: odd"]
    assert form["spec"].form["tiers"].errors == ["[7].name: no such tier"]
    assert form["kind"].errors == ["bad kind"]
    html = render(app, form)
    assert 'id="kw-form-errors"' in html and "whole thing is wrong" in html
    assert 'id="spec-tiers-errors"' in html


# -- names, paths, actions ------------------------------------------------------------------------


def test_field_names_follow_json_paths():
    form = build_form("Plan", _doc("Plan"))
    f = field_for_path(form, "spec.tiers[2].included_services[3].season")
    assert f.name == "spec-tiers-2-included_services-3-season" and f.data == "any"
    assert json_path_of(f) == "spec.tiers[2].included_services[3].season"
    assert field_for_path(form, "$.spec.tiers[0]").name == "spec-tiers-0"
    assert field_for_path(form, "spec['tiers'][0]['name']").data == "Basic"
    assert field_for_path(form, "spec.tiers[9].name") is form["spec"].form["tiers"]
    assert field_for_path(form, "spec.tiers[9].name", exact=True) is None
    assert field_for_path(form, "(document)") is None


def test_add_and_remove_items_without_javascript(app):
    doc = _doc("Plan")
    form = build_form("Plan", doc)
    html = render(app, form)
    assert 'name="_action" value="add:spec-tiers"' in html
    assert 'name="_action" value="remove:spec-tiers-1"' in html
    assert 'value="add:spec-tiers-0-included_services"' in html

    posted = browser_submit(html, _action="add:spec-tiers")
    form = apply_action(build_form("Plan", None, posted), posted["_action"])
    assert [e.name for e in form["spec"].form["tiers"].entries][-1] == "spec-tiers-3"
    assert 'name="spec-tiers-3-name"' in render(app, form)
    out = form.to_document()
    assert out["spec"]["tiers"][:3] == doc["spec"]["tiers"] and out["spec"]["tiers"][3] == {}

    form = apply_action(form, "remove:spec-tiers-1")
    out = form.to_document()
    assert [t.get("id") for t in out["spec"]["tiers"]] == ["basic", "elite", None]
    assert [e.name for e in form["spec"].form["tiers"].entries] == ["spec-tiers-0", "spec-tiers-1", "spec-tiers-2"]
    assert field_for_path(form, "spec.tiers[1].name").data == "Elite"
    assert field_for_path(form, "spec.tiers[1].included_services[3].code").name == \
        "spec-tiers-1-included_services-3-code"

    form = apply_action(form, "remove:spec.tiers[2]")  # JSON paths work too
    form = apply_action(form, "add:spec.tiers[0].included_services")
    out = form.to_document()
    assert len(out["spec"]["tiers"]) == 2 and out["spec"]["tiers"][0]["included_services"] == [{}]
    # nested remove renumbers, the rest is untouched
    form = apply_action(form, "remove:spec-tiers-1-included_services-0")
    out = form.to_document()
    assert [s["code"] for s in out["spec"]["tiers"][1]["included_services"]] == ["FURNACE_TUNE", "FILTER_CHANGE",
                                                                                   "IAQ_CHECK"]
    # removing every item leaves the list out of the document
    for _ in range(2):
        form = apply_action(form, "remove:spec-tiers-0")
    assert "tiers" not in form.to_document()["spec"]
    assert "add a tier" in render(app, form).lower()
    with pytest.raises(ValueError):
        apply_action(form, "remove:spec-currency")
    with pytest.raises(ValueError):
        apply_action(form, "explode:spec-tiers")


def test_adding_a_schema_property_adds_a_field(app):
    plan = copy.deepcopy(schema("plan.schema.json"))
    plan["properties"]["spec"]["properties"]["loyalty_code"] = {
        "title": "Loyalty code", "description": "Code printed on the member card.", "type": "string", "maxLength": 20}
    plan["$defs"]["included_service"]["properties"]["warranty_months"] = {
        "title": "Warranty (months)", "description": "Parts warranty.", "type": "integer", "default": 12}
    doc = _doc("Plan")
    doc["spec"]["loyalty_code"] = "CC-1"
    doc["spec"]["tiers"][1]["included_services"][0]["warranty_months"] = 24
    form = build_form("Plan", doc, schema=plan)
    f = field_for_path(form, "spec.loyalty_code", exact=True)
    assert f.label.text == "Loyalty code" and f.description == "Code printed on the member card."
    assert f.data == "CC-1" and f.name == "spec-loyalty_code"
    w = field_for_path(form, "spec.tiers[1].included_services[0].warranty_months", exact=True)
    assert w.data == "24"
    assert form.to_document() == doc
    html = render(app, form)
    assert '<label class="kw-label" for="spec-loyalty_code">Loyalty code</label>' in html
    assert "Code printed on the member card." in html and 'placeholder="12"' in html
    assert render(app, form, "render_schema_form") == html
    # the shipped schema has neither: the key is a leftover there, still not lost
    plain = build_form("Plan", doc)
    assert field_for_path(plain, "spec.loyalty_code", exact=True) is None
    assert plain.to_document() == doc


def test_widgets_follow_the_schema(app):
    form = build_form("Plan", _doc("Plan"))
    html = render(app, form)
    kinds = {
        "apiVersion": "const", "spec.currency": "text", "spec.period": "enum", "spec.auto_renewal": "boolean",
        "spec.allowance.amount": "money", "spec.priority": "integer", "spec.tiers[0].description": "textarea",
        "spec.promotions": "repeat", "spec.allowance": "group", "spec.tiers[1].included_services": "repeat",
    }
    for path, kind in kinds.items():
        assert field_for_path(form, path).node.kind == kind, path
    assert '<input id="apiVersion" name="apiVersion" type="hidden" value="keepwell/v1">' in html
    assert 'inputmode="decimal"' in html and 'inputmode="numeric"' in html
    assert '<option value="">— (default: Yes)</option>' in html  # optional boolean: tri-state
    assert '<option selected value="yearly">Yearly</option>' in html
    assert '<option value="">— (default: Expire)</option>' in html
    assert 'placeholder="USD"' in html  # defaults are placeholders only
    assert '<abbr class="kw-req" title="required">*</abbr>' in html
    promo = _doc("Plan")
    promo["spec"]["promotions"] = [{"id": "spring", "window": {"from": "2025-03-01", "to": "2025-03-31"},
                                    "applies_to_tiers": ["basic", "elite"]}]
    form = build_form("Plan", promo)
    html = render(app, form)
    assert 'type="date" value="2025-03-01"' in html
    assert field_for_path(form, "spec.promotions[0].applies_to_tiers").data == "basic\nelite"
    assert form.to_document() == promo


def test_yaml_view_and_form_switch_without_loss():
    for name, doc in PACK_DOCS:
        text = to_yaml(build_form(doc["kind"], doc).to_document())
        assert build_form(doc["kind"], parse_text(text)).to_document() == doc, name


def test_new_document_and_unknown_kind():
    form = build_form("NotificationTriggers")
    assert form["spec"].form["triggers"].entries == []
    with pytest.raises(ValueError):
        build_form("Nope")
    with pytest.raises(ValueError):
        build_form("Plan", ["not", "a", "mapping"])


# -- the plan editor's page: sections, the tiers side by side, one "Renews automatically" ----------

PLAN_SECTIONS = ["Plan and price", "Tiers", "Allowance and overdraft", "Included visits", "Discounts and priority",
                 "Promotions", "Renewal and cancellation"]


class Page(HTMLParser):
    """What a person sees of a rendered form: section titles (and which are open), labels, tables."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, bool]] = []
        self.labels: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}  # id -> rows of cell kinds ("th" / "td")
        self._text: list[str] | None = None
        self._kind = ""
        self._open = False
        self._table: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "details" and "kw-section" in (a.get("class") or ""):
            self._open = "open" in a
        elif tag == "label" or (tag == "span" and a.get("class") == "kw-section-title"):
            self._text, self._kind = [], tag
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("th", "td") and self._table:
            self.tables[self._table][-1].append(tag)

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "span" and self._text is not None and self._kind == "span":
            text = " ".join("".join(self._text).split())
            self.sections.append((text, self._open))
            self._text = None
        elif tag == "label" and self._text is not None:
            self.labels.append(" ".join("".join(self._text).split()))
            self._text = None
        elif tag == "table":
            self._table = None


def page_of(html: str) -> Page:
    p = Page()
    p.feed(html)
    p.close()
    return p


def test_the_plan_form_is_in_sections_a_contractor_thinks_in(app):
    form = build_form("Plan", _doc("Plan"))
    page = page_of(render(app, form))
    assert [title for title, _open in page.sections] == PLAN_SECTIONS
    # what is edited most is open, the rest one click away
    assert dict(page.sections) == {"Plan and price": True, "Tiers": True, "Allowance and overdraft": True,
                                   "Included visits": False, "Discounts and priority": False, "Promotions": False,
                                   "Renewal and cancellation": False}
    where = {s.title: [f.name for f in s.fields] for s in form.sections().sections}
    assert where["Plan and price"] == ["metadata", "spec-currency", "spec-price", "spec-billing",
                                       "spec-revenue_recognition"]
    assert where["Tiers"] == ["spec-tiers"]
    assert where["Allowance and overdraft"] == ["spec-allowance", "spec-late_charges"]
    assert where["Included visits"] == ["spec-included_services"]
    assert where["Discounts and priority"] == ["spec-discount_percent", "spec-priority", "spec-emergency"]
    assert where["Promotions"] == ["spec-promotions"]
    assert where["Renewal and cancellation"] == ["spec-period", "spec-auto_renewal", "spec-members_choose_renewal",
                                                 "spec-cancellation"]
    # the price comes before the tiers now
    html = render(app, form)
    assert html.index('name="spec-price-monthly"') < html.index('name="spec-tiers-0-name"')


def test_other_kinds_keep_their_plain_form(app):
    for kind in ("EarningRules", "NotificationTriggers", "RewardCatalog"):
        form = build_form(kind, _doc(kind))
        assert form.sections() is None
        html = render(app, form)
        assert "kw-section" not in html and "kw-sectioned" not in html
        assert build_form(kind, None, browser_submit(html)).to_document() == _doc(kind)


def test_tiers_are_a_table_with_a_column_per_tier(app):
    doc = _doc("Plan")
    form = build_form("Plan", doc)
    html = render(app, form)
    table = page_of(html).tables["spec-tiers-table"]
    n = len(doc["spec"]["tiers"])
    assert n == 3 and table[0] == ["th"] * (1 + n)  # "Setting", then one header per tier
    assert all(row == ["th"] + ["td"] * n for row in table[1:])  # a row per setting: its name, then each tier
    heads = re.findall(r'<span class="kw-col-title">([^<]*)</span>', html)
    assert heads == ["Tier 1: Basic", "Tier 2: Premium", "Tier 3: Elite"]
    rows = re.findall(r'<th scope="row" class="kw-row-head" id="spec-tiers-row-([a-z_-]+)"', html)
    assert rows[:4] == ["id", "name", "description", "price"] and "price-monthly" in rows and "priority" in rows
    # each cell's input is labelled with its setting and its tier, for screen readers
    assert '<label class="sr-only" for="spec-tiers-1-priority">Scheduling priority, Tier 2: Premium</label>' in html
    # a tier more is a column more
    posted = browser_submit(html, _action="add:spec-tiers")
    more = apply_action(build_form("Plan", None, posted), posted["_action"])
    assert page_of(render(app, more)).tables["spec-tiers-table"][0] == ["th"] * (2 + n)


def _one_renews_automatically(app, form) -> str:
    html = render(app, form)
    labels = page_of(html).labels
    assert labels.count("Renews automatically") == 1, labels
    return html


@pytest.mark.parametrize("name,doc", [(n, d) for n, d in PACK_DOCS if d["kind"] == "Plan"],
                         ids=[n for n, d in PACK_DOCS if d["kind"] == "Plan"])
def test_renews_automatically_is_shown_once_and_stays_where_it_was_written(app, name, doc):
    from keepwell.memberships.terms import resolve

    form = build_form("Plan", doc)
    html = _one_renews_automatically(app, form)
    shown = form["spec"].form["auto_renewal"]
    assert shown.data == "true"
    posted = browser_submit(html)
    assert build_form("Plan", None, posted).to_document() == doc  # written back where it was
    posted["spec-auto_renewal"] = "false"
    changed = build_form("Plan", None, posted).to_document()
    allowance = "auto_renewal" in (doc["spec"].get("allowance") or {})
    assert ("auto_renewal" in changed["spec"]) == ("auto_renewal" in doc["spec"])
    assert ("auto_renewal" in (changed["spec"].get("allowance") or {})) == allowance
    assert all(resolve(changed, t["id"]).auto_renewal is False for t in doc["spec"]["tiers"])
    assert all(resolve(doc, t["id"]).auto_renewal is True for t in doc["spec"]["tiers"])
    assert validate_ruleset(changed) == []


def test_renews_automatically_at_both_places(app):
    doc = _doc("Plan")  # hvac: in the allowance only
    doc["spec"]["auto_renewal"] = True
    form = build_form("Plan", doc)
    posted = browser_submit(_one_renews_automatically(app, form))
    assert build_form("Plan", None, posted).to_document() == doc
    posted["spec-auto_renewal"] = "false"
    out = build_form("Plan", None, posted).to_document()
    assert out["spec"]["auto_renewal"] is False and out["spec"]["allowance"]["auto_renewal"] is False
    posted["spec-auto_renewal"] = ""  # back to the default: neither place says anything
    out = build_form("Plan", None, posted).to_document()
    assert "auto_renewal" not in out["spec"] and "auto_renewal" not in out["spec"]["allowance"]
    # two places that disagree: the allowance's value is kept aside (nothing lost) and the problem
    # is shown at the one field
    doc["spec"]["auto_renewal"] = False
    problems = validate_ruleset(doc)
    assert [p.path for p in problems] == ["spec.auto_renewal"]
    form = build_form("Plan", doc)
    attach_errors(form, problems)
    assert form["spec"].form["auto_renewal"].data == "false" and form["spec"].form["auto_renewal"].errors
    assert parse_text(form["spec"].form["allowance"].form[EXTRA].data) == {"auto_renewal": True}
    html = _one_renews_automatically(app, form)
    assert build_form("Plan", None, browser_submit(html)).to_document() == doc
    assert dict(page_of(html).sections)["Renewal and cancellation"] is True  # its problem opens it


def test_a_wrong_value_in_the_allowance_is_shown_at_the_one_field(app):
    doc = _doc("Plan")
    doc["spec"]["allowance"]["auto_renewal"] = "yes"
    problems = validate_ruleset(doc)
    assert [p.path for p in problems] == ["spec.allowance.auto_renewal"]
    form = build_form("Plan", doc)
    attach_errors(form, problems)
    field = form["spec"].form["auto_renewal"]
    assert field.data == "yes" and field.errors == [problems[0].message]
    assert build_form("Plan", None, browser_submit(_one_renews_automatically(app, form))).to_document() == doc


def test_a_section_holding_a_problem_opens(app):
    doc = _doc("Plan")
    doc["spec"]["cancellation"] = {"refund": "half"}
    doc["spec"]["promotions"] = [{"id": "spring", "window": {"from": "2025-03-01", "to": "2025-03-31"}, "bonus_points": -1}]
    form = build_form("Plan", doc)
    attach_errors(form, validate_ruleset(doc))
    secs = {s.title: s for s in form.sections().sections}
    assert secs["Renewal and cancellation"].open and secs["Renewal and cancellation"].problems == 1
    assert secs["Promotions"].open and secs["Promotions"].problems == 1
    assert not secs["Included visits"].open and secs["Included visits"].problems == 0
    html = render(app, form)
    assert re.search(r'<details class="kw-section kw-invalid" id="section-renewal" data-section="renewal" open>', html)
    assert "1 problem</span>" in html
    # the sections the user had open stay open; the one an add button changed opens
    clean = build_form("Plan", _doc("Plan"))
    secs = {s.id: s.open for s in clean.sections(opened=["visits"]).sections}
    assert secs == {"plan": False, "tiers": False, "allowance": False, "visits": True, "discounts": False,
                    "promotions": False, "renewal": False}
    secs = {s.id: s.open for s in clean.sections(opened=[], focus="spec-promotions").sections}
    assert [k for k, v in secs.items() if v] == ["promotions"]
    secs = {s.id: s.open for s in clean.sections(opened=[], focus="spec-tiers-1-included_services").sections}
    assert [k for k, v in secs.items() if v] == ["tiers"]


def test_leftovers_and_fields_of_no_section_are_in_other_settings(app):
    plan = copy.deepcopy(schema("plan.schema.json"))
    plan["properties"]["spec"]["properties"]["loyalty_code"] = {"title": "Loyalty code", "type": "string"}
    doc = _doc("Plan")
    doc["spec"]["loyalty_code"] = "CC-1"
    doc["spec"]["colour"] = "red"
    form = build_form("Plan", doc, schema=plan)
    secs = form.sections().sections
    assert secs[-1].title == "Other settings" and [f.name for f in secs[-1].fields] == ["spec-loyalty_code",
                                                                                       "spec-_extra"]
    html = render(app, form)
    assert build_form("Plan", None, browser_submit(html), schema=plan).to_document() == doc


# -- the condition builder (a rule's `when` as rows) ----------------------------------------------

_BUILDER_EVENTS = [["purchase"], ["service_completed"], ["enrolled"], ["payment_failed"],
                   ["purchase", "service_completed"], []]
_OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists"]
_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
_ITEM_TEXT = _TEXT.map(str.strip).filter(lambda t: t and "," not in t)
_DECIMAL = st.decimals(min_value=0, max_value=99999, places=2, allow_nan=False, allow_infinity=False).map(
    lambda d: f"{d:.2f}")


def _value(kind: str, op: str) -> st.SearchStrategy:
    if op == "exists":
        return st.booleans()
    if op in ("in", "not_in"):
        item = {"money": st.integers(0, 10**6) | _DECIMAL, "integer": st.integers(-50, 10**6)}.get(kind, _ITEM_TEXT)
        return st.lists(item, min_size=1, max_size=3)
    return {"money": st.integers(0, 10**6) | _DECIMAL, "integer": st.integers(-50, 10**6),
            "boolean": st.booleans()}.get(kind, _TEXT)


@st.composite
def _when(draw) -> dict:
    events = draw(st.sampled_from(_BUILDER_EVENTS))
    fields = condition_builder.fields_for(events)
    names = list(fields)

    def condition():
        name = draw(st.sampled_from(names))
        op = draw(st.sampled_from(_OPS))
        return {"field": name, op: draw(_value(fields[name].kind, op))}

    when: dict = {}
    if events:
        when["event"] = events[0] if len(events) == 1 else events
    joins = draw(st.sampled_from([["all"], ["any"], ["all", "any"], []] if events else [["all"], ["any"]]))
    for join in joins:
        when[join] = [condition() for _ in range(draw(st.integers(1, 3)))]
    return when


def _rules(*whens: dict) -> dict:
    return {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": "e", "name": "E"},
            "spec": {"rules": [{"id": f"r{i}", "when": w, "earn": {"points": 10}} for i, w in enumerate(whens)]}}


def _typed(doc) -> str:
    """A document as JSON: 100, 100.0, "100" and true are four different texts."""
    return json.dumps(doc, sort_keys=True)


def test_conditions_of_every_operator_and_value_type_round_trip_through_the_builder(app):
    @settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(_when())
    def check(when):
        doc = _rules(when)
        form = build_form("EarningRules", doc)
        field = field_for_path(form, "spec.rules[0].when")
        assert field.node.kind == "conditions" and not field.yaml_mode, when  # rows, not YAML
        assert _typed(form.to_document()) == _typed(doc)
        assert _typed(build_form("EarningRules", None, form_formdata(form)).to_document()) == _typed(doc)
        html = render(app, form)
        assert _typed(build_form("EarningRules", None, browser_submit(html)).to_document()) == _typed(doc)

    check()


def test_the_builder_shows_rows_in_words_with_typed_value_controls(app):
    doc = _rules({"event": "purchase", "all": [{"field": "data.amount", "gte": 100},
                                               {"field": "data.pay_with", "eq": "card"},
                                               {"field": "data.apply_discount", "ne": True}],
                  "any": [{"field": "member.tier", "in": ["gold", "platinum"]},
                          {"field": "data.category", "exists": False}]})
    form = build_form("EarningRules", doc)
    html = render(app, form)
    w = "spec-rules-0-when"
    assert f'<select class="kw-input kw-events" id="{w}-event" name="{w}-event" multiple' in html
    assert '<option value="purchase" selected>Purchase</option>' in html
    for gi, join in ((0, "all"), (1, "any")):
        assert f'<label class="kw-label" for="{w}-g-{gi}-join">Must be true</label>' in html
        assert re.search(rf'id="{w}-g-{gi}-join".*?<option value="{join}" selected>', html, re.S)
    for row in (f"{w}-g-0-c-0", f"{w}-g-1-c-1"):  # every control has its label
        for part, label in (("field", "Field"), ("op", "Operator"), ("value", "Value")):
            assert f'<label class="kw-label" for="{row}-{part}">{label}</label>' in html
    assert '<option value="data.amount" selected>Amount</option>' in html  # titles from the event's schema
    assert '<option value="gte" selected>is at least</option>' in html
    assert re.search(rf'id="{w}-g-0-c-0-value"[^>]*value="100"[^>]*type="number"', html)  # a number box
    assert re.search(rf'id="{w}-g-0-c-1-value".*?<option value="card" selected>card</option>', html, re.S)  # enum
    assert re.search(rf'id="{w}-g-0-c-2-value".*?<option value="true" selected>Yes</option>', html, re.S)
    assert re.search(rf'id="{w}-g-1-c-0-value"[^>]*value="gold, platinum"', html)  # one of: commas
    assert '<option value="absent" selected>is missing</option>' in html
    assert f'value="add:{w}-g-0"' in html and f'value="remove:{w}-g-1-c-0"' in html
    assert f'name="{w}"' not in html  # no YAML box while the rows show everything
    assert form.to_document() == doc


def test_what_the_rows_cannot_show_exactly_stays_yaml(app):
    cases = [
        {"event": "purchase", "all": [{"field": "data.amount", "gte": "10", "lt": "20"}]},  # two operators
        {"event": "purchase", "all": [{"field": "data.amount", "gte": "100"}]},  # text "100" on a money field
        {"event": "purchase", "all": [{"field": "data.category", "in": ["a,b"]}]},  # a comma inside a value
        {"event": ["purchase"], "all": [{"field": "data.amount", "gte": 1}]},  # a list of one event type
        {"event": "purchase", "all": []},
        {"event": "purchase", "all": [{"field": "data.amount", "gte": 1.5}]},  # a float on a money field
    ]
    for when in cases:
        doc = _rules(when)
        form = build_form("EarningRules", doc)
        field = field_for_path(form, "spec.rules[0].when")
        assert field.yaml_mode and parse_text(field.data) == when, when
        html = render(app, form)
        assert 'name="spec-rules-0-when"' in html and "kept as YAML" in html
        assert _typed(build_form("EarningRules", None, browser_submit(html)).to_document()) == _typed(doc)


def test_add_and_remove_conditions_and_groups_without_javascript(app):
    doc = _rules({"event": "purchase", "all": [{"field": "member.status", "eq": "active"}]})
    w = "spec-rules-0-when"
    html = render(app, build_form("EarningRules", doc))
    posted = browser_submit(html, _action=f"add:{w}-g-0")
    form = apply_action(build_form("EarningRules", None, posted), posted["_action"])
    html = render(app, form)
    assert f'id="{w}-g-0-c-1-field"' in html  # a new, blank row
    posted = browser_submit(html)
    posted[f"{w}-g-0-c-1-field"], posted[f"{w}-g-0-c-1-op"] = "data.amount", "gte"
    posted[f"{w}-g-0-c-1-value"] = "100"
    form = build_form("EarningRules", None, posted)
    assert form.to_document()["spec"]["rules"][0]["when"] == {
        "event": "purchase", "all": [{"field": "member.status", "eq": "active"}, {"field": "data.amount", "gte": 100}]}
    # a second group: any one of these
    form = apply_action(form, f"add:{w}-g")
    posted = browser_submit(render(app, form))
    assert posted[f"{w}-g-1-join"] == "any"
    posted[f"{w}-g-1-c-0-field"], posted[f"{w}-g-1-c-0-value"] = "member.tier", "gold"
    form = build_form("EarningRules", None, posted)
    when = form.to_document()["spec"]["rules"][0]["when"]
    assert when["any"] == [{"field": "member.tier", "eq": "gold"}] and len(when["all"]) == 2
    # removing a row renumbers the rest; a blank row is no condition
    form = apply_action(form, f"remove:{w}-g-0-c-0")
    assert form.to_document()["spec"]["rules"][0]["when"]["all"] == [{"field": "data.amount", "gte": 100}]
    form = apply_action(form, f"remove:{w}-g-1")
    assert "any" not in form.to_document()["spec"]["rules"][0]["when"]
    form = apply_action(form, f"remove:{w}-g-0-c-0")
    assert form.to_document()["spec"]["rules"][0]["when"] == {"event": "purchase"}
    assert f'id="{w}-g-0-c-0-field"' in render(app, form)  # one blank row to fill in
    with pytest.raises(ValueError):
        apply_action(form, f"remove:{w}-g-7-c-0")


def test_two_any_groups_are_refused_in_words(app):
    doc = _rules({"event": "purchase", "all": [{"field": "data.amount", "gte": 1}],
                  "any": [{"field": "member.tier", "eq": "gold"}]})
    posted = browser_submit(render(app, build_form("EarningRules", doc)))
    posted["spec-rules-0-when-g-0-join"] = "any"
    form = build_form("EarningRules", None, posted)
    with pytest.raises(InvalidDocument) as exc:
        form.to_document()
    attach_errors(form, exc.value.problems)
    html = render(app, form)
    assert 'id="spec-rules-0-when-g-1-errors"' in html and "Only one group can be" in html
    assert 'id="spec-rules-0-when-errors"' not in html  # shown once, at its group


def test_a_conditions_problem_shows_beside_its_row_in_words(app):
    doc = _rules({"event": "purchase", "all": [{"field": "member.status", "eq": "active"},
                                               {"field": "data.amount", "gte": "lots"},
                                               {"field": "member.tier", "lt": "gold"}],
                  "any": [{"field": "data.technician", "eq": "Sam"}]})
    problems = validate_ruleset(doc)
    assert {p.path for p in problems} >= {"spec.rules[0].when.all[1].gte", "spec.rules[0].when.all[2].lt",
                                          "spec.rules[0].when.any[0].field"}
    form = build_form("EarningRules", doc)
    attach_errors(form, problems)
    html = render(app, form)
    w = "spec-rules-0-when"

    def row_errors(row: str) -> str:
        m = re.search(rf'<ul class="kw-errors" id="{w}-{row}-errors"[^>]*>(.*?)</ul>', html, re.S)
        assert m, row
        return m.group(1)

    assert "“Amount” is an amount: enter a value like 100 or 99.50" in row_errors("g-0-c-1")
    assert "“Member&#39;s tier” is text: use “is”, “is not”, “is one of” or “is not one of”" in row_errors("g-0-c-2")
    assert "is not part of the chosen event" in row_errors("g-1-c-0")
    assert f'id="{w}-g-0-c-0-errors"' not in html
    assert re.search(rf'id="{w}-g-0-c-1-value"[^>]*aria-describedby="[^"]*{w}-g-0-c-1-errors"', html)
