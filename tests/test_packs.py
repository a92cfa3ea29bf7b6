"""Industry template packs ship with scenarios whose results the suite checks."""

from __future__ import annotations

import shutil

import pytest

from keepwell import packs


@pytest.mark.parametrize("name", ["hvac", "plumbing"])
def test_pack_scenarios_pass(cli, name):
    res = cli("packs", "test", name)
    lines = res.stdout.splitlines()
    assert lines and all(line.startswith("ok") for line in lines), res.stdout


def test_packs_are_listed(cli):
    names = [p["name"] for p in cli.json("packs", "list")]
    assert {"hvac", "plumbing"} <= set(names)


def test_a_pack_with_a_broken_ruleset_is_rejected_with_file_and_path(cli, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(packs.find("hvac").path, broken)
    plan = broken / "plan.yaml"
    plan.write_text(plan.read_text().replace("period: yearly", "period: fortnightly", 1))
    res = cli("packs", "test", str(broken), expect=1)
    assert f"{plan}: spec.allowance.period: 'fortnightly' is not one of" in res.stderr


def test_a_wrong_expectation_fails_the_pack(cli, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(packs.find("hvac").path, changed)
    rules = changed / "earning_rules.yaml"
    text = rules.read_text()
    assert "points: 500" in text
    rules.write_text(text.replace("points: 500", "points: 499", 1))
    res = cli("packs", "test", str(changed), expect=1)
    assert "FAIL" in res.stdout


def test_install_publishes_every_ruleset(cli):
    refs = cli.out("packs", "install", "plumbing").splitlines()
    assert len(refs) == 3 and all(r.endswith("@1") for r in refs)
