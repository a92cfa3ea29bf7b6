"""Test clocks (billing issue: "every company has a clock"): in a test installation a company's
business time stands at a moment and moves on with `keepwell clock advance`, doing what fell due
on the way; production refuses them; each company has its own."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import yaml

from support import event

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Club"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly"}}}


def setup(cli, tmp_path) -> tuple[str, str]:
    path = tmp_path / "club.yaml"
    path.write_text(yaml.safe_dump(PLAN))
    cli("rulesets", "publish", str(path), "--effective-from", "2020-01-01")
    cid = cli.out("customers", "add", "--name", "Ada Rehearsal")
    today = datetime.now(UTC).date()
    mid = cli.out("enroll", cid, "club", "--on", (today - timedelta(days=1)).isoformat())
    return cid, mid


def test_a_production_installation_refuses_test_clocks(cli, tmp_path):
    setup(cli, tmp_path)
    res = cli("clock", "advance", "--to", (date.today() + timedelta(days=40)).isoformat(), expect=1)
    assert "test installation" in res.output
    assert cli.json("clock", "show")["test_clock"] is False


def test_a_company_rehearses_months_on_its_test_clock(cli, tmp_path):
    cli.env["KEEPWELL_MODE"] = "test"
    cid, mid = setup(cli, tmp_path)
    cli("companies", "add", "other", "--name", "Other Co")
    start = date.fromisoformat(cli.json("clock", "show")["today"])
    target = start + timedelta(days=95)
    moved = cli.json("clock", "advance", "--to", target.isoformat())
    assert moved["due"]["periods_closed"] == 3  # three monthly periods ended on the way
    shown = cli.json("clock", "show")
    assert (shown["today"], shown["test_clock"]) == (target.isoformat(), True)
    assert cli.json("membership", "show", mid)["period"]["index"] == 3
    # Events are dated by the company's clock: the rehearsal's today is accepted, the real today
    # plus a few days is not in the future for it.
    [paid] = cli.post(event("till-1", "purchase", cid, f"{target.isoformat()}T09:00:00+00:00", amount="10.00",
                            pay_with="membership"))
    assert paid["status"] == "approved", paid
    # A clock only moves on; another company keeps the real time.
    assert "only moves on" in cli("clock", "advance", "--to", start.isoformat(), expect=1).output
    assert cli.json("--company", "other", "clock", "show")["test_clock"] is False
    back = cli.json("clock", "reset")
    assert back["test_clock"] is False and back["today"] == start.isoformat()
    assert json.loads(cli.out("clock", "show", "--json"))["today"] == start.isoformat()
