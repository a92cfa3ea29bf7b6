"""`Keepwell`: what the use cases run on — the database, the rules engine and the clock — and the
way each use case runs: one transaction for one company, retried whole when a concurrent
writer won a race.

The composition roots (the CLI's main, the web app factory, the worker) build one from the
settings with `Keepwell.open` and hand it to every use case they call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from ..billing.sandbox import SandboxGateway
from ..customers.companies import get_company
from ..infra.context import Ctx
from ..infra.database import Database
from ..infra.tables import aware
from ..infra.ttl import TtlCache
from ..kernel.clock import Clock, FixedClock, SystemClock
from ..rulesets.engine import RulesEngine, default_engine

T = TypeVar("T")
P = ParamSpec("P")


@dataclass
class Keepwell:
    database: Database
    rules: RulesEngine
    clock: Clock = field(default_factory=SystemClock)
    # API keys checked lately: digest -> KeyGrant (keepwell.usecases.apikeys)
    key_cache: TtlCache[str, Any] = field(default_factory=lambda: TtlCache(10.0))
    # Payment gateways by name; the sandbox is always there (test cards), Stripe when configured.
    gateways: dict[str, Any] = field(default_factory=lambda: {"sandbox": SandboxGateway()})

    @classmethod
    def open(cls, database_url: str, rules: RulesEngine | None = None, clock: Clock | None = None,
             key_cache_seconds: float = 10.0, ping_idle_seconds: float = 10.0,
             gateways: dict[str, Any] | None = None) -> Keepwell:
        return cls(Database(database_url, ping_idle_seconds), rules or default_engine(), clock or SystemClock(),
                   TtlCache(key_cache_seconds), {"sandbox": SandboxGateway(), **(gateways or {})})

    def close(self) -> None:
        self.database.dispose()

    def run(self, company: str, work: Callable[[Ctx], T], read_only: bool = False) -> T:
        """`work` in one transaction, scoped to one company (retried whole on a lost race)."""

        def unit(session: Session) -> T:
            found = get_company(session, company)
            # A company on a test clock lives at its moment (`keepwell clock advance`).
            clock = FixedClock(aware(found.clock_at)) if found.clock_at is not None else self.clock
            return work(Ctx(session, found, self.rules, clock, self.gateways))

        return self.database.run(unit, read_only)

    def run_platform(self, work: Callable[[Session], T], read_only: bool = False) -> T:
        """`work` in one transaction that no company owns (the platform's own work: the list of
        companies, delivering every company's messages)."""
        return self.database.run(work, read_only)


def use_case(fn: Callable[Concatenate[Ctx, P], T]) -> Callable[Concatenate[Keepwell, str, P], T]:
    """A use case written against one unit of work, called as `fn(app, company, ...)`: one
    transaction, scoped to that company."""

    @wraps(fn)
    def run(app: Keepwell, company: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return app.run(company, lambda ctx: fn(ctx, *args, **kwargs))

    return run


def reading(fn: Callable[Concatenate[Ctx, P], T]) -> Callable[Concatenate[Keepwell, str, P], T]:
    """Like `use_case`, for one that only reads: on SQLite it takes no write lock."""

    @wraps(fn)
    def run(app: Keepwell, company: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return app.run(company, lambda ctx: fn(ctx, *args, **kwargs), read_only=True)

    return run
