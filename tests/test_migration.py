"""Memberships stay pinned to their plan version until migrated by an explicit, previewed command."""

from __future__ import annotations

import textwrap

PLAN = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: care, name: Care}
    spec:
      allowance: {amount: "%s", period: half_yearly, overdraft: {limit: "50.00"}}
      included_services: [{code: AC_TUNE, quantity: %d}]
    """)


def test_preview_then_apply_moves_memberships_from_the_next_period(cli, tmp_path):
    f = tmp_path / "care.yaml"
    f.write_text(PLAN % ("100.00", 1))
    cli("rulesets", "publish", str(f))
    c = cli.out("customers", "add", "--name", "Pinned")
    m = cli.out("enroll", c, "care", "--on", "2024-01-01")
    f.write_text(PLAN % ("150.00", 2))
    assert cli.out("rulesets", "publish", str(f)) == "care@2"
    assert cli.json("membership", "show", m)["plan"] == "care@1"  # pinned

    preview = cli.json("membership", "migrate", "care", "--to", "2")
    assert preview == [{"membership": m, "customer": c, "tier": "standard", "from": "care@1", "to": "care@2",
                        "problem": None, "changes": {"allowance": {"from": "100.00", "to": "150.00"},
                                                    "services.AC_TUNE": {"from": 1, "to": 2}}}]
    assert cli.json("membership", "show", m)["plan"] == "care@1"  # a preview changes nothing

    applied = cli.json("membership", "migrate", "care", "--to", "care@2", "--apply")
    assert applied[0]["applied"] is True
    shown = cli.json("membership", "show", m)
    assert shown["plan"] == "care@2"
    assert shown["allowance"]["balance"] == "100.00"  # this period's grant stays as it was
    cli("run-due", "--as-of", "2024-07-01")
    shown = cli.json("membership", "show", m)
    assert shown["allowance"]["balance"] == "150.00"
    assert shown["services"][0]["quantity"] == 2 and shown["services"][0]["left"] == 2
    # Running it again finds nothing left to move.
    assert cli.json("membership", "migrate", "care", "--to", "2", "--apply") == []


def test_a_version_without_the_tier_is_refused_in_the_preview(cli, tmp_path):
    f = tmp_path / "care.yaml"
    f.write_text(PLAN % ("100.00", 1) + "  tiers: [{id: gold, name: Gold}]\n")
    cli("rulesets", "publish", str(f))
    c = cli.out("customers", "add", "--name", "Gold")
    m = cli.out("enroll", c, "care", "--tier", "gold", "--on", "2024-01-01")
    f.write_text(PLAN % ("100.00", 1) + "  tiers: [{id: silver, name: Silver}]\n")
    cli("rulesets", "publish", str(f))
    [row] = cli.json("membership", "migrate", "care", "--to", "2")
    assert "no tier 'gold'" in row["problem"]
    res = cli("membership", "migrate", "care", "--to", "2", "--apply", expect=1)
    assert "NOT moved" in res.stdout
    assert cli.json("membership", "show", m)["plan"] == "care@1"
