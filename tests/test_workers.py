"""RQ workers run what rules trigger: `keepwell run-due` with KEEPWELL_REDIS_URL enqueues one job
per unit of due work, `keepwell worker` (a real process, with real forks) runs them and delivers
the outbox to a real SMTP server on loopback. Two workers racing, bad job data, a worker killed
with SIGKILL in the middle and a Redis restart all leave every balance changed exactly once and
every email sent once.

Multi-process tests run on PostgreSQL. Redis: a redis-server of the session's own (or
KEEPWELL_TEST_REDIS, or db 11 of 127.0.0.1:6379), its db flushed before and after each test; the
Redis restart tests start one of their own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
import sqlalchemy as sa

from kwmodels import Account, Event, LedgerEntry, Membership, OutboxMessage
from mailserver import MailServer, free_port, wait_until
from support import Cli, service

KEEPWELL = shutil.which("keepwell") or str(Path(sys.executable).parent / "keepwell")
FAULT_WORKER = Path(__file__).with_name("fault_worker.py")
REDIS_DB = 11
TZ = ZoneInfo("America/Denver")
PLAN = "hvac-comfort-club"


# --- fixtures and helpers ------------------------------------------------------------------------

@pytest.fixture(autouse=True, scope="module")
def _close_in_process_service():
    """`run-due` with KEEPWELL_REDIS_URL plans in this process through the jobs service (keepwell.interfaces.jobs.tasks.keepwell)."""
    yield
    from keepwell.interfaces.jobs import tasks as jobs

    jobs.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Redis for these tests: KEEPWELL_TEST_REDIS when set; else a redis-server of this test
    session's own on a free port (two runs of the suite at once must not share queues: their
    workers would take each other's jobs); else db 11 of 127.0.0.1:6379."""
    if os.environ.get("KEEPWELL_TEST_REDIS"):
        yield os.environ["KEEPWELL_TEST_REDIS"]
        return
    exe = shutil.which("redis-server")
    if exe is None:
        yield f"redis://127.0.0.1:6379/{REDIS_DB}"
        return
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        conn = redis.Redis(port=port, socket_connect_timeout=1)
        wait_until(lambda: _pings(conn), timeout=10, what="redis-server to start")
        conn.close()
        yield f"redis://127.0.0.1:{port}/{REDIS_DB}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server):
    url = redis_server
    conn = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        conn.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("KEEPWELL_REQUIRE_PG") == "1":
            pytest.fail(f"Redis is required but {url} is unreachable")
        pytest.skip("Redis not reachable")
    conn.flushdb()
    yield url
    conn.flushdb()
    conn.close()


def _cli(url: str, redis: str | None) -> Cli:
    c = Cli(url)
    if redis:
        c.env["KEEPWELL_REDIS_URL"] = redis
    c("init", "--timezone", "America/Denver")
    c("packs", "install", "hvac")
    return c


@pytest.fixture
def pg(postgres_url, redis_url) -> Cli:
    """The CLI on PostgreSQL with the HVAC pack, enqueueing on our Redis db."""
    return _cli(postgres_url, redis_url)


def today() -> date:
    """The company's local today: what a worker's tick runs due work as of."""
    return datetime.now(TZ).date()


def members(url: str, n: int, on: date, tier: str = "basic", spend: str | None = None) -> dict[str, str]:
    """n customers with an email each, enrolled on `on`; optionally each spends from the allowance
    ten days later. Returns {membership: customer}."""
    out = {}
    with service(url) as app:
        for i in range(n):
            cid = app.add_customer(f"Member {i:03d}", f"member{i:03d}@example.com")
            res = app.enroll(cid, PLAN, on, tier=tier)
            assert res["status"] == "processed", res
            out[res["membership"]] = cid
            if spend:
                paid = app.post_event({"id": f"pos-{i}", "type": "purchase", "customer": cid,
                                       "occurred_at": f"{on + timedelta(days=10)}T10:00:00-07:00",
                                       "data": {"amount": spend, "pay_with": "membership"}})
                assert paid["status"] == "approved", paid
    return out


def worker_env(db_url: str, redis: str, smtp_port: int, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPWELL_")}
    env.update(KEEPWELL_DATABASE_URL=db_url, KEEPWELL_REDIS_URL=redis, KEEPWELL_COMPANY="default",
               KEEPWELL_SMTP_HOST="127.0.0.1", KEEPWELL_SMTP_PORT=str(smtp_port), KEEPWELL_WEBHOOK_NETWORKS="loopback",
               **extra)
    return env


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants, as a crash of the machine would: RQ puts each
    work horse in a session of its own, so killing the worker's process group is not enough."""
    try:
        os.kill(pid, signal.SIGSTOP)  # no new children while we look
    except ProcessLookupError:
        return
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(_children(p))
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Proc:
    """A `keepwell` subprocess in a session of its own (it forks work horses and a scheduler):
    stopping it kills it with all its descendants."""

    def __init__(self, env: dict, *args: str, log: Path, fault: tuple[str, Path] | None = None):
        self.log = log
        self._out = open(log, "ab")
        # `fault`: (stage, marker) for tests/fault_worker.py, which stops the first job at the stage.
        command = [KEEPWELL, *args] if fault is None else [sys.executable, str(FAULT_WORKER), fault[0], str(fault[1]), *args]
        self.p = subprocess.Popen(command, env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    def wait(self, timeout: float) -> int:
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"keepwell {self.p.args[1:]} still running after {timeout}s\n{self.text()[-3000:]}")

    def kill(self) -> None:
        if self.p.poll() is None:
            kill_tree(self.p.pid)
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        self.kill()
        self._out.close()

    def text(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")


def burst(env: dict, tmp_path: Path, name: str = "burst", timeout: float = 180) -> str:
    """Run `keepwell worker --burst` to completion; its log."""
    proc = Proc(env, "worker", "--burst", "--name", f"{name}-{time.monotonic_ns()}", log=tmp_path / f"{name}.log")
    try:
        code = proc.wait(timeout)
        text = proc.text()
        assert code == 0, text[-3000:]
        return text
    finally:
        proc.close()


@contextmanager
def due_queue(url: str):
    """The due-work queue, to enqueue jobs as run-due does (or as it should not)."""
    from rq import Queue

    from keepwell.interfaces.jobs import queues

    conn = redis.Redis.from_url(url)
    try:
        yield Queue(queues.DUE, connection=conn)
    finally:
        conn.close()


def q(url: str, work):
    with service(url) as app:
        return app.run("default", work)


def period_ended_events(url: str) -> Counter:
    return Counter(q(url, lambda c: list(c.session.scalars(
        sa.select(Event.membership_id).where(Event.type == "period_ended")))))


def current_periods(url: str) -> dict[str, int]:
    return dict(q(url, lambda c: c.session.execute(sa.select(Membership.id, Membership.current_period)).all()))


def allowance_grants(url: str) -> Counter:
    """(membership, period) -> number of allowance grants: one per period, or money was made up."""
    rows = q(url, lambda c: c.session.execute(
        sa.select(Account.owner, LedgerEntry.period)
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(Account.unit == "allowance", LedgerEntry.kind == "grant")).all())
    return Counter((owner, period) for owner, period in rows)


def due_kinds(url: str) -> Counter:
    with service(url) as app:
        return Counter(u.kind for u in app.due_plan(today(), company="default"))


def points_expired_events(url: str) -> Counter:
    return Counter(q(url, lambda c: list(c.session.scalars(
        sa.select(Event.customer_id).where(Event.type == "points_expired")))))


def points_balances(url: str) -> dict[str, int]:
    return dict(q(url, lambda c: c.session.execute(
        sa.select(Account.owner, Account.balance).where(Account.unit == "points")).all()))


def outbox_statuses(url: str) -> Counter:
    return Counter(q(url, lambda c: list(c.session.scalars(sa.select(OutboxMessage.status)))))


def outbox_keys(url: str) -> set[str]:
    return set(q(url, lambda c: list(c.session.scalars(sa.select(OutboxMessage.key)))))


def counts(url: str) -> tuple[int, int, int]:
    def work(c):
        n = lambda model: c.session.scalar(sa.select(sa.func.count()).select_from(model))
        return n(Event), n(LedgerEntry), n(OutboxMessage)
    return q(url, work)


# --- run-due enqueues ------------------------------------------------------------------------------

def test_run_due_with_redis_enqueues_one_job_per_unit_and_changes_nothing(db_url, redis_url):
    cli = _cli(db_url, redis_url)
    ms = members(db_url, 3, today() - timedelta(days=400), spend="100.00")
    # Each member: the year ended (a period end) and the points earned in it expired.
    assert due_kinds(db_url) == Counter({"period_end": 3, "points_expiry": 3})
    before = counts(db_url)
    res = cli.json("run-due", "--as-of", today().isoformat())
    assert res["enqueued"] == 6 and res["failed"] == []
    # Enqueuing again while they wait adds nothing: the job ids are deterministic.
    again = cli.json("run-due", "--as-of", today().isoformat())
    assert (again["enqueued"], again["already_queued"]) == (0, 6)
    status = cli.json("jobs", "status")
    assert status["queues"]["keepwell-due"]["queued"] == 6
    assert (status["queued"], status["started"], status["failed"], status["finished"]) == (6, 0, 0, 0)
    # Nothing ran yet: the work happens in a worker.
    assert counts(db_url) == before
    for mid in ms:
        shown = cli.json("membership", "show", mid)
        assert (shown["period"]["index"], shown["allowance"]["balance"]) == (0, "150.00")


# --- burst workers ---------------------------------------------------------------------------------

def test_burst_worker_runs_period_ends_and_delivers_welcome_emails(pg, postgres_url, redis_url, tmp_path):
    n = 6
    ms = members(postgres_url, n, today() - timedelta(days=400), spend="100.00")
    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port)
        assert due_kinds(postgres_url) == Counter({"period_end": n, "points_expiry": n})
        assert pg.json("run-due", "--as-of", today().isoformat())["enqueued"] == 2 * n
        status = pg.json("jobs", "status")
        assert (status["queued"], status["finished"], status["workers"]) == (2 * n, 0, 0)
        assert all(p == 0 for p in current_periods(postgres_url).values())

        log = burst(env, tmp_path)
        assert "Traceback" not in log, log[-3000:]

        # Each period closed once: allowance back to 250.00 (unused expires, overdraft none).
        assert current_periods(postgres_url) == dict.fromkeys(ms, 1)
        for mid in ms:
            shown = pg.json("membership", "show", mid)
            assert (shown["allowance"]["balance"], shown["allowance"]["overdraft_used"]) == ("250.00", "0.00")
        assert period_ended_events(postgres_url) == Counter(dict.fromkeys(ms, 1))
        grants = allowance_grants(postgres_url)
        assert grants == Counter({(mid, k): 1 for mid in ms for k in (0, 1)})
        # The 100 points earned by the spend expired once; the renewal bonus (250) is all there is.
        assert points_expired_events(postgres_url) == Counter(dict.fromkeys(ms.values(), 1))
        assert points_balances(postgres_url) == dict.fromkeys(ms.values(), 250)

        # The welcome emails went out, once each, to the right people.
        smtp.wait_for(n, timeout=10)
        assert smtp.keys() == Counter(dict.fromkeys(outbox_keys(postgres_url), 1))
        assert sorted(m["To"] for m in smtp.messages) == [f"member{i:03d}@example.com" for i in range(n)]
        assert sorted(m["Subject"] for m in smtp.messages) == [
            f"Welcome to the Comfort Club, Member {i:03d}" for i in range(n)]
        assert outbox_statuses(postgres_url) == Counter({"sent": n})

        status = pg.json("jobs", "status")
        assert (status["queued"], status["started"], status["failed"], status["scheduled"]) == (0, 0, 0, 0)
        assert status["queues"]["keepwell-due"]["finished"] == 2 * n
        assert status["queues"]["keepwell-outbox"]["finished"] == n
        assert status["dead_lettered"] == 0

        # Again: nothing is due, nothing changes, nothing is sent twice.
        assert pg.json("run-due", "--as-of", today().isoformat())["enqueued"] == 0
        burst(env, tmp_path)
        assert allowance_grants(postgres_url) == grants
        assert len(smtp.messages) == n
    assert pg.json("audit")["ok"] is True


def test_run_due_wait_returns_once_a_running_worker_has_done_the_work(pg, postgres_url, redis_url, tmp_path):
    n = 4
    ms = members(postgres_url, n, today() - timedelta(days=400), spend="60.00")
    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port)
        worker = Proc(env, "worker", "--name", "waiter", log=tmp_path / "waiter.log")
        try:
            done = subprocess.run([KEEPWELL, "run-due", "--as-of", today().isoformat(), "--wait", "--json"], env=env,
                                  capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, done.stderr
            summary = json.loads(done.stdout)
            # The running worker's own tick may have enqueued, or even done, some of the work first:
            # what run-due found still due, it waited for.
            assert summary["failed"] == [] and set(summary["jobs"].values()) <= {"finished"}
            assert summary["enqueued"] + summary["already_queued"] == len(summary["jobs"]) <= 2 * n
            # When it returns, the work is done.
            assert current_periods(postgres_url) == dict.fromkeys(ms, 1)
            assert points_expired_events(postgres_url) == Counter(dict.fromkeys(ms.values(), 1))
            smtp.wait_for(n, timeout=30)
        finally:
            worker.close()
        assert smtp.keys() == Counter(dict.fromkeys(outbox_keys(postgres_url), 1))
    assert pg.json("audit")["ok"] is True


def test_a_failed_delivery_is_scheduled_again_with_backoff_and_then_delivered(pg, postgres_url, redis_url, tmp_path):
    members(postgres_url, 1, today() - timedelta(days=10))
    port = free_port()  # the mail server is not there yet
    env = worker_env(postgres_url, redis_url, port)
    started = datetime.now(ZoneInfo("UTC"))
    burst(env, tmp_path, name="smtp-down")
    ended = datetime.now(ZoneInfo("UTC"))
    [msg] = q(postgres_url, lambda c: list(c.session.scalars(sa.select(OutboxMessage))))
    assert (msg.status, msg.attempts) == ("retry", 1) and "Connection refused" in msg.last_error
    due_at = msg.due_at if msg.due_at.tzinfo else msg.due_at.replace(tzinfo=ZoneInfo("UTC"))
    # The first retry 15-30 s after the attempt, which was made while the worker ran.
    assert started + timedelta(seconds=15) <= due_at <= ended + timedelta(seconds=30)
    status = pg.json("jobs", "status")
    assert status["queues"]["keepwell-outbox"]["scheduled"] == 1 and status["failed"] == 0

    with MailServer(port=port) as smtp:
        # Not before its time: a worker now leaves it scheduled. (On a loaded machine the worker
        # may start only after the retry is due, and then rightly sends it: checked only when
        # the worker was done before the retry's time.)
        burst(env, tmp_path, name="too-early")
        if datetime.now(ZoneInfo("UTC")) < due_at:
            assert smtp.messages == [] and pg.json("jobs", "status")["scheduled"] == 1
        time.sleep(max((due_at - datetime.now(ZoneInfo("UTC"))).total_seconds() + 1, 0))
        burst(env, tmp_path, name="on-time")
        smtp.wait_for(1, timeout=10)
        [after] = q(postgres_url, lambda c: list(c.session.scalars(sa.select(OutboxMessage))))
        assert (after.status, after.attempts) == ("sent", 2)
        assert smtp.keys() == Counter({after.key: 1})
        status = pg.json("jobs", "status")
        assert (status["scheduled"], status["failed"], status["queued"]) == (0, 0, 0)


def test_two_workers_running_the_same_due_work_at_once_change_balances_once(pg, postgres_url, redis_url, tmp_path):
    from keepwell.interfaces.jobs import tasks as jobs

    n = 30
    ms = members(postgres_url, n, today() - timedelta(days=400), spend="80.00")
    # The same work enqueued twice: run-due as of today, and as of yesterday (other period-end
    # unit keys, so other job ids; a points expiry is keyed by its own date, so it is not
    # enqueued again) ...
    pg.json("run-due", "--as-of", today().isoformat())
    pg.json("run-due", "--as-of", (today() - timedelta(days=1)).isoformat())
    assert pg.json("jobs", "status")["queued"] == 2 * n + n
    # ... and each unit once more, side by side, so that two workers take the same unit together.
    with service(postgres_url) as app:
        units = app.due_plan(today(), company="default")
    assert Counter(u.kind for u in units) == Counter({"period_end": n, "points_expiry": n})
    with due_queue(redis_url) as due_q:
        for i, unit in enumerate(units):
            for copy in "ab":
                due_q.enqueue(jobs.run_due_unit, "default", unit.to_dict(), job_id=f"twice-{i}-{copy}")
    assert pg.json("jobs", "status")["queued"] == 7 * n

    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port)
        w1 = Proc(env, "worker", "--burst", "--name", "racer-1", log=tmp_path / "w1.log")
        w2 = Proc(env, "worker", "--burst", "--name", "racer-2", log=tmp_path / "w2.log")
        try:
            assert w1.wait(240) == 0, w1.text()[-3000:]
            assert w2.wait(240) == 0, w2.text()[-3000:]
            logs = w1.text() + w2.text()
        finally:
            w1.close()
            w2.close()
        # Both did due work.
        assert "racer-1: keepwell-due" in logs and "racer-2: keepwell-due" in logs

        assert current_periods(postgres_url) == dict.fromkeys(ms, 1)
        assert period_ended_events(postgres_url) == Counter(dict.fromkeys(ms, 1))
        assert allowance_grants(postgres_url) == Counter({(mid, k): 1 for mid in ms for k in (0, 1)})
        assert points_expired_events(postgres_url) == Counter(dict.fromkeys(ms.values(), 1))
        assert points_balances(postgres_url) == dict.fromkeys(ms.values(), 250)
        for mid in list(ms)[:5]:
            st = pg.json("statement", mid, "--from", (today() - timedelta(days=400)).isoformat(), "--to", today().isoformat())
            [allowance] = [a for a in st["accounts"] if a["account"] == "allowance"]
            assert [e["kind"] for e in allowance["entries"]] == ["grant", "debit", "expire", "grant"]
            assert allowance["closing"] == "250.00"
        status = pg.json("jobs", "status")
        assert (status["failed"], status["queued"], status["started"]) == (0, 0, 0)
        assert status["queues"]["keepwell-due"]["finished"] == 7 * n
        smtp.wait_for(n, timeout=10)
        assert smtp.keys() == Counter(dict.fromkeys(outbox_keys(postgres_url), 1))
    assert pg.json("audit")["ok"] is True


def test_a_job_with_bad_data_fails_with_its_reason_and_applies_nothing(pg, postgres_url, redis_url, tmp_path):
    from keepwell.interfaces.jobs import tasks as jobs

    # Not due as of today (so the worker's own tick adds no work of its own).
    ms = members(postgres_url, 2, today() - timedelta(days=10))
    (m_x, c_x), (m_y, c_y) = ms.items()
    later = (today() + timedelta(days=400)).isoformat()
    bad = {
        "bad-membership": ("default", {"kind": "period_end", "key": "due:period_end:mem_missing:" + later,
                                       "customer": c_x, "subject": "mem_missing", "as_of": later}),
        "bad-company": ("no-such-company", {"kind": "period_end", "key": f"due:period_end:{m_x}:{later}",
                                            "customer": c_x, "subject": m_x, "as_of": later}),
        "bad-owner": ("default", {"kind": "period_end", "key": f"due:period_end:{m_y}:{later}",
                                  "customer": c_x, "subject": m_y, "as_of": later}),
        "bad-kind": ("default", {"kind": "birthday", "key": "due:birthday:x", "customer": c_x,
                                 "subject": m_x, "as_of": later}),
    }
    with due_queue(redis_url) as due_q:
        for jid, (company, unit) in bad.items():
            due_q.enqueue(jobs.run_due_unit, company, unit, job_id=jid)
    before = counts(postgres_url)

    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port)
        burst(env, tmp_path)
        failed = {row["id"]: row for row in pg.json("jobs", "failed")}
        assert set(failed) == set(bad)
        assert all(row["function"] == "keepwell.interfaces.jobs.tasks.run_due_unit" and row["queue"] == "keepwell-due"
                   for row in failed.values())
        assert failed["bad-membership"]["error"] == "keepwell.kernel.errors.NotFound: no membership 'mem_missing'"
        assert failed["bad-company"]["error"].endswith("no company 'no-such-company' (run `keepwell init`, or `keepwell companies add`)")
        assert "does not belong to customer" in failed["bad-owner"]["error"]
        assert failed["bad-kind"]["error"] == "ValueError: unknown due work birthday"
        human = pg.out("jobs", "failed")
        assert "bad-membership  keepwell.interfaces.jobs.tasks.run_due_unit  keepwell.kernel.errors.NotFound: no membership 'mem_missing'" in human
        status = pg.json("jobs", "status")
        assert (status["failed"], status["queued"]) == (4, 0)

        # Nothing half-applied: no events, no entries; the welcome emails (outbox) alone went out.
        assert counts(postgres_url) == before
        assert current_periods(postgres_url) == {m_x: 0, m_y: 0}
        assert outbox_statuses(postgres_url) == Counter({"sent": 2})

        # `jobs retry` puts them back; the data is still bad, so they fail again, still harmless.
        assert sorted(pg.out("jobs", "retry", "--all").splitlines()) == sorted(bad)
        status = pg.json("jobs", "status")
        assert (status["failed"], status["queued"]) == (0, 4)
        burst(env, tmp_path)
        assert pg.json("jobs", "status")["failed"] == 4
        assert counts(postgres_url) == before
        assert "name job ids, or pass --all" in pg("jobs", "retry", expect=1).stderr
    assert pg.json("audit")["ok"] is True


def test_a_failed_job_that_run_due_enqueues_again_and_succeeds_is_no_longer_a_failure(
        pg, postgres_url, redis_url, tmp_path):
    from urllib.parse import quote

    from keepwell.interfaces.jobs import tasks as jobs

    ms = members(postgres_url, 1, today() - timedelta(days=400))
    [(mid, cid)] = ms.items()
    with service(postgres_url) as app:
        [unit] = app.due_plan(today(), company="default")
    # The job run-due would enqueue, without retries, so that one failure is final.
    from keepwell.interfaces.jobs.enqueue import job_id

    jid = job_id("due", f"default:{unit.key}")
    with due_queue(redis_url) as due_q:
        due_q.enqueue(jobs.run_due_unit, "default", unit.to_dict(), job_id=jid)
    engine = sa.create_engine(postgres_url)
    with MailServer() as smtp:
        # A transient failure: the customer's row is busy and the worker's database session gives
        # up waiting for a lock after 300 ms.
        impatient = f"{postgres_url}?options={quote('-c lock_timeout=300')}"
        with engine.begin() as busy:
            busy.execute(sa.text("SELECT id FROM customers WHERE id = :c FOR UPDATE"), {"c": cid})
            burst(worker_env(impatient, redis_url, smtp.port), tmp_path, name="impatient")
        [failed] = pg.json("jobs", "failed")
        assert failed["id"] == jid and "lock timeout" in failed["error"]
        assert current_periods(postgres_url) == {mid: 0}

        # The row is free again; the next run-due enqueues the work again and a worker does it.
        pg.json("run-due", "--as-of", today().isoformat())
        burst(worker_env(postgres_url, redis_url, smtp.port), tmp_path)
        assert current_periods(postgres_url) == {mid: 1}
        # Done: it is not reported as failed any more (nor retried by `jobs retry --all`).
        assert pg.json("jobs", "failed") == []
        status = pg.json("jobs", "status")
        assert (status["failed"], status["queued"]) == (0, 0)
        assert pg.out("jobs", "retry", "--all") == ""
    engine.dispose()
    assert period_ended_events(postgres_url) == Counter({mid: 1})


# --- crashes -----------------------------------------------------------------------------------------

def _started_jobs_abandoned(redis_url: str) -> bool:
    """Every job in a started registry is past its heartbeat (its worker is dead), or none is there."""
    from rq import Queue
    from rq.registry import StartedJobRegistry

    from keepwell.interfaces.jobs import queues

    with redis.Redis.from_url(redis_url) as conn:
        for name in queues.QUEUES:
            registry = StartedJobRegistry(queue=Queue(name, connection=conn))
            if set(registry.get_job_ids()) - set(registry.get_expired_job_ids(time.time())):
                return False
    return True


def _no_retry_waiting(redis_url: str) -> bool:
    """No job scheduled for later: every retry that was scheduled has come due."""
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from keepwell.interfaces.jobs import queues

    with redis.Redis.from_url(redis_url) as conn:
        for name in queues.QUEUES:
            registry = ScheduledJobRegistry(queue=Queue(name, connection=conn))
            if set(registry.get_job_ids()) - set(registry.get_jobs_to_schedule(int(time.time()))):
                return False
    return True


def _drain(cli: Cli, env: dict, tmp_path: Path, url: str, redis_url: str, done, deadline: float) -> int:
    """What an operator does after a crash: enqueue the due work again and run a burst worker,
    until `done()`. The killed worker's job is given back once its heartbeat expires (seconds,
    with the heartbeat settings of `FAST_HEARTBEAT`) and retried when its retry comes due: each
    round waits for those conditions, never for a fixed time. Returns the number of rounds."""
    rounds = 0
    wait_until(lambda: _started_jobs_abandoned(redis_url), timeout=60, interval=0.2,
               what="the killed worker's job to be past its heartbeat")
    while True:
        rounds += 1
        cli.json("run-due", "--as-of", today().isoformat())
        burst(env, tmp_path, name=f"recover-{rounds}")
        if done():
            return rounds
        if time.monotonic() > deadline:
            raise AssertionError(f"not recovered after {rounds} rounds: periods {Counter(current_periods(url).values())}, "
                                 f"outbox {outbox_statuses(url)}")
        wait_until(lambda: _no_retry_waiting(redis_url), timeout=60, interval=0.2, what="the retries to come due")


# A worker's job is taken for abandoned 2 s after its last heartbeat (every second), and retried
# 1 s later: how the crash tests have RQ notice a dead worker without waiting RQ's minute and a half.
FAST_HEARTBEAT = {"KEEPWELL_JOB_MONITORING_SECONDS": "1", "KEEPWELL_JOB_HEARTBEAT_GRACE_SECONDS": "2",
                  "KEEPWELL_DUE_RETRY_SECONDS": "1"}


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_every_period_closed_once_and_every_email_sent_once(
        pg, postgres_url, redis_url, tmp_path):
    n, victim = 60, 20  # enough to be killed in the middle of a run; each RQ job forks a process
    ms = members(postgres_url, n, today() - timedelta(days=400), spend="40.00")
    with service(postgres_url) as app:
        units = [u for u in app.due_plan(today(), company="default") if u.kind == "period_end"]
    target = units[victim].subject  # the worker takes the units in this order
    engine = sa.create_engine(postgres_url)
    pg.env.update(FAST_HEARTBEAT)  # the retries run-due gives the jobs it enqueues
    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port, **FAST_HEARTBEAT)
        assert pg.json("run-due", "--as-of", today().isoformat())["enqueued"] == 2 * n
        # Hold the row of one membership's allowance: the worker's job for it gets half-way
        # (its period_ended event written, not committed) and waits there.
        lock = engine.connect()
        tx = lock.begin()
        lock.execute(sa.select(Account.id).where(Account.owner == target, Account.unit == "allowance").with_for_update())
        worker = Proc(env, "worker", "--name", "doomed", log=tmp_path / "doomed.log")
        try:
            def waiting_on_a_lock() -> bool:
                with engine.connect() as c:
                    return c.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                             " AND wait_event_type = 'Lock'")).scalar() > 0

            wait_until(waiting_on_a_lock, timeout=120, interval=0.1, what="the worker to reach the held row")
            kill_tree(worker.p.pid)  # the worker, its scheduler and the work horse in the middle of the job
            worker.p.wait(timeout=10)
        finally:
            worker.close()
            tx.rollback()
            lock.close()
        periods = current_periods(postgres_url)
        assert sum(1 for p in periods.values() if p == 1) == victim and periods[target] == 0
        assert smtp.messages == []  # due work first: no email was in flight

        def done():
            return (set(current_periods(postgres_url).values()) == {1} and not due_kinds(postgres_url)
                    and outbox_statuses(postgres_url) == Counter({"sent": n}))

        _drain(pg, env, tmp_path, postgres_url, redis_url, done, deadline=time.monotonic() + 180)

        assert period_ended_events(postgres_url) == Counter(dict.fromkeys(ms, 1))
        assert allowance_grants(postgres_url) == Counter({(mid, k): 1 for mid in ms for k in (0, 1)})
        assert points_expired_events(postgres_url) == Counter(dict.fromkeys(ms.values(), 1))
        assert points_balances(postgres_url) == dict.fromkeys(ms.values(), 250)
        smtp.wait_for(n, timeout=10)
        assert smtp.keys() == Counter(dict.fromkeys(outbox_keys(postgres_url), 1))
    engine.dispose()
    assert pg.json("audit")["ok"] is True


def _tick_finished_after(redis_url: str, slot: int, seconds: int) -> bool:
    """A worker's periodic tick of a time slot after `slot` has run."""
    from rq.job import Job

    with redis.Redis.from_url(redis_url) as conn:
        for later in range(slot + 1, int(time.time()) // seconds + 1):
            try:
                if Job.fetch(f"keepwell-tick-{later}", connection=conn).get_status(refresh=True) == "finished":
                    return True
            except Exception:
                continue
    return False


def test_a_worker_restarted_right_after_a_crash_keeps_ticking(pg, postgres_url, redis_url, tmp_path):
    """systemd restarts a killed worker at once: the new one must go on running due work and
    delivering, though the dead one's scheduler lock is still there."""
    from rq import Worker

    members(postgres_url, 2, today() - timedelta(days=10))
    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port, KEEPWELL_TICK_SECONDS="2")
        first = Proc(env, "worker", "--name", "first", log=tmp_path / "first.log")
        try:
            smtp.wait_for(2, timeout=60)
            seen = int(time.time()) // 2
            wait_until(lambda: _tick_finished_after(redis_url, seen, 2), timeout=30, what="a tick after the emails")
        finally:
            first.close()  # SIGKILL, with its scheduler and any work horse
        second = Proc(env, "worker", "--name", "second", log=tmp_path / "second.log")
        try:
            # Up, past whatever it does when it starts, and waiting for work.
            with redis.Redis.from_url(redis_url) as conn:
                wait_until(lambda: any(w.name == "second" and w.get_state() == "idle"
                                       for w in Worker.all(connection=conn)),
                           timeout=30, what="the restarted worker to wait for work")
            ms = members(postgres_url, 1, today() - timedelta(days=400))  # due now, and a welcome to send
            wait_until(lambda: set(current_periods(postgres_url).values()) == {0, 1} and
                       current_periods(postgres_url)[next(iter(ms))] == 1, timeout=45,
                       what="the restarted worker to close the new member's period")
            smtp.wait_for(3, timeout=45)
            assert second.p.poll() is None
        finally:
            second.close()
        assert smtp.keys() == Counter(dict.fromkeys(outbox_keys(postgres_url), 1))
        assert period_ended_events(postgres_url) == Counter({next(iter(ms)): 1})


@contextmanager
def private_redis(tmp_path: Path, port: int):
    """A redis-server of this test's own, without persistence: a restart loses everything."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed")
    procs = []

    def start():
        p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                              "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        conn = redis.Redis(port=port, socket_connect_timeout=1)
        wait_until(lambda: _pings(conn), timeout=10, what="redis-server to start")
        conn.close()
        return p

    def kill():
        p = procs[-1]
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)

    try:
        start()
        yield start, kill
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


def _pings(conn) -> bool:
    try:
        return conn.ping()
    except redis.exceptions.ConnectionError:
        return False


def test_undelivered_messages_survive_a_redis_restart_and_go_out_once(pg, postgres_url, tmp_path):
    n = 30
    members(postgres_url, n, today() - timedelta(days=10))
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with private_redis(tmp_path, port) as (start_redis, kill_redis), MailServer(delay=0.3) as smtp:
        env = worker_env(postgres_url, url, smtp.port)
        worker = Proc(env, "worker", "--name", "before-restart", log=tmp_path / "before.log")
        try:
            smtp.wait_for(3, timeout=60)
            kill_redis()
            # Whatever the worker had in hand finishes (the database is fine); nothing new starts.
            last = None

            def settled():
                nonlocal last
                now = (len(smtp.messages), outbox_statuses(postgres_url)["sending"])
                steady, last = now == last and now[1] == 0, now
                return steady

            wait_until(settled, timeout=60, interval=2, what="the sends in flight to end")
        finally:
            worker.close()
        statuses = outbox_statuses(postgres_url)
        assert 3 <= statuses["sent"] < n and statuses["pending"] == n - statuses["sent"]

        start_redis()  # empty: the queued deliveries are gone
        with redis.Redis(port=port) as conn:
            assert conn.dbsize() == 0
        burst(env, tmp_path, name="after-restart")
        assert outbox_statuses(postgres_url) == Counter({"sent": n})
        smtp.wait_for(n, timeout=10)
        assert smtp.keys() == Counter(dict.fromkeys(outbox_keys(postgres_url), 1))
        assert all(a == 1 for a in q(postgres_url, lambda c: list(c.session.scalars(sa.select(OutboxMessage.attempts)))))


def test_a_running_worker_keeps_ticking_across_a_redis_restart(pg, postgres_url, tmp_path):
    from rq import Worker

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    members(postgres_url, 1, today() - timedelta(days=10))
    with private_redis(tmp_path, port) as (start_redis, kill_redis), MailServer() as smtp:
        env = worker_env(postgres_url, url, smtp.port, KEEPWELL_TICK_SECONDS="2")
        worker = Proc(env, "worker", "--name", "steady", log=tmp_path / "steady.log")
        try:
            smtp.wait_for(1, timeout=60)
            # Restart Redis while the worker waits for work (one that loses Redis in the middle
            # of a job quits, and is restarted by its supervisor: another story).
            with redis.Redis(port=port) as conn:
                wait_until(lambda: any(w.get_state() == "idle" for w in Worker.all(connection=conn)), timeout=30,
                           what="an idle worker")
            kill_redis()
            start_redis()  # empty: scheduled jobs are gone
            ms = members(postgres_url, 1, today() - timedelta(days=400))
            wait_until(lambda: current_periods(postgres_url)[next(iter(ms))] == 1, timeout=45,
                       what="the worker to close the new member's period after the restart")
            smtp.wait_for(2, timeout=45)
            assert worker.p.poll() is None, "the worker is the same one"
        finally:
            worker.close()
        assert smtp.keys() == Counter(dict.fromkeys(outbox_keys(postgres_url), 1))


def test_a_worker_delivers_an_endpoints_subscribed_webhooks_signed_for_its_receiver(pg, postgres_url, redis_url,
                                                                                    tmp_path):
    """Subscribed through the CLI; the events happen (enrolments, then renewals by due work);
    real workers send each subscribed type once, signed, and nothing else."""
    from standardwebhooks.webhooks import Webhook as Receiver

    from mailserver import HttpRecorder

    secret = pg.out("companies", "rotate-webhook-secret").split(": ")[1].split()[0]
    with HttpRecorder(lambda req: (200, {})) as hook, MailServer() as smtp:
        endpoint = pg.json("webhooks", "add", f"{hook.url}/keepwell", "--events",
                           "membership.enrolled,membership.renewed", "--description", "bookkeeping")
        ms = members(postgres_url, 3, today() - timedelta(days=400))
        env = worker_env(postgres_url, redis_url, smtp.port)
        assert pg.json("run-due", "--as-of", today().isoformat())["enqueued"] >= 3
        burst(env, tmp_path, name="due")
        burst(env, tmp_path, name="deliver")  # what the due work queued, if the first did not send it yet
        wait_until(lambda: len(hook.requests) >= 6, timeout=30, what="six webhooks")
        smtp.wait_for(3, timeout=10)  # the welcome emails go out beside them
    bodies = [Receiver(secret).verify(r["body"].decode(), {k.lower(): v for k, v in r["headers"].items()})
              for r in hook.requests]
    assert Counter(b["type"] for b in bodies) == Counter({"membership.enrolled": 3, "membership.renewed": 3})
    assert {b["data"]["membership"] for b in bodies} == set(ms)
    ids = [{k.lower(): v for k, v in r["headers"].items()}["webhook-id"] for r in hook.requests]
    assert len(ids) == len(set(ids)) == 6  # each message sent once
    log = pg.json("webhooks", "deliveries", str(endpoint["id"]))
    assert len(log) == 6 and {d["status"] for d in log} == {"sent"}
