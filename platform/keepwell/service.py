"""The use cases, each one transaction: what the CLI, the web app and the workers call.

Wiring (which database, which engine) is done once by `Keepwell.from_settings`; the composition
roots (CLI, app factory) build one and pass it around.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Callable, Iterator, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import sessionmaker

from . import audit, db, due, events, memberships, points, statements, versions
from .config import Settings
from .engine import Engine, default_engine
from .errors import NotFound
from .tenancy import Ctx, add_customer, create_company, get_company, get_customer

T = TypeVar("T")
RETRIES = 5
BATCH = 500  # events (or units of due work) per transaction in batches


@dataclass
class Keepwell:
    settings: Settings
    engine: object  # sqlalchemy Engine
    sessions: sessionmaker
    rules: Engine

    @classmethod
    def from_settings(cls, settings: Settings, rules: Engine | None = None) -> "Keepwell":
        sa_engine = db.make_engine(settings.database_url)
        return cls(settings, sa_engine, sessionmaker(sa_engine, expire_on_commit=False), rules or default_engine())

    def close(self) -> None:
        self.engine.dispose()

    # --- plumbing -------------------------------------------------------------------------

    _schema_ok: bool = False

    @contextmanager
    def ctx(self, company: str | None = None) -> Iterator[Ctx]:
        if not self._schema_ok:
            db.check_schema(self.engine)
            self._schema_ok = True
        with db.transaction(self.sessions) as session:
            yield Ctx(session, get_company(session, company or self.settings.company), self.rules)

    def run(self, company: str | None, work: Callable[[Ctx], T]) -> T:
        """Run `work` in one transaction; retry it whole when a concurrent writer won a race
        (a duplicate key inserted first, a serialization failure or deadlock)."""
        for attempt in range(RETRIES):
            try:
                with self.ctx(company) as c:
                    return work(c)
            except (IntegrityError, OperationalError) as exc:
                if attempt == RETRIES - 1 or not _retryable(exc):
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    # --- setup ----------------------------------------------------------------------------

    def init(self, company: str = "default", name: str = "Default company", timezone: str = "UTC") -> bool:
        """Create or upgrade the schema, and the company if it is missing. Idempotent."""
        db.upgrade(self.engine)
        self._schema_ok = True
        with db.transaction(self.sessions) as session:
            try:
                get_company(session, company)
                return False
            except NotFound:
                create_company(session, company, name, timezone)
                return True

    def company_slugs(self) -> list[str]:
        import sqlalchemy as sa

        from .models import Company

        with db.transaction(self.sessions) as session:
            return list(session.scalars(sa.select(Company.slug).order_by(Company.slug)))

    def company_exists(self, slug: str) -> bool:
        with db.transaction(self.sessions) as session:
            try:
                get_company(session, slug)
                return True
            except NotFound:
                return False

    def create_api_key(self, name: str, company: str | None = None) -> str:
        from .tenancy import create_api_key

        return self.run(company, lambda c: create_api_key(c.session, c.company, name))

    def add_company(self, slug: str, name: str, timezone: str) -> None:
        with db.transaction(self.sessions) as session:
            create_company(session, slug, name, timezone)

    # --- use cases ------------------------------------------------------------------------

    def add_customer(self, name: str, email: str | None = None, company: str | None = None) -> str:
        return self.run(company, lambda c: add_customer(c.session, c.company, name, email).id)

    def post_event(self, payload: dict, company: str | None = None, trusted: bool = False) -> dict:
        return self.run(company, lambda c: events.post(c, payload, trusted))

    def enroll(self, customer: str, plan: str, on: date, tier: str | None = None, key: str | None = None,
               company: str | None = None) -> dict:
        """Enrol a customer; the idempotency key defaults to enroll:CUSTOMER:PLAN:DATE."""

        def work(c: Ctx) -> dict:
            payload = {"id": key or f"enroll:{customer}:{plan}:{on.isoformat()}", "type": "enrolled",
                       "customer": customer, "occurred_at": c.start_of(on).isoformat(),
                       "data": {"plan": plan, **({"tier": tier} if tier else {})}}
            return events.post(c, payload)

        return self.run(company, work)

    def post_events(self, payloads: list[dict], company: str | None = None, chunk: int = BATCH) -> list[dict]:
        """Many events, in order, with exactly the effects of posting them one at a time: in
        chunks of `chunk` events, one transaction each (rows written in bulk). A malformed event
        is rejected alone, with its error; a chunk that lost a race with a concurrent writer is
        retried whole."""
        out: list[dict] = []
        for i in range(0, len(payloads), chunk):
            part = payloads[i:i + chunk]
            out += self.run(company, lambda c, part=part: events.post_many(c, part))
        return out

    def publish(self, doc: dict, author: str, effective_from: date, file: str = "", company: str | None = None):
        return self.run(company, lambda c: versions.publish(c.session, c.company.id, doc, author, effective_from, file=file))

    def due_plan(self, as_of: date, company: str | None = None) -> list[due.DueUnit]:
        return self.run(company, lambda c: due.plan(c, as_of))

    def run_due_unit(self, unit: due.DueUnit, company: str | None = None) -> dict:
        return self.run(company, lambda c: due.run_unit(c, unit))

    def run_due(self, as_of: date, company: str | None = None, progress: Callable[[int, int], None] | None = None,
                chunk: int = BATCH) -> dict:
        """Run everything due up to `as_of`, in chunks of units, one transaction per chunk;
        repeat until nothing is left (closing a period can make the next reminder due)."""
        done: list[dict] = []
        seen: set[str] = set()
        while True:
            units = [u for u in self.due_plan(as_of, company) if u.key not in seen]
            if not units:
                break
            for i in range(0, len(units), chunk):
                part = units[i:i + chunk]
                done += self.run(company, lambda c, part=part: due.run_units(c, part))
                seen.update(u.key for u in part)
                if progress:
                    progress(min(i + chunk, len(units)), len(units))
        summary = {"as_of": as_of.isoformat(), "units": len(done)}
        summary["periods_closed"] = sum(r.get("periods_closed", 0) for r in done)
        summary["points_expired"] = sum(r.get("expired_points", 0) for r in done)
        summary["reminders_queued"] = sum(1 for r in done if r.get("queued"))
        return summary

    def migrate(self, plan: str, target: str, apply: bool = False, company: str | None = None) -> list[dict]:
        """Preview (default) or apply moving a plan's active memberships to another version; each
        move is a `migrated` event of its own, so it is idempotent and explained."""
        rows = self.run(company, lambda c: memberships.migration_preview(c, plan, target))
        if not apply:
            return rows
        for row in rows:
            if row["problem"]:
                row["applied"] = False
                continue

            def work(c, row=row):
                payload = {"id": f"migrated:{row['membership']}:{row['to']}", "type": "migrated", "customer": row["customer"],
                           "occurred_at": datetime.now(timezone.utc).isoformat(),
                           "data": {"membership": row["membership"], "plan": row["to"]}}
                return events.post(c, payload, trusted=True)

            result = self.run(company, work)
            row["applied"] = result.get("status") == "processed"
            if not row["applied"]:
                row["problem"] = result.get("message")
        return rows

    def membership(self, membership_id: str, company: str | None = None) -> dict:
        return self.run(company, lambda c: memberships.view(c, memberships.get(c, membership_id)))

    def points(self, customer_id: str, company: str | None = None) -> dict:
        def work(c: Ctx) -> dict:
            cust = get_customer(c.session, c.company, customer_id)
            return {"customer": {"id": cust.id, "name": cust.name}, "balance": points.balance(c, cust.id),
                    "lots": points.lots(c, cust.id)}

        return self.run(company, work)

    def statement(self, owner: str, start: date, end: date, company: str | None = None) -> dict:
        return self.run(company, lambda c: statements.membership_statement(c, owner, start, end))

    def audit(self, company: str | None = None) -> dict:
        return self.run(company, lambda c: audit.run(c.session, c.company.id))


def _retryable(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    if isinstance(exc, IntegrityError):
        return "unique" in text or "duplicate" in text
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))

