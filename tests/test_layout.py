"""The package layout promises: stdlib `platform` untouched, the core free of UI and queue code,
data found when installed, migrations matching the models, `init` idempotent."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from keepwell import db
from keepwell.models import Base
from keepwell.resources import rulesets_dir, schemas_dir
from support import make_app


def test_import_platform_is_the_standard_library():
    import platform

    assert callable(platform.python_version)
    code = ("import keepwell, keepwell.cli, platform, sysconfig, pathlib; "
            "print(pathlib.Path(platform.__file__).parent == pathlib.Path(sysconfig.get_paths()['stdlib'])); "
            "print(callable(platform.system))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


def test_core_does_not_import_admin_workers_or_rq():
    modules = ["keepwell." + m for m in (
        "allowance", "audit", "catalog", "compiler", "db", "documents", "due", "engine", "entitlements", "events",
        "ledger", "memberships", "models", "money", "packs", "periods", "plans", "points", "rules", "samples",
        "service", "statements", "tenancy", "users", "validation", "versions")]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + (
        "bad = [m for m in sys.modules if m.split('.')[0] in ('admin', 'workers', 'rq', 'flask_admin', 'flask')]\n"
        "print(','.join(sorted(bad)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


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
