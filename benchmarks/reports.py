"""Every report over 100,000 memberships and 1,000,000 ledger entries on PostgreSQL: a company on
a fresh database with three plans published through the use cases (the HVAC and pest-control
packs — a yearly and a quarterly allowance period — and a plan of our own with a monthly
allowance, each with three tiers, billed monthly, quarterly or yearly), two locations, and five
years of history written by bulk insert (COPY), not through the pipeline: customers and their
memberships (more enrolled in recent years, as a growing business has; active, cancelled and
expired, some changed tier), the events that explain every entry (enrolled, renewed, purchase,
service_completed, cancelled, expired, points_expired, redemption, payment_failed), the ledger
(allowance grants, debits, overdraft and its recovery, unused allowance expiring; visits granted,
used and lapsing; points earned, redeemed and expired, with their lots and draws), billing
schedules, invoices with their membership_fee lines, payments (some failed, most of those then
recovered), credit notes with their refunds, redemptions from the catalog — and non-members who
bought or had a service (a report's conversion opportunities).

Each report in the catalog (`keepwell report list`) is then run through the use case for the
last twelve months (the statement also for one plan): one warm-up, then the best of three. Beside
it, in the same run, a plain `SELECT count(*)` of each table the report's SQL read (seen on the
engine while it ran; memberships and ledger_entries always): the best of three of those counts
together is the report's baseline, and its ratio says how many full counts of its tables a report
costs. Reports over five seconds are named.

    python -m benchmarks [--quick] --only reports_postgresql
    python -m benchmarks.reports --memberships 100000 --entries 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from keepwell.billing.models import (
    BillingSchedule,
    CreditNote,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Payment,
    PaymentMethod,
)
from keepwell.customers.models import Customer
from keepwell.events.models import Event
from keepwell.infra.bulk import Writes
from keepwell.ledger.models import Account, LedgerEntry, LotDraw, PointsLot
from keepwell.memberships.models import Membership
from keepwell.reporting.catalog import default_start
from keepwell.rewards.models import Redemption
from keepwell.usecases import audit, companies, locations, packs, reports, rulesets

from .common import COMPANY, fresh_app

SLOW_SECONDS = 5.0
YEARS = 5
# A plan of our own beside the packs': the allowance renews every month.
HOME_PLAN = {
    "apiVersion": "keepwell/v1", "kind": "Plan",
    "metadata": {"id": "home-care-club", "name": "Home Care Club"},
    "spec": {"currency": "USD",
             "allowance": {"amount": "40.00", "period": "monthly", "unused": "carry_forward",
                           "overdraft": {"limit": "20.00"}},
             "price": {"monthly": "19.00", "quarterly": "54.00", "yearly": "199.00"},
             "tiers": [{"id": "standard", "name": "Standard"},
                       {"id": "plus", "name": "Plus", "price": {"monthly": "29.00", "quarterly": "84.00",
                                                                 "yearly": "299.00"},
                        "allowance_amount": "80.00", "overdraft_limit": "40.00"},
                       {"id": "max", "name": "Max", "price": {"monthly": "49.00", "quarterly": "144.00",
                                                               "yearly": "499.00"},
                        "allowance_amount": "150.00", "overdraft_limit": "75.00"}]}}
HOME_RULES = {
    "apiVersion": "keepwell/v1", "kind": "EarningRules",
    "metadata": {"id": "home-care-rewards", "name": "Home Care Rewards"},
    "spec": {"point_value": "0.01", "expiry": {"after_months": 12},
             "rules": [{"id": "home-spend-points", "when": {"event": "purchase", "all": [
                 {"field": "member.plan", "eq": "home-care-club"}]},
                 "earn": {"points": 1, "per": "1.00", "of": "data.amount"}}]}}
# Which plan a membership is on (share of memberships), and its tiers' shares.
PLAN_SHARES = {"hvac-comfort-club": 0.65, "pestshield-plan": 0.2, "home-care-club": 0.15}
TIER_SHARES = (0.55, 0.3, 0.15)
CADENCE_SHARES = {"monthly": 0.4, "quarterly": 0.25, "yearly": 0.35}
PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}
# Points each plan's members earn, and for what (the published earning rules' ids).
POINTS = {"hvac-comfort-club": ("hvac-comfort-rewards", "hvac-spend-points", "hvac-tune-up-points",
                                "hvac-renewal-bonus"),
          "pestshield-plan": ("pestshield-rewards", None, "pestshield-treatment-points", None),
          "home-care-club": ("home-care-rewards", "home-spend-points", None, None)}
MULTIPLIER = {"premium": 1.5, "elite": 2.0}
REWARD = ("hvac-comfort-rewards-catalog", "hvac-filter-discount", "$25 off an air filter replacement",
          "service_discount", 2500)
FIRST = ("Olive", "Dana", "Eli", "Frank", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam", "Maya", "Noah")
LAST = ("Whitfield", "Navarro", "Osei", "Kowalski", "Nguyen", "Okafor", "Larsen", "Moreau", "Tanaka", "Silva")
TABLES = ("customers", "payment_methods", "memberships", "billing_schedules", "accounts", "events", "ledger_entries",
          "points_lots", "lot_draws", "invoices", "invoice_lines", "payments", "credit_notes", "reward_redemptions")
MODELS = {"customers": Customer, "payment_methods": PaymentMethod, "memberships": Membership,
          "billing_schedules": BillingSchedule, "accounts": Account, "events": Event, "ledger_entries": LedgerEntry,
          "points_lots": PointsLot, "lot_draws": LotDraw, "invoices": Invoice, "invoice_lines": InvoiceLine,
          "payments": Payment, "credit_notes": CreditNote, "reward_redemptions": Redemption}


@dataclass
class Tier:
    id: str
    name: str
    prices: dict[str, int]  # cents per billing cadence
    allowance: int  # cents a period (0: none)
    overdraft: int
    services: dict[str, tuple[str, int]]  # code -> (name, quantity a period)


@dataclass
class Plan:
    key: str
    name: str
    ref: str  # id@version
    version_id: int
    period: str
    unused: str
    tiers: list[Tier]


def _cents(text: Any) -> int:
    whole, _, frac = str(text).partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def _plans(app: Any) -> dict[str, Plan]:
    """The published plans' terms, read back from their versions (tiers replace what they set)."""
    with app.database.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT r.key, v.id, v.version, v.content FROM rulesets r JOIN ruleset_versions v ON v.ruleset_id = r.id "
            "WHERE r.kind = 'Plan' ORDER BY v.id")).all()
    plans = {}
    for key, vid, version, content in rows:
        doc = content if isinstance(content, dict) else json.loads(content)
        spec = doc["spec"]
        allowance = spec.get("allowance") or {}
        tiers = []
        for t in spec["tiers"]:
            services = t.get("included_services", spec.get("included_services", []))
            tiers.append(Tier(t["id"], t.get("name", t["id"]),
                              {c: _cents(v) for c, v in (t.get("price") or spec["price"]).items()},
                              _cents(t.get("allowance_amount", allowance.get("amount", "0"))),
                              _cents(t.get("overdraft_limit", (allowance.get("overdraft") or {}).get("limit", "0"))),
                              {s["code"]: (s.get("name", s["code"]), int(s["quantity"])) for s in services}))
        plans[key] = Plan(key, doc["metadata"]["name"], f"{key}@{version}", vid,
                          allowance.get("period") or spec.get("period") or "yearly",
                          allowance.get("unused", "expire"), tiers)
    return plans


def add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    last = (date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)).day
    return date(y, m, min(d.day, last))


@dataclass
class Points:
    """A customer's points account as it is built: the operations, replayed in date order at the end."""

    ops: list[tuple[date, int, str, int, str]] = field(default_factory=list)  # (day, event, ruleset, amount, rule)


class Builder:
    """Rows for every table, written by COPY in batches; ids given here, after what the use cases wrote."""

    def __init__(self, app: Any, today: date, rng: random.Random, plans: dict[str, Plan], locs: list[tuple[str, float]]):
        self.engine, self.today, self.rng, self.plans, self.locs = app.database.engine, today, rng, plans, locs
        self.tables: dict[str, sa.Table] = {name: MODELS[name].__table__ for name in TABLES}  # type: ignore[misc]
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        with self.engine.connect() as conn:
            self.company = conn.scalar(sa.text("SELECT id FROM companies WHERE slug = :s"), {"s": COMPANY})
            self.next = {name: (conn.scalar(sa.text(f"SELECT max(id) FROM {name}")) or 0) + 1
                         for name in TABLES if name not in ("customers", "payment_methods", "memberships",
                                                            "billing_schedules", "reward_redemptions")}
            counters = conn.execute(sa.text("SELECT last_number, last_credit_note FROM invoice_counters "
                                            "WHERE company_id = :c"), {"c": self.company}).first()
        self.invoice_number: int = int(counters[0]) if counters else 0
        self.credit_number: int = int(counters[1]) if counters else 0
        self.counts = {name: 0 for name in TABLES}
        self.created = datetime.now(UTC)
        self.serial = 0

    # --- ids and rows --------------------------------------------------------------------------
    def id(self, table: str) -> int:
        n = self.next[table]
        self.next[table] = n + 1
        return n

    def token(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{self.serial:08x}{self.rng.getrandbits(32):08x}"

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        self.rows[table].append(row)
        return row

    def event(self, key: str, type_: str, customer: str, membership: str | None, day: date, data: dict[str, Any],
              hour: int = 0) -> int:
        eid = self.id("events")
        at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        payload = {"id": key, "type": type_, "customer": customer, "occurred_at": at.isoformat(), "data": data}
        self.add("events", id=eid, company_id=self.company, key=key, type=type_, customer_id=customer,
                 membership_id=membership, occurred_at=at, local_date=day, payload=payload,
                 payload_hash=hashlib.sha256(key.encode()).hexdigest(), status="processed",
                 result={"event": key, "type": type_, "local_date": day.isoformat(), "status": "processed"},
                 received_at=self.created)
        return eid

    def account(self, owner: str, unit: str, code: str = "", currency: str | None = None) -> dict[str, Any]:
        return self.add("accounts", id=self.id("accounts"), company_id=self.company, owner=owner, unit=unit, code=code,
                        balance=0, currency=currency)

    def entry(self, acct: dict[str, Any], kind: str, amount: int, event: int, ruleset: str, rule: str, day: date,
              period: int | None, memo: str | None = None) -> int:
        acct["balance"] += amount
        eid = self.id("ledger_entries")
        self.add("ledger_entries", id=eid, company_id=self.company, account_id=acct["id"], kind=kind, amount=amount,
                 balance_after=acct["balance"], currency=acct["currency"], event_id=event, ruleset=ruleset, rule=rule,
                 period=period, effective_date=day, memo=memo, created_at=self.created)
        return eid

    def flush(self) -> None:
        with self.engine.begin() as conn:
            writes = Writes(conn)
            for name in TABLES:
                if self.rows[name]:
                    self.counts[name] += len(self.rows[name])
                    writes.insert(self.tables[name], self.rows[name])
                    self.rows[name] = []
            writes.finish()

    # --- one customer ---------------------------------------------------------------------------
    def customer(self, memberships: int, rates: dict[str, float]) -> int:
        """A customer with `memberships` memberships (0: a non-member who bought or had a service;
        2: a change of tier, the second starting the day the first ended). Returns the memberships made."""
        rng = self.rng
        cid = self.token("cus")
        first, last = rng.choice(FIRST), rng.choice(LAST)
        loc, _rate = rng.choice(self.locs)
        self.add("customers", id=cid, company_id=self.company, name=f"{first} {last}",
                 email=f"{first}.{last}.{self.serial}@example.com".lower(), phone=None, external_id=None,
                 created_at=self.created, location_id=loc, service_address=f"{rng.randint(1, 999)} Main St",
                 quiet_start=None, quiet_end=None)
        if memberships == 0:
            for j in range(rng.randint(1, 3)):
                day = self.today - timedelta(days=rng.randint(1, 700))
                if rng.random() < 0.6:
                    self.event(f"pos:{cid}:{j}", "purchase", cid, None, day,
                               {"amount": f"{rng.randint(80, 900)}.00", "pay_with": "card"}, 15)
                else:
                    self.event(f"svc:{cid}:{j}", "service_completed", cid, None, day, {"service_code": "REPAIR"}, 15)
            return 0
        pm = self.token("pm")
        self.add("payment_methods", id=pm, company_id=self.company, customer_id=cid, gateway="sandbox",
                 reference=f"sbx_success_{self.serial}", brand="visa", last4="4242", exp_month=12, exp_year=2034,
                 is_default=True, status="active", created_at=self.created)
        plan = self.plans[rng.choices(list(PLAN_SHARES), weights=list(PLAN_SHARES.values()))[0]]
        tier = rng.choices(plan.tiers, weights=TIER_SHARES[:len(plan.tiers)])[0]
        cadences = [c for c in CADENCE_SHARES if c in tier.prices]
        cadence = rng.choices(cadences, weights=[CADENCE_SHARES[c] for c in cadences])[0]
        # More members joined lately than five years ago: the age's density falls linearly.
        issued = self.today - timedelta(days=int(YEARS * 365 * (1 - rng.random() ** rates["skew"])) + 1)
        points = Points()
        replaced = None
        if (self.today - issued).days < 60:
            memberships = 1  # too new for a change of tier
        for n in range(memberships):
            change, after = None, None
            if n + 1 < memberships:  # a change of tier some way into this one's life (upgrades more often)
                change = issued + timedelta(days=rng.randint(30, (self.today - issued).days - 1))
                higher = [t for t in plan.tiers[plan.tiers.index(tier) + 1:]]
                lower = [t for t in plan.tiers[:plan.tiers.index(tier)]]
                after = rng.choice(higher if higher and (not lower or rng.random() < 0.7) else lower)
            mid = self.membership(cid, pm, plan, tier, cadence, issued, change, after, replaced, points, rates)
            if change is None or after is None:
                break
            tier = after
            if cadence not in tier.prices:
                cadence = next(iter(tier.prices))
            issued, replaced = change, mid
        self.points(cid, points, plan.key)
        return n + 1

    def membership(self, cid: str, pm: str, plan: Plan, tier: Tier, cadence: str, issued: date, change: date | None,
                   after: Tier | None, replaced: str | None, points: Points, rates: dict[str, float]) -> str:
        rng, today = self.rng, self.today
        mid = self.token("mem")
        months = PERIOD_MONTHS[plan.period]
        status, ended = "active", None
        if change is not None:
            status, ended = "cancelled", change
        elif rng.random() < 0.17:
            status = "cancelled"
            ended = issued + timedelta(days=rng.randint(10, max(11, (today - issued).days)))
            ended = min(ended, today)
        elif rng.random() < 0.12 and add_months(issued, months) <= today:
            status = "expired"
        # The periods lived: starts from the issue day, to the day it ended (or today).
        starts = [issued]
        while True:
            nxt = add_months(issued, months * len(starts))
            if nxt > (ended or today):
                break
            starts.append(nxt)
        if status == "expired":  # it did not renew at the end of a period: which one, at random
            starts = starts[:rng.randint(1, max(1, len(starts) - 1))] if len(starts) > 1 else starts
            ended = add_months(issued, months * len(starts)) - timedelta(days=1)
        k_now = len(starts) - 1
        expires = add_months(issued, months * (k_now + 1)) - timedelta(days=1)
        self.add("memberships", id=mid, company_id=self.company, customer_id=cid, plan_version_id=plan.version_id,
                 tier=tier.id, period=plan.period, issued_on=issued, current_period=k_now, expires_on=expires,
                 auto_renewal=status != "expired", status=status, ended_on=ended,
                 standing="past_due" if status == "active" and rng.random() < 0.02 else None, created_at=self.created)
        self.billing(mid, cid, pm, plan, tier, cadence, issued, ended, status, replaced)
        ruleset, spend_rule, service_rule, renewal_rule = POINTS[plan.key]
        pref = f"{ruleset}@1"
        mult = MULTIPLIER.get(tier.id, 1.0)
        allowance = overdraft = None
        if tier.allowance:
            allowance = self.account(mid, "allowance", currency="USD")
            overdraft = self.account(mid, "overdraft", currency="USD")
        visits = {code: self.account(mid, "visits", code) for code in tier.services}
        data = {"plan": plan.key, "tier": tier.id, "cadence": cadence}
        key = f"upgrade:{replaced}:{tier.id}:{issued}" if replaced else f"enroll:{cid}:{plan.key}:{issued}"
        ev = self.event(key, "enrolled", cid, mid, issued, data)
        last = ended or today
        for k, start in enumerate(starts):
            end = min(add_months(issued, months * (k + 1)) - timedelta(days=1), last)
            if k > 0:
                ev = self.event(f"renewed:{mid}:{k}", "renewed", cid, mid, start, {"membership": mid})
                self.close(plan, allowance, overdraft, visits, ev, start, k, renew=True)
                if renewal_rule:
                    points.ops.append((start, ev, pref, int(250 * mult if plan.period == "yearly" else 25 * mult),
                                       renewal_rule))
            if allowance is not None:
                self.entry(allowance, "grant", tier.allowance, ev, plan.ref, "plan.allowance.grant", start, k,
                           f"allowance for period {k}")
                if k > 0 and overdraft is not None and overdraft["balance"] < 0:
                    recover = min(-overdraft["balance"], allowance["balance"])
                    rule = "plan.allowance.overdraft_recovery"
                    self.entry(allowance, "overdraft_recovery", -recover, ev, plan.ref, rule, start, k,
                               "overdraft used last period, deducted from this period's allowance")
                    self.entry(overdraft, "overdraft_recovery", recover, ev, plan.ref, rule, start, k)
            for code, acct in visits.items():
                name, qty = tier.services[code]
                self.entry(acct, "grant", qty, ev, plan.ref, f"plan.services.{code}.grant", start, k,
                           f"{qty} x {name} for period {k}")
            days = (end - start).days + 1
            # What the member did that period, in date order.
            work: list[tuple[date, str, Any]] = []
            for _ in range(_poisson(rng, rates["purchases"] * days / 365)):
                work.append((start + timedelta(days=rng.randrange(days)), "purchase", rng.randint(20, 400) * 100))
            for code in visits:
                for _ in range(tier.services[code][1]):
                    if rng.random() < rates["visits_used"]:
                        work.append((start + timedelta(days=rng.randrange(days)), "service", code))
            work.sort(key=lambda w: w[0])
            for j, (day, what, value) in enumerate(work):
                if what == "purchase":
                    by_card = allowance is None or rng.random() < 0.3
                    e = self.event(f"pos:{mid}:{k}:{j}", "purchase", cid, mid, day,
                                   {"amount": f"{value // 100}.00", "pay_with": "card" if by_card else "membership"}, 15)
                    if not by_card and allowance is not None and overdraft is not None:
                        take = min(value, max(allowance["balance"], 0))
                        over = min(value - take, tier.overdraft + overdraft["balance"])
                        if take + over < value:  # declined: more than the allowance and overdraft left
                            self.rows["events"][-1].update(status="declined")
                            continue
                        if take:
                            self.entry(allowance, "debit", -take, e, plan.ref, "plan.allowance.debit", day, k)
                        if over:
                            self.entry(overdraft, "overdraft", -over, e, plan.ref, "plan.allowance.overdraft", day, k)
                    if spend_rule:
                        points.ops.append((day, e, pref, int(value // 100 * mult), spend_rule))
                else:
                    acct = visits[value]
                    if acct["balance"] <= 0:
                        continue
                    e = self.event(f"svc:{mid}:{k}:{j}", "service_completed", cid, mid, day, {"service_code": value}, 15)
                    self.entry(acct, "debit", -1, e, plan.ref, f"plan.services.{value}.used", day, k)
                    if service_rule:
                        points.ops.append((day, e, pref, int((100 if plan.key.startswith("hvac") else 62) * mult),
                                           service_rule))
        if status == "expired":
            assert ended is not None
            ev = self.event(f"expired:{mid}", "expired", cid, mid, ended + timedelta(days=1), {"membership": mid})
            self.close(plan, allowance, overdraft, visits, ev, ended + timedelta(days=1), k_now + 1, renew=False)
        elif status == "cancelled" and ended is not None:
            reason = f"changed to tier {after.id}" if after else "moving away"
            self.event(f"admin:cancelled:{mid}:{ended}" + (f":upgrade:{after.id}" if after else ""), "cancelled", cid,
                       mid, ended,
                       {"membership": mid, "reason": reason, "refund": "none" if change else "prorated"}, 12)
        return mid

    def close(self, plan: Plan, allowance: Any, overdraft: Any, visits: dict[str, Any], ev: int, day: date, k: int,
              renew: bool) -> None:
        if allowance is not None and allowance["balance"] > 0 and (plan.unused == "expire" or not renew):
            self.entry(allowance, "expire", -allowance["balance"], ev, plan.ref, "plan.allowance.unused_expired", day, k,
                       "unused allowance does not carry forward")
        for code, acct in visits.items():
            if acct["balance"] > 0:
                self.entry(acct, "expire", -acct["balance"], ev, plan.ref, f"plan.services.{code}.unused_expired",
                           day, k, "unused visits do not carry forward")

    def points(self, cid: str, points: Points, plan_key: str) -> None:
        """The customer's points in date order: each earning a lot expiring a year on, a redemption
        when there are points enough, expiries drawn from the lots left (oldest first)."""
        if not points.ops:
            return
        acct = self.account(cid, "points")
        lots: list[dict[str, Any]] = []
        ops = sorted(points.ops, key=lambda o: o[0])
        ruleset = ops[0][2]

        def expire_until(day: date) -> None:
            for lot in lots:
                if lot["remaining"] > 0 and lot["expires_on"] < day and lot["expires_on"] < self.today:
                    on = lot["expires_on"] + timedelta(days=1)
                    ev = self.event(f"points_expired:{cid}:{lot['expires_on']}:{lot['id']}", "points_expired", cid,
                                    None, on, {"through": lot["expires_on"].isoformat()})
                    entry = self.entry(acct, "expire", -lot["remaining"], ev, ruleset, f"points.expiry:lot{lot['id']}",
                                       on, None, f"points earned {lot['earned_on']} expired after {lot['expires_on']}")
                    self.add("lot_draws", id=self.id("lot_draws"), lot_id=lot["id"], entry_id=entry,
                             points=lot["remaining"])
                    lot["remaining"] = 0

        for day, ev, pref, amount, rule in ops:
            if amount <= 0:
                continue
            expire_until(day)
            entry = self.entry(acct, "earn", amount, ev, pref, rule, day, None)
            lot = self.add("points_lots", id=self.id("points_lots"), company_id=self.company, account_id=acct["id"],
                           entry_id=entry, points=amount, remaining=amount, earned_on=day,
                           expires_on=add_months(day, 12) - timedelta(days=1), unlocks_on=None)
            lots.append(lot)
            if plan_key.startswith("hvac") and acct["balance"] >= REWARD[4] and self.rng.random() < 0.5:
                self.redeem(cid, acct, lots, day + timedelta(days=1))
        expire_until(self.today)

    def redeem(self, cid: str, acct: dict[str, Any], lots: list[dict[str, Any]], day: date) -> None:
        if day >= self.today:
            return
        catalog, reward, name, kind, cost = REWARD
        key = self.token("redeem")
        ev = self.event(key, "redemption", cid, None, day, {"reward": reward, "quantity": 1}, 15)
        entry = self.entry(acct, "redeem", -cost, ev, f"{catalog}@1", f"reward.{reward}", day, None, f"1 x {name}")
        left = cost
        for lot in lots:
            if left == 0:
                break
            take = min(lot["remaining"], left)
            if take:
                self.add("lot_draws", id=self.id("lot_draws"), lot_id=lot["id"], entry_id=entry, points=take)
                lot["remaining"] -= take
                left -= take
        self.add("reward_redemptions", id=self.token("rdm"), company_id=self.company, customer_id=cid,
                 membership_id=None, catalog=f"{catalog}@1", reward_id=reward, reward_name=name, reward_type=kind,
                 quantity=1, points=cost, status="pending" if self.rng.random() < 0.4 else "fulfilled", stock_key=None,
                 event_id=ev, redeemed_on=day, ship_to=None, tracking=None, created_at=self.created,
                 updated_at=self.created)

    # --- billing ----------------------------------------------------------------------------------
    def billing(self, mid: str, cid: str, pm: str, plan: Plan, tier: Tier, cadence: str, start: date,
                ended: date | None, status: str, replaced: str | None) -> None:
        rng, today = self.rng, self.today
        months = PERIOD_MONTHS[cadence]
        price = tier.prices[cadence]
        rate = dict(self.locs)[self.rows["customers"][-1]["location_id"]]
        last = ended or today
        j, invoice = 0, None
        while (begin := add_months(start, months * j)) <= last:
            end = add_months(start, months * (j + 1)) - timedelta(days=1)
            j += 1
            tax = round(price * rate / 100)
            self.invoice_number += 1
            iid = self.id("invoices")
            invoice = self.add("invoices", id=iid, company_id=self.company, key=f"{mid}:{begin}",
                               number=self.invoice_number, membership_id=mid, customer_id=cid, status="paid",
                               currency="USD", issued_on=begin, period_start=begin, period_end=end,
                               subtotal_cents=price, tax_cents=tax, total_cents=price + tax, amount_due_cents=0,
                               created_at=self.created, attempts=1, next_attempt_on=None, failed_on=None, paid_on=begin,
                               refunded_cents=0, tax_rate=f"{rate}" if rate else None,
                               tax_name="Sales tax" if rate else None)
            self.add("invoice_lines", id=self.id("invoice_lines"), invoice_id=iid, kind="membership_fee",
                     description=f"{plan.name} ({tier.name}), {cadence}: {begin} to {end}", amount_cents=price,
                     period_start=begin, period_end=end, tax_cents=tax)
            n = self.invoice_number
            if rng.random() < 0.05:  # the card declined; most are recovered at a retry
                self.pay(n, iid, pm, price + tax, "failed", begin, 1)
                self.event(f"payment_failed:{n}:1", "payment_failed", cid, mid, begin,
                           {"membership": mid, "invoice": n, "amount": f"{(price + tax) / 100:.2f}", "attempt": 1,
                            "decline_code": "card_declined"}, 12)
                retry = begin + timedelta(days=rng.choice((1, 3, 7)))
                invoice.update(failed_on=begin, attempts=2)
                if rng.random() < 0.75 and retry < today:
                    self.pay(n, iid, pm, price + tax, "succeeded", retry, 2)
                    invoice.update(paid_on=retry)
                elif (today - begin).days < 21:
                    invoice.update(status="open", paid_on=None, amount_due_cents=price + tax, next_attempt_on=retry,
                                   attempts=1)
                else:
                    self.pay(n, iid, pm, price + tax, "failed", retry, 2)
                    invoice.update(status="uncollectible", paid_on=None, amount_due_cents=price + tax)
            else:
                self.pay(n, iid, pm, price + tax, "succeeded", begin, 1)
        if status == "cancelled" and replaced is None and ended is not None and invoice is not None \
                and invoice["status"] == "paid" and rng.random() < 0.5:
            days = (invoice["period_end"] - invoice["period_start"]).days + 1
            unused = (invoice["period_end"] - ended).days
            amount = invoice["total_cents"] * unused // days
            if amount > 0:
                self.credit_number += 1
                self.add("credit_notes", id=self.id("credit_notes"), company_id=self.company, key=f"cancel:{mid}",
                         number=self.credit_number, invoice_id=invoice["id"], membership_id=mid, customer_id=cid,
                         issued_on=ended, reason="Cancelled: the unused days refunded", currency="USD",
                         amount_cents=amount, refunded_cents=amount, created_at=self.created)
                invoice["refunded_cents"] = amount
                self.add("payments", id=self.id("payments"), company_id=self.company, key=f"refund:cancel:{mid}",
                         kind="refund", invoice_id=invoice["id"], payment_method_id=pm, amount_cents=amount,
                         currency="USD", status="succeeded", reference=f"sbxrf_{self.serial}", decline_code=None,
                         retryable=False, attempted_on=ended, created_at=self.created)
        next_bill = add_months(start, months * j) if status == "active" else date(9999, 12, 31)
        self.add("billing_schedules", membership_id=mid, company_id=self.company, customer_id=cid, cadence=cadence,
                 starts_on=start, anchor_on=start, anchor_day=start.day, price_cents=price, currency="USD",
                 proration="daily", next_bill_on=next_bill, ruleset=plan.ref, payment_method_id=None,
                 change_to_tier=None, replaces=replaced, ends_on=None, ends_refund=None)

    def pay(self, number: int, iid: int, pm: str, amount: int, status: str, day: date, attempt: int) -> None:
        self.add("payments", id=self.id("payments"), company_id=self.company, key=f"invoice-{number}-attempt-{attempt}",
                 kind="charge", invoice_id=iid, payment_method_id=pm, amount_cents=amount, currency="USD", status=status,
                 reference=f"sbxch_{number}_{attempt}" if status == "succeeded" else None,
                 decline_code="card_declined" if status == "failed" else None, retryable=True, attempted_on=day,
                 created_at=self.created)

    def finish(self) -> None:
        self.flush()
        with self.engine.begin() as conn:
            conn.execute(sa.text("UPDATE invoice_counters SET last_number = :n, last_credit_note = :c "
                                 "WHERE company_id = :co"),
                         {"n": self.invoice_number, "c": self.credit_number, "co": self.company})
            if conn.execute(sa.text("SELECT 1 FROM invoice_counters WHERE company_id = :co"),
                            {"co": self.company}).first() is None:
                conn.execute(sa.insert(InvoiceCounter.__table__), {  # type: ignore[arg-type]
                    "company_id": self.company, "last_number": self.invoice_number,
                    "last_credit_note": self.credit_number})
            for name in self.next:
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                     f"(SELECT coalesce(max(id), 1) FROM {name}))")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, pow(2.718281828459045, -lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def _publish(app: Any) -> list[tuple[str, str]]:
    """The rulesets, through the use cases: two packs, a plan and its earning rules; two locations."""
    for pack in ("hvac", "pest-control"):
        packs.install(app, COMPANY, packs.find(pack), author="bench", effective_from=date(2015, 1, 1))
    rulesets.publish(app, COMPANY, HOME_PLAN, "bench", date(2015, 1, 1))
    rulesets.publish(app, COMPANY, HOME_RULES, "bench", date(2015, 1, 1))
    made = [locations.add_location(app, COMPANY, "Denver", tax_rate="8.25"),
            locations.add_location(app, COMPANY, "Boulder", tax_rate="0")]
    return [(loc["id"], loc["tax_rate"]) for loc in made]


def build(app: Any, today: date, memberships: int, entries: int, seed: int = 18) -> dict[str, Any]:
    """The data set: `memberships` memberships and about `entries` ledger entries."""
    locs = [(lid, float(rate)) for lid, rate in _publish(app)]
    plans = _plans(app)
    rng = random.Random(seed)
    builder = Builder(app, today, rng, plans, locs)
    # How long members have been members, so that the ledger comes to about `entries`: a
    # growing business has more recent members than old ones (the age's density falls off; the
    # smaller `skew`, the younger), and a trial of a few hundred customers at each try says how
    # many entries a membership brings.
    rates = {"purchases": 1.5, "visits_used": 0.6, "skew": 0.5}
    low, high = 0.02, 1.0
    for _ in range(7):
        rates["skew"] = (low + high) / 2
        trial = Builder(app, today, random.Random(seed + 1), plans, locs)
        for _ in range(400):
            trial.customer(1, rates)
        if len(trial.rows["ledger_entries"]) / 400 > entries / memberships:
            high = rates["skew"]
        else:
            low = rates["skew"]
    made = 0
    while made < memberships:
        roll = rng.random()
        if roll < 0.1:
            builder.customer(0, rates)  # a non-member: a conversion opportunity
            continue
        made += builder.customer(2 if roll > 0.93 and memberships - made >= 2 else 1, rates)
        if len(builder.rows["ledger_entries"]) >= 200_000:
            builder.flush()
    builder.finish()
    return {"age_skew": round(rates["skew"], 3), "mean_age_years": round(YEARS * rates["skew"] / (1 + rates["skew"]), 2)}


# --- timing ----------------------------------------------------------------------------------------

def _tables_read(engine: sa.Engine, work: Any) -> set[str]:
    """The tables the SQL sent while `work` ran names (FROM and JOIN)."""
    seen: set[str] = set()
    pattern = re.compile(r"\b(?:FROM|JOIN)\s+\"?([a-z_]+)\"?", re.IGNORECASE)

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.update(m.lower() for m in pattern.findall(statement))

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        work()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    return seen


def _best(work: Any, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def run(database: str = "postgresql", quick: bool = False, memberships: int | None = None,
        entries: int | None = None) -> dict[str, Any]:
    n = memberships or (1500 if quick else 100_000)
    m = entries or (15_000 if quick else 1_000_000)
    with fresh_app(database) as app:
        today = companies.today(app, COMPANY)
        started = time.perf_counter()
        built = build(app, today, n, m)
        seed_seconds = time.perf_counter() - started
        checked = audit.audit(app, COMPANY)  # balances are their entries' sums, lots their draws'
        assert checked["ok"], checked["drift"][:5]
        engine = app.database.engine
        with engine.connect() as conn:
            known = set(sa.inspect(conn).get_table_names())
            rows = {t: int(conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))) for t in TABLES}
        frm, to = default_start(today).isoformat(), today.isoformat()
        runs: dict[str, dict[str, Any]] = {r["name"]: {} for r in reports.list_reports(app, COMPANY)}
        if "statement" in runs:
            runs["statement_plan"] = {"plan": "hvac-comfort-club"}
        res: dict[str, Any] = {"name": f"reports_{database}", "reports_memberships": rows["memberships"],
                               "reports_ledger_entries": rows["ledger_entries"], "rows": rows,
                               "seed_seconds": round(seed_seconds, 1), "audit_ok": True, "range": {"from": frm, "to": to}, **built}
        figures: dict[str, dict[str, Any]] = {}
        for label, extra in runs.items():
            name = "statement" if label == "statement_plan" else label

            def report(name: str = name, extra: dict[str, Any] = extra) -> Any:
                return reports.run(app, COMPANY, name, **{"from": frm, "to": to, **extra})

            read = _tables_read(engine, report) & known  # the warm-up
            counted = sorted(read | {"memberships", "ledger_entries"})

            def count(counted: list[str] = counted) -> None:
                with engine.connect() as conn:
                    for t in counted:
                        conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()

            seconds = _best(report)
            baseline = _best(count)
            key = label.replace("-", "_")
            figures[key] = {"seconds": round(seconds, 3), "count_seconds": round(baseline, 3),
                            "vs_count": round(seconds / baseline, 1), "tables": counted}
            res[f"report_{key}_seconds"] = round(seconds, 3)
            res[f"report_{key}_count_seconds"] = round(baseline, 4)
            res[f"report_{key}_vs_count"] = round(seconds / baseline, 1)
    res["reports"] = figures
    res["slow_seconds"] = SLOW_SECONDS
    res["slow"] = sorted((k for k, f in figures.items() if f["seconds"] > SLOW_SECONDS),
                         key=lambda k: -figures[k]["seconds"])
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memberships", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    res = run("postgresql", memberships=args.memberships, entries=args.entries)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
