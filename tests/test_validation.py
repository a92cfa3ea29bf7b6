"""Rulesets are validated with every error's file, JSON path and reason."""

from __future__ import annotations

import json
import textwrap

from keepwell.rulesets.documents import load_file
from keepwell.rulesets.validation import validate_ruleset


def write(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return str(f)


def test_plan_with_only_an_allowance_is_valid(cli, tmp_path):
    f = write(tmp_path, "vip.yaml", """\
        apiVersion: keepwell/v1
        kind: Plan
        metadata: {id: vip-customer, name: VIP Customer}
        spec:
          allowance:
            amount: "1000.00"
            period: half_yearly
            auto_renewal: true
            overdraft: {limit: "200.00"}
        """)
    res = cli("rulesets", "validate", f)
    assert res.stdout == ""


def test_every_error_is_listed_with_file_path_and_reason(cli, tmp_path):
    f = write(tmp_path, "bad.yaml", """\
        apiVersion: keepwell/v1
        kind: Plan
        metadata: {id: Bad Id, name: Bad}
        spec:
          allowance:
            amount: 1000.5
            period: weekly
            overdraft: {limit: "-5"}
          tiers:
            - {id: gold, name: Gold, priority: 9}
        """)
    res = cli("rulesets", "validate", f, expect=1)
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 5, lines
    assert all(line.startswith(f + ": ") for line in lines)
    paths = sorted(line.split(": ")[1] for line in lines)
    assert paths == ["metadata.id", "spec.allowance.amount", "spec.allowance.overdraft.limit",
                     "spec.allowance.period", "spec.tiers[0].priority"]
    assert any("Allowance period must be one of: monthly, quarterly, half_yearly, yearly (not “weekly”)" in line
               for line in lines)


def test_json_documents_and_several_files(cli, tmp_path):
    good = tmp_path / "plan.json"
    good.write_text(json.dumps({"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "p", "name": "P"},
                                "spec": {"allowance": {"amount": "10.00", "period": "monthly"}}}))
    bad = write(tmp_path, "rules.yaml", """\
        apiVersion: keepwell/v1
        kind: EarningRules
        metadata: {id: r, name: R}
        spec:
          rules:
            - id: spend
              when: {event: purchase, all: [{field: data.amont, gte: "10.00"}]}
              earn: {points: 1}
            - id: spend
              when: {event: purchse}
              earn: {points: 1}
        """)
    res = cli("rulesets", "validate", str(good), bad, expect=1)
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith(f"{bad}: spec.rules[1].when.event: Event “purchse” is not one of the")
    # Fixing the schema error reveals what the compiler checks: unknown fields, duplicate ids.
    text = (tmp_path / "rules.yaml").read_text().replace("purchse", "purchase")
    (tmp_path / "rules.yaml").write_text(text)
    lines = cli("rulesets", "validate", bad, expect=1).stdout.strip().splitlines()
    assert lines == [
        f"{bad}: spec.rules[0].when.all[0].field: unknown field 'data.amont' for event(s) purchase",
        f"{bad}: spec.rules[1].id: duplicate rule id 'spend'",
    ]


def test_yaml_syntax_error_names_the_line(cli, tmp_path):
    f = write(tmp_path, "broken.yaml", "kind: Plan\nmetadata: {id: x\n")
    res = cli("rulesets", "validate", f, expect=1)
    assert res.stdout.startswith(f"{f}: line ")


def test_plan_cross_field_checks(tmp_path):
    doc = load_file(write(tmp_path, "p.yaml", """\
        apiVersion: keepwell/v1
        kind: Plan
        metadata: {id: p, name: P}
        spec:
          period: yearly
          allowance: {amount: "10.00", period: monthly}
          tiers:
            - {id: a, name: A}
            - {id: a, name: A again}
          promotions:
            - {id: spring, window: {from: "2024-05-01", to: "2024-03-01"}, applies_to_tiers: [zz]}
        """))
    problems = [(p.path, p.message) for p in validate_ruleset(doc)]
    assert [p for p, _ in problems] == ["spec.period", "spec.tiers[1].id", "spec.promotions[0].window",
                                        "spec.promotions[0].applies_to_tiers[0]"]


def test_publish_is_all_or_nothing(cli, tmp_path):
    good = write(tmp_path, "a.yaml", """\
        apiVersion: keepwell/v1
        kind: Plan
        metadata: {id: a, name: A}
        spec: {allowance: {amount: "10.00", period: monthly}}
        """)
    bad = write(tmp_path, "b.yaml", """\
        apiVersion: keepwell/v1
        kind: Plan
        metadata: {id: b, name: B}
        spec: {allowance: {amount: "ten", period: monthly}}
        """)
    res = cli("rulesets", "publish", good, bad, expect=1)
    assert "nothing published" in res.stderr
    assert f"{bad}: spec.allowance.amount" in res.stderr
    assert cli.json("rulesets", "list") == []


def test_dates_and_on_keys_stay_text(cli, tmp_path):
    f = write(tmp_path, "n.yaml", """\
        apiVersion: keepwell/v1
        kind: NotificationTriggers
        metadata: {id: notices, name: Notices}
        spec:
          triggers:
            - id: welcome
              on: {event: enrolled}
              template: welcome
              channel: email
        """)
    cli("rulesets", "validate", f)
    assert cli.out("rulesets", "publish", f) == "notices@1"


def test_validate_json_output(cli, tmp_path):
    f = write(tmp_path, "p.yaml", """\
        apiVersion: keepwell/v1
        kind: Plan
        metadata: {id: p, name: P}
        spec: {allowance: {amount: "10.00", period: daily}}
        """)
    rows = cli.json("rulesets", "validate", f, expect=1)
    assert rows == [{"file": f, "path": "spec.allowance.period",
                     "message": "Allowance period must be one of: monthly, quarterly, half_yearly, yearly "
                                "(not “daily”)"}]


def test_a_kind_that_is_not_a_string_is_a_problem_not_a_crash():
    for kind in (["Plan"], {"a": 1}, None, 3):
        problems = validate_ruleset({"apiVersion": "keepwell/v1", "kind": kind, "metadata": {"id": "x", "name": "x"}, "spec": {}})
        assert [p.path for p in problems] == ["kind"]


def test_nul_characters_are_refused_with_their_paths():
    # Found by the schema fuzzer: PostgreSQL cannot store U+0000, so it must never reach the INSERT.
    doc = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "p", "name": "bad\x00name"},
           "spec": {"tiers": [{"id": "gold", "name": "Gold\x00"}]}}
    problems = validate_ruleset(doc)
    assert [p.path for p in problems] == ["metadata.name", "spec.tiers[0].name"]
    assert all("NUL" in p.message for p in problems)
