"""What-if simulation: a draft over recorded events, compared with the published version;
nothing is written; the prediction equals what publishing the draft and replaying gives."""

from __future__ import annotations

import textwrap

from support import event

PLAN = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: care, name: Care Plan}
    spec:
      allowance: {amount: "300.00", period: quarterly, overdraft: {limit: "50.00"}}
      tiers: [{id: silver, name: Silver}, {id: gold, name: Gold}]
    """)
RULES = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: EarningRules
    metadata: {id: rewards, name: Rewards}
    spec:
      point_value: "0.01"
      tier_multipliers: {gold: "2"}
      rules:
        - {id: spend, when: {event: purchase}, earn: {points: %d, per: "1.00", of: data.amount}}
        - {id: referral, when: {event: referral}, earn: {points: %d}}
    """)


def _setup(cli, tmp_path, company=None):
    args = ["--company", company] if company else []
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "rules.yaml").write_text(RULES % (1, 100))
    cli(*args, "rulesets", "publish", str(tmp_path / "plan.yaml"), str(tmp_path / "rules.yaml"))
    a = cli.out(*args, "customers", "add", "--name", "Ann")
    b = cli.out(*args, "customers", "add", "--name", "Ben")
    cli(*args, "enroll", a, "care", "--tier", "gold", "--on", "2024-01-01")
    cli(*args, "enroll", b, "care", "--tier", "silver", "--on", "2024-01-01")
    return a, b


def _traffic(a, b):
    return [
        event("p1", "purchase", a, "2024-02-01", amount="120.50", pay_with="membership"),
        event("p2", "purchase", b, "2024-02-03", amount="80.00", pay_with="card"),
        event("r1", "referral", b, "2024-03-01", referred_name="Cy"),
        event("p3", "purchase", a, "2024-05-01", amount="40.00", pay_with="card"),
    ]


def test_simulation_predicts_publishing_and_changes_nothing(cli, tmp_path):
    a, b = _setup(cli, tmp_path)
    cli.post(*_traffic(a, b))
    before = (cli.json("points", "show", a)["balance"], cli.json("points", "show", b)["balance"])
    draft = tmp_path / "draft.yaml"
    draft.write_text(RULES % (3, 250))  # triple spend points, bigger referral bonus
    report = cli.json("rulesets", "simulate", str(draft), "--from", "2024-01-01", "--to", "2024-06-30")
    # Nothing was written by the simulation.
    assert (cli.json("points", "show", a)["balance"], cli.json("points", "show", b)["balance"]) == before
    assert cli.json("rulesets", "show", "rewards", "--versions") [-1]["version"] == 1

    by_name = {m["name"]: m for m in report["members"]}
    # Ann (gold, x2): 120 + 40 dollars -> published 2*160 = 320, draft 2*3*160 = 960.
    assert by_name["Ann"]["points"] == {"published": 320, "draft": 960, "change": 640}
    # Ben (silver): 80 dollars + a referral -> 80 + 100 = 180, draft 240 + 250 = 490.
    assert by_name["Ben"]["points"] == {"published": 180, "draft": 490, "change": 310}
    assert report["total"]["points"] == 950
    assert report["total"]["points_liability"] == "9.50"

    # Publish the draft in a second company and replay the same events: the same balances.
    cli("companies", "add", "replay", "--name", "Replay", "--timezone", "America/Denver")
    a2, b2 = _setup(cli, tmp_path, "replay")
    cli("--company", "replay", "rulesets", "publish", str(draft), "--effective-from", "2024-01-01")
    replayed = [dict(e, customer=a2 if e["customer"] == a else b2) for e in _traffic(a, b)]
    cli("--company", "replay", "events", "post", "-", input="\n".join(__import__("json").dumps(e) for e in replayed) + "\n")
    assert cli.json("--company", "replay", "points", "show", a2)["balance"] == by_name["Ann"]["points"]["draft"]
    assert cli.json("--company", "replay", "points", "show", b2)["balance"] == by_name["Ben"]["points"]["draft"]


def test_invalid_draft_is_refused_with_paths(cli, tmp_path):
    _setup(cli, tmp_path)
    draft = tmp_path / "bad.yaml"
    draft.write_text((RULES % (1, 100)).replace("per: \"1.00\"", "per: \"zero\""))
    res = cli("rulesets", "simulate", str(draft), "--from", "2024-01-01", "--to", "2024-06-30", expect=1)
    assert "spec.rules[0].earn.per" in res.stderr


def test_a_pack_with_other_parameters_over_a_sample_stream(cli, tmp_path):
    import json

    cli("packs", "install", "hvac")
    c = cli.out("customers", "add", "--name", "Stream")
    cli("enroll", c, "hvac-comfort-club", "--tier", "basic", "--on", "2026-01-10")
    stream = tmp_path / "stream.jsonl"
    stream.write_text("\n".join(json.dumps(e) for e in [
        event("s-ref", "referral", c, "2026-02-01", referred_name="Neighbour"),
    ]) + "\n")
    default = next(p for p in cli.json("packs", "show", "hvac")["parameters"] if p["name"] == "referral_points")
    bigger = int(default["default"]) + 250
    report = cli.json("rulesets", "simulate", "--pack", "hvac", "--set", f"referral_points={bigger}",
                      "--events", str(stream), "--from", "2026-01-01", "--to", "2026-06-30")
    assert report["source"] == "sample stream" and report["events"] == 1
    [member] = report["members"]
    assert member["points"]["change"] == 250  # basic tier: no multiplier
    assert cli.json("points", "show", c)["balance"] == 0  # the sample stream was not posted
    res = cli("rulesets", "simulate", "--from", "2026-01-01", "--to", "2026-06-30", expect=1)
    assert "give draft FILES or --pack NAME" in res.stderr
