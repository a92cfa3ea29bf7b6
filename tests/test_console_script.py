"""The installed `keepwell` console script, run as a separate process like a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KEEPWELL = shutil.which("keepwell") or str(Path(sys.executable).parent / "keepwell")


def run(env, *args, input=None):
    return subprocess.run([KEEPWELL, *args], env=env, input=input, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not os.path.exists(KEEPWELL), reason="console script not installed")
def test_end_to_end_in_a_fresh_directory(tmp_path):
    env = dict(os.environ, KEEPWELL_DATABASE_URL=f"sqlite:///{tmp_path}/kw.sqlite3")
    assert run(env, "init", "--timezone", "America/New_York").returncode == 0
    plan = tmp_path / "vip.yaml"
    plan.write_text('apiVersion: keepwell/v1\nkind: Plan\nmetadata: {id: vip-customer, name: VIP Customer}\n'
                    'spec:\n  allowance: {amount: "1000.00", period: half_yearly, auto_renewal: true, overdraft: {limit: "200.00"}}\n')
    assert run(env, "rulesets", "publish", str(plan)).stdout.strip() == "vip-customer@1"
    cust = run(env, "customers", "add", "--name", "Ada").stdout.strip()
    mem = run(env, "enroll", cust, "vip-customer", "--on", "2020-01-01").stdout.strip()
    ev = {"id": "pos-1017", "type": "purchase", "customer": cust, "occurred_at": "2020-03-02T10:15:00-07:00",
          "data": {"amount": "250.00", "pay_with": "membership"}}
    out = run(env, "events", "post", "-", input=json.dumps(ev) + "\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["balance"] == "750.00"
    assert run(env, "run-due", "--as-of", "2020-07-01").returncode == 0
    shown = json.loads(run(env, "membership", "show", mem, "--json").stdout)
    assert (shown["allowance"]["balance"], shown["expires_on"]) == ("1000.00", "2020-12-31")
    bad = run(env, "membership", "show", "mem_nope")
    assert bad.returncode == 1 and "no membership 'mem_nope'" in bad.stderr
