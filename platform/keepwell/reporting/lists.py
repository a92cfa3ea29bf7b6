"""The lists a contractor pages through (customers, memberships, the ledger, events), read
across the areas' tables, every one scoped to the company, with display-ready values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ..customers.models import Customer, Location
from ..events.models import Event
from ..infra.context import Ctx
from ..infra.paging import Listing, ListQuery, fetch
from ..kernel.errors import NotFound
from ..kernel.money import format_cents
from ..ledger.entries import amount_text
from ..ledger.models import Account, LedgerEntry
from ..memberships.models import Membership
from ..rulesets.models import Ruleset, RulesetVersion


@dataclass(frozen=True)
class Page:
    columns: list[tuple[str, str]]  # (key, label) in display order
    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size)) if self.page_size else 1


def _text(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _page(columns: list[tuple[str, str]], rows: list[dict[str, Any]], total: int, q: ListQuery) -> Page:
    return Page(columns, rows, total, q.page, q.page_size)


# --- customers ------------------------------------------------------------------------------------

CUSTOMER_COLUMNS = [("id", "Id"), ("name", "Name"), ("email", "Email"), ("phone", "Phone"),
                    ("location", "Location"), ("created_at", "Added")]


def customers(ctx: Ctx, q: ListQuery) -> Page:
    listing = Listing(
        sa.select(Customer.id, Customer.name, Customer.email, Customer.phone, Location.name.label("location"),
                  Customer.created_at)
        .outerjoin(Location, sa.and_(Location.id == Customer.location_id, Location.company_id == ctx.company.id))
        .where(Customer.company_id == ctx.company.id),
        search=(Customer.name, Customer.email, Customer.phone, Customer.id), search_digits=(Customer.phone,),
        filters={"name": Customer.name, "email": Customer.email, "location": Customer.location_id},
        date_filters={"created_at": Customer.created_at},
        sorts={"created_at": Customer.created_at, "name": Customer.name, "email": Customer.email},
        default_sort="created_at", tiebreak=Customer.id)
    rows, total = fetch(ctx.session, listing, q, lambda r: {k: _text(r[k]) for k, _ in CUSTOMER_COLUMNS})
    return _page(CUSTOMER_COLUMNS, rows, total, q)


def customer(ctx: Ctx, customer_id: str) -> dict[str, str]:
    found = (
        ctx.session.execute(
            sa.select(Customer.id, Customer.name, Customer.email, Customer.phone, Location.name.label("location"),
                      Customer.created_at, Customer.service_address, Customer.location_id)
            .outerjoin(Location, sa.and_(Location.id == Customer.location_id, Location.company_id == ctx.company.id))
            .where(Customer.company_id == ctx.company.id, Customer.id == customer_id)
        )
        .mappings()
        .first()
    )
    if found is None:
        raise NotFound(f"no customer {customer_id!r}")
    return {k: _text(found[k]) for k in (*(k for k, _ in CUSTOMER_COLUMNS), "service_address", "location_id")}


# --- memberships ----------------------------------------------------------------------------------

MEMBERSHIP_COLUMNS = [("id", "Id"), ("customer_name", "Customer"), ("plan", "Plan"), ("plan_version", "Plan version"),
                      ("tier", "Tier"), ("period", "Period"), ("issued_on", "Issued on"),
                      ("current_period", "Period no."), ("expires_on", "Expires on"), ("status", "Status"),
                      ("allowance", "Allowance balance")]


def memberships(ctx: Ctx, q: ListQuery) -> Page:
    allowance = (sa.select(Account.owner, Account.balance)
                 .where(Account.company_id == ctx.company.id, Account.unit == "allowance").subquery())
    listing = Listing(
        sa.select(Membership.id, Membership.customer_id, Customer.name.label("customer_name"),
                  Ruleset.key.label("plan"), RulesetVersion.version.label("plan_version"), Membership.tier,
                  Membership.period, Membership.issued_on, Membership.current_period, Membership.expires_on,
                  Membership.status, allowance.c.balance.label("allowance"))
        .join(Customer, Customer.id == Membership.customer_id)
        .join(RulesetVersion, RulesetVersion.id == Membership.plan_version_id)
        .join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
        .outerjoin(allowance, allowance.c.owner == Membership.id)
        .where(Membership.company_id == ctx.company.id),
        search=(Membership.id, Membership.customer_id, Membership.tier, Customer.name, Customer.email,
                Customer.phone), search_digits=(Customer.phone,),
        filters={"status": Membership.status, "tier": Membership.tier, "period": Membership.period,
                 "customer": Membership.customer_id, "plan": Ruleset.key, "location": Customer.location_id},
        date_filters={"issued_on": Membership.issued_on, "expires_on": Membership.expires_on},
        sorts={"issued_on": Membership.issued_on, "expires_on": Membership.expires_on, "customer": Customer.name,
               "status": Membership.status},
        default_sort="issued_on", tiebreak=Membership.id,
        # every membership has its customer and plan version: unfiltered, count the memberships
        count_all=sa.select(Membership.id).where(Membership.company_id == ctx.company.id))

    def row(r: Any) -> dict[str, Any]:
        out = {k: _text(r[k]) for k, _ in MEMBERSHIP_COLUMNS if k != "allowance"}
        out["allowance"] = "" if r["allowance"] is None else format_cents(r["allowance"])
        out["customer_id"] = r["customer_id"]
        return out

    rows, total = fetch(ctx.session, listing, q, row)
    return _page(MEMBERSHIP_COLUMNS, rows, total, q)


# --- the ledger -----------------------------------------------------------------------------------

LEDGER_COLUMNS = [("effective_date", "Date"), ("member", "Member"), ("owner", "Owner"), ("unit", "Unit"),
                  ("code", "Service"), ("kind", "Kind"), ("amount", "Amount"), ("balance_after", "Balance after"),
                  ("ruleset", "Ruleset version"), ("rule", "Rule"), ("event", "Event"), ("period", "Period"),
                  ("memo", "Memo")]


def ledger(ctx: Ctx, q: ListQuery) -> Page:
    """Entries newest day first (by id within a day), with the member's name: an account belongs
    to a membership or, for points, to the customer."""
    owned = aliased(Membership)
    member = aliased(Customer)
    listing = Listing(
        sa.select(LedgerEntry.id, LedgerEntry.effective_date, member.name.label("member"), Account.owner,
                  Account.unit, Account.code, LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.balance_after,
                  LedgerEntry.ruleset, LedgerEntry.rule, Event.key.label("event"), LedgerEntry.period,
                  LedgerEntry.memo)
        .join(Account, Account.id == LedgerEntry.account_id)
        .join(Event, Event.id == LedgerEntry.event_id)
        .outerjoin(owned, sa.and_(owned.id == Account.owner, owned.company_id == ctx.company.id))
        .outerjoin(member, sa.and_(member.id == sa.func.coalesce(owned.customer_id, Account.owner),
                                   member.company_id == ctx.company.id))
        .where(LedgerEntry.company_id == ctx.company.id),
        search=(LedgerEntry.rule, LedgerEntry.ruleset, LedgerEntry.memo, member.name, member.email),
        filters={"owner": Account.owner, "unit": Account.unit, "kind": LedgerEntry.kind,
                 "ruleset": LedgerEntry.ruleset, "rule": LedgerEntry.rule, "event": Event.key,
                 "location": member.location_id},
        date_filters={"effective_date": LedgerEntry.effective_date},
        sorts={"id": LedgerEntry.id, "effective_date": LedgerEntry.effective_date},
        default_sort="effective_date", tiebreak=LedgerEntry.id,
        # every entry has its account and event (the audit checks it): unfiltered, count the entries
        count_all=sa.select(LedgerEntry.id).where(LedgerEntry.company_id == ctx.company.id))

    def row(r: Any) -> dict[str, Any]:
        out = {k: _text(r[k]) for k, _ in LEDGER_COLUMNS}
        out["amount"] = str(amount_text(r["unit"], r["amount"]))
        out["balance_after"] = str(amount_text(r["unit"], r["balance_after"]))
        return out

    rows, total = fetch(ctx.session, listing, q, row)
    return _page(LEDGER_COLUMNS, rows, total, q)


# --- events ---------------------------------------------------------------------------------------

EVENT_COLUMNS = [("received_at", "Received"), ("key", "Event id"), ("type", "Type"), ("customer_name", "Customer"),
                 ("customer_id", "Customer id"), ("membership_id", "Membership"), ("local_date", "Date"),
                 ("status", "Status"), ("summary", "What happened"), ("result", "Result")]
# What an event's result says first, in this order (the rest is a click away).
_SUMMARY_KEYS = ("message", "reason", "charged", "from_overdraft", "membership", "plan", "tier", "points",
                 "balance", "refund", "status")


def summary(result: Any) -> str:
    """An event's result in one line: its telling values, "key value; key value"."""
    if not isinstance(result, dict):
        return ""
    parts = [f"{k.replace('_', ' ')} {result[k]}" for k in _SUMMARY_KEYS
             if isinstance(result.get(k), (str, int)) and not isinstance(result.get(k), bool) and result.get(k) != ""]
    return "; ".join(parts[:4])


def events(ctx: Ctx, q: ListQuery) -> Page:
    """Events newest day first (by arrival within a day), with the customer's name and a line
    saying what each did."""
    listing = Listing(
        sa.select(Event.id, Event.received_at, Event.key, Event.type, Customer.name.label("customer_name"),
                  Event.customer_id, Event.membership_id, Event.local_date, Event.status, Event.result)
        .outerjoin(Customer, sa.and_(Customer.id == Event.customer_id, Customer.company_id == ctx.company.id))
        .where(Event.company_id == ctx.company.id),
        search=(Event.key, Event.customer_id, Event.membership_id, Customer.name, Customer.email),
        filters={"type": Event.type, "status": Event.status, "customer": Event.customer_id,
                 "membership": Event.membership_id, "key": Event.key, "location": Customer.location_id},
        date_filters={"local_date": Event.local_date},
        sorts={"id": Event.id, "local_date": Event.local_date},
        default_sort="local_date", tiebreak=Event.id)

    def row(r: Any) -> dict[str, Any]:
        out = {k: _text(r[k]) for k, _ in EVENT_COLUMNS if k not in ("result", "summary")}
        out["summary"] = summary(r["result"])
        out["result"] = json.dumps(r["result"], sort_keys=True)
        out["id"] = r["id"]
        return out

    rows, total = fetch(ctx.session, listing, q, row)
    return _page(EVENT_COLUMNS, rows, total, q)


def event(ctx: Ctx, event_id: int) -> dict[str, Any]:
    e = ctx.session.scalar(sa.select(Event).where(Event.company_id == ctx.company.id, Event.id == event_id))
    if e is None:
        raise NotFound(f"no event {event_id}")
    return {"key": e.key, "type": e.type, "customer_id": e.customer_id, "membership_id": e.membership_id,
            "occurred_at": _text(e.occurred_at), "local_date": _text(e.local_date), "status": e.status,
            "payload": json.dumps(e.payload, sort_keys=True, indent=2),
            "result": json.dumps(e.result, sort_keys=True, indent=2), "received_at": _text(e.received_at)}


def dashboard(ctx: Ctx) -> dict[str, int]:
    def count(model: Any, *where: Any) -> int:
        return int(ctx.session.scalar(sa.select(sa.func.count()).select_from(model)
                                      .where(model.company_id == ctx.company.id, *where)) or 0)

    return {"customers": count(Customer), "active_memberships": count(Membership, Membership.status == "active"),
            "rulesets": count(Ruleset), "events": count(Event)}
