"""What-if: replay a company's recorded events with a draft ruleset in place of its published
version, and report per member and in total what would change (points, allowance, revenue,
points liability). Nothing is written to the company's ledgers: both runs happen in scratch
databases, from the same recorded events, through the same pipeline as real traffic, so the
simulated result is exactly what publishing the draft and replaying the events would give.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from .config import Settings
from .errors import InvalidDocument, Problem
from .events import PLATFORM_ONLY
from .models import Customer, Event, Membership, Ruleset, RulesetVersion
from .money import format_cents, to_cents
from .validation import validate_ruleset


@dataclass(frozen=True)
class Recorded:
    company: dict
    customers: list[dict]
    versions: list[tuple[int, int, dict, str, date]]  # (ruleset order, version, content, author, effective_from)
    events: list[dict]


def record(app, company: str, end: date) -> Recorded:
    """The company's rulesets, customers and external events up to `end` (inclusive)."""

    def work(c):
        customers = [{"id": x.id, "name": x.name, "email": x.email} for x in
                     c.session.scalars(sa.select(Customer).where(Customer.company_id == c.company.id).order_by(Customer.id))]
        versions = [(v.ruleset_id, v.version, v.content, v.author, v.effective_from) for v in c.session.scalars(
            sa.select(RulesetVersion).join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
            .where(Ruleset.company_id == c.company.id).order_by(RulesetVersion.ruleset_id, RulesetVersion.version))]
        evs = [e.payload for e in c.session.scalars(
            sa.select(Event).where(Event.company_id == c.company.id, Event.local_date <= end,
                                   Event.type.not_in(PLATFORM_ONLY)).order_by(Event.local_date, Event.id))]
        return Recorded({"slug": c.company.slug, "name": c.company.name, "timezone": c.company.timezone},
                        customers, versions, evs)

    return app.run(company, work)


def _replay(rec: Recorded, drafts: list[dict], start: date, end: date) -> dict:
    from .service import Keepwell

    with tempfile.TemporaryDirectory() as d:
        scratch = Keepwell.from_settings(Settings.from_env({"KEEPWELL_DATABASE_URL": f"sqlite:///{d}/sim.sqlite3"}), rules=None)
        try:
            slug = rec.company["slug"]
            scratch.init(slug, rec.company["name"], rec.company["timezone"])
            scratch.run(slug, lambda c: c.session.add_all(
                [Customer(id=x["id"], company_id=c.company.id, name=x["name"], email=x["email"]) for x in rec.customers]))
            for _rid, _v, content, author, effective in rec.versions:
                scratch.publish(content, author, effective, company=slug)
            for draft in drafts:
                scratch.publish(draft, "simulation", start, company=slug)
            results = [scratch.post_event(e, company=slug) for e in rec.events]
            scratch.run_due(end + timedelta(days=1), company=slug)
            return _measure(scratch, slug, start, end, results)
        finally:
            scratch.close()


def _measure(app, slug: str, start: date, end: date, results: list[dict]) -> dict:
    from . import allowance, memberships, points
    from .rules import in_force

    def work(c):
        point_value = next((Decimal(r.point_value) for r in in_force(c, "EarningRules", end) if r.point_value), Decimal(0))
        per: dict[str, dict] = {}
        for cust in c.session.scalars(sa.select(Customer).where(Customer.company_id == c.company.id)):
            per[cust.id] = {"name": cust.name, "points": points.balance(c, cust.id), "allowance": 0, "revenue": 0}
        for m in c.session.scalars(sa.select(Membership).where(Membership.company_id == c.company.id)):
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

    return app.run(slug, work)


def simulate(app, company: str, drafts: dict | list[dict], start: date, end: date, stream: list[dict] | None = None) -> dict:
    """`drafts` (one ruleset, or several, e.g. a pack's with other parameters) against what is
    published, over the recorded events up to `end` or over a sample `stream` of events."""
    drafts = [drafts] if isinstance(drafts, dict) else list(drafts)
    problems = [p for i, d in enumerate(drafts) for p in validate_ruleset(d, f"draft[{i}]" if len(drafts) > 1 else "draft")]
    if problems:
        raise InvalidDocument("the draft is not valid", problems)
    if start > end:
        raise InvalidDocument("bad range", [Problem("--from", "the range ends before it starts")])
    rec = record(app, company, end)
    if stream is not None:
        rec = Recorded(rec.company, rec.customers, rec.versions, list(stream))
    before = _replay(rec, [], start, end)
    after = _replay(rec, drafts, start, end)
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
    return {"draft": ", ".join(f"{d['metadata']['id']} (draft)" for d in drafts), "from": start.isoformat(),
            "to": end.isoformat(), "events": len(rec.events), "source": "sample stream" if stream is not None else "recorded",
            "members_changed": len(members), "members": members,
            "total": {"points": totals["points"], "allowance": format_cents(totals["allowance"]),
                      "revenue": format_cents(totals["revenue"]), "points_liability": format_cents(totals["liability_cents"])}}


def _money(before: int, after: int) -> dict:
    return {"published": format_cents(before), "draft": format_cents(after), "change": format_cents(after - before)}
