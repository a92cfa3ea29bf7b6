"""Faults (issue #4): a worker SIGKILLed at each stage of a job, Redis restarted in the middle of a
run, the database connection dropped in the middle of a transaction. Afterwards the effects are
exactly those of one clean run, and `keepwell audit` (run after every fault) finds no drift.

The stages are reached deterministically through the jobs' hook interface
(keepwell.interfaces.jobs.hooks), which tests/fault_worker.py installs in the worker it starts:
the first work horse to reach the stage creates a marker file and waits there; the test then
SIGKILLs the whole worker (its main process, its scheduler and the work horse), as a crash of
the machine would.

"One clean run" is the same setup on a database of its own (SQLite, embedded mode: `run-due`
and `outbox deliver` in the process), compared as multisets: every ledger entry (customer,
account, kind, amount, date, rule, ruleset), every balance, every event, every membership's
period, every outbox message's status and the emails received by key."""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from kwmodels import Account, Customer, Event, LedgerEntry, Membership, OutboxMessage
from mailserver import MailServer, free_port, wait_until
from support import Cli, service
from test_workers import (  # noqa: F401
    Proc,
    _cli,
    burst,
    counts,
    kill_tree,
    members,
    outbox_statuses,
    private_redis,
    redis_server,
    redis_url,
    today,
    worker_env,
)

N = 3  # members: 3 period ends, 3 points expiries and 3 welcome emails to do
ENROLLED = 400  # days ago: the first (yearly) period has ended and the first points have expired


@pytest.fixture(autouse=True, scope="module")
def _close_in_process_service():
    """`run-due` with KEEPWELL_REDIS_URL plans in this process through the jobs service (keepwell.interfaces.jobs.tasks.keepwell)."""
    yield
    from keepwell.interfaces.jobs import tasks as jobs

    jobs.close()


# --- effects, normalised so that two databases can be compared ------------------------------------

def effects(url: str) -> dict:
    """Everything the run changed, with generated ids replaced by the customers' names."""

    def work(c):
        s = c.session
        names = dict(s.execute(sa.select(Customer.id, Customer.name).where(Customer.company_id == c.company.id)).all())
        owners = dict(names)
        owners.update({mid: f"{names[cid]}/membership" for mid, cid in s.execute(
            sa.select(Membership.id, Membership.customer_id).where(Membership.company_id == c.company.id))})

        def norm(text):
            if text is None:
                return None
            for raw, name in owners.items():
                text = text.replace(raw, name)
            return re.sub(r":lot\d+", ":lot", text)

        ledger = Counter(
            (owners[acc.owner], acc.unit, acc.code, e.kind, e.amount, e.effective_date.isoformat(), norm(e.rule),
             e.ruleset, e.period, e.memo and norm(re.sub(r"\d{4}-\d{2}-\d{2}", "D", e.memo)))
            for e, acc in s.execute(sa.select(LedgerEntry, Account).join(Account, Account.id == LedgerEntry.account_id)
                                    .where(LedgerEntry.company_id == c.company.id)))
        balances = sorted((owners[a.owner], a.unit, a.code, a.balance) for a in s.scalars(
            sa.select(Account).where(Account.company_id == c.company.id)))
        events = Counter((names[e.customer_id], e.type, e.status, e.local_date.isoformat(), norm(e.key))
                         for e in s.scalars(sa.select(Event).where(Event.company_id == c.company.id)))
        periods = sorted((names[m.customer_id], m.status, m.current_period, m.expires_on.isoformat())
                         for m in s.scalars(sa.select(Membership).where(Membership.company_id == c.company.id)))
        outbox = Counter((names.get(m.customer_id), norm(m.key), m.channel, m.template, m.status)
                         for m in s.scalars(sa.select(OutboxMessage).where(OutboxMessage.company_id == c.company.id)))
        keys = {m.key: norm(m.key) for m in s.scalars(sa.select(OutboxMessage))}
        return {"ledger": ledger, "balances": balances, "events": events, "periods": periods, "outbox": outbox}, keys

    with service(url) as app:
        return app.run("default", work)


def received(smtp: MailServer, keys: dict[str, str]) -> Counter:
    return Counter(keys[k] for k in smtp.keys().elements())


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, sqlite_template):
    """The same setup, run once without faults: SQLite, due work and delivery in the process."""
    path = tmp_path_factory.mktemp("clean") / "keepwell.sqlite3"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    cli = _cli(url, None)
    members(url, N, today() - timedelta(days=ENROLLED), spend="40.00")
    with MailServer() as smtp:
        cli.env.update({"KEEPWELL_SMTP_HOST": "127.0.0.1", "KEEPWELL_SMTP_PORT": str(smtp.port)})
        summary = cli.json("run-due", "--as-of", today().isoformat())
        assert (summary["periods_closed"], summary["points_expired"]) == (N, N * 40), summary
        assert {o["status"] for o in cli.json("outbox", "deliver")} == {"sent"}
        smtp.wait_for(N, timeout=10)
        got, keys = effects(url)
        mail = received(smtp, keys)
    assert cli.json("audit")["ok"] is True
    assert set(mail.values()) == {1} and len(mail) == N
    return got, mail


def time_passes(redis_url: str, url: str) -> None:
    """What time does after a crash, without the wait: the dead worker's heartbeat expires (RQ's
    started-job registry cleanup, ~90 s later, gives the job back: a due job is scheduled for a
    retry 10 s on, requeued here at once; a delivery job fails), and a claimed message's lease
    (5 minutes) runs out."""
    from rq import Queue
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    from keepwell.interfaces.jobs import queues

    conn = redis.Redis.from_url(redis_url)
    try:
        for name in queues.QUEUES:
            q = Queue(name, connection=conn)
            StartedJobRegistry(queue=q).cleanup(timestamp=time.time() + 3600)
            scheduled = ScheduledJobRegistry(queue=q)
            for jid in scheduled.get_job_ids():
                scheduled.requeue(jid)
    finally:
        conn.close()
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.update(OutboxMessage).where(OutboxMessage.status == "sending")
                  .values(claimed_until=sa.func.now() - sa.text("interval '1 second'")))
    eng.dispose()


def due_left(url: str) -> int:
    with service(url) as app:
        return len(app.due_plan(today(), company="default"))


def recover(env: dict, tmp_path: Path, url: str, redis_url: str, rounds: int = 3) -> None:
    """Restart: a plain worker, in bursts, until nothing is due and every message is sent."""
    time_passes(redis_url, url)
    for i in range(rounds):
        log = burst(env, tmp_path, name=f"recover-{i}")
        assert "Traceback" not in log, log[-3000:]
        if due_left(url) == 0 and set(outbox_statuses(url)) == {"sent"}:
            return
    raise AssertionError(f"not recovered: {due_left(url)} due, outbox {outbox_statuses(url)}")


def assert_same_as_clean_run(url: str, smtp: MailServer, clean, at_least_once: bool = False) -> None:
    want, want_mail = clean
    got, keys = effects(url)
    assert got["periods"] == want["periods"]
    assert got["balances"] == want["balances"]
    assert got["ledger"] == want["ledger"]
    assert got["events"] == want["events"]
    assert got["outbox"] == want["outbox"]
    smtp.wait_for(N, timeout=10)
    mail = received(smtp, keys)
    assert set(mail) == set(want_mail)  # every message arrived, under the same keys
    if at_least_once:
        # Sent, then killed before it was marked: sent again (at-least-once), with the same
        # Message-ID / X-Keepwell-Key, so the receiver can drop the copy.
        assert sorted(mail.values()) == [1] * (N - 1) + [2]
    else:
        assert mail == want_mail


def keepwell_audit(cli: Cli) -> None:
    report = cli.json("audit")
    assert report["ok"] is True, report["drift"]
    assert report["accounts_checked"] > 0 and report["lots_checked"] > 0


# --- a worker killed at each stage of a job -----------------------------------------------------------

def kill_at(stage: str, env: dict, tmp_path: Path) -> None:
    """Start a worker that stops at `stage` in the first job to reach it; SIGKILL it there, with
    its scheduler and its work horse."""
    marker = tmp_path / f"fault-{stage.replace(':', '-')}"
    log = tmp_path / f"doomed-{stage.replace(':', '-')}.log"
    doomed = Proc(env, "worker", "--burst", "--name", f"doomed-{time.monotonic_ns()}", log=log, fault=(stage, marker))
    try:
        wait_until(marker.exists, timeout=120, interval=0.05, what=f"a job to reach {stage}")
        assert doomed.p.poll() is None, log.read_text(errors="replace")[-3000:]
        kill_tree(doomed.p.pid)
        doomed.p.wait(timeout=10)
    finally:
        doomed.close()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


def closed_periods(url: str) -> int:
    return sum(1 for p in effects(url)[0]["periods"] if p[2] == 1)


def test_a_worker_killed_at_each_stage_of_a_job_in_turn_leaves_the_effects_of_one_clean_run(
        clean_run, postgres_url, redis_url, tmp_path):
    """Five crashes in a row, one per stage (keepwell.interfaces.jobs.hooks.STAGES), each worker started
    after the previous one died (its job given back as RQ does once the heartbeat expires); then a
    worker that is left alone. Where each crash leaves things is checked, `keepwell audit` is clean
    after every one, and the end is exactly one clean run."""
    from keepwell.interfaces.jobs.hooks import STAGES as FAULT_STAGES

    pg = _cli(postgres_url, redis_url)
    members(postgres_url, N, today() - timedelta(days=ENROLLED), spend="40.00")
    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port)
        for stage in FAULT_STAGES:
            before, periods, mails = counts(postgres_url), closed_periods(postgres_url), len(smtp.messages)
            kill_at(stage, env, tmp_path)
            if stage in ("due:before_work", "due:before_commit"):
                # The first due job was in hand (before its commit, with its period end written in
                # an open transaction): nothing of it is in the database.
                assert counts(postgres_url) == before and closed_periods(postgres_url) == periods, stage
            elif stage == "due:after_commit":
                # Committed, never marked finished.
                assert closed_periods(postgres_url) == periods + 1 or counts(postgres_url) != before, stage
            else:
                assert closed_periods(postgres_url) == N  # the due work comes first
                assert outbox_statuses(postgres_url)["sending"] >= 1  # claimed, never marked
                assert len(smtp.messages) == mails + (1 if stage == "deliver:after_send" else 0), stage
            keepwell_audit(pg)  # what was committed is consistent, even mid-run
            time_passes(redis_url, postgres_url)
        recover(env, tmp_path, postgres_url, redis_url)
        # The message sent just before the crash is sent again (at-least-once), under its key.
        assert_same_as_clean_run(postgres_url, smtp, clean_run, at_least_once=True)
    keepwell_audit(pg)
    # And again changes nothing.
    assert pg.json("run-due", "--as-of", today().isoformat())["enqueued"] == 0


def test_redis_restarted_mid_run_loses_its_queues_and_the_effects_are_still_one_clean_run(
        clean_run, postgres_url, tmp_path):
    """Redis dies (without persistence: every queued, started and scheduled job is gone) while a
    worker is in the middle of a job, just after its commit; the worker is killed too. A new Redis
    and a new worker re-plan the due work from SQL and deliver what is still pending."""
    pg = _cli(postgres_url, None)
    members(postgres_url, N, today() - timedelta(days=ENROLLED), spend="40.00")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    marker = tmp_path / "fault"
    with private_redis(tmp_path, port) as (start_redis, kill_redis), MailServer() as smtp:
        env = worker_env(postgres_url, url, smtp.port)
        doomed = Proc(env, "worker", "--burst", "--name", "doomed", log=tmp_path / "doomed.log",
                      fault=("due:after_commit", marker))
        try:
            wait_until(marker.exists, timeout=120, interval=0.05, what="a job to commit")
            with redis.Redis(port=port) as conn:
                assert conn.dbsize() > 0  # the rest of the run is queued
            kill_redis()
            kill_tree(doomed.p.pid)
            doomed.p.wait(timeout=10)
        finally:
            doomed.close()
        assert Counter(m[2] for m in effects(postgres_url)[0]["periods"]) == Counter({1: 1, 0: N - 1})
        keepwell_audit(pg)

        start_redis()
        with redis.Redis(port=port) as conn:
            assert conn.dbsize() == 0
        for i in range(3):
            burst(env, tmp_path, name=f"after-restart-{i}")
            if due_left(postgres_url) == 0 and set(outbox_statuses(postgres_url)) == {"sent"}:
                break
        assert_same_as_clean_run(postgres_url, smtp, clean_run)
    keepwell_audit(pg)


# --- the database connection dropped in the middle of a transaction ------------------------------------

PLAN = {
    "apiVersion": "keepwell/v1", "kind": "Plan",
    "metadata": {"id": "drop-plan", "name": "Drop plan"},
    "spec": {"allowance": {"amount": "100.00", "period": "monthly", "overdraft": {"limit": "20.00"}}},
}
POINTS = {
    "apiVersion": "keepwell/v1", "kind": "EarningRules",
    "metadata": {"id": "drop-points", "name": "Drop points"},
    "spec": {"expiry": {"after_months": 1},
             "rules": [{"id": "spend", "when": {"event": "purchase"}, "earn": {"points": 1, "per": "1.00", "of": "data.amount"}}]},
}


class Terminator:
    """Ends the database backend of the transaction in its middle (pg_terminate_backend from
    another connection), once: just before its first ledger row or balance is written (`mid`: the
    event row is written, its entries not yet), or just before it commits."""

    def __init__(self, app, url: str, when: str):
        self.app, self.when, self.fired = app, when, 0
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")

    def terminate(self, pid: int) -> None:
        self.fired += 1
        with self.admin.connect() as c:
            assert c.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar() is True

    def before_cursor_execute(self, conn, cursor, statement, parameters, context, executemany):
        if not self.fired and re.match(r"\s*(INSERT|UPDATE)\b", statement, re.I) and re.search(
                r"\b(ledger_entries|accounts)\b", statement):
            self.terminate(cursor.connection.info.backend_pid)

    def before_commit(self, session):
        if not self.fired:
            session.flush()
            self.terminate(session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar())

    def __enter__(self):
        if self.when == "mid":
            sa.event.listen(self.app.engine, "before_cursor_execute", self.before_cursor_execute)
        else:
            sa.event.listen(self.app.sessions, "before_commit", self.before_commit)
        return self

    def __exit__(self, *exc):
        if self.when == "mid":
            sa.event.remove(self.app.engine, "before_cursor_execute", self.before_cursor_execute)
        else:
            sa.event.remove(self.app.sessions, "before_commit", self.before_commit)
        self.admin.dispose()


def db_state(app) -> tuple:
    def work(c):
        n = lambda model: c.session.scalar(sa.select(sa.func.count()).select_from(model))
        bal = sorted(c.session.execute(sa.select(Account.owner, Account.unit, Account.balance)).all())
        return n(Event), n(LedgerEntry), n(OutboxMessage), bal
    return app.run(None, work)


@pytest.mark.parametrize("when", ["mid", "before_commit"])
@pytest.mark.parametrize("operation", ["purchase", "redemption", "period_end"])
def test_a_dropped_database_connection_mid_transaction_applies_nothing_and_the_retry_applies_once(
        postgres_url, operation, when):
    from datetime import date

    from support import App

    with service(postgres_url) as setup:
        setup.init("default", "Drop Co", "UTC")
        setup.publish(PLAN, "test", date(2023, 1, 1))
        setup.publish(POINTS, "test", date(2023, 1, 1))
        cid = setup.add_customer("Dee Dropped")
        mid = setup.enroll(cid, "drop-plan", date(2024, 1, 1))["membership"]
        assert setup.post_event({"id": "warm-up", "type": "purchase", "customer": cid, "occurred_at": "2024-01-10T10:00:00Z",
                                 "data": {"amount": "30.00", "pay_with": "membership"}})["status"] == "approved"

    app = App.at(postgres_url)
    try:
        if operation == "period_end":
            [unit] = [u for u in app.due_plan(date(2024, 2, 1)) if u.kind == "period_end"]
            do = lambda: app.run_due_unit(unit)
        else:
            payload = ({"id": "pos-1", "type": "purchase", "customer": cid, "occurred_at": "2024-01-20T10:00:00Z",
                        "data": {"amount": "80.00", "pay_with": "membership"}} if operation == "purchase" else
                       {"id": "red-1", "type": "redemption", "customer": cid, "occurred_at": "2024-01-20T10:00:00Z",
                        "data": {"points": 25}})
            do = lambda: app.post_event(payload)
        before = db_state(app)
        with Terminator(app, postgres_url, when) as t:
            try:
                outcome = do()
            except sa.exc.DBAPIError as exc:
                outcome = exc
            assert t.fired == 1
        if isinstance(outcome, Exception):
            # Failed cleanly: a database error saying the connection went away (not a traceback
            # from the middle of our code), and not a half-applied change.
            assert outcome.connection_invalidated or re.search(r"terminat|closed", str(outcome)), outcome
            assert db_state(app) == before
            assert app.audit()["ok"]
        # else: the service retried it by itself (allowed): then it must have applied it once.

        # The caller (a client retrying its request, RQ retrying the job) tries again: one effect.
        first = do() if isinstance(outcome, Exception) else outcome
        again = do()
        after = db_state(app)
        if operation == "purchase":
            assert (first["status"], first["balance"], first["overdraft_used"]) == ("approved", "0.00", "10.00")
            assert again["duplicate"] is True
            assert app.membership(mid)["allowance"]["available"] == "10.00"
        elif operation == "redemption":
            assert (first["status"], first["redeemed"], first["points"]["balance"]) == ("processed", 25, 5)
            assert again["duplicate"] is True
            assert app.points(cid)["balance"] == 5
        else:
            assert first["periods_closed"] == 1 and again["periods_closed"] == 0
            view = app.membership(mid)
            assert (view["period"]["index"], view["allowance"]["balance"]) == (1, "100.00")
        assert after != before and db_state(app) == after
        report = app.audit()
        assert report["ok"], report["drift"]
    finally:
        app.close()
