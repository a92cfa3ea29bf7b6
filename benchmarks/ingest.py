"""Event ingest end to end (event stored, rules evaluated, ledger entries committed), one event
per transaction and in batches, on SQLite and PostgreSQL, against a plain batched INSERT of the
same number of ledger rows (the database's own limit); on PostgreSQL also `keepwell events import`
split by customer across 1 and 2 `keepwell worker` processes (RQ on Redis)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from keepwell.usecases import audit, customers, events, memberships, rulesets

from .common import COMPANY, HVAC_RULES, VIP_PLAN, fresh_app


def _setup(app, members: int) -> list[str]:
    rulesets.publish(app, COMPANY, VIP_PLAN, "bench", date(1970, 1, 1))
    rulesets.publish(app, COMPANY, HVAC_RULES, "bench", date(1970, 1, 1))
    out = []
    for i in range(members):
        c = customers.add_customer(app, COMPANY, f"Member {i}")
        memberships.enroll(app, COMPANY, c, "vip-customer", date(2024, 1, 1))
        out.append(c)
    app.database.analyze()  # as autovacuum would have by the time a company posts in bulk
    return out


def _event(n: int, customer: str) -> dict:
    return {"id": f"pos-{n}", "type": "purchase", "customer": customer, "occurred_at": "2024-02-01T10:00:00+00:00",
            "data": {"amount": f"{1 + n % 9}.{n % 100:02d}", "pay_with": "membership"}}


def _plain_insert_rate(app, rows: int) -> float:
    """executemany of ledger-shaped rows into a scratch table, in one transaction."""
    md = sa.MetaData()
    t = sa.Table("bench_ledger", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("account_id", sa.Integer),
                 sa.Column("kind", sa.String(30)), sa.Column("amount", sa.BigInteger), sa.Column("event_id", sa.Integer),
                 sa.Column("ruleset", sa.String(120)), sa.Column("rule", sa.String(160)), sa.Column("effective_date", sa.Date))
    md.drop_all(app.database.engine)
    md.create_all(app.database.engine)
    data = [{"account_id": i % 100, "kind": "debit", "amount": -i, "event_id": i, "ruleset": "vip@1",
             "rule": "plan.allowance.debit", "effective_date": date(2024, 2, 1)} for i in range(rows)]
    start = time.perf_counter()
    with app.database.engine.begin() as conn:
        conn.execute(t.insert(), data)
    rate = rows / (time.perf_counter() - start)
    md.drop_all(app.database.engine)
    return rate


def run(database: str, quick: bool = False) -> dict:
    single_n, batch_n, batch_size, members = (200, 1000, 200, 20) if quick else (2000, 20000, 500, 200)
    with fresh_app(database) as app:
        people = _setup(app, members)
        start, cpu = time.perf_counter(), time.process_time()
        for n in range(single_n):
            r = events.post_event(app, COMPANY, _event(n, people[n % members]))
            assert r["status"] == "approved", r
        single = single_n / (time.perf_counter() - start)
        single_cpu = single_n / (time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        for b in range(0, batch_n, batch_size):
            results = events.post_events(app, COMPANY, [_event(single_n + n, people[n % members])
                                                        for n in range(b, b + batch_size)], chunk=batch_size)
            assert all(r["status"] == "approved" for r in results)
        batched = batch_n / (time.perf_counter() - start)
        batched_cpu = batch_n / (time.process_time() - cpu)
        with app.database.engine.connect() as conn:
            entries = conn.scalar(sa.text("select count(*) from ledger_entries where kind in ('debit', 'earn')"))
        rows_per_event = entries / (single_n + batch_n)
        plain = _plain_insert_rate(app, int(batch_n * rows_per_event))
        assert audit.audit(app, COMPANY)["ok"]
    plain_events = plain / rows_per_event
    workers = _workers(quick, members, plain_events) if database == "postgresql" else {}
    return {**workers, "name": f"ingest_{database}", "single_per_s": round(single), "batch_per_s": round(batched),
            "batch_size": batch_size, "ledger_rows_per_event": round(rows_per_event, 2),
            "plain_insert_rows_per_s": round(plain), "plain_insert_events_equiv_per_s": round(plain_events),
            "ratio_vs_plain_insert": round(plain_events / batched, 2),
            "ratio_single_vs_plain_insert": round(plain_events / single, 2),
            "batch_speedup_vs_single": round(batched / single, 1),
            # This process's CPU time only (the machines are shared: wall time includes waiting).
            "single_per_cpu_s": round(single_cpu), "batch_per_cpu_s": round(batched_cpu),
            "load_average": round(os.getloadavg()[0], 1)}


REDIS = os.environ.get("KEEPWELL_BENCH_REDIS", "redis://127.0.0.1:6379/14")
KEEPWELL = shutil.which("keepwell") or str(Path(sys.executable).parent / "keepwell")


def _workers(quick: bool, members: int, plain_events: float) -> dict:
    """`keepwell events import` through N long-running workers (N = 1, 2) into a fresh database:
    from the file's lines to the last part committed. Dates are recent, so the workers' tick
    finds nothing due meanwhile."""
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        return {"workers_skipped": f"no Redis at {REDIS}"}
    n = 4000 if quick else 40000
    out = {}
    for count in (1, 2):
        rate, stop = _import_rate(count, n, members)
        out[f"workers_{count}"] = {"events": n, "per_s": round(rate), "ratio_vs_plain_insert": round(plain_events / rate, 2),
                                   "stop_seconds": stop}
    out["workers_2"]["speedup_vs_1"] = round(out["workers_2"]["per_s"] / out["workers_1"]["per_s"], 2)
    return out


def _import_rate(workers: int, n: int, members: int) -> tuple[float, float]:
    """Events per second through the workers, and how long the workers took to stop on SIGTERM."""
    import redis

    from keepwell.interfaces.jobs import enqueue
    from keepwell.usecases.imports import Line, split

    conn = redis.Redis.from_url(REDIS)
    conn.flushdb()
    day = date.today() - timedelta(days=5)
    with fresh_app("postgresql") as app:
        rulesets.publish(app, COMPANY, VIP_PLAN, "bench", date(1970, 1, 1))
        rulesets.publish(app, COMPANY, HVAC_RULES, "bench", date(1970, 1, 1))
        people = []
        for i in range(members):
            people.append(customers.add_customer(app, COMPANY, f"Member {i}"))
            memberships.enroll(app, COMPANY, people[-1], "vip-customer", day - timedelta(days=5))
        app.database.analyze()
        lines = [Line(i + 1, dict(_event(i, people[i % members]), occurred_at=f"{day}T10:00:00+00:00"))
                 for i in range(n)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPWELL_")}
        env.update(KEEPWELL_DATABASE_URL=app.database.url, KEEPWELL_REDIS_URL=REDIS, KEEPWELL_COMPANY=COMPANY)
        procs = [subprocess.Popen([KEEPWELL, "worker", "--name", f"bench-{workers}-{k}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                 for k in range(workers)]
        try:
            from rq import Worker

            deadline = time.monotonic() + 60
            while len(Worker.all(connection=conn)) < workers:  # every worker up and waiting for jobs
                assert time.monotonic() < deadline, "the benchmark's workers did not start"
                time.sleep(0.1)
            start = time.perf_counter()
            ids = enqueue.import_parts(REDIS, COMPANY, split(lines, 4 * workers))
            summary, failures = enqueue.import_results(REDIS, ids)
            rate = n / (time.perf_counter() - start)
            assert not failures and summary.outcomes == {"approved": n}, (failures, summary.to_dict())
            assert audit.audit(app, COMPANY)["ok"]
        finally:
            asked = time.perf_counter()
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:  # the figures are taken: said in stop_seconds, then killed
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=30)
            stop = round(time.perf_counter() - asked, 1)
            conn.flushdb()
            conn.close()
    return rate, stop
