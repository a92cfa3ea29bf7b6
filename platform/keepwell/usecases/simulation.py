"""What-if: replay a company's recorded events with a draft ruleset in place of its published
version, and report per member and in total what would change (points, allowance, revenue,
points liability). Nothing is written to the company's ledgers: both runs happen in scratch
databases, from the same recorded events, through the same pipeline as real traffic, so the
simulated result is exactly what publishing the draft and replaying the events would give.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from ..customers import customers as customers_area
from ..customers import limits as limits_area
from ..events.queries import external_payloads
from ..infra.context import Ctx
from ..kernel.clock import FixedClock
from ..kernel.errors import InvalidDocument, Problem
from ..kernel.money import format_cents, to_cents
from ..memberships import allowance, memberships
from ..rewards import points
from ..rulesets import versions
from ..rulesets.in_force import in_force
from ..rulesets.validation import validate_ruleset
from . import companies, due, events
from .app import Keepwell


@dataclass(frozen=True)
class Recorded:
    company: dict[str, str]
    customers: list[dict[str, Any]]
    versions: list[tuple[int, int, dict, str, date]]  # (ruleset, version, content, author, effective_from)
    events: list[dict[str, Any]]


def record(app: Keepwell, company: str, end: date) -> Recorded:
    """The company's rulesets, customers and external events up to `end` (inclusive)."""

    def work(c: Ctx) -> Recorded:
        return Recorded({"slug": c.company.slug, "name": c.company.name, "timezone": c.company.timezone},
                        customers_area.copy_rows(c.session, c.company.id),
                        versions.all_versions(c.session, c.company.id), external_payloads(c, end))

    return app.run(company, work, read_only=True)


Progress = Callable[[int], None]  # told how many more events have been replayed


def _replay(rec: Recorded, drafts: list[dict], start: date, end: date,
            progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as d:
        # The replay happens as if on the day after the range: events up to `end` are its past.
        at = datetime.combine(end + timedelta(days=1), time(12), tzinfo=UTC)
        scratch = Keepwell.open(f"sqlite:///{d}/sim.sqlite3", clock=FixedClock(at))
        try:
            slug = rec.company["slug"]
            companies.init(scratch, slug, rec.company["name"], rec.company["timezone"])
            scratch.run(slug, lambda c: limits_area.widen(c.company))
            scratch.run(slug, lambda c: customers_area.restore(c.session, c.company.id, rec.customers))
            for _rid, _v, content, author, effective in rec.versions:
                scratch.run(slug, lambda c, doc=content, a=author, e=effective:
                            versions.publish(c.session, c.company.id, doc, a, e))
            for draft in drafts:
                scratch.run(
                    slug, lambda c, doc=draft: versions.publish(c.session, c.company.id, doc, "simulation", start)
                )
            results: list[dict[str, Any]] = []
            for i in range(0, len(rec.events), events.BATCH):
                part = rec.events[i:i + events.BATCH]
                results += events.post_events(scratch, slug, part)
                if progress is not None:
                    progress(len(part))
            bad = [r for r in results if r.get("status") in ("rejected", "error")]
            if bad:
                raise InvalidDocument(f"{len(bad)} of the events cannot be replayed", [
                    Problem(f"event {r.get('event') or '?'}", r.get("message", "rejected")) for r in bad[:20]])
            due.run(scratch, slug, end + timedelta(days=1))
            return scratch.run(slug, lambda c: _measure(c, start, end, results), read_only=True)
        finally:
            scratch.close()


def _measure(c: Ctx, start: date, end: date, results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    point_value = next((Decimal(r.point_value) for r in in_force(c, "EarningRules", end) if r.point_value), Decimal(0))
    per: dict[str, dict[str, Any]] = {}
    for cust in customers_area.copy_rows(c.session, c.company.id):
        per[cust["id"]] = {"name": cust["name"], "points": points.balance(c, cust["id"]), "allowance": 0, "revenue": 0}
    for m in memberships.all_of_company(c):
        _ref, terms = memberships.plan_of(c, m)
        if terms.has_allowance:
            st = allowance.state(c, m, terms)
            per[m.customer_id]["allowance"] += st.balance - st.overdraft_used
    for r in results:
        day = date.fromisoformat(r.get("local_date", "1970-01-01"))
        if start <= day <= end and r.get("status") in ("approved", "processed"):
            cents = to_cents(r["charge"]) if r.get("charge") else to_cents(r["charged"]) if r.get("charged") else 0
            per[r["customer"]["id"]]["revenue"] += cents
    for row in per.values():
        row["liability_cents"] = int(Decimal(row["points"]) * point_value * 100)
    return per


@dataclass(frozen=True)
class SimulationLimits:
    """How much a simulation may take on. A web request's are small, so that it answers in
    seconds; larger ones run as a background job (`POST /api/v1/simulations` answers 202 with
    where to follow it, when workers are configured) or from the CLI (`keepwell rulesets simulate`)."""

    max_events: int = 500  # sample events sent with the request
    max_recorded: int = 5_000  # recorded events the range holds
    max_days: int = 3 * 366
    max_days_ahead: int = 366


REQUEST_LIMITS = SimulationLimits()
BACKGROUND_LIMITS = SimulationLimits(max_events=200_000, max_recorded=2_000_000, max_days=20 * 366,
                                     max_days_ahead=5 * 366)
CLI_LIMITS = SimulationLimits(max_events=10**7, max_recorded=10**8, max_days=100 * 366, max_days_ahead=10 * 366)


class SimulationTooLarge(InvalidDocument):
    """More than these limits allow: a background job (or the CLI) may take it on."""


def check_size(limits: SimulationLimits, today: date, start: date, end: date, stream: list[dict] | None) -> None:
    problems = []
    if start > end:
        problems.append(Problem("from", "the range ends before it starts"))
    elif (end - start).days > limits.max_days:
        problems.append(Problem("to", f"the range is {(end - start).days + 1} days; a simulation here covers at most "
                                f"{limits.max_days} days (run longer ones with `keepwell rulesets simulate`)"))
    if (end - today).days > limits.max_days_ahead:
        problems.append(Problem("to", f"{end} is more than {limits.max_days_ahead} days ahead"))
    if stream is not None and len(stream) > limits.max_events:
        problems.append(Problem("events", f"{len(stream)} sample events; a simulation here takes at most "
                                f"{limits.max_events} (run larger ones with `keepwell rulesets simulate`)"))
    if problems:
        raise SimulationTooLarge("the simulation is too large", problems)


def simulate(app: Keepwell, company: str, drafts: dict | list[dict], start: date, end: date,
             stream: list[dict] | None = None, limits: SimulationLimits = REQUEST_LIMITS,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """`drafts` (one ruleset, or several, e.g. a pack's with other parameters) against what is
    published, over the recorded events up to `end` or over a sample `stream` of events.
    `progress(done, total)` hears how many events of the two replays are done."""
    check_size(limits, app.clock.now().date(), start, end, stream)
    drafts = [drafts] if isinstance(drafts, dict) else list(drafts)
    problems = [
        p for i, d in enumerate(drafts) for p in validate_ruleset(d, f"draft[{i}]" if len(drafts) > 1 else "draft")
    ]
    if problems:
        raise InvalidDocument("the draft is not valid", problems)
    rec = record(app, company, end)
    if stream is not None:
        rec = Recorded(rec.company, rec.customers, rec.versions, list(stream))
    elif len(rec.events) > limits.max_recorded:
        raise SimulationTooLarge("the simulation is too large", [Problem(
            "from", f"the range holds {len(rec.events)} recorded events; a simulation here replays at most "
            f"{limits.max_recorded} (choose a shorter range, or run it in the background)")])
    total, done = 2 * len(rec.events), [0]

    def replayed(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    before = _replay(rec, [], start, end, replayed)
    after = _replay(rec, drafts, start, end, replayed)
    members, totals = [], {"points": 0, "allowance": 0, "revenue": 0, "liability_cents": 0}
    for cid in sorted(before):
        b, a = before[cid], after.get(cid, before[cid])
        delta = {k: a[k] - b[k] for k in totals}
        for k in totals:
            totals[k] += delta[k]
        if any(delta.values()):
            members.append({"customer": cid, "name": b["name"],
                            "points": {"published": b["points"], "draft": a["points"], "change": delta["points"]},
                            "allowance": _money(b["allowance"], a["allowance"]),
                            "revenue": _money(b["revenue"], a["revenue"]),
                            "points_liability": _money(b["liability_cents"], a["liability_cents"])})
    return {
        "draft": ", ".join(f"{d['metadata']['id']} (draft)" for d in drafts),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "events": len(rec.events),
        "source": "sample stream" if stream is not None else "recorded",
        "members_changed": len(members),
        "members": members,
        "total": {
            "points": totals["points"],
            "allowance": format_cents(totals["allowance"]),
            "revenue": format_cents(totals["revenue"]),
            "points_liability": format_cents(totals["liability_cents"]),
        },
    }


def _money(before: int, after: int) -> dict[str, str]:
    return {"published": format_cents(before), "draft": format_cents(after), "change": format_cents(after - before)}
