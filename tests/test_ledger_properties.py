"""The ledger against a model: random sequences of real events on a real database.

A hypothesis state machine drives the use cases (`keepwell.usecases`: the same ones the CLI and the
REST API call) with purchases paid with the membership (amounts up to and past balance +
overdraft), purchases paid otherwise, completed services (covered or not), redemptions, points and
allowance adjustments, run-due on a clock that only moves forward, and replays of earlier events.
The clock may also move without run-due: a member's next event then first closes their ended
periods, as run-due would have.

Beside it runs a small model written from docs/rulesets.md and allowance.py's docstring only:
allowance balance, overdraft used, visits left, points lots. After every step the service must
agree with the model, `audit()` must be clean, balances never negative, the overdraft never past
its limit; a replayed event and a declined event must write nothing.

Every example runs in a company of its own (unique slug), so the examples of one test share a
database without seeing each other.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kwmodels import Company, Event, LedgerEntry
from support import App

PLAN_ID = "care-club"
TUNEUP, FILTER, DUCTS = "HVAC_TUNEUP", "FILTER_SWAP", "DUCT_CLEAN"  # DUCT_CLEAN is never included
MONTHS = {"monthly": 1, "quarterly": 3}
GOLD_MULTIPLIER = Decimal("1.5")
BIG_JOB_CENTS = 30000
BIG_JOB_POINTS = 50
VISIT_POINTS = 25
DISCOUNT = "10"


# --- the documented rules, written out independently of the platform ----------------------------

def add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    y += d.year
    m += 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def period_end(issued: date, step: int, k: int) -> date:
    """Period k starts on issued + k periods (day clamped) and ends the day before period k+1."""
    return add_months(issued, step * (k + 1)) - timedelta(days=1)


def points_expiry(earned: date, months: int) -> date:
    """Points expire `after_months` months after they were earned: the last usable day."""
    return add_months(earned, months) - timedelta(days=1)


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def discount_of(cents: int) -> int:
    return int((Decimal(cents) * Decimal(DISCOUNT) / 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@dataclass
class Lot:
    points: int
    remaining: int
    earned_on: date
    expires_on: date


@dataclass
class Member:
    membership: str
    tier: str
    amount: int
    limit: int
    services: dict[str, int]  # code -> quantity per period
    balance: int
    used: int = 0
    k: int = 0
    status: str = "active"
    left: dict[str, int] = field(default_factory=dict)

    @property
    def overdraft_left(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def available(self) -> int:
        return max(self.balance, 0) + self.overdraft_left


@dataclass
class Customer:
    id: str
    name: str
    member: Member | None
    lots: list[Lot] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(l.remaining for l in self.lots)

    def active(self) -> Member | None:
        return self.member if self.member is not None and self.member.status == "active" else None


# --- the machine -------------------------------------------------------------------------------

amounts = st.integers(min_value=100, max_value=150_000)


class ModelClock:
    """The service's "now" follows the model's today (the end of it): the model's events are
    never in the future, however far its calendar has moved from the machine's."""

    def __init__(self, machine: LedgerMachine):
        self.machine = machine

    def now(self) -> datetime:
        return datetime.combine(self.machine.today + timedelta(days=1), time(0), tzinfo=self.machine.tz)


class LedgerMachine(RuleBasedStateMachine):
    app: App  # set by the test that runs the machine

    def __init__(self) -> None:
        super().__init__()
        self.company = f"lm-{uuid.uuid4().hex[:12]}"
        self.n = 0
        self.posted: list[tuple[dict, dict]] = []  # (payload, first result)
        self.customers: list[Customer] = []
        self.enrollments: list[tuple[str, str, date, str]] = []
        self.closed_on_arrival = 0

    # --- setup ----------------------------------------------------------------------------

    @initialize(
        period=st.sampled_from(sorted(MONTHS)),
        amount=amounts, limit=st.one_of(st.just(0), st.integers(1, 60_000)),
        gold_amount=amounts, gold_limit=st.one_of(st.just(0), st.integers(1, 60_000)),
        unused=st.sampled_from(["expire", "carry_forward"]),
        renew=st.booleans(),
        tuneups=st.integers(1, 2), filters=st.integers(1, 3), gold_tuneups=st.integers(1, 4),
        expiry_months=st.integers(1, 6),
        start=st.dates(date(2020, 1, 1), date(2032, 12, 31)),
        tz=st.sampled_from(["UTC", "America/Denver", "Pacific/Auckland"]),
    )
    def setup(self, period, amount, limit, gold_amount, gold_limit, unused, renew, tuneups, filters, gold_tuneups,
              expiry_months, start, tz):
        app = self.app
        app.add_company(self.company, "Property test company", tz)
        self.tz = ZoneInfo(tz)
        app.clock = ModelClock(self)
        self.step = MONTHS[period]
        self.renew = renew
        self.unused = unused
        self.expiry_months = expiry_months
        self.start = self.today = start
        plan = {
            "apiVersion": "keepwell/v1", "kind": "Plan",
            "metadata": {"id": PLAN_ID, "name": "Care Club"},
            "spec": {
                "allowance": {"amount": money(amount), "period": period, "auto_renewal": renew, "unused": unused,
                              "overdraft": {"limit": money(limit)}},
                "included_services": [{"code": TUNEUP, "name": "Tune-up", "quantity": tuneups},
                                      {"code": FILTER, "name": "Filter swap", "quantity": filters}],
                "discount_percent": DISCOUNT,
                "tiers": [
                    {"id": "silver", "name": "Silver"},
                    {"id": "gold", "name": "Gold", "allowance_amount": money(gold_amount),
                     "overdraft_limit": money(gold_limit),
                     "included_services": [{"code": TUNEUP, "name": "Tune-up", "quantity": gold_tuneups}]},
                ],
            },
        }
        rules = {
            "apiVersion": "keepwell/v1", "kind": "EarningRules",
            "metadata": {"id": "care-points", "name": "Care points"},
            "spec": {
                "point_value": "0.01",
                "expiry": {"after_months": expiry_months},
                "tier_multipliers": {"gold": str(GOLD_MULTIPLIER)},
                "rules": [
                    {"id": "spend", "when": {"event": "purchase"}, "earn": {"points": 1, "per": "1.00", "of": "data.amount"}},
                    {"id": "big-job", "tier_multiplier": False, "earn": {"points": BIG_JOB_POINTS},
                     "when": {"event": "purchase", "all": [{"field": "data.amount", "gte": money(BIG_JOB_CENTS)},
                                                           {"field": "member.status", "eq": "active"}]}},
                    {"id": "visit", "when": {"event": "service_completed"}, "earn": {"points": VISIT_POINTS}},
                ],
            },
        }
        effective = start - timedelta(days=30)
        assert app.publish(plan, "prop", effective, company=self.company).ref == f"{PLAN_ID}@1"
        assert app.publish(rules, "prop", effective, company=self.company).ref == "care-points@1"
        with app.engine.connect() as c:
            self.company_id = c.scalar(sa.select(Company.id).where(Company.slug == self.company))
        for name, tier, amt, lim, services in (
            ("Silvia Silver", "silver", amount, limit, {TUNEUP: tuneups, FILTER: filters}),
            ("Goldie Gold", "gold", gold_amount, gold_limit, {TUNEUP: gold_tuneups}),
        ):
            cid = app.add_customer(name, company=self.company)
            res = app.enroll(cid, PLAN_ID, start, tier=tier, company=self.company)
            assert res["status"] == "processed" and res["tier"] == tier, res
            self.enrollments.append((cid, tier, start, res["membership"]))
            member = Member(res["membership"], tier, amt, lim, services, balance=amt, left=dict(services))
            self.customers.append(Customer(cid, name, member))
        cid = app.add_customer("Nomad Nonmember", company=self.company)
        self.customers.append(Customer(cid, "Nomad Nonmember", None))

    # --- helpers --------------------------------------------------------------------------

    def ledger_count(self) -> int:
        with self.app.engine.connect() as c:
            return c.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)
                            .where(LedgerEntry.company_id == self.company_id))

    def occurred_at(self, hour: int) -> str:
        """A moment on the simulated local day, written in UTC (which may be another calendar day)."""
        local = datetime.combine(self.today, time(hour, 30), tzinfo=self.tz)
        return local.astimezone(UTC).isoformat()

    def ledger_count_of(self, key: str) -> int:
        with self.app.engine.connect() as c:
            return c.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)
                            .join(Event, Event.id == LedgerEntry.event_id)
                            .where(Event.company_id == self.company_id, Event.key == key))

    def arrive(self, customer: Customer) -> int:
        """An event of a customer first closes the periods of their membership that ended before
        its date (when run-due has not done it yet); returns how many the model closed."""
        closed = self.close_periods(customer.member, self.today) if customer.member else 0
        self.closed_on_arrival += closed
        return closed

    def post(self, type_: str, customer: Customer, data: dict, hour: int) -> dict:
        """Post an event of `customer` on the simulated day; `arrive(customer)` must have run first."""
        self.n += 1
        payload = {"id": f"evt-{self.n}", "type": type_, "customer": customer.id,
                   "occurred_at": self.occurred_at(hour), "data": data}
        before = self.ledger_count()
        res = self.app.post_event(payload, company=self.company)
        after = self.ledger_count()
        closed, self.closed_on_arrival = self.closed_on_arrival, 0
        assert res["duplicate"] is False
        assert res["event"] == payload["id"]
        assert res["local_date"] == self.today.isoformat()
        # The entries the event wrote are exactly the ones its answer lists; anything else written
        # meanwhile belongs to the periods it closed first.
        assert self.ledger_count_of(payload["id"]) == len(res["entries"]), res
        if not closed:
            assert after - before == len(res["entries"]), (res, before, after)
        if res["status"] == "declined":
            assert res["entries"] == [], res
            assert "points" not in res
        self.posted.append((payload, res))
        return res

    def earn(self, customer: Customer, rule_points: list[int]) -> int:
        """Each matching rule makes its own lot (rules in document order); zero points make none."""
        total = 0
        for p in rule_points:
            if p > 0:
                customer.lots.append(Lot(p, p, self.today, points_expiry(self.today, self.expiry_months)))
                total += p
        return total

    def multiplier(self, customer: Customer) -> Decimal:
        m = customer.active()
        return GOLD_MULTIPLIER if m is not None and m.tier == "gold" else Decimal(1)

    def purchase_points(self, customer: Customer, cents: int) -> list[int]:
        spend = int(((cents // 100) * self.multiplier(customer)).to_integral_value(rounding=ROUND_FLOOR))
        big = BIG_JOB_POINTS if cents >= BIG_JOB_CENTS and customer.active() is not None else 0
        return [spend, big]

    def usable(self, customer: Customer) -> int:
        """Points that can still be spent today: lots past their last day are not, even before
        run-due has written their expiry."""
        return sum(l.remaining for l in customer.lots if l.expires_on >= self.today)

    def draw(self, customer: Customer, points: int) -> None:
        """Oldest expiry first (lots expire in the order they were earned); only usable lots."""
        left = points
        for lot in sorted((l for l in customer.lots if l.expires_on >= self.today), key=lambda l: l.expires_on):
            take = min(lot.remaining, left)
            lot.remaining -= take
            left -= take
        assert left == 0

    def check_points_result(self, res: dict, customer: Customer, earned: int) -> None:
        assert res["points"] == {"earned": earned, "balance": customer.points}, (res, customer.points)

    # --- operations -----------------------------------------------------------------------

    @rule(data=st.data(), who=st.integers(0, 2), hour=st.integers(0, 23))
    def purchase_with_membership(self, data, who, hour, cents=None):
        customer = self.customers[who]
        self.arrive(customer)
        m = customer.active()
        avail = m.available if m else 0
        bal = max(m.balance, 0) if m else 0
        if cents is None:
            cents = data.draw(st.one_of(
                st.integers(bal, max(avail, bal)),  # into the overdraft
                st.integers(0, max(avail, 1)),
                st.integers(0, max(2 * avail, 5000)),
                st.integers(0, 250_000),
                st.sampled_from([avail, avail + 1, max(avail - 1, 0), 0]),
            ), label="cents")
        res = self.post("purchase", customer, {"amount": money(cents), "pay_with": "membership"}, hour)
        if m is None:
            assert (res["status"], res["reason"]) == ("declined", "no_membership"), res
            return
        if cents > avail:
            assert (res["status"], res["reason"]) == ("declined", "insufficient_allowance"), res
            assert res["available"] == money(avail)
            return
        from_balance = min(cents, max(m.balance, 0))
        from_overdraft = cents - from_balance
        m.balance -= from_balance
        m.used += from_overdraft
        earned = self.earn(customer, self.purchase_points(customer, cents))
        assert res["status"] == "approved", res
        assert (res["charged"], res["from_allowance"], res["from_overdraft"]) == (
            money(cents), money(from_balance), money(from_overdraft))
        assert (res["balance"], res["overdraft_used"], res["overdraft_left"]) == (
            money(m.balance), money(m.used), money(m.overdraft_left))
        assert res["membership"] == m.membership
        assert res["expires_on"] == period_end(self.start, self.step, m.k).isoformat()
        self.check_points_result(res, customer, earned)

    @rule(data=st.data(), who=st.integers(0, 1), hour=st.integers(0, 23))
    def purchase_into_the_overdraft(self, data, who, hour):
        """A charge larger than the balance, within balance + overdraft left (when there is any)."""
        self.arrive(self.customers[who])
        m = self.customers[who].active()
        if m is None or m.overdraft_left == 0:
            return self.purchase_with_membership(data, who, hour)
        cents = data.draw(st.integers(max(m.balance, 0) + 1, m.available), label="cents")
        self.purchase_with_membership(data, who, hour, cents)

    @rule(who=st.integers(0, 2), cents=st.integers(0, 200_000), hour=st.integers(0, 23),
          pay_with=st.sampled_from(["card", "cash", "other", None]))
    def purchase_paid_otherwise(self, who, cents, hour, pay_with):
        customer = self.customers[who]
        self.arrive(customer)
        data = {"amount": money(cents)}
        if pay_with:
            data["pay_with"] = pay_with
        earned_points = self.purchase_points(customer, cents)
        res = self.post("purchase", customer, data, hour)
        earned = self.earn(customer, earned_points)
        assert res["status"] == "approved", res
        assert res["charged"] == money(cents)
        m = customer.active()
        assert res["membership"] == (m.membership if m else None)
        assert all(e["account"] == "points" for e in res["entries"])  # the allowance is untouched
        self.check_points_result(res, customer, earned)

    @rule(who=st.integers(0, 2), code=st.sampled_from([TUNEUP, FILTER, DUCTS]), hour=st.integers(0, 23),
          price=st.one_of(st.none(), st.integers(0, 80_000)))
    def service_completed(self, who, code, hour, price):
        customer = self.customers[who]
        self.arrive(customer)
        m = customer.active()
        visit = int((VISIT_POINTS * self.multiplier(customer)).to_integral_value(rounding=ROUND_FLOOR))
        data = {"service_code": code}
        if price is not None:
            data["amount"] = money(price)
        res = self.post("service_completed", customer, data, hour)
        assert res["status"] == "processed", res
        covered = m is not None and m.left.get(code, 0) > 0
        assert res["covered"] is covered, (res, m)
        if covered:
            m.left[code] -= 1
            assert res["charge"] == "0.00"
            [svc] = res["services"]
            assert (svc["code"], svc["left"]) == (code, m.left[code])
        elif price is not None:
            expected = price - discount_of(price) if m is not None else price
            assert res["charge"] == money(expected), res
        else:
            assert "charge" not in res
        earned = self.earn(customer, [visit])
        self.check_points_result(res, customer, earned)

    @rule(data=st.data(), who=st.integers(0, 2), hour=st.integers(0, 23))
    def redemption(self, data, who, hour):
        customer = self.customers[who]
        self.arrive(customer)
        have = self.usable(customer)
        pts = data.draw(st.one_of(st.integers(1, max(have // 2, 1)), st.integers(1, max(have * 2, 10)),
                                  st.just(have + 1), st.just(max(have, 1))), label="points")
        res = self.post("redemption", customer, {"points": pts, "reward": "gift card"}, hour)
        if pts > have:
            assert (res["status"], res["reason"]) == ("declined", "insufficient_points"), res
            return
        self.draw(customer, pts)
        assert res["status"] == "processed", res
        assert res["redeemed"] == pts
        self.check_points_result(res, customer, 0)

    @rule(data=st.data(), who=st.integers(0, 2), hour=st.integers(0, 23))
    def points_adjustment(self, data, who, hour):
        customer = self.customers[who]
        self.arrive(customer)
        have = self.usable(customer)
        amount = data.draw(st.one_of(st.integers(1, 5000), st.integers(-have - 100, -1), st.just(-have - 1),
                                     st.just(-have)), label="amount")
        if amount == 0:
            amount = 1  # "-0" is not a signed change worth posting
        res = self.post("adjustment", customer, {"unit": "points", "amount": str(amount), "reason": "goodwill"}, hour)
        if abs(amount) > 100_000:  # the company's adjustment limit in points
            assert (res["status"], res["reason"]) == ("declined", "adjustment_over_limit"), res
            return
        if -amount > have:
            assert (res["status"], res["reason"]) == ("declined", "insufficient_points"), res
            return
        assert res["status"] == "processed", res
        if amount > 0:
            self.earn(customer, [amount])
        else:
            self.draw(customer, -amount)
        assert res["adjusted"] == {"unit": "points", "amount": amount}
        self.check_points_result(res, customer, 0)

    @rule(data=st.data(), who=st.integers(0, 2), hour=st.integers(0, 23))
    def allowance_adjustment(self, data, who, hour):
        customer = self.customers[who]
        self.arrive(customer)
        m = customer.active()
        bal = m.balance if m else 0
        cents = data.draw(st.one_of(st.integers(0, 50_000), st.integers(-bal - 5000, 0), st.just(-bal - 1),
                                    st.just(-bal)), label="cents")
        res = self.post("adjustment", customer, {"unit": "allowance", "amount": money(cents), "reason": "correction"}, hour)
        if m is None:
            assert (res["status"], res["reason"]) == ("declined", "no_membership"), res
            return
        if abs(cents) > 100_000:  # the company's adjustment limit (1000.00 by default)
            assert (res["status"], res["reason"]) == ("declined", "adjustment_over_limit"), res
            return
        if bal + cents < 0:
            assert (res["status"], res["reason"]) == ("declined", "insufficient_allowance"), res
            return
        m.balance += cents
        assert res["status"] == "processed", (res.get("reason"), res.get("message"))
        assert (res["balance"], res["overdraft_used"]) == (money(m.balance), money(m.used))

    # The clock only moves forward: by run-due (three rules, so that swarm testing, which switches
    # rules off per example, rarely stops it altogether), or without run-due, in which case the
    # next event of a member closes their ended periods first.

    @rule(days=st.integers(0, 10))
    def run_due_a_few_days_later(self, days):
        self.run_due(self.today + timedelta(days=days))

    @rule(extra=st.integers(0, 40))
    def run_due_after_the_period_end(self, extra):
        """To the first day of the next period of the first member (or a little after)."""
        m = self.customers[0].member
        self.run_due(max(self.today, period_end(self.start, self.step, m.k) + timedelta(days=1 + extra)))

    @rule(days=st.integers(60, 400))
    def run_due_much_later(self, days):
        self.run_due(self.today + timedelta(days=days))

    @rule(days=st.integers(1, 60))
    def time_passes_without_run_due(self, days):
        """Events may arrive after a period ended and before run-due ran: they close it first."""
        self.today += timedelta(days=days)

    def close_periods(self, m: Member, before: date) -> int:
        """Close every period of `m` that ended before `before`; returns how many."""
        closed = 0
        while m.status == "active" and period_end(self.start, self.step, m.k) < before:
            closed += 1
            # 1. unused remainder expires (or carries forward), 2. the new grant, 3. overdraft
            # used is recovered from it; without renewal the membership expires instead.
            if m.balance > 0 and (self.unused == "expire" or not self.renew):
                m.balance = 0
            if not self.renew:
                m.status = "expired"
                m.left = dict.fromkeys(m.services, 0)
                break
            m.balance += m.amount
            recover = min(m.used, max(m.balance, 0))
            m.balance -= recover
            m.used -= recover
            m.k += 1
            m.left = dict(m.services)
        return closed

    def run_due(self, as_of: date) -> None:
        closed = sum(self.close_periods(c.member, as_of) for c in self.customers if c.member)
        expired = 0
        for c in self.customers:
            for lot in c.lots:
                if lot.expires_on < as_of and lot.remaining:
                    expired += lot.remaining
                    lot.remaining = 0
        summary = self.app.run_due(as_of, company=self.company)
        self.today = as_of
        assert (summary["periods_closed"], summary["points_expired"]) == (closed, expired), summary
        again = self.app.run_due(as_of, company=self.company)
        assert (again["units"], again["periods_closed"], again["points_expired"]) == (0, 0, 0), again

    @precondition(lambda self: self.posted)
    @rule(data=st.data(), altered=st.booleans())
    def replay(self, data, altered):
        """An earlier event again (or an earlier enrolment): the first answer, and nothing written."""
        before = self.ledger_count()
        if data.draw(st.integers(0, 4), label="enrolment?") == 0:
            cid, tier, on, mid = data.draw(st.sampled_from(self.enrollments), label="enrolment")
            res = self.app.enroll(cid, PLAN_ID, on, tier=tier, company=self.company)
            assert (res["duplicate"], res["membership"]) == (True, mid)
            assert self.ledger_count() == before
            return
        payload, first = data.draw(st.sampled_from(self.posted), label="replayed")
        again = dict(payload)
        if altered:  # same id, other content (another moment): still the first result, and a warning
            again["occurred_at"] = "2001-02-03T04:05:06Z"
        res = self.app.post_event(again, company=self.company)
        assert self.ledger_count() == before
        assert res.pop("duplicate") is True
        assert ("warning" in res) is altered
        res.pop("warning", None)
        assert res == {k: v for k, v in first.items() if k != "duplicate"}

    @rule(data=st.data(), action=st.sampled_from(["update", "delete"]))
    def tamper_with_a_posted_row(self, data, action):
        """Someone with database access tries to rewrite history: the database refuses to change or
        remove a posted ledger entry or lot draw (append-only triggers), and nothing moves."""
        from kwmodels import LotDraw

        with self.app.engine.connect() as c:
            entries = c.scalars(sa.select(LedgerEntry.id).where(LedgerEntry.company_id == self.company_id)
                                .order_by(LedgerEntry.id)).all()
            draws = c.scalars(sa.select(LotDraw.id).join(LedgerEntry, LedgerEntry.id == LotDraw.entry_id)
                              .where(LedgerEntry.company_id == self.company_id).order_by(LotDraw.id)).all()
        targets = [(LedgerEntry, i, "amount") for i in entries] + [(LotDraw, i, "points") for i in draws]
        if not targets:
            return
        model, row, column = data.draw(st.sampled_from(targets), label="row")
        stmt = (sa.update(model).where(model.id == row).values({column: model.__table__.c[column] + 1})
                if action == "update" else sa.delete(model).where(model.id == row))
        try:
            with self.app.engine.begin() as c:
                c.execute(stmt)
        except sa.exc.DBAPIError as exc:
            assert "append-only" in str(exc), exc
        else:
            raise AssertionError(f"{action} of {model.__tablename__} row {row} was not refused")

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def posted_rows_never_change(self):
        """Every ledger entry seen after an earlier step is still there, unchanged: steps only
        ever append."""
        if not hasattr(self, "company_id"):
            return
        with self.app.engine.connect() as c:
            rows = {r.id: tuple(r) for r in c.execute(sa.select(LedgerEntry)
                                                      .where(LedgerEntry.company_id == self.company_id))}
        seen = getattr(self, "_seen_rows", {})
        assert {i: rows.get(i) for i in seen} == seen
        self._seen_rows = rows

    @invariant()
    def audit_is_clean(self):
        report = self.app.audit(company=self.company)
        assert report["ok"], report["drift"]

    @invariant()
    def memberships_agree_with_the_model(self):
        for c in self.customers:
            m = c.member
            if m is None:
                continue
            view = self.app.membership(m.membership, company=self.company)
            a = view["allowance"]
            assert view["status"] == m.status, (view, m)
            assert view["period"]["index"] == m.k
            end = period_end(self.start, self.step, m.k).isoformat()
            assert view["expires_on"] == end
            if m.status == "expired":
                assert view["ended_on"] == end
            assert a == {"amount": money(m.amount), "balance": money(m.balance), "overdraft_limit": money(m.limit),
                         "overdraft_used": money(m.used), "overdraft_left": money(m.overdraft_left),
                         "available": money(m.available)}, (a, m)
            # What must hold whatever the model says.
            assert Decimal(a["balance"]) >= 0
            assert 0 <= Decimal(a["overdraft_used"]) <= Decimal(a["overdraft_limit"])
            assert {s["code"]: s["left"] for s in view["services"]} == m.left

    @invariant()
    def points_agree_with_the_model(self):
        for c in self.customers:
            p = self.app.points(c.id, company=self.company)
            assert p["balance"] == c.points >= 0
            assert p["balance"] == sum(l["remaining"] for l in p["lots"])
            assert [(l["points"], l["remaining"], l["earned_on"], l["expires_on"]) for l in p["lots"]] == [
                (l.points, l.remaining, l.earned_on.isoformat(), l.expires_on.isoformat()) for l in c.lots]

    def teardown(self):
        """The statement tells the same story as the balances: opening + entries = closing."""
        if not self.customers:
            return
        for c in self.customers:
            m = c.member
            if m is None:
                continue
            st_ = self.app.statement(m.membership, self.start, self.today + timedelta(days=400), company=self.company)
            accounts = {a["account"]: a for a in st_["accounts"]}
            allowance = accounts["allowance"]
            assert allowance["opening"] == "0.00" and allowance["closing"] == money(m.balance)
            assert sum(int(Decimal(e["amount"]) * 100) for e in allowance["entries"]) == m.balance
            overdraft = accounts.get("overdraft")
            assert (overdraft["closing"] if overdraft else "0.00") == money(-m.used)


def _run(url: str, examples: int, steps: int) -> None:
    app = App.at(url)
    machine = type("LedgerMachineOnDb", (LedgerMachine,), {"app": app})
    try:
        run_state_machine_as_test(machine, settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                   HealthCheck.filter_too_much, HealthCheck.data_too_large],
        ))
    finally:
        app.close()


def test_ledger_agrees_with_the_model(db_url):
    if db_url.startswith("sqlite"):
        _run(db_url, examples=30, steps=40)
    else:
        _run(db_url, examples=15, steps=30)
