"""The database: engines for SQLite and PostgreSQL, transactions (retried when a concurrent
writer won a race), and schema upgrades (Alembic)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..kernel.errors import SchemaOutOfDate
from .unit import IdBlocks

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
RETRIES = 5
T = TypeVar("T")


def make_engine(url: str, ping_idle_seconds: float = 10.0, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    engine = sa.create_engine(url, **kwargs)
    _ping_when_idle(engine, ping_idle_seconds)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # psycopg prepares a statement on the server once it has run five times; PostgreSQL may
        # then plan it once for any parameters ("generic" plan), and a generic plan of
        # `key = ANY($2)` reads a company's whole index instead of looking up its keys. Custom
        # plans, always. Set here rather than in the connection's `options`, which would replace
        # any `options` the operator's database URL carries (a lock_timeout, a search_path).
        with dbapi_conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()

    return engine


def _ping_when_idle(engine: Engine, seconds: float) -> None:
    """Check a pooled connection before use only if it sat idle `seconds` or more. A connection
    in steady use is known alive (a ping on every checkout was a round trip per transaction); one
    that waited may have been closed by a restarted server or a firewall, and a failed ping makes
    the pool replace it with a new one instead of failing the request."""

    @sa.event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["keepwell_idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("keepwell_idle_since")
        if since is None or time.monotonic() - since < seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise sa.exc.DisconnectionError(f"pooled connection is gone: {exc}") from exc


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (0600), before SQLite does: SQLite
    gives its WAL and shared-memory files the database file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    db_path = sa.engine.make_url(url).database
    if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
        _private_file(Path(db_path))
    engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
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
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue instead of failing on upgrade.
        # Readers begin deferred: in WAL mode they never wait for a writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("keepwell_read_only") else "BEGIN IMMEDIATE")

    return engine


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


class Database:
    """One database: its engine, sessions that write and sessions that only read."""

    def __init__(self, url: str, ping_idle_seconds: float = 10.0):
        self.url = url
        self.engine = make_engine(url, ping_idle_seconds)
        info = {"keepwell.id_blocks": IdBlocks()}  # the process's blocks of ids (PostgreSQL)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        # Sessions for work that only reads (pages, API-key checks): on SQLite they take no
        # write lock, so a page can read and then call a use case that writes.
        self.readers = sessionmaker(self.engine.execution_options(keepwell_read_only=True), expire_on_commit=False,
                                    info=info)
        self._schema_ok = False
        self._before_commit: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Session]:
        """One unit of work: everything inside commits together or not at all."""
        if not self._schema_ok:
            check_schema(self.engine)
            self._schema_ok = True
        session = (self.readers if read_only else self.sessions)()
        try:
            with session.begin():
                yield session
                if self._before_commit and not read_only:
                    session.flush()
                    for fn in list(self._before_commit):
                        fn()
        finally:
            session.close()

    @contextmanager
    def before_commit(self, fn: Callable[[], None]) -> Iterator[None]:
        """Call `fn` in every transaction that writes, its work flushed, just before it commits
        (while this block runs): how the reliability tests reach the moment before a commit."""
        self._before_commit.append(fn)
        try:
            yield
        finally:
            self._before_commit.remove(fn)

    def run(self, work: Callable[[Session], T], read_only: bool = False) -> T:
        """Run `work` in one transaction; run it again, whole, when a concurrent writer won a race
        (a duplicate key inserted first, a serialization failure or a deadlock)."""
        for attempt in range(RETRIES):
            try:
                with self.transaction(read_only) as session:
                    return work(session)
            except (IntegrityError, OperationalError) as exc:
                if attempt == RETRIES - 1 or not retryable(exc):
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest revision; running it again changes nothing."""
        upgrade(self.engine)
        self._schema_ok = True

    def analyze(self) -> None:
        """PostgreSQL: gather the planner's statistics now rather than at autovacuum's next
        round. Until a table is first analyzed the planner knows nothing of its columns (that
        every row of one company has the same company_id, say) and can pick a plan that reads a
        company's whole table to find a few keys."""
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")

    def revision(self) -> str | None:
        return current_revision(self.engine)


def retryable(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    if isinstance(exc, IntegrityError):
        return "unique" in text or "duplicate" in text
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))


def alembic_config(engine: Engine | None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    assert head is not None
    return head


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this code expects."""
    have, want = current_revision(engine), head_revision()
    if have != want:
        state = "has no Keepwell schema" if have is None else f"is at schema {have}"
        raise SchemaOutOfDate(f"the database {state}; this Keepwell needs {want}: run `keepwell init`")


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
