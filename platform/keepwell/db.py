"""Database engines, transactions and schema upgrades (Alembic), for SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    return sa.create_engine(url, pool_pre_ping=True, future=True, **kwargs)


def _sqlite_engine(url: str, **kwargs) -> Engine:
    db_path = sa.engine.make_url(url).database
    if db_path and db_path != ":memory:":
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # pysqlite's own transaction handling defers BEGIN; we issue it ourselves (below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        # INSERT OR REPLACE deletes the row it replaces without firing DELETE triggers unless
        # recursive triggers are on: without this, REPLACE rewrites append-only rows.
        cur.execute("PRAGMA recursive_triggers=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        # IMMEDIATE takes the write lock up front: two writers queue instead of failing on upgrade.
        # Readers (see `read_sessions`) begin deferred: in WAL mode they never wait for a writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("keepwell_read_only") else "BEGIN IMMEDIATE")

    return engine


def is_postgres(engine_or_session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


@contextmanager
def transaction(factory: sessionmaker) -> Iterator[Session]:
    """One unit of work: everything inside commits together or not at all."""
    session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def read_sessions(engine: Engine) -> sessionmaker:
    """Sessions for pages that only read (admin lists): on SQLite they take no write lock, so a
    page can read and then call a use case that writes without waiting on itself."""
    return sessionmaker(engine.execution_options(keepwell_read_only=True), expire_on_commit=False)


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision; running it again changes nothing."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this code expects."""
    from .errors import KeepwellError

    have, want = current_revision(engine), head_revision()
    if have != want:
        state = "has no Keepwell schema" if have is None else f"is at schema {have}"
        raise KeepwellError(f"the database {state}; this Keepwell needs {want}: run `keepwell init`")


@contextmanager
def scratch_postgres(admin_url: str, name: str) -> Iterator[str]:
    """A PostgreSQL database of our own (tests, benchmarks): created empty, its URL yielded,
    dropped afterwards even if connections to it are still open."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()
