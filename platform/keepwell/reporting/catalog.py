"""The reports a company can run, each declared once with the filters it takes:

    @report("points", "Points economy", "Earned, redeemed and expired points per month...",
            filters=("from", "to", "location"))
    def points(ctx, p: Params) -> Report: ...

The CLI (`keepwell report NAME`), the API (`/api/v1/reports/NAME`), the admin's Reports page
and scheduled deliveries all run a report through `run`, so they show the same figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ..customers import locations
from ..customers.models import Customer
from ..infra.context import Ctx
from ..kernel.errors import InvalidDocument, NotFound, Problem
from ..memberships import memberships
from ..memberships.models import Membership
from ..rulesets.models import Ruleset, RulesetVersion
from .report import Report

# Every filter a report may take, and what it means (the CLI's help, the API's parameters).
FILTERS = {
    "from": "First day (YYYY-MM-DD; default: the first day of the month eleven months before --to)",
    "to": "Last day (YYYY-MM-DD; default: today, company time)",
    "location": "Only the customers of this location (its id or name)",
    "plan": "Only memberships of this plan (its id)",
    "tier": "Only memberships on this tier (its id)",
    "membership": "One membership (its id)",
    "customer": "One customer's memberships (their id)",
}
MOST_DAYS = 366 * 10  # a range longer than ten years is a typo


@dataclass(frozen=True)
class Params:
    """What a report is run for: a date range (both ends included) and the filters it takes
    (resolved: a location given by name is its id here)."""

    start: date
    end: date
    location: str | None = None
    plan: str | None = None
    tier: str | None = None
    membership: str | None = None
    customer: str | None = None

    def shown(self) -> dict[str, str]:
        out = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        for name in ("location", "plan", "tier", "membership", "customer"):
            if getattr(self, name):
                out[name] = str(getattr(self, name))
        return out


Build = Callable[[Ctx, Params], Report]


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    description: str
    filters: tuple[str, ...]
    build: Build

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description,
                "filters": [{"name": f, "description": FILTERS[f]} for f in self.filters]}


REPORTS: dict[str, ReportSpec] = {}


def report(name: str, title: str, description: str,
           filters: tuple[str, ...] = ("from", "to")) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        assert name not in REPORTS, name
        assert all(f in FILTERS for f in filters), filters
        REPORTS[name] = ReportSpec(name, title, description, filters, build)
        return build
    return register


def spec(name: str) -> ReportSpec:
    _load()
    found = REPORTS.get(name)
    if found is None:
        raise NotFound(f"there is no report {name!r}: the reports are {', '.join(sorted(REPORTS))}")
    return found


def listing() -> list[ReportSpec]:
    order = _load()
    return sorted(REPORTS.values(), key=lambda s: (order.index(s.name) if s.name in order else len(order), s.name))


def _load() -> tuple[str, ...]:
    from . import reports  # each module registers its reports

    return reports.ORDER


def default_start(end: date) -> date:
    """The first day of the month eleven months before `end`'s: twelve calendar months."""
    months = end.year * 12 + end.month - 1 - 11
    return date(months // 12, months % 12 + 1, 1)


def params(ctx: Ctx, name: str, given: dict[str, Any]) -> Params:
    """The filters given for report `name`, checked and resolved; a filter the report does not
    take, a bad date or an unknown plan, location or membership is an error naming the field."""
    s = spec(name)
    problems = [Problem(k, f"the {s.title} report has no filter {k}: it takes {', '.join(s.filters)}")
                for k, v in given.items() if v not in (None, "") and k not in s.filters]
    if problems:
        raise InvalidDocument(f"the {s.title} report cannot be run for that", problems)
    end = _day(given.get("to"), "to") or ctx.today()
    start = _day(given.get("from"), "from") or default_start(end)
    if start > end:
        raise InvalidDocument.field("from", "must be on or before the last day (to)")
    if end - start > timedelta(days=MOST_DAYS):
        raise InvalidDocument.field("from", "reports cover at most ten years: choose a later first day")
    p = Params(start, end)
    if given.get("location"):
        p = replace(p, location=locations.find(ctx, str(given["location"])).id)
    if given.get("plan"):
        p = replace(p, plan=_plan(ctx, str(given["plan"])))
    if given.get("tier"):
        p = replace(p, tier=str(given["tier"]))
    if given.get("membership"):
        p = replace(p, membership=memberships.get(ctx, str(given["membership"])).id)
    if given.get("customer"):
        cid = str(given["customer"])
        if ctx.session.scalar(sa.select(Customer.id).where(Customer.company_id == ctx.company.id,
                                                           Customer.id == cid)) is None:
            raise InvalidDocument.field("customer", f"there is no customer {cid}")
        p = replace(p, customer=cid)
    return p


def _day(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidDocument.field(field, "must be a date like 2026-01-31") from None


def _plan(ctx: Ctx, key: str) -> str:
    found = ctx.session.scalar(sa.select(Ruleset.key).where(Ruleset.company_id == ctx.company.id,
                                                            Ruleset.key == key, Ruleset.kind == "Plan"))
    if found is None:
        raise InvalidDocument.field("plan", f"there is no plan {key[:60]!r}")
    return found


def currency(ctx: Ctx, p: Params) -> str:
    """The currency a report's amounts are in: its plan's (the filter's, else the company's first
    plan's); USD for a company with no plan yet."""
    q = (sa.select(RulesetVersion.content).join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
         .where(Ruleset.company_id == ctx.company.id, Ruleset.kind == "Plan"))
    if p.plan:
        q = q.where(Ruleset.key == p.plan)
    content = ctx.session.scalar(q.order_by(Ruleset.id, RulesetVersion.id.desc()).limit(1))
    return str(((content or {}).get("spec") or {}).get("currency") or "USD")


def run(ctx: Ctx, name: str, p: Params) -> Report:
    r = spec(name).build(ctx, p)
    r.company, r.generated_on = ctx.company.name, ctx.today().isoformat()
    return r


# --- what most reports filter memberships by -----------------------------------------------------

def membership_scope(ctx: Ctx, p: Params) -> list[Any]:
    """The conditions on `Membership` for the company and the filters given (location, plan,
    tier, membership, customer): one place, so that every report counts the same members."""
    where: list[Any] = [Membership.company_id == ctx.company.id]
    if p.location:
        where.append(Membership.customer_id.in_(sa.select(Customer.id).where(
            Customer.company_id == ctx.company.id, Customer.location_id == p.location)))
    if p.plan:
        where.append(memberships.of_plan(ctx, p.plan))
    if p.tier:
        where.append(Membership.tier == p.tier)
    if p.membership:
        where.append(Membership.id == p.membership)
    if p.customer:
        where.append(Membership.customer_id == p.customer)
    return where


def customer_scope(ctx: Ctx, p: Params) -> list[Any]:
    """The conditions on `Customer` for the company and the location (and customer) given."""
    where: list[Any] = [Customer.company_id == ctx.company.id]
    if p.location:
        where.append(Customer.location_id == p.location)
    if p.customer:
        where.append(Customer.id == p.customer)
    return where
