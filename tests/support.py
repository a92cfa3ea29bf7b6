"""Helpers shared by the tests: the real CLI in-process, events as a POS sends them."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import date

from click.testing import CliRunner

from keepwell.config import Settings
from keepwell.service import Keepwell


@contextmanager
def service(url: str):
    """A Keepwell service on a database that already exists, closed afterwards."""
    app = Keepwell.from_settings(Settings.from_env({"KEEPWELL_DATABASE_URL": url}))
    try:
        yield app
    finally:
        app.close()


def make_app(url: str, timezone: str = "UTC") -> Keepwell:
    app = Keepwell.from_settings(Settings.from_env({"KEEPWELL_DATABASE_URL": url}))
    app.init("default", "Test Heating & Air", timezone)
    return app


class Cli:
    """Runs the real `keepwell` click command in-process against one database."""

    def __init__(self, url: str):
        self.env = {"KEEPWELL_DATABASE_URL": url, "KEEPWELL_COMPANY": "default"}
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, expect: int | None = 0):
        from keepwell.cli import main

        result = self.runner.invoke(main, list(args), input=input, env=self.env, catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"keepwell {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result

    def out(self, *args: str, **kw) -> str:
        return self(*args, **kw).stdout.strip()

    def json(self, *args: str, **kw):
        return json.loads(self(*args, "--json", **kw).stdout)

    def post(self, *events: dict, expect: int | None = 0) -> list[dict]:
        text = "\n".join(json.dumps(e) for e in events) + "\n"
        res = self("events", "post", "-", input=text, expect=expect)
        return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def event(id: str, type: str, customer: str, when: str, **data) -> dict:
    """An event as a POS would send it; `when` is a local date or a full ISO time."""
    occurred = when if "T" in when else f"{when}T10:00:00-07:00"
    return {"id": id, "type": type, "customer": customer, "occurred_at": occurred, "data": data}


def d(s: str) -> date:
    return date.fromisoformat(s)
