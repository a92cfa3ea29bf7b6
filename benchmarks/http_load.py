"""POS charges over HTTP under load: `POST /api/v1/events` against 4 gunicorn web processes on
loopback, from a Python load generator (several client processes, each with threads holding an
http.client connection; gunicorn's default sync workers, as the README runs them, close it after
each answer, so every request connects anew, for Keepwell and the baseline alike), bounded in time. Reports requests per second and p50/p99 latency for
Keepwell and, in the same run and on the same database, for a baseline app (benchmarks/wsgi.py:
the same framework, engine and request, doing one idempotent INSERT per charge), and their ratio.

Every request is a purchase paid from the membership allowance, with a unique event id; about
5% are deliberate resends of a recently sent id (possibly still in flight on another connection),
so idempotency is exercised under load. After the run the database is checked against what the
clients were told: each id has exactly one first (non-duplicate) answer and every answer agrees
with it; each approved charge is in the ledger exactly once and each declined one not at all; each
membership's allowance + overdraft balance moved by exactly the approved charges; `audit` finds
no drift. `errors`, `lost` and `doubled` must all be 0, else `run` raises (non-zero exit).

    python -m benchmarks [--quick] --only http_load_postgresql http_load_sqlite
    python -m benchmarks.http_load --database postgresql --seconds 20 --concurrency 8
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = 4  # gunicorn -w 4
# Load the app once in the gunicorn master, then fork the workers: the steady state is the same
# as without (create_app opens no connection, the rules engine is created lazily per process), but
# four workers importing keepwell at once cost ~4 x 3.5 s of CPU at start (jsonschema's format
# checkers import rfc3987_syntax, which builds a grammar at import time).
PRELOAD = True
CONCURRENCY = 8  # client connections in all: 2 per web process, so no worker waits for work
CLIENT_PROCESSES = 2  # the load generator's own processes (one Python process is GIL-bound)
DUPLICATE_FRACTION = 0.05
HOT_CUSTOMERS = 4  # these take HOT_FRACTION of the charges: row-lock contention, then declines
HOT_FRACTION = 0.2
OCCURRED_AT = "2024-03-01T10:00:00-07:00"  # in the first membership year (enrolled 2024-01-01)
TIERS = ("basic", "premium", "elite")

# (seconds measured, seconds of warm-up before, customers)
FULL = (20.0, 3.0, 400)
QUICK = (2.0, 3.0, 24)  # the first requests of each web process take seconds: warm up as long


# --- the load generator (runs in client processes of its own: this part uses no keepwell) ------

def _client_process(port: int, key: str, customers: list[str], hot: list[str], threads: int, proc: int,
                    start_at, window: float, go, ready, out) -> None:
    """One client process: `threads` threads, each with its own connection, sending charges from
    start_at for `window` seconds; the records of every request go back on `out`."""
    recent: deque = deque(maxlen=64)  # (id, body) of charges sent lately, for deliberate resends
    lock = threading.Lock()
    records: list[tuple] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def work(t: int) -> None:
        rng = random.Random(proc * 1000 + t)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        seq = 0
        go.wait()
        begin, stop = start_at.value, start_at.value + window
        while time.time() < begin:
            time.sleep(0.001)
        mine = []
        while time.time() < stop:
            resend = False
            with lock:
                if recent and rng.random() < DUPLICATE_FRACTION:
                    event_id, body = recent[rng.randrange(len(recent))]
                    resend = True
            if not resend:
                seq += 1
                event_id = f"pos-{proc}-{t}-{seq}"
                if hot and rng.random() < HOT_FRACTION:  # bigger charges: they soon run out, and are declined
                    customer, cents = rng.choice(hot), rng.randrange(2000, 12000)
                else:
                    customer, cents = rng.choice(customers), rng.randrange(500, 4000)
                body = json.dumps({"id": event_id, "type": "purchase", "customer": customer, "occurred_at": OCCURRED_AT,
                                   "data": {"amount": f"{cents // 100}.{cents % 100:02d}", "pay_with": "membership"}}).encode()
                with lock:
                    recent.append((event_id, body))
            wall = time.time()
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/events", body, headers)
                resp = conn.getresponse()
                raw = resp.read()
                code = resp.status
                replayed = resp.getheader("Idempotent-Replayed") == "true"
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raw, code, replayed = repr(exc).encode(), 0, False
            latency = time.perf_counter() - t0
            status, duplicate, reason = "", replayed, ""
            try:
                doc = json.loads(raw)
                # approved: 201 with the result; declined: 402, a problem whose code is "declined"
                status = "declined" if code == 402 and doc.get("code") == "declined" else doc.get("status", "")
                reason = doc.get("reason", "")
            except ValueError:
                pass
            mine.append((event_id, body if not resend else b"", code, status, duplicate, reason, wall, latency,
                         resend, raw[:300] if not answered(code) else b""))
        conn.close()
        with lock:
            records.extend(mine)

    pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for th in pool:
        th.start()
    ready.put(proc)
    for th in pool:
        th.join()
    out.put(records)


def load(port: int, key: str, customers: list[str], hot: list[str], seconds: float, warmup: float,
         concurrency: int = CONCURRENCY, client_processes: int = CLIENT_PROCESSES, started=None) -> dict:
    """Drive POST /api/v1/events for warmup + seconds; statistics over the last `seconds`.
    `started(measured_from, until)` is called once the client processes exist."""
    # fork: a spawned child would re-import the __main__ module (benchmarks/__main__.py imports
    # keepwell, whose import alone costs seconds); the children use nothing they inherit.
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    start_at = ctx.Value("d", 0.0)
    go, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    nproc = max(1, min(client_processes, concurrency))
    split = [concurrency // nproc + (1 if i < concurrency % nproc else 0) for i in range(nproc)]
    procs = [ctx.Process(target=_client_process,
                         args=(port, key, customers, hot, split[i], i, start_at, warmup + seconds, go, ready, out),
                         daemon=True) for i in range(nproc)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    start_at.value = time.time() + 0.2
    go.set()
    if started:
        started(start_at.value + warmup, start_at.value + warmup + seconds)
    records: list[tuple] = []
    for _ in procs:
        records.extend(out.get(timeout=warmup + seconds + 120))
    for p in procs:
        p.join(timeout=10)
    measured_from = start_at.value + warmup
    return {"records": records, "measured_from": measured_from, "seconds": seconds}


def stats(run: dict) -> dict:
    window = [r for r in run["records"] if r[6] >= run["measured_from"]]
    ok = [r for r in window if answered(r[2])]
    lat = sorted(r[7] for r in ok)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else float("nan")

    return {"rps": round(len(ok) / run["seconds"], 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "requests": len(window), "errors_in_window": len(window) - len(ok)}


# --- web processes ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """`gunicorn -w 4` serving `app` on a free loopback port, started and stopped by us."""

    def __init__(self, app: str, database_url: str, workers: int = PROCESSES):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile("w+", prefix="keepwell-bench-gunicorn-", suffix=".log", delete=False)
        env = dict(os.environ, KEEPWELL_DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
        env.pop("KEEPWELL_REDIS_URL", None)  # jobs in-process, as embedded
        env.setdefault("KEEPWELL_SECRET_KEY", "keepwell-benchmark")  # shared by the workers; nothing written to instance/
        # The clients share one key at full speed: the per-key rate limit is what is not measured here.
        env["KEEPWELL_API_RATE_LIMIT"] = "100000000 per minute"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "--chdir", str(ROOT),
             "--graceful-timeout", "1", "--log-level", "warning", *(["--preload"] if PRELOAD else []), app],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {app} exited {self.proc.returncode}:\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn {app} did not answer /healthz in 60 s:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, n: int = 4000) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-n:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # quick shutdown: the master stops its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# --- set-up and checks (in the benchmark process) ----------------------------------------------

def setup(app, n_customers: int) -> dict:
    from datetime import date

    from keepwell.usecases import apikeys, packs
    from keepwell.usecases import customers as customers_uc
    from keepwell.usecases import memberships as memberships_uc

    from .common import COMPANY

    packs.install(app, COMPANY, packs.find("hvac"), author="bench")
    customers, memberships = [], {}
    for i in range(n_customers):
        c = customers_uc.add_customer(app, COMPANY, f"Member {i}", f"member{i}@example.com")
        m = memberships_uc.enroll(app, COMPANY, c, "hvac-comfort-club", date(2024, 1, 1), tier=TIERS[i % len(TIERS)])
        assert m["status"] == "processed", m
        customers.append(c)
        memberships[c] = m["membership"]
    return {"key": apikeys.create(app, COMPANY, "bench"), "customers": customers[HOT_CUSTOMERS:],
            "hot": customers[:HOT_CUSTOMERS], "memberships": memberships, "balances": balances(app)}


def balances(app) -> dict[str, int]:
    """allowance + overdraft balance (cents) of every membership."""
    import sqlalchemy as sa

    with app.database.engine.connect() as conn:
        rows = conn.execute(sa.text("select owner, sum(balance) from accounts where unit in ('allowance', 'overdraft') "
                                    "group by owner"))
        return {owner: int(total) for owner, total in rows}


def answered(code: int) -> bool:
    """An answer the till can act on: 201 approved, 402 declined (a problem saying why), 200 a batch."""
    return code in (200, 201, 402)


def account_answers(records: list[tuple]) -> dict:
    """What the clients were told, per event id; and where the answers contradict each other."""
    by_id: dict[str, dict] = {}
    for event_id, body, code, status, duplicate, reason, *_ in records:
        e = by_id.setdefault(event_id, {"body": b"", "answers": []})
        if body:
            e["body"] = body
        e["answers"].append((code, status, duplicate, reason))
    out = {"approved": {}, "declined": {}, "unknown": {}, "doubled": [], "inconsistent": []}
    for event_id, e in by_id.items():
        good = [a for a in e["answers"] if a[0] in (200, 201, 402) and a[1] in ("approved", "declined")]
        body = json.loads(e["body"])
        if not good:
            out["unknown"][event_id] = body  # every answer failed: the database decides
            continue
        firsts = [a for a in good if not a[2]]
        if len(firsts) > 1:
            out["doubled"].append(event_id)  # processed twice: two first answers
        if len({a[1] for a in good}) > 1 or not firsts:
            out["inconsistent"].append(event_id)
        if good[0][1] == "approved":
            out["approved"][event_id] = body
        else:
            out["declined"][event_id] = body
    return out


def check(app, answers: dict, before: dict[str, int], memberships: dict[str, str]) -> dict:
    """The database against the answers: nothing lost, nothing doubled, no drift."""
    import sqlalchemy as sa

    from keepwell.kernel.money import to_cents
    from keepwell.usecases import audit as audit_uc

    from .common import COMPANY

    with app.database.engine.connect() as conn:
        charged = dict(conn.execute(sa.text(
            "select e.key, -sum(le.amount) from ledger_entries le join accounts a on a.id = le.account_id "
            "join events e on e.id = le.event_id where e.type = 'purchase' and a.unit in ('allowance', 'overdraft') "
            "group by e.key")).all())
        status = dict(conn.execute(sa.text("select key, status from events where type = 'purchase'")).all())
        cached_vs_ledger = conn.scalar(sa.text(
            "select count(*) from accounts a left join (select account_id, sum(amount) s from ledger_entries "
            "group by account_id) t on t.account_id = a.id where a.balance <> coalesce(t.s, 0)"))
    lost = doubled = 0
    for event_id, body in answers["approved"].items():
        got, want = int(charged.get(event_id, 0)), to_cents(body["data"]["amount"])
        lost += got < want
        doubled += got > want
    for event_id in answers["declined"]:
        doubled += int(charged.get(event_id, 0)) != 0  # a declined charge that debited something
    expected = dict(before)
    known = {**answers["approved"], **answers["declined"]}
    for event_id, body in {**answers["approved"], **answers["unknown"]}.items():
        if event_id in answers["unknown"] and status.get(event_id) != "processed":
            continue  # failed request that did not commit
        m = memberships[body["customer"]]
        expected[m] -= to_cents(body["data"]["amount"])
    after = balances(app)
    mismatches = {m: after.get(m, 0) - want for m, want in expected.items() if after.get(m, 0) != want}
    strangers = [k for k in status if k.startswith("pos-") and k not in known and k not in answers["unknown"]]
    audit = audit_uc.audit(app, COMPANY)
    return {"lost": lost + sum(1 for d in mismatches.values() if d > 0),
            "doubled": doubled + len(answers["doubled"]) + sum(1 for d in mismatches.values() if d < 0),
            "inconsistent_answers": len(answers["inconsistent"]), "unexplained_events": len(strangers),
            "balance_mismatches": len(mismatches), "cached_vs_ledger_drift": int(cached_vs_ledger),
            "audit_ok": audit["ok"], "audit_drift": len(audit["drift"]), "accounts_checked": audit["accounts_checked"],
            "memberships_checked": len(expected)}


class LockSampler(threading.Thread):
    """PostgreSQL only: every 50 ms during the measured window, how many of the database's
    backends are inside a transaction, and how many of those wait for a lock (the row lock on a
    customer, a unique key a concurrent duplicate holds): the share of transaction time spent
    waiting for another request."""

    def __init__(self, engine, database: str):
        super().__init__(daemon=True)
        self.engine, self.database, self.in_tx, self.waiting = engine, database, 0, 0
        self.window = (0.0, 0.0)

    def __call__(self, start: float, stop: float) -> None:
        self.window = (start, stop)
        self.start()

    def run(self) -> None:
        import sqlalchemy as sa

        q = sa.text("select count(*) filter (where state in ('active', 'idle in transaction')), "
                    "count(*) filter (where state = 'active' and wait_event_type = 'Lock') "
                    "from pg_stat_activity where datname = :db and pid <> pg_backend_pid()")
        with self.engine.connect() as conn:
            while time.time() < self.window[1]:
                if time.time() >= self.window[0]:
                    in_tx, waiting = conn.execute(q, {"db": self.database}).one()
                    conn.rollback()
                    self.in_tx += in_tx
                    self.waiting += waiting
                time.sleep(0.05)

    def share(self) -> float | None:
        if self.ident is None:
            return None  # never started
        self.join(timeout=30)
        return round(self.waiting / self.in_tx, 3) if self.in_tx else None


def _count(items) -> dict:
    out: dict = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _error_samples(records: list[tuple], n: int = 3) -> list[str]:
    return [f"{r[2]} {r[9].decode(errors='replace')}" for r in records if not answered(r[2])][:n]


# --- the benchmark ---------------------------------------------------------------------------

def run(database: str, quick: bool = False, seconds: float | None = None, concurrency: int = CONCURRENCY) -> dict:
    import sqlalchemy as sa

    from .common import fresh_app
    from .wsgi import create_table

    measure, warmup, n_customers = QUICK if quick else FULL
    seconds = seconds or measure
    with fresh_app(database) as app:
        world = setup(app, n_customers)
        url = app.database.url
        create_table(app.database.engine)
        with Gunicorn("benchmarks.wsgi:baseline_app()", url) as web:
            base_run = load(web.port, world["key"], world["customers"], world["hot"], seconds, warmup, concurrency)
        base = stats(base_run)
        base_errors = sum(1 for r in base_run["records"] if not answered(r[2]))
        base_ids = {r[0] for r in base_run["records"] if answered(r[2])}
        with app.database.engine.connect() as conn:
            base_rows = conn.scalar(sa.text("select count(*) from bench_http_events"))
        sampler = LockSampler(app.database.engine, app.database.engine.url.database) if database == "postgresql" else None
        with Gunicorn("keepwell.app:create_app()", url) as web:
            kw_run = load(web.port, world["key"], world["customers"], world["hot"], seconds, warmup, concurrency,
                          started=sampler)
            log = web.tail()
        lock_share = sampler.share() if sampler else None
        kw = stats(kw_run)
        answers = account_answers(kw_run["records"])
        checks = check(app, answers, world["balances"], world["memberships"])
    errors = sum(1 for r in kw_run["records"] if not answered(r[2])) + checks["inconsistent_answers"] + checks["unexplained_events"]
    window = [r for r in kw_run["records"] if r[6] >= kw_run["measured_from"] and answered(r[2])]
    result = {
        "name": f"http_load_{database}", "database": database, "processes": PROCESSES, "concurrency": concurrency,
        "measured_seconds": seconds, "rps": kw["rps"], "baseline_rps": base["rps"],
        "ratio": round(kw["rps"] / base["rps"], 3) if base["rps"] else None,
        "p50_ms": kw["p50_ms"], "p99_ms": kw["p99_ms"], "baseline_p50_ms": base["p50_ms"], "baseline_p99_ms": base["p99_ms"],
        "requests": kw["requests"], "approved": sum(1 for r in window if r[3] == "approved" and not r[4]),
        "declined": sum(1 for r in window if r[3] == "declined" and not r[4]),
        "duplicate_answers": sum(1 for r in window if r[4]), "resends": sum(1 for r in window if r[8]),
        "decline_reasons": _count(r[5] for r in window if r[3] == "declined" and not r[4]),
        "errors": errors, "lost": checks["lost"], "doubled": checks["doubled"],
        "checks": {k: v for k, v in checks.items() if k not in ("lost", "doubled")},
        "baseline_errors": base_errors, "baseline_rows_ok": base_rows == len(base_ids),
        "customers": n_customers, "hot_customers": HOT_CUSTOMERS,
    }
    if lock_share is not None:
        result["lock_wait_share"] = lock_share  # of time in transaction, sampled: waiting for a lock
    bad = (errors or checks["lost"] or checks["doubled"] or checks["balance_mismatches"] or checks["cached_vs_ledger_drift"]
           or not checks["audit_ok"] or base_errors or not result["baseline_rows_ok"])
    if bad:
        samples = _error_samples(kw_run["records"]) + _error_samples(base_run["records"])
        raise RuntimeError(f"http_load_{database} failed its checks: {json.dumps(result)}\nfirst errors: {samples}\n"
                           f"gunicorn log tail:\n{log[-2000:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.database, args.quick, args.seconds, args.concurrency), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
