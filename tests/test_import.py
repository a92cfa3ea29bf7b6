"""`keepwell events import FILE`: a file of events split by customer across RQ workers (real
`keepwell worker` processes on PostgreSQL and Redis), with exactly the effects of posting the file
in one process; without Redis the same import runs in the CLI's own process."""

from __future__ import annotations

import json
import random
import re
import subprocess
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import redis
import sqlalchemy as sa

from keepwell.usecases.imports import part_of
from mailserver import wait_until
from support import Cli
from test_workers import (  # noqa: F401  (fixtures)
    KEEPWELL,
    Proc,
    redis_server,
    redis_url,
    worker_env,
)

IDS = re.compile(r"\b(?:cus|mem)_[0-9a-f]+\b")  # customer and membership ids, inside any text
# Recent enough that nothing is due yet (the workers' tick would run due work in the middle).
START = datetime.now(ZoneInfo("America/Denver")).date() - timedelta(days=90)
POINTS = """\
apiVersion: keepwell/v1
kind: EarningRules
metadata: {id: points, name: Points}
spec:
  expiry: {after_months: 12}
  rules:
    - {id: spend, when: {event: purchase}, earn: {points: 1, per: "1.00", of: data.amount}}
    - {id: big, when: {event: purchase, all: [{field: data.amount, gte: "200.00"}]}, earn: {points: 50}}
    - {id: refer, when: {event: referral}, earn: {points: 100}}
"""
PLAN = """\
apiVersion: keepwell/v1
kind: Plan
metadata: {id: club, name: Club}
spec:
  allowance: {amount: "300.00", period: yearly, overdraft: {limit: "50.00"}}
"""


def company(cli: Cli, tmp_path: Path, slug: str, members: int) -> list[str]:
    """A company with a plan and points rules, and `members` customers (all but every fifth enrolled)."""
    cli.env["KEEPWELL_COMPANY"] = slug
    cli("init", "--timezone", "America/Denver")
    for name, text in (("plan.yaml", PLAN), ("points.yaml", POINTS)):
        (tmp_path / name).write_text(text)
        cli("rulesets", "publish", str(tmp_path / name))
    people = []
    for i in range(members):
        cid = cli.out("customers", "add", "--name", f"Member {i:03d}")
        if i % 5:
            cli("enroll", cid, "club", "--on", str(START))
        people.append(cid)
    return people


def history(people: list[str], n: int, seed: int) -> list[str]:
    """n lines of a random history over these customers, over the 80 days after START: purchases from the allowance (some
    declined) and by card, referrals, redemptions (some refused), a duplicate, a malformed line."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        who = rng.randrange(len(people))
        day = f"{START + timedelta(days=1 + i * 80 // n)}T1{rng.randrange(10)}:00:00-07:00"
        kind = rng.choice(["purchase", "purchase", "purchase", "card", "referral", "redemption"])
        if kind == "purchase":
            data = {"amount": f"{rng.randrange(1, 260)}.{rng.randrange(100):02d}", "pay_with": "membership"}
        elif kind == "card":
            kind, data = "purchase", {"amount": f"{rng.randrange(1, 400)}.00", "pay_with": "card"}
        elif kind == "referral":
            data = {"referred_name": f"Friend {i}"}
        else:
            data = {"points": rng.randrange(1, 300)}
        lines.append(json.dumps({"id": f"ev-{i}", "type": kind, "customer": people[who], "occurred_at": day,
                                 "data": data}))
        if i == n // 2:
            lines.append(lines[rng.randrange(len(lines))])  # a repeated event
            lines.append("{not json")
    return lines


def fingerprint(url: str, slug: str) -> dict:
    """Every row an import writes, with ids replaced by what they name (customers by name,
    events by key): two imports of one history into two companies compare equal."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            cid = c.execute(sa.text("SELECT id FROM companies WHERE slug = :s"), {"s": slug}).scalar()
            names = dict(c.execute(sa.text("SELECT id, name FROM customers WHERE company_id = :c"), {"c": cid}).all())
            owners = dict(names)
            owners.update({m: f"membership of {names[cu]}" for m, cu in c.execute(sa.text(
                "SELECT id, customer_id FROM memberships WHERE company_id = :c"), {"c": cid}).all()})

            def named(value):
                if isinstance(value, dict):
                    return {k: named(v) for k, v in value.items()}
                if isinstance(value, list):
                    return [named(v) for v in value]
                return IDS.sub(lambda m: owners.get(m.group(0), m.group(0)), value) if isinstance(value, str) else value

            events = {named(key): (status, named(json.loads(result) if isinstance(result, str) else result))
                      for key, status, result in c.execute(sa.text(
                          "SELECT key, status, result FROM events WHERE company_id = :c"), {"c": cid}).all()}
            entries = Counter(
                (named(key), owners[owner], unit, code, kind, amount, balance_after, rule, str(day))
                for key, owner, unit, code, kind, amount, balance_after, rule, day in c.execute(sa.text(
                    "SELECT e.key, a.owner, a.unit, a.code, l.kind, l.amount, l.balance_after, l.rule, "
                    "l.effective_date FROM ledger_entries l JOIN accounts a ON a.id = l.account_id "
                    "JOIN events e ON e.id = l.event_id WHERE l.company_id = :c"), {"c": cid}).all())
            balances = {(owners[o], u, code): b for o, u, code, b in c.execute(sa.text(
                "SELECT owner, unit, code, balance FROM accounts WHERE company_id = :c"), {"c": cid}).all()}
            lots = Counter((owners[o], points, remaining, str(expires)) for o, points, remaining, expires in c.execute(
                sa.text("SELECT a.owner, p.points, p.remaining, p.expires_on FROM points_lots p "
                        "JOIN accounts a ON a.id = p.account_id WHERE p.company_id = :c"), {"c": cid}).all())
    finally:
        engine.dispose()
    return {"events": events, "entries": entries, "balances": balances, "lots": lots}


def test_import_in_process_reports_each_line_and_is_safe_to_repeat(db_url, tmp_path):
    cli = Cli(db_url)
    people = company(cli, tmp_path, "default", 6)
    lines = history(people, 60, seed=1)
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(lines) + "\n")
    res = cli("events", "import", str(src), "--json", expect=1)
    report = json.loads(res.stdout)
    assert report["events"] == len(lines) and report["parts"] == 1 and report["failed_parts"] == {}
    assert report["outcomes"]["duplicate"] == 1 and report["outcomes"]["rejected"] == 1
    assert [p["line"] for p in report["problems"]] == [lines.index("{not json") + 1]
    assert sum(report["outcomes"].values()) == len(lines)
    # The same as posting the file: the balances agree with `events post` into another company.
    other = Cli(db_url)
    theirs = company(other, tmp_path, "other", 6)
    mapping = dict(zip(people, theirs, strict=True))
    posted = [json.loads(line) for line in other("events", "post", "-", input="\n".join(
        _rename(line, mapping) for line in lines) + "\n", expect=1).stdout.splitlines()]
    assert len(posted) == len(lines)
    assert fingerprint(db_url, "default") == fingerprint(db_url, "other")
    # Again: everything is a duplicate, nothing moves.
    before = fingerprint(db_url, "default")
    again = json.loads(cli("events", "import", str(src), "--json", expect=1).stdout)
    assert again["outcomes"] == {"duplicate": len(lines) - 1, "rejected": 1}
    assert fingerprint(db_url, "default") == before
    text = cli("events", "import", str(src), expect=1)
    assert f"{len(lines)} line(s) in 1 part(s)" in text.stdout and "not JSON" in text.stderr
    assert cli.json("audit")["ok"] is True


def _rename(line: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        line = line.replace(old, new)
    return line


def test_an_unreadable_file_is_a_clear_error(cli, tmp_path):
    res = cli("events", "import", str(tmp_path / "missing.jsonl"), expect=1)
    assert "cannot read" in res.output and "missing.jsonl" in res.output


def _finished(conn: redis.Redis) -> int:
    return sum(conn.hget(k, "status") == b"finished" for k in conn.keys("rq:job:import-*"))


def test_two_workers_import_a_file_with_the_effects_of_one_process(postgres_url, redis_url, tmp_path):
    """The differential test of scale-out: one history imported by two `keepwell worker`
    processes (parts by customer, at once) and posted in one process give the same rows."""
    one = Cli(postgres_url)
    people_one = company(one, tmp_path, "one", 30)
    two = Cli(postgres_url)
    people_two = company(two, tmp_path, "two", 30)
    lines = history(people_one, 1500, seed=7)
    (tmp_path / "one.jsonl").write_text("\n".join(lines) + "\n")
    mapping = dict(zip(people_one, people_two, strict=True))
    (tmp_path / "two.jsonl").write_text("\n".join(_rename(line, mapping) for line in lines) + "\n")
    assert json.loads(one("events", "import", str(tmp_path / "one.jsonl"), "--json", expect=1).stdout)["parts"] == 1

    env = {**worker_env(postgres_url, redis_url, 1), "KEEPWELL_COMPANY": "two"}
    importer = subprocess.Popen([KEEPWELL, "events", "import", str(tmp_path / "two.jsonl"), "--parts", "4", "--json"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    conn = redis.Redis.from_url(redis_url)
    engine = sa.create_engine(postgres_url)
    held = next(c for c in people_two if part_of(c, 4) == 0)
    workers = []
    try:
        wait_until(lambda: conn.llen("rq:queue:keepwell-import") == 4 or importer.poll() is not None,
                   timeout=60, interval=0.05, what="the import's four parts to be enqueued")
        # Hold a customer of the first part: whichever worker takes that part waits on the row,
        # so the other must run the other three, at the same time.
        with engine.connect() as lock:
            tx = lock.begin()
            lock.execute(sa.text("SELECT id FROM customers WHERE id = :c FOR UPDATE"), {"c": held})
            workers = [Proc(env, "worker", "--burst", "--name", f"importer-{n}", log=tmp_path / f"w{n}.log")
                       for n in range(2)]
            wait_until(lambda: _finished(conn) == 3, timeout=120, interval=0.1, what="three parts to finish")
            tx.rollback()
        out, err = importer.communicate(timeout=300)
        for w in workers:
            assert w.wait(120) == 0, w.text()[-2000:]
        ran_by = {conn.hget(k, "worker_name").decode() for k in conn.keys("rq:job:import-*")}
    finally:
        for w in workers:
            w.close()
        if importer.poll() is None:
            importer.kill()
        conn.close()
        engine.dispose()
    assert importer.returncode == 1, err  # the malformed line
    report = json.loads(out)
    assert report["parts"] == 4 and report["failed_parts"] == {} and report["events"] == len(lines)
    assert ran_by == {"importer-0", "importer-1"}  # both workers took parts
    assert fingerprint(postgres_url, "two") == fingerprint(postgres_url, "one")
    two.env["KEEPWELL_COMPANY"] = "two"
    assert two.json("audit")["ok"] is True
