"""Helpers shared by the tests: the use cases as the tests call them, the real CLI in-process,
events as a POS sends them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from click.testing import CliRunner

from keepwell.infra.context import Ctx
from keepwell.usecases import (
    Keepwell,
    apikeys,
    audit,
    companies,
    customers,
    due,
    events,
    memberships,
    rewards,
    rulesets,
)

DEFAULT = "default"


class App(Keepwell):
    """The service the use cases run on, with each use case as a method that defaults the company
    to "default" and answers in JSON terms (dicts), as the CLI and the API render them. Every
    method is one use case call: the tests go through the same door as the interfaces."""

    @classmethod
    def at(cls, url: str) -> App:
        base = Keepwell.open(url)
        return cls(base.database, base.rules, base.clock)

    @property
    def engine(self) -> Any:
        return self.database.engine

    @property
    def sessions(self) -> Any:
        return self.database.sessions

    def run(self, company: str | None, work: Callable[[Ctx], Any], read_only: bool = False) -> Any:  # type: ignore[override]
        return super().run(company or DEFAULT, work, read_only)

    def init(self, company: str = DEFAULT, name: str = "Default company", timezone: str = "UTC") -> bool:
        return companies.init(self, company, name, timezone)

    def add_company(self, slug: str, name: str, timezone: str = "UTC") -> None:
        companies.add_company(self, slug, name, timezone)

    def company_exists(self, slug: str) -> bool:
        return companies.exists(self, slug)

    def company_slugs(self) -> list[str]:
        return companies.slugs(self)

    def create_api_key(self, name: str, company: str | None = None) -> str:
        return apikeys.create(self, company or DEFAULT, name)

    def add_customer(self, name: str, email: str | None = None, company: str | None = None) -> str:
        return customers.add_customer(self, company or DEFAULT, name, email)

    def post_event(self, payload: Any, company: str | None = None, trusted: bool = False) -> dict:
        return events.post_event(self, company or DEFAULT, payload, trusted)

    def post_events(self, payloads: list, company: str | None = None, chunk: int = events.BATCH) -> list[dict]:
        return events.post_events(self, company or DEFAULT, payloads, chunk)

    def enroll(self, customer: str, plan: str, on: date, tier: str | None = None, key: str | None = None,
               company: str | None = None) -> dict:
        return memberships.enroll(self, company or DEFAULT, customer, plan, on, tier=tier, key=key)

    def publish(self, doc: dict, author: str, effective_from: date, file: str = "", company: str | None = None):
        return rulesets.publish(self, company or DEFAULT, doc, author, effective_from, file=file)

    def due_plan(self, as_of: date, company: str | None = None) -> list:
        return due.plan(self, company or DEFAULT, as_of)

    def run_due_unit(self, unit: Any, company: str | None = None) -> dict:
        return due.run_unit(self, company or DEFAULT, unit)

    def run_due(self, as_of: date, company: str | None = None, progress: Any = None, chunk: int = due.BATCH,
                as_sets: bool = True) -> dict:
        return due.run(self, company or DEFAULT, as_of, progress, chunk, as_sets).to_dict()

    def migrate(self, plan: str, target: str, apply: bool = False, company: str | None = None) -> list[dict]:
        return memberships.move(self, company or DEFAULT, plan, target, apply)

    def membership(self, membership_id: str, company: str | None = None) -> dict:
        return memberships.show(self, company or DEFAULT, membership_id)

    def points(self, customer_id: str, company: str | None = None) -> dict:
        return rewards.points(self, company or DEFAULT, customer_id)

    def statement(self, owner: str, start: date, end: date, company: str | None = None) -> dict:
        return memberships.statement(self, company or DEFAULT, owner, start, end)

    def audit(self, company: str | None = None) -> dict:
        return audit.audit(self, company or DEFAULT)


@contextmanager
def service(url: str) -> Iterator[App]:
    """A service on a database that already exists, closed afterwards."""
    app = App.at(url)
    try:
        yield app
    finally:
        app.close()


def make_app(url: str, timezone: str = "UTC") -> App:
    app = App.at(url)
    app.init(DEFAULT, "Test Heating & Air", timezone)
    return app


class Cli:
    """Runs the real `keepwell` click command in-process against one database."""

    def __init__(self, url: str):
        self.env = {"KEEPWELL_DATABASE_URL": url, "KEEPWELL_COMPANY": DEFAULT}
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
