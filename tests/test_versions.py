"""Ruleset versions through the CLI: publishing, pinning memberships, diff, show, effective dates,
rollback, drafts, kind changes, and the database refusing to rewrite a published version."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import date

import pytest
import sqlalchemy as sa

from keepwell.infra import database as db
from support import event

PLAN = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: home-care, name: Home Care}
    spec:
      allowance: {amount: "%s", period: yearly}
    """)

RULES = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: EarningRules
    metadata: {id: spend-points, name: Spend points}
    spec:
      rules:
        - id: spend
          when: {event: purchase}
          earn: {points: %d, per: "1.00", of: data.amount}
    """)


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str):
        f = tmp_path / name
        f.write_text(text)
        return str(f)

    return write


def versions(cli, ruleset: str) -> list[dict]:
    return cli.json("rulesets", "show", ruleset, "--versions")


def test_same_content_twice_is_unchanged(cli, write):
    f = write("plan.yaml", PLAN % "100.00")
    assert cli.out("rulesets", "publish", f) == "home-care@1"
    assert cli.out("rulesets", "publish", f) == "home-care@1  (unchanged)"
    # Formatting and key order are not content.
    same = write("same.yaml", textwrap.dedent("""\
        kind: Plan
        apiVersion: keepwell/v1
        spec:
          allowance:
            period: yearly
            amount: "100.00"
        metadata:
          name: Home Care
          id: home-care
        """))
    assert cli.out("rulesets", "publish", same) == "home-care@1  (unchanged)"
    assert [v["version"] for v in versions(cli, "home-care")] == [1]
    [row] = cli.json("rulesets", "list")
    assert (row["id"], row["kind"], row["latest"], row["has_draft"]) == ("home-care", "Plan", "home-care@1", False)


def test_changed_plan_publishes_next_version(cli, write):
    assert cli.out("rulesets", "publish", write("v1.yaml", PLAN % "100.00")) == "home-care@1"
    assert cli.out("rulesets", "publish", write("v2.yaml", PLAN % "150.00")) == "home-care@2"
    assert [v["ref"] for v in versions(cli, "home-care")] == ["home-care@1", "home-care@2"]
    assert cli.json("rulesets", "show", "home-care")["version"] == 2


def test_membership_stays_on_its_version(cli, write):
    cli("rulesets", "publish", write("v1.yaml", PLAN % "100.00"))
    old = cli.out("customers", "add", "--name", "Early Bird")
    m_old = cli.out("enroll", old, "home-care", "--on", "2020-01-01")
    cli("rulesets", "publish", write("v2.yaml", PLAN % "150.00"))
    new = cli.out("customers", "add", "--name", "Late Comer")
    m_new = cli.out("enroll", new, "home-care", "--on", "2020-01-01")
    pinned = cli.out("customers", "add", "--name", "Picky Pinner")
    m_pinned = cli.out("enroll", pinned, "home-care@1", "--on", "2020-01-01")

    def plan_and_allowance(m):
        shown = cli.json("membership", "show", m)
        return shown["plan"], shown["allowance"]["amount"], shown["allowance"]["balance"]

    assert plan_and_allowance(m_old) == ("home-care@1", "100.00", "100.00")
    assert plan_and_allowance(m_new) == ("home-care@2", "150.00", "150.00")
    assert plan_and_allowance(m_pinned) == ("home-care@1", "100.00", "100.00")

    for i, (c, m) in enumerate(((old, m_old), (new, m_new), (pinned, m_pinned))):
        [r] = cli.post(event(f"pos-{i}", "purchase", c, "2020-06-01", amount="40.00", pay_with="membership"))
        assert r["plan"] == cli.json("membership", "show", m)["plan"]

    cli("run-due", "--as-of", "2021-01-01")
    assert plan_and_allowance(m_old) == ("home-care@1", "100.00", "100.00")
    assert plan_and_allowance(m_new) == ("home-care@2", "150.00", "150.00")
    assert plan_and_allowance(m_pinned) == ("home-care@1", "100.00", "100.00")
    st = cli.json("statement", m_old, "--from", "2020-01-01", "--to", "2021-12-31")
    grants = [(e["date"], e["amount"], e["ruleset"]) for a in st["accounts"] for e in a["entries"] if e["kind"] == "grant"]
    assert grants == [("2020-01-01", "100.00", "home-care@1"), ("2021-01-01", "100.00", "home-care@1")]


def test_enrolment_on_a_version_that_does_not_exist_is_refused(cli, write):
    cli("rulesets", "publish", write("v1.yaml", PLAN % "100.00"))
    c = cli.out("customers", "add", "--name", "Too Soon")
    res = cli("enroll", c, "home-care@2", "--on", "2020-01-01", expect=1)
    assert "home-care@2" in res.stderr


def test_diff_shows_the_changed_line(cli, write):
    cli("rulesets", "publish", write("v1.yaml", PLAN % "100.00"))
    cli("rulesets", "publish", write("v2.yaml", PLAN % "150.00"))
    out = cli.out("rulesets", "diff", "home-care@1", "home-care@2")
    lines = out.splitlines()
    assert lines[0].startswith("--- home-care@1") and lines[1].startswith("+++ home-care@2")
    removed = [l for l in lines[2:] if l.startswith("-")]
    added = [l for l in lines[2:] if l.startswith("+")]
    assert len(removed) == 1 and "amount" in removed[0] and "100.00" in removed[0]
    assert len(added) == 1 and "amount" in added[0] and "150.00" in added[0]
    assert cli.out("rulesets", "diff", "home-care@1", "2") == out  # shorthand for the same ruleset
    assert cli.out("rulesets", "diff", "home-care@2", "home-care@2") == "(no differences)"


def test_show_version_as_json(cli, write):
    f = write("v1.yaml", PLAN % "100.00")
    cli("rulesets", "publish", f, "--author", "alice")
    cli("rulesets", "publish", write("v2.yaml", PLAN % "150.00"), "--author", "bob", "--effective-from", "2020-03-01")
    one = cli.json("rulesets", "show", "home-care@1")
    assert (one["ref"], one["kind"], one["version"], one["author"], one["effective_from"]) == (
        "home-care@1", "Plan", 1, "alice", "1970-01-01")
    assert one["content"] == {"apiVersion": "keepwell/v1", "kind": "Plan",
                              "metadata": {"id": "home-care", "name": "Home Care"},
                              "spec": {"allowance": {"amount": "100.00", "period": "yearly"}}}
    assert re.fullmatch(r"[0-9a-f]{64}", one["content_hash"])
    two = cli.json("rulesets", "show", "home-care@2")
    assert (two["author"], two["effective_from"]) == ("bob", "2020-03-01")
    assert two["content_hash"] != one["content_hash"]
    assert two["content"]["spec"]["allowance"]["amount"] == "150.00"
    text = cli.out("rulesets", "show", "home-care@1")
    assert "home-care@1" in text and "alice" in text and "100.00" in text
    res = cli("rulesets", "show", "home-care@9", expect=1)
    assert "home-care@9" in res.stderr


def test_effective_from_selects_the_earning_rules_version_by_event_date(cli, write):
    assert cli.out("rulesets", "publish", write("r1.yaml", RULES % 1)) == "spend-points@1"
    assert cli.out("rulesets", "publish", write("r2.yaml", RULES % 2), "--effective-from", "2020-06-01") == "spend-points@2"
    c = cli.out("customers", "add", "--name", "Penny Points")
    results = cli.post(
        event("before", "purchase", c, "2020-05-31", amount="10.00"),
        event("late-evening", "purchase", c, "2020-06-01T05:00:00Z", amount="10.00"),  # 23:00 on May 31 in Denver
        event("on-the-day", "purchase", c, "2020-06-01T00:00:00-06:00", amount="10.00"),
        event("after", "purchase", c, "2020-07-01", amount="10.00"),
    )
    got = [(r["event"], r["local_date"], r["points"]["earned"], [(e["rule"], e["ruleset"]) for e in r["entries"]])
           for r in results]
    assert got == [
        ("before", "2020-05-31", 10, [("spend", "spend-points@1")]),
        ("late-evening", "2020-05-31", 10, [("spend", "spend-points@1")]),
        ("on-the-day", "2020-06-01", 20, [("spend", "spend-points@2")]),
        ("after", "2020-07-01", 20, [("spend", "spend-points@2")]),
    ]
    assert cli.json("points", "show", c)["balance"] == 60


def test_plan_version_for_an_enrolment_follows_its_effective_date(cli, write):
    cli("rulesets", "publish", write("v1.yaml", PLAN % "100.00"))
    cli("rulesets", "publish", write("v2.yaml", PLAN % "150.00"), "--effective-from", "2020-06-01")
    plans = []
    for on in ("2020-05-31", "2020-06-01"):
        c = cli.out("customers", "add", "--name", f"Joined {on}")
        shown = cli.json("membership", "show", cli.out("enroll", c, "home-care", "--on", on))
        plans.append((shown["plan"], shown["allowance"]["amount"]))
    assert plans == [("home-care@1", "100.00"), ("home-care@2", "150.00")]


def test_rollback_publishes_old_content_as_new_version(cli, write):
    cli("rulesets", "publish", write("v1.yaml", PLAN % "100.00"))
    cli("rulesets", "publish", write("v2.yaml", PLAN % "150.00"))
    assert cli.out("rulesets", "rollback", "home-care", "--to", "1", "--author", "carol") == "home-care@3"
    assert cli.out("rulesets", "diff", "home-care@1", "home-care@3") == "(no differences)"
    assert "150.00" in cli.out("rulesets", "diff", "home-care@2", "home-care@3")
    rows = versions(cli, "home-care")
    assert [r["ref"] for r in rows] == ["home-care@1", "home-care@2", "home-care@3"]
    assert rows[2]["content_hash"] == rows[0]["content_hash"] != rows[1]["content_hash"]
    assert rows[2]["author"] == "carol"
    assert "rollback" in rows[2]["note"] and "1" in rows[2]["note"]
    latest = cli.json("rulesets", "show", "home-care")
    assert (latest["version"], latest["content"]["spec"]["allowance"]["amount"]) == (3, "100.00")
    c = cli.out("customers", "add", "--name", "After Rollback")
    m = cli.out("enroll", c, "home-care", "--on", date.today().isoformat())
    assert cli.json("membership", "show", m)["plan"] == "home-care@3"
    res = cli("rulesets", "rollback", "home-care", "--to", "7", expect=1)
    assert "home-care@7" in res.stderr
    assert len(versions(cli, "home-care")) == 3


def test_rollback_with_effective_date_applies_to_back_dated_enrolments(cli, write):
    cli("rulesets", "publish", write("v1.yaml", PLAN % "100.00"))
    cli("rulesets", "publish", write("v2.yaml", PLAN % "150.00"))
    assert cli.out("rulesets", "rollback", "home-care", "--to", "1", "--effective-from", "2020-01-01") == "home-care@3"
    c = cli.out("customers", "add", "--name", "Back Dated")
    m = cli.out("enroll", c, "home-care", "--on", "2020-02-01")
    shown = cli.json("membership", "show", m)
    assert (shown["plan"], shown["allowance"]["amount"]) == ("home-care@3", "100.00")
    c2 = cli.out("customers", "add", "--name", "Older Still")
    m2 = cli.out("enroll", c2, "home-care", "--on", "2019-06-01")  # before the rollback took effect
    assert cli.json("membership", "show", m2)["plan"] == "home-care@2"


BROKEN = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: draft-plan, name: Draft Plan}
    spec:
      allowance: {amount: "100.00", period: fortnightly}
    """)


def test_draft_with_error_is_saved_and_cannot_be_published(cli, write):
    res = cli("rulesets", "draft", write("draft.yaml", BROKEN))
    assert "spec.allowance.period" in res.stdout and "fortnightly" in res.stdout
    assert "draft saved: draft-plan (1 problem(s))" in res.stderr
    [row] = cli.json("rulesets", "list")
    assert (row["id"], row["latest"], row["has_draft"]) == ("draft-plan", None, True)

    res = cli("rulesets", "publish-draft", "draft-plan", expect=1)
    assert "spec.allowance.period" in res.stderr
    [row] = cli.json("rulesets", "list")
    assert (row["latest"], row["has_draft"]) == (None, True)  # still a draft, nothing published
    assert cli.json("rulesets", "show", "draft-plan", "--versions") == []
    c = cli.out("customers", "add", "--name", "Too Early")
    assert "draft-plan" in cli("enroll", c, "draft-plan", "--on", "2020-01-01", expect=1).stderr

    # Fixed, the draft publishes as version 1 and is gone.
    res = cli("rulesets", "draft", write("fixed.yaml", BROKEN.replace("fortnightly", "monthly")))
    assert res.stdout.strip() == "" and "(0 problem(s))" in res.stderr
    assert cli.out("rulesets", "publish-draft", "draft-plan") == "draft-plan@1"
    [row] = cli.json("rulesets", "list")
    assert (row["latest"], row["has_draft"]) == ("draft-plan@1", False)
    assert cli.json("rulesets", "show", "draft-plan")["content"]["spec"]["allowance"]["period"] == "monthly"
    assert "no draft" in cli("rulesets", "publish-draft", "draft-plan", expect=1).stderr


def test_broken_draft_of_a_published_ruleset_leaves_the_published_version(cli, write):
    cli("rulesets", "publish", write("v1.yaml", PLAN % "100.00"))
    res = cli("rulesets", "draft", write("d.yaml", PLAN % "-5.00"))
    assert "spec.allowance.amount" in res.stdout
    assert "spec.allowance.amount" in cli("rulesets", "publish-draft", "home-care", expect=1).stderr
    assert [v["version"] for v in versions(cli, "home-care")] == [1]
    assert cli.json("rulesets", "show", "home-care")["content"]["spec"]["allowance"]["amount"] == "100.00"


def test_publish_is_all_or_nothing(cli, write):
    good = write("good.yaml", PLAN % "100.00")
    bad = write("bad.yaml", RULES.replace("per: \"1.00\"", "per: \"0.00\"") % 1)
    res = cli("rulesets", "publish", good, bad, expect=1)
    assert "bad.yaml" in res.stderr and "spec.rules[0].earn.per" in res.stderr
    assert cli.json("rulesets", "list") == []


def test_kind_cannot_change_under_the_same_id(cli, write):
    cli("rulesets", "publish", write("plan.yaml", PLAN % "100.00"))
    rules = write("rules.yaml", (RULES % 1).replace("id: spend-points", "id: home-care"))
    res = cli("rulesets", "publish", rules, expect=1)
    assert "kind" in res.stderr and "Plan" in res.stderr and "EarningRules" in res.stderr
    [row] = cli.json("rulesets", "list")
    assert (row["id"], row["kind"], row["latest"]) == ("home-care", "Plan", "home-care@1")
    assert [v["version"] for v in versions(cli, "home-care")] == [1]
    # Nor through a draft.
    cli("rulesets", "draft", rules)
    res = cli("rulesets", "publish-draft", "home-care", expect=1)
    assert "kind" in res.stderr and "EarningRules" in res.stderr
    assert cli.json("rulesets", "show", "home-care")["kind"] == "Plan"


def test_draft_with_a_wrong_kind_does_not_lock_the_id(cli, write):
    """Drafts may have errors, a misspelt kind among them; until a version is published the
    kind is not settled (it used to lock the id: every later publish was "kind changed")."""
    typo = write("typo.yaml", (PLAN % "100.00").replace("kind: Plan", "kind: Plna"))
    res = cli("rulesets", "draft", typo)
    assert "kind" in res.stdout and "Plna" in res.stdout
    assert cli.json("rulesets", "list")[0]["latest"] is None
    assert cli.out("rulesets", "publish", write("v1.yaml", PLAN % "100.00")) == "home-care@1"
    [row] = cli.json("rulesets", "list")
    assert (row["kind"], row["latest"]) == ("Plan", "home-care@1")
    # The same for a draft that was another valid kind first.
    rules = write("rules.yaml", (RULES % 1).replace("id: spend-points", "id: later-plan"))
    cli("rulesets", "draft", rules)
    cli("rulesets", "draft", write("plan2.yaml", (PLAN % "80.00").replace("id: home-care", "id: later-plan")))
    assert cli.out("rulesets", "publish-draft", "later-plan") == "later-plan@1"
    assert cli.json("rulesets", "show", "later-plan")["kind"] == "Plan"
    # Once published, the kind is fixed.
    assert "kind" in cli("rulesets", "publish", rules, expect=1).stderr


def test_published_versions_cannot_be_changed_in_the_database(cli, write):
    cli("rulesets", "publish", write("v1.yaml", PLAN % "100.00"), "--author", "alice")
    c = cli.out("customers", "add", "--name", "Ledger Lee")
    cli("enroll", c, "home-care", "--on", "2020-01-01")
    before = cli.json("rulesets", "show", "home-care@1")
    eng = db.make_engine(cli.env["KEEPWELL_DATABASE_URL"])
    forged = json.dumps({**before["content"], "spec": {"allowance": {"amount": "9999.00", "period": "yearly"}}})
    try:
        for sql, params in [
            ("UPDATE ruleset_versions SET author = :a", {"a": "mallory"}),
            ("UPDATE ruleset_versions SET content = :c", {"c": forged}),
            ("DELETE FROM ruleset_versions", {}),
            ("UPDATE ledger_entries SET amount = amount + 1", {}),
            ("DELETE FROM ledger_entries", {}),
        ]:
            with pytest.raises(sa.exc.DBAPIError) as err, eng.begin() as conn:
                conn.execute(sa.text(sql), params)
            assert "append-only" in str(err.value), sql
    finally:
        eng.dispose()
    assert cli.json("rulesets", "show", "home-care@1") == before
    assert cli.json("audit")["ok"] is True
