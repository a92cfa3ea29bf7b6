"""The package layout promises: stdlib `platform` untouched, the core free of UI and queue code,
data found when installed, migrations matching the models, `init` idempotent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from keepwell.infra import database as db
from keepwell.infra.resources import rulesets_dir, schemas_dir
from kwmodels import Base
from support import make_app


def test_import_platform_is_the_standard_library():
    import platform

    assert callable(platform.python_version)
    code = ("import keepwell, keepwell.cli, platform, sysconfig, pathlib; "
            "print(pathlib.Path(platform.__file__).parent == pathlib.Path(sysconfig.get_paths()['stdlib'])); "
            "print(callable(platform.system))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


def test_the_architecture_contracts_hold():
    """The import rules (pyproject.toml, [tool.importlinter]): interfaces -> use cases -> areas
    -> infra -> kernel, only interfaces import Flask, click, RQ, Redis, WTForms or Flask-Admin,
    and interfaces reach no area, session or model but through the use cases."""
    config = Path(__file__).resolve().parent.parent / "pyproject.toml"
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    res = subprocess.run([lint, str(config)], capture_output=True, text=True, cwd=config.parent.parent)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "broken" in res.stdout and " 0 broken" in res.stdout


def test_admin_and_workers_install_inside_the_keepwell_namespace():
    """Top-level packages named `admin` and `workers` would collide with other distributions'."""
    code = ("import importlib.util as u, keepwell.interfaces.admin, keepwell.interfaces.jobs; "
            "print(u.find_spec('admin') is None, u.find_spec('workers') is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent.parent).stdout
    assert out.split() == ["True", "True"]


def test_schemas_and_packs_are_found():
    assert (schemas_dir() / "plan.schema.json").is_file()
    assert (rulesets_dir() / "hvac").is_dir()


def test_migrations_match_the_models(db_url):
    eng = db.make_engine(db_url)
    try:
        with eng.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        eng.dispose()


def test_init_twice_is_harmless(db_url):
    app = make_app(db_url)
    try:
        assert app.init("default") is False  # company exists, schema at head
        assert db.current_revision(app.engine) is not None
        with app.engine.connect() as c:
            assert c.scalar(sa.text("select count(*) from companies")) == 1
    finally:
        app.close()


def test_the_pipeline_tables_lose_their_foreign_keys_and_keep_their_rows(db_url):
    """Migration 0006 on a database with history (SQLite rebuilds each table): every row stays,
    the append-only triggers still refuse changes, and going back to 0005 restores the keys."""
    from datetime import date

    from alembic import command

    app = make_app(db_url)
    try:
        app.publish({"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Club"},
                     "spec": {"allowance": {"amount": "100.00", "period": "yearly"}}}, "owner", date(2024, 1, 1))
        customer = app.add_customer("Ada Lovelace")
        m = app.enroll(customer, "club", date(2024, 1, 1))["membership"]
        assert app.post_event({"id": "p-1", "type": "purchase", "customer": customer,
                               "occurred_at": "2024-02-01T10:00:00Z",
                               "data": {"amount": "25.00", "pay_with": "membership"}})["status"] == "approved"
        engine = app.engine
        tables = ("events", "accounts", "ledger_entries", "outbox")

        def rows() -> dict[str, int]:
            with engine.connect() as c:
                return {t: c.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}

        def foreign_keys(table: str) -> int:
            return len(sa.inspect(engine).get_foreign_keys(table))

        before = rows()
        assert foreign_keys("ledger_entries") == 0
        try:
            command.downgrade(db.alembic_config(engine), "0005")
            assert foreign_keys("ledger_entries") == 3 and rows() == before
        finally:
            command.upgrade(db.alembic_config(engine), "head")
        assert foreign_keys("ledger_entries") == 0 and foreign_keys("lot_draws") == 0 and rows() == before
        with engine.connect() as c, c.begin():
            with pytest.raises(sa.exc.DatabaseError, match="append-only"):
                c.execute(sa.text("UPDATE ledger_entries SET amount = 1"))
        assert app.membership(m)["allowance"]["balance"] == "75.00"
        assert app.audit()["ok"]
    finally:
        app.close()
