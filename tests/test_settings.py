"""Settings: every variable in one place, README's table made from it, values checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from keepwell.infra.settings import Settings, settings_table
from keepwell.kernel.errors import InvalidDocument

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_every_setting_as_the_code_reads_it():
    text = README.read_text(encoding="utf-8")
    between = text.split("<!-- settings:begin -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert between == settings_table()


def test_files_go_in_keepwell_home_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({"KEEPWELL_HOME": "data"})
    assert s.home == tmp_path / "data"
    assert s.database_url == f"sqlite:///{tmp_path / 'data' / 'keepwell.sqlite3'}"
    assert s.sms_file == str(tmp_path / "data" / "sms.log")
    assert Settings.from_env({"KEEPWELL_DATABASE_URL": "postgres://u@h/db"}).database_url == "postgresql+psycopg://u@h/db"


def test_a_value_that_cannot_be_read_names_its_variable():
    with pytest.raises(InvalidDocument) as e:
        Settings.from_env({"KEEPWELL_SMTP_PORT": "twenty-five", "KEEPWELL_DUE_RETRY_SECONDS": "10,soon"})
    assert sorted(p.path for p in e.value.problems) == ["KEEPWELL_DUE_RETRY_SECONDS", "KEEPWELL_SMTP_PORT"]
