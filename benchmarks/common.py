"""Shared set-up: a fresh database of the benchmark's own, the rulesets the benchmarks use."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

from keepwell.infra import database as db
from keepwell.usecases import Keepwell, companies

COMPANY = "default"
PG_ADMIN = os.environ.get("KEEPWELL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

VIP_PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "vip-customer", "name": "VIP Customer"},
            "spec": {"allowance": {"amount": "1000000.00", "period": "monthly", "overdraft": {"limit": "200.00"}},
                     "included_services": [{"code": "AC_TUNE", "quantity": 2}]}}
HVAC_RULES = {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": "rewards", "name": "Rewards"},
              "spec": {"expiry": {"after_months": 12}, "rules": [
                  {"id": "spend", "when": {"event": "purchase"}, "earn": {"points": 1, "per": "1.00", "of": "data.amount"}}]}}


@contextmanager
def fresh_app(database: str):
    """A migrated, empty database (SQLite file or a PostgreSQL database of our own), dropped after."""
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            app = Keepwell.open(f"sqlite:///{d}/bench.sqlite3")
            companies.init(app, COMPANY, "Bench", "UTC")
            try:
                yield app
            finally:
                app.close()
        return
    with db.scratch_postgres(PG_ADMIN, f"keepwell_bench_{os.getpid()}") as url:
        app = Keepwell.open(url)
        try:
            companies.init(app, COMPANY, "Bench", "UTC")
            yield app
        finally:
            app.close()
