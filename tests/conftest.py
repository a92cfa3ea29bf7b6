"""Fixtures: every test that takes `db_url` (or `app`, `cli`) runs on SQLite and on PostgreSQL.

PostgreSQL: a database of our own (keepwell_test_<pid>) on KEEPWELL_TEST_PG (default
127.0.0.1:5432, trust auth), migrated once and emptied between tests, dropped at the end.
SQLite: a migrated template file, copied for each test.
"""

from __future__ import annotations

import gc
import os
import shutil

import pytest
import sqlalchemy as sa
from hypothesis import settings as _hypothesis_settings

import keepwell.usecases  # noqa: F401  (every area's tables, event types and kinds)
from keepwell.infra import database as db
from kwmodels import Base
from support import Cli, make_app

# CI (`.ci/run`) sets KEEPWELL_HYPOTHESIS_PROFILE=ci: the same examples on every run, so a red CI
# can be reproduced; without it (developers' runs) Hypothesis explores new examples each time.
_hypothesis_settings.register_profile("ci", derandomize=True, database=None)
_hypothesis_settings.load_profile(os.environ.get("KEEPWELL_HYPOTHESIS_PROFILE", "default"))

# The tests' webhook receivers listen on loopback; production allows only public addresses.
os.environ["KEEPWELL_WEBHOOK_NETWORKS"] = "loopback"

PG_ADMIN = os.environ.get("KEEPWELL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("KEEPWELL_REQUIRE_PG") == "1"


def _pg_reachable() -> bool:
    try:
        eng = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_url():
    if not _pg_reachable():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (KEEPWELL_REQUIRE_PG=1) but {PG_ADMIN} is unreachable")
        pytest.skip("PostgreSQL not reachable")
    with db.scratch_postgres(PG_ADMIN, f"keepwell_test_{os.getpid()}") as url:
        eng = db.make_engine(url)
        db.upgrade(eng)
        eng.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "keepwell.sqlite3"
    eng = db.make_engine(f"sqlite:///{path}")
    db.upgrade(eng)
    eng.dispose()
    return path


def _empty_pg(url: str) -> None:
    eng = sa.create_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with eng.begin() as c:
        c.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, sqlite_template):
    if request.param == "sqlite":
        path = tmp_path / "keepwell.sqlite3"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    _empty_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template):
    path = tmp_path / "keepwell.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(pg_url):
    _empty_pg(pg_url)
    return pg_url


@pytest.fixture
def app(db_url):
    a = make_app(db_url)
    yield a
    a.close()


@pytest.fixture
def cli(db_url):
    c = Cli(db_url)
    c("init", "--timezone", "America/Denver")
    return c


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test():
    """A database connection or file left open is reported (warnings are errors) by the test that
    left it, not by whichever later test the garbage collector happened to run in."""
    yield
    gc.collect()
