"""Due work at scale: period ends and renewals (unused allowance and visits expire, the new
period's allowance and visits are granted, each as ledger entries of a `period_ended` and a
`renewed` event) for N memberships, on SQLite and PostgreSQL, against a single SQL UPDATE
that moves the same memberships to their next period (the database's own limit). Two sizes show
whether the cost grows linearly: seconds per membership should stay flat."""

from __future__ import annotations

import gc
import os
import secrets
import time
from datetime import UTC, date, datetime

import sqlalchemy as sa

from keepwell.customers.models import Customer
from keepwell.events.models import Event
from keepwell.kernel.periods import period_end
from keepwell.ledger.models import Account, LedgerEntry
from keepwell.memberships.models import Membership
from keepwell.rulesets.models import RulesetVersion
from keepwell.usecases import audit, due, rulesets

from .common import COMPANY, VIP_PLAN, fresh_app

ISSUED = date(2024, 1, 1)
AS_OF = date(2024, 2, 1)  # the first monthly period (January) has ended


def _populate(app, n: int) -> None:
    """n customers, each enrolled on VIP_PLAN on ISSUED: the rows enrolment writes (membership,
    allowance and visits accounts with their grant entries, the enrolment event), written in bulk
    so that setting up 100,000 members takes seconds; the due work itself goes through Keepwell."""
    rulesets.publish(app, COMPANY, VIP_PLAN, "bench", date(1970, 1, 1))
    grant, visits = 100000000, 2
    now = datetime.now(UTC)
    with app.database.engine.begin() as conn:
        company_id = conn.scalar(sa.text("select id from companies where slug = 'default'"))
        version_id = conn.scalar(sa.select(RulesetVersion.id))
        event_id = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(Event.id), 0))) + 1
        account_id = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(Account.id), 0))) + 1
        for start in range(0, n, 5000):
            customers, members, evs, accounts, entries = [], [], [], [], []
            for i in range(start, min(n, start + 5000)):
                cid, mid = f"cus_{secrets.token_hex(8)}", f"mem_{secrets.token_hex(8)}"
                customers.append({"id": cid, "company_id": company_id, "name": f"Member {i}", "created_at": now})
                members.append({"id": mid, "company_id": company_id, "customer_id": cid, "plan_version_id": version_id,
                                "tier": "standard", "period": "monthly", "issued_on": ISSUED, "current_period": 0,
                                "expires_on": period_end(ISSUED, "monthly", 0), "auto_renewal": True, "status": "active",
                                "created_at": now})
                eid = event_id + i
                payload = {"id": f"enroll:{cid}", "type": "enrolled", "customer": cid,
                           "occurred_at": "2024-01-01T00:00:00+00:00", "data": {"plan": "vip-customer"}}
                evs.append({"id": eid, "company_id": company_id, "key": payload["id"], "type": "enrolled", "customer_id": cid,
                            "membership_id": mid, "occurred_at": datetime(2024, 1, 1, tzinfo=UTC),
                            "local_date": ISSUED, "payload": payload, "payload_hash": "bench", "status": "processed",
                            "result": {}, "received_at": now})
                for unit, code, amount, rule in (("allowance", "", grant, "plan.allowance.grant"),
                                                 ("visits", "AC_TUNE", visits, "plan.services.AC_TUNE.grant")):
                    aid = account_id + len(accounts) + start * 2
                    accounts.append({"id": aid, "company_id": company_id, "owner": mid, "unit": unit, "code": code,
                                     "balance": amount})
                    entries.append({"company_id": company_id, "account_id": aid, "kind": "grant", "amount": amount,
                                    "balance_after": amount, "event_id": eid, "ruleset": "vip-customer@1", "rule": rule,
                                    "period": 0, "effective_date": ISSUED, "memo": None, "created_at": now})
            conn.execute(sa.insert(Customer), customers)
            conn.execute(sa.insert(Membership.__table__), members)
            conn.execute(sa.insert(Event.__table__), evs)
            conn.execute(sa.insert(Account.__table__), accounts)
            conn.execute(sa.insert(LedgerEntry.__table__), entries)
        if app.database.dialect == "postgresql":
            for table in ("events", "accounts"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            conn.exec_driver_sql("ANALYZE")


def _update_rate(app, n: int) -> float:
    """One UPDATE moving the same memberships on by a period (then undone, outside the timing)."""
    with app.database.engine.begin() as conn:
        start = time.perf_counter()
        conn.execute(sa.update(Membership).where(Membership.status == "active")
                     .values(current_period=Membership.current_period + 1, expires_on=date(2024, 3, 31)))
        seconds = time.perf_counter() - start
        conn.execute(sa.update(Membership).values(current_period=Membership.current_period - 1,
                                                  expires_on=period_end(ISSUED, "monthly", 0)))
    return seconds


def _peak_rss_reset() -> None:
    """Linux: start counting this process's peak resident memory afresh."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mib() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _one(database: str, n: int) -> dict:
    with fresh_app(database) as app:
        _populate(app, n)
        update_s = _update_rate(app, n)
        gc.collect()
        _peak_rss_reset()
        rss_before = _peak_rss_mib()
        start, cpu = time.perf_counter(), time.process_time()
        summary = due.run(app, COMPANY, AS_OF)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = _peak_rss_mib()
        assert summary.periods_closed == n, summary
        again = due.run(app, COMPANY, AS_OF)  # idempotent: nothing is due any more
        assert again.units == 0, again
        with app.database.engine.connect() as conn:
            renewed = conn.scalar(sa.select(sa.func.count()).select_from(Membership).where(Membership.current_period == 1))
            entries = conn.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))
        assert renewed == n, renewed
        assert audit.audit(app, COMPANY)["ok"]
    return {"memberships": n, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "per_s": round(n / seconds),
            "us_per_membership": round(1e6 * seconds / n, 1), "ledger_rows_written": entries - 2 * n,
            "update_seconds": round(update_s, 3), "update_per_s": round(n / update_s),
            "ratio_vs_update": round(seconds / update_s, 1), "cpu_us_per_membership": round(1e6 * cpu / n, 1),
            # the process's peak resident memory while the due work ran, above where it started
            "peak_rss_mib": peak, "peak_rss_growth_mib": round(peak - rss_before, 1) if peak and rss_before else None}


def run(database: str, quick: bool = False) -> dict:
    small, large = (500, 2000) if quick else (10000, 100000)
    a, b = _one(database, small), _one(database, large)
    return {"name": f"due_work_{database}", "sizes": {str(small): a, str(large): b},
            "per_s": b["per_s"], "baseline_update_per_s": b["update_per_s"], "ratio_vs_update": b["ratio_vs_update"],
            # cost per membership at the large size over the small one: 1.0 is perfectly linear
            "linearity": round(b["us_per_membership"] / a["us_per_membership"], 2),
            "cpu_linearity": round(b["cpu_us_per_membership"] / a["cpu_us_per_membership"], 2),
            "peak_rss_growth_large_minus_small_mib": (
                round(b["peak_rss_growth_mib"] - a["peak_rss_growth_mib"], 1)
                if b["peak_rss_growth_mib"] is not None and a["peak_rss_growth_mib"] is not None else None),
            "load_average": round(os.getloadavg()[0], 1)}
