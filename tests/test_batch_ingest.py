"""Batched ingest (`keepwell.usecases.events.post_events`) has exactly the effects of posting the same events one
at a time: the same results, ledger entries (with event, ruleset version and rule), balances,
points lots, outbox rows, memberships and statements. Duplicates inside a batch, a malformed
event or an unknown customer mid-batch, an overdraft decline mid-batch and late events that
first close ended periods all behave as they do one at a time. Each stream runs in two companies
of one database: one posted event by event, the other in batches."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepwell.events import pipeline as events
from keepwell.kernel.errors import InvalidDocument, NotFound
from keepwell.rulesets.validation import is_valid_event, validate_event
from kwmodels import Account, Customer, Event, LedgerEntry, LotDraw, Membership, OutboxMessage, PointsLot
from support import make_app

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "care-club", "name": "Care Club"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly", "overdraft": {"limit": "50.00"}},
                 "included_services": [{"code": "AC_TUNE", "name": "A/C tune-up", "quantity": 2}],
                 "discount_percent": "10"}}
EARNING = {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": "rewards", "name": "Rewards"},
           "spec": {"expiry": {"after_months": 2}, "rules": [
               {"id": "spend", "when": {"event": "purchase"}, "earn": {"points": 1, "per": "1.00", "of": "data.amount"}},
               {"id": "visit", "when": {"event": "service_completed"}, "earn": {"points": 5}}]}}
NOTICES = {"apiVersion": "keepwell/v1", "kind": "NotificationTriggers", "metadata": {"id": "notices", "name": "Notices"},
           "spec": {"triggers": [
               {"id": "welcome", "on": {"event": "enrolled"}, "template": "welcome", "channel": "email"},
               {"id": "thanks", "on": {"event": "service_completed"}, "template": "points_earned", "channel": "email"},
               {"id": "renewal-reminder", "before": {"days": 5, "of": "renewal"}, "template": "renewal_reminder",
                "channel": "email"}]}}
NAMES = ("Ada", "Grace", "Linus")


def setup_company(app, slug: str) -> dict[str, str]:
    """A company with the rulesets above and three customers: name -> customer id."""
    app.add_company(slug, slug, "America/Denver")
    for doc in (PLAN, EARNING, NOTICES):
        app.publish(doc, "test", date(2020, 1, 1), company=slug)
    return {name: app.add_customer(name, company=slug) for name in NAMES}


def at(day: date, hour: int = 10) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00-07:00"


def ev(key: str, type_: str, who: str, day: date, **data) -> dict:
    return {"id": key, "type": type_, "customer": who, "occurred_at": at(day), "data": data}


def stream() -> list[dict]:
    """Events with customers named, not ids (`bind` puts a company's ids in)."""
    d0 = date(2024, 1, 10)
    return [
        ev("enrol-ada", "enrolled", "Ada", date(2024, 1, 1), plan="care-club"),
        ev("enrol-grace", "enrolled", "Grace", date(2024, 1, 5), plan="care-club"),
        ev("p1", "purchase", "Ada", d0, amount="40.00", pay_with="membership"),
        ev("p2", "purchase", "Grace", d0, amount="99.99", pay_with="membership"),
        ev("p1", "purchase", "Ada", d0, amount="40.00", pay_with="membership"),  # the same event again
        ev("p2", "purchase", "Grace", d0, amount="1.00", pay_with="membership"),  # same id, other content
        {"id": "bad-1", "type": "purchase", "customer": "Ada", "occurred_at": at(d0), "data": {"amount": "lots"}},
        ev("p3", "purchase", "Ada", d0, amount="200.00", pay_with="membership"),  # past balance + overdraft
        ev("p4", "purchase", "Ada", d0, amount="100.00", pay_with="membership"),  # 60 + 40 of the 50 overdraft
        ev("p5", "purchase", "Ada", d0, amount="20.00", pay_with="membership"),  # only 10 left: declined
        ev("ghost", "purchase", "Nobody", d0, amount="1.00", pay_with="card"),  # unknown customer: rejected
        ev("svc-1", "service_completed", "Ada", d0 + timedelta(days=1), service_code="AC_TUNE", amount="150.00"),
        ev("svc-2", "service_completed", "Linus", d0 + timedelta(days=1), service_code="AC_TUNE", amount="150.00"),
        ev("card-1", "purchase", "Linus", d0 + timedelta(days=2), amount="12.34", pay_with="card"),
        ev("redeem-1", "redemption", "Ada", d0 + timedelta(days=3), points=30, reward="filter"),
        ev("redeem-2", "redemption", "Ada", d0 + timedelta(days=3), points=10000, reward="car"),  # declined
        # February and March: Ada's late purchase first closes January (overdraft recovered).
        ev("p6", "purchase", "Ada", date(2024, 3, 2), amount="10.00", pay_with="membership"),
        ev("adj-1", "adjustment", "Grace", date(2024, 3, 3), unit="allowance", amount="5.00", reason="goodwill"),
        ev("adj-2", "adjustment", "Grace", date(2024, 3, 3), unit="points", amount="-1", reason="typo"),
        ev("cancel-g", "cancelled", "Grace", date(2024, 3, 4), membership="?grace"),
        ev("p7", "purchase", "Grace", date(2024, 3, 5), amount="1.00", pay_with="membership"),  # not active
        {"id": "bad-2", "type": "referral", "customer": "Linus", "occurred_at": "yesterday", "data": {}},
        ev("p8", "purchase", "Ada", date(2024, 3, 6), amount="1.00", pay_with="membership"),
        ev("p8", "purchase", "Ada", date(2024, 3, 6), amount="1.00", pay_with="membership"),
    ]


def bind(payloads: list[dict], customers: dict[str, str], members: dict[str, str] | None = None) -> list[dict]:
    out = []
    for p in payloads:
        p = json.loads(json.dumps(p))
        if p.get("customer") in customers:
            p["customer"] = customers[p["customer"]]
        m = (p.get("data") or {}).get("membership", "")
        if isinstance(m, str) and m.startswith("?"):
            p["data"]["membership"] = (members or {}).get(m[1:].capitalize(), "none")
        out.append(p)
    return out


def post_one_at_a_time(app, payloads: list[dict], company: str) -> list[dict]:
    out = []
    for p in payloads:
        try:
            out.append(app.post_event(p, company=company))
        except (InvalidDocument, NotFound) as exc:
            out.append(events.rejected(p, exc))
    return out


def memberships_by_name(app, company: str) -> dict[str, str]:
    def work(c):
        rows = c.session.execute(sa.select(Customer.name, Membership.id).join(Membership, Membership.customer_id == Customer.id)
                                 .where(Customer.company_id == c.company.id))
        return {name: mid for name, mid in rows}

    return app.run(company, work)


def snapshot(app, company: str) -> dict:
    """Everything the events wrote, with the company's own ids replaced by names."""

    def work(c):
        cid = c.company.id
        names = {x.id: f"<{x.name}>" for x in c.session.scalars(sa.select(Customer).where(Customer.company_id == cid))}
        # A membership by its enrolment's key (a customer may have several), else by its customer
        enrolments = dict(c.session.execute(sa.select(Event.membership_id, Event.key).where(
            Event.company_id == cid, Event.type == "enrolled", Event.membership_id.is_not(None))).all())
        for m in c.session.scalars(sa.select(Membership).where(Membership.company_id == cid)):
            names[m.id] = (f"<membership {enrolments[m.id]}>" if m.id in enrolments
                           else f"<membership of {names[m.customer_id]}>")
        for lot, owner in c.session.execute(sa.select(PointsLot, Account.owner).join(Account, Account.id == PointsLot.account_id)
                                            .where(PointsLot.company_id == cid)):
            names[f"lot{lot.id}"] = f"lot<{names[owner]} {lot.earned_on} {lot.points}>"  # ids differ between companies
        pattern = re.compile("|".join(map(re.escape, sorted(names, key=len, reverse=True)))) if names else None

        def norm(value):
            text = json.dumps(value, sort_keys=True, default=str)
            return json.loads(pattern.sub(lambda mt: names[mt.group(0)], text)) if pattern else json.loads(text)

        keys = dict(c.session.execute(sa.select(Event.id, Event.key).where(Event.company_id == cid)).all())
        entries = [norm([keys[e.event_id], a.owner, a.unit, a.code, e.kind, e.amount, e.balance_after, e.ruleset, e.rule,
                         e.period, e.effective_date, e.memo])
                   for e, a in c.session.execute(sa.select(LedgerEntry, Account).join(Account, Account.id == LedgerEntry.account_id)
                                                 .where(LedgerEntry.company_id == cid).order_by(LedgerEntry.id))]
        evs = sorted(norm([e.key, e.type, e.customer_id, e.membership_id, e.local_date, e.status, e.result, e.payload])
                     for e in c.session.scalars(sa.select(Event).where(Event.company_id == cid)))
        accounts = sorted(norm([a.owner, a.unit, a.code, a.balance])
                          for a in c.session.scalars(sa.select(Account).where(Account.company_id == cid)))
        lots = sorted(norm([a.owner, l.points, l.remaining, l.earned_on, l.expires_on, keys[e.event_id]])
                      for l, a, e in c.session.execute(
                          sa.select(PointsLot, Account, LedgerEntry).join(Account, Account.id == PointsLot.account_id)
                          .join(LedgerEntry, LedgerEntry.id == PointsLot.entry_id).where(PointsLot.company_id == cid)))
        draws = sorted(norm([keys[e.event_id], d.points, e.kind])
                       for d, e in c.session.execute(sa.select(LotDraw, LedgerEntry).join(LedgerEntry, LedgerEntry.id == LotDraw.entry_id)
                                                     .where(LedgerEntry.company_id == cid)))
        outbox = sorted(norm([o.key, keys.get(o.event_id), o.customer_id, o.channel, o.template, o.audience, o.ruleset,
                              o.rule, o.payload, o.status])
                        for o in c.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.company_id == cid)))
        members = sorted(norm([m.id, m.status, m.current_period, m.expires_on, m.ended_on, m.tier])
                         for m in c.session.scalars(sa.select(Membership).where(Membership.company_id == cid)))
        return {"entries": entries, "events": evs, "accounts": accounts, "lots": lots, "draws": draws, "outbox": outbox,
                "memberships": members, "norm": norm}

    snap = app.run(company, work)
    norm = snap.pop("norm")
    statements = {}
    for name, mid in memberships_by_name(app, company).items():
        statements[name] = norm(app.statement(mid, date(2024, 1, 1), date(2024, 12, 31), company=company))
    snap["statements"] = statements
    assert app.audit(company=company)["ok"]
    return snap, norm


def run_both(app, payloads: list[dict], chunk: int = 500, suffix: str = "") -> tuple:
    one, many = f"one{suffix}", f"many{suffix}"
    c1, c2 = setup_company(app, one), setup_company(app, many)
    # Memberships are created by the stream's enrolments: bind references to them afterwards.
    enrolments = [p for p in payloads if p["type"] == "enrolled"]
    rest = [p for p in payloads if p["type"] != "enrolled"]
    r1 = post_one_at_a_time(app, bind(enrolments, c1), one)
    r2 = app.post_events(bind(enrolments, c2), company=many, chunk=chunk)
    r1 += post_one_at_a_time(app, bind(rest, c1, memberships_by_name(app, one)), one)
    r2 += app.post_events(bind(rest, c2, memberships_by_name(app, many)), company=many, chunk=chunk)
    s1, n1 = snapshot(app, one)
    s2, n2 = snapshot(app, many)
    return n1(r1), n2(r2), s1, s2


@pytest.fixture
def service(db_url):
    app = make_app(db_url)
    yield app
    app.close()


@pytest.mark.parametrize("chunk", [500, 3])
def test_a_batch_has_exactly_the_effects_of_one_event_at_a_time(service, chunk):
    r1, r2, s1, s2 = run_both(service, stream(), chunk=chunk)
    assert r2 == r1
    for part in s1:
        assert s2[part] == s1[part], part
    by_key = {}
    for r in r2:
        by_key.setdefault(r["event"], []).append(r)
    # What the stream was written to show, in the batch's own results:
    assert [r["duplicate"] for r in by_key["p1"]] == [False, True]
    assert "warning" in by_key["p2"][1] and by_key["p2"][1]["duplicate"]
    assert by_key["bad-1"][0]["status"] == "rejected" and by_key["bad-1"][0]["errors"][0]["path"] == "data.amount"
    assert by_key["ghost"][0]["status"] == "rejected"
    assert by_key["bad-2"][0]["status"] == "rejected"
    assert (by_key["p3"][0]["status"], by_key["p3"][0]["reason"]) == ("declined", "insufficient_allowance")
    assert by_key["p3"][0]["entries"] == []
    assert by_key["p4"][0]["status"] == "approved" and by_key["p4"][0]["from_overdraft"] == "40.00"
    assert (by_key["p5"][0]["status"], by_key["p5"][0]["available"]) == ("declined", "10.00")
    assert by_key["redeem-2"][0]["status"] == "declined"
    assert by_key["p7"][0]["status"] == "declined"
    # The late purchase closed January and February first: those periods' events are stored.
    ada = [e for e in s2["events"] if e[0].startswith(("period_ended:", "renewed:"))]
    assert len(ada) >= 4
    # Every entry names its event, ruleset version and rule.
    assert all(e[0] and e[7] and e[8] for e in s2["entries"])
    assert any(o[0].startswith("notify:enrol-ada:notices:welcome") for o in s2["outbox"])


def test_a_batch_replayed_changes_nothing(service):
    customers = setup_company(service, "again")
    payloads = bind([p for p in stream() if p["type"] == "enrolled"], customers)
    first = service.post_events(payloads, company="again")
    before, _ = snapshot(service, "again")
    second = service.post_events(payloads, company="again")
    after, _ = snapshot(service, "again")
    assert after == before
    assert [r["duplicate"] for r in second] == [True] * len(second)
    assert [dict(r, duplicate=True) for r in first] == second


def test_a_platform_key_or_type_is_rejected_in_a_batch_as_alone(service):
    customers = setup_company(service, "reserved")
    bad = [ev("period_ended:x:0", "purchase", customers["Ada"], date(2024, 1, 2), amount="1.00"),
           ev("e-1", "period_ended", customers["Ada"], date(2024, 1, 2), membership="m"),
           ev("ok", "referral", customers["Ada"], date(2024, 1, 2), referred_name="Bob")]
    out = service.post_events(bad, company="reserved")
    assert [r["status"] for r in out] == ["rejected", "rejected", "processed"]


# --- random streams -------------------------------------------------------------------------------

@st.composite
def streams(draw):
    day = date(2024, 1, 1)
    out = [ev(f"enrol-{n}", "enrolled", n, day, plan="care-club") for n in NAMES[:2]]
    keys = []
    for i in range(draw(st.integers(1, 25))):
        day += timedelta(days=draw(st.sampled_from([0, 0, 1, 7, 20, 40])))
        who = draw(st.sampled_from(NAMES))
        kind = draw(st.sampled_from(["pay", "pay", "card", "svc", "redeem", "dup", "bad", "adjust"]))
        key = f"e{i}"
        if kind == "pay":
            cents = draw(st.integers(1, 20000))
            p = ev(key, "purchase", who, day, amount=f"{cents // 100}.{cents % 100:02d}", pay_with="membership")
        elif kind == "card":
            p = ev(key, "purchase", who, day, amount=f"{draw(st.integers(1, 300))}.00", pay_with="card")
        elif kind == "svc":
            p = ev(key, "service_completed", who, day, service_code=draw(st.sampled_from(["AC_TUNE", "PLUMB"])),
                   amount="80.00")
        elif kind == "redeem":
            p = ev(key, "redemption", who, day, points=draw(st.integers(1, 120)))
        elif kind == "adjust":
            p = ev(key, "adjustment", who, day, unit="allowance", amount=draw(st.sampled_from(["-30.00", "15.00"])),
                   reason="fix")
        elif kind == "dup" and keys:
            p = draw(st.sampled_from(out[2:] or out))
        else:
            p = {"id": key, "type": "purchase", "customer": who, "occurred_at": at(day), "data": {}}
        keys.append(key)
        out.append(p)
    return out, draw(st.sampled_from([1, 2, 5, 500]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=streams())
def test_random_streams_batched_equal_one_at_a_time(service, case):
    payloads, chunk = case
    r1, r2, s1, s2 = run_both(service, payloads, chunk=chunk, suffix=uuid.uuid4().hex[:8])
    assert r2 == r1
    for part in s1:
        assert s2[part] == s1[part], part


# --- the fast path of event validation agrees with the schema ---------------------------------------

@settings(max_examples=300, deadline=None)
@given(payload=st.one_of(
    st.fixed_dictionaries({"id": st.text(min_size=0, max_size=5),
                           "type": st.sampled_from(["purchase", "enrolled", "referral", "redemption"]),
                           "customer": st.text(max_size=3), "occurred_at": st.sampled_from(
                               ["2024-02-01T10:00:00+00:00", "2024-02-30T10:00:00Z", "2024-02-01 10:00:00", "x"]),
                           "data": st.dictionaries(st.sampled_from(["amount", "pay_with", "plan", "referred_name", "points", "x"]),
                                                   st.one_of(st.text(max_size=6), st.integers(), st.floats(), st.none(),
                                                             st.sampled_from(["1.00", "membership", "care-club"])),
                                                   max_size=3)}),
    st.dictionaries(st.sampled_from(["id", "type", "customer", "occurred_at", "data", "extra"]),
                    st.one_of(st.text(max_size=4), st.integers(), st.booleans(), st.none()), max_size=6)))
def test_the_fast_validation_path_says_valid_only_when_the_schema_does(payload):
    if is_valid_event(payload):
        assert validate_event(payload) == []
    else:
        assert validate_event(payload) != [] or payload  # the full validator decides


def test_the_fast_validation_path_accepts_the_events_posted_most():
    # (False everywhere would mean the event schema uses a keyword the fast path does not know:
    # correct, every event then goes to the full validator, but slow.)
    for p in bind(stream(), {n: f"cus_{n.lower()}" for n in NAMES}, {"Grace": "mem_1"}):
        if not str(p["id"]).startswith("bad"):
            assert is_valid_event(p) is (validate_event(p) == [])
