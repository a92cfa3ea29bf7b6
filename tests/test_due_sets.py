"""Set-based due work against the event pipeline: random histories (several plans and tiers,
allowances spent into the overdraft, visits used, carried-forward and expiring balances,
memberships that expire, customers with two memberships, a rule that reacts to renewals from
some date on) are run to a series of dates both ways — period ends as sets (`as_sets=True`, what
`keepwell run-due` does) and every unit through the pipeline — in two companies of one database,
and every row they wrote is compared: events with their answers, ledger entries, balances, lots,
outbox messages, memberships and statements."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepwell.rulesets.documents import canonical_json
from kwmodels import Event
from support import make_app
from test_batch_ingest import ev, snapshot
from test_due_batch import ordered

PLANS = [
    {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "care-club", "name": "Care Club"},
     "spec": {"allowance": {"amount": "100.00", "period": "monthly",
                            "overdraft": {"limit": "50.00", "unused": "add_to_allowance"}},
              "included_services": [{"code": "AC_TUNE", "name": "A/C tune-up", "quantity": 2}],
              "tiers": [{"id": "standard", "name": "Standard"},
                        {"id": "gold", "name": "Gold", "allowance_amount": "150.00", "overdraft_limit": "80.00"}]}},
    {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "saver", "name": "Saver"},
     "spec": {"allowance": {"amount": "300.00", "period": "quarterly", "unused": "carry_forward"},
              "included_services": [{"code": "FILTER", "name": "Filter change", "quantity": 1}]}},
    {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "trial", "name": "Trial"},
     "spec": {"period": "monthly", "auto_renewal": False,
              "included_services": [{"code": "INSPECT", "name": "Inspection", "quantity": 1}]}},
]
TIERS = {"care-club": ["standard", "gold"], "saver": ["standard"], "trial": ["standard"]}
SERVICES = {"care-club": "AC_TUNE", "saver": "FILTER", "trial": "INSPECT"}
RENEWAL_BONUS = {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": "loyalty", "name": "Loyalty"},
                 "spec": {"rules": [{"id": "renewal-bonus", "when": {"event": "renewed"}, "earn": {"points": 25}}]}}
START = date(2024, 1, 1)

member = st.fixed_dictionaries({
    "customer": st.integers(0, 4),
    "plan": st.sampled_from(sorted(TIERS)),
    "tier": st.integers(0, 1),
    "enrol_day": st.integers(0, 100),
    "spend": st.lists(st.tuples(st.integers(0, 200), st.integers(1, 20000)), max_size=4),
    "visits": st.lists(st.integers(0, 200), max_size=3),
    "cancel_day": st.one_of(st.none(), st.integers(20, 250)),
})
cases = st.fixed_dictionaries({
    "members": st.lists(member, min_size=1, max_size=7),
    "bonus_from": st.one_of(st.none(), st.integers(30, 200)),  # the renewal rule's first day
    "runs": st.lists(st.integers(1, 95), min_size=1, max_size=4),  # days between due runs
    "chunk": st.sampled_from([500, 3]),
})


def history(case: dict, customers: list[str]) -> list[dict]:
    out = []
    for i, m in enumerate(case["members"]):
        who, plan = customers[m["customer"]], m["plan"]
        tiers = TIERS[plan]
        enrol = START + timedelta(days=m["enrol_day"])
        out.append(ev(f"enrol-{i}", "enrolled", who, enrol, plan=plan, tier=tiers[m["tier"] % len(tiers)],
                      membership=f"?{i}", allow_second=True))
        for j, (day, cents) in enumerate(m["spend"]):
            out.append(ev(f"spend-{i}-{j}", "purchase", who, enrol + timedelta(days=day),
                          amount=f"{cents // 100}.{cents % 100:02d}", pay_with="membership", membership=f"?{i}"))
        for j, day in enumerate(m["visits"]):
            out.append(ev(f"visit-{i}-{j}", "service_completed", who, enrol + timedelta(days=day),
                          service_code=SERVICES[plan], membership=f"?{i}"))
        if m["cancel_day"] is not None:
            out.append(ev(f"cancel-{i}", "cancelled", who, enrol + timedelta(days=m["cancel_day"]), membership=f"?{i}"))
    return out


def play(app, company: str, case: dict, as_sets: bool) -> list[dict]:
    """The history (events in date order, each membership named once it exists), with due work
    run before each event whose date passes the next run date, and at every run date."""
    app.add_company(company, company, "America/Denver")
    for doc in PLANS:
        app.publish(doc, "test", date(2020, 1, 1), company=company)
    if case["bonus_from"] is not None:
        app.publish(RENEWAL_BONUS, "test", START + timedelta(days=case["bonus_from"]), company=company)
    customers = [app.add_customer(f"Customer {n}", company=company) for n in range(5)]
    runs, day = [], START
    for gap in case["runs"]:
        day += timedelta(days=gap * 3)
        runs.append(day)
    events = sorted(history(case, customers), key=lambda p: (p["occurred_at"], p["id"]))
    memberships: dict[str, str] = {}
    summaries = []
    for payload in events:
        while runs and payload["occurred_at"][:10] >= runs[0].isoformat():
            summaries.append(app.run_due(runs.pop(0), company=company, chunk=case["chunk"], as_sets=as_sets))
        data = payload["data"]
        ref = data.get("membership", "")
        if ref.startswith("?"):
            if payload["type"] == "enrolled":
                del data["membership"]
            elif ref[1:] in memberships:
                data["membership"] = memberships[ref[1:]]
            else:
                continue  # its enrolment was declined
        answer = app.post_event(payload, company=company)
        if payload["type"] == "enrolled" and answer.get("membership"):
            memberships[ref[1:]] = answer["membership"]
    for when in runs:
        summaries.append(app.run_due(when, company=company, chunk=case["chunk"], as_sets=as_sets))
    return summaries


@pytest.fixture
def service(db_url):
    app = make_app(db_url)
    yield app
    app.close()


def both_ways(app, case: dict) -> tuple[dict, dict]:
    suffix = uuid.uuid4().hex[:8]
    one, sets = f"one{suffix}", f"sets{suffix}"
    r1 = play(app, one, case, as_sets=False)
    r2 = play(app, sets, case, as_sets=True)
    assert r2 == r1  # the same units, periods closed, points expired, reminders
    stored_hashes_hold(app, sets)
    # Entries compare as a set (a chunk's units of different customers may run in another
    # order); within an account, the order shows in every entry's balance_after.
    return fingerprint(app, one), fingerprint(app, sets)


def fingerprint(app, company: str) -> dict:
    """Every row (`snapshot`), entries as a set, and every membership's statement by the key of
    its enrolment (a customer may have several memberships)."""
    snap, norm = snapshot(app, company)
    snap = ordered(snap)

    def enrolments(c):
        return c.session.execute(sa.select(Event.key, Event.membership_id).where(
            Event.company_id == c.company.id, Event.type == "enrolled", Event.membership_id.is_not(None))).all()

    snap["statements"] = {key: norm(app.statement(mid, date(2024, 1, 1), date(2024, 12, 31), company=company))
                          for key, mid in app.run(company, enrolments)}
    return snap


def stored_hashes_hold(app, company: str) -> None:
    """Every event's stored content hash is the hash of its payload (replays compare them)."""
    def work(c):
        return c.session.execute(sa.select(Event.key, Event.payload, Event.payload_hash)
                                 .where(Event.company_id == c.company.id)).all()

    for key, payload, digest in app.run(company, work):
        assert hashlib.sha256(canonical_json(payload).encode()).hexdigest() == digest, key


@settings(max_examples=int(os.environ.get("KW_EX", "10")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=cases)
def test_period_ends_as_sets_write_exactly_what_the_pipeline_writes(service, case):
    s1, s2 = both_ways(service, case)
    for part in s1:
        assert s2[part] == s1[part], part


def test_sets_take_the_common_case_and_leave_the_rest_to_the_pipeline(service, monkeypatch):
    """A fixed history: the set-based path must actually do the plain renewals (or the
    differential test above would compare the pipeline with itself), and leave alone the ones
    a rule reacts to and the members more than one period behind."""
    from keepwell.memberships import due as member_due

    did: list[str] = []
    real = member_due.close_many

    def counting(ctx, units, names):
        out = real(ctx, units, names)
        did.extend(out)
        return out

    kinds = member_due.due._kinds
    monkeypatch.setitem(kinds, "period_end", dataclasses.replace(kinds["period_end"], many=counting))
    case = {"members": [{"customer": n, "plan": "care-club", "tier": n % 2, "enrol_day": 0, "spend": [(3, 12000)],
                         "visits": [5], "cancel_day": None} for n in range(4)]
            + [{"customer": 4, "plan": "trial", "tier": 0, "enrol_day": 0, "spend": [], "visits": [], "cancel_day": None}],
            "bonus_from": 75, "runs": [11, 10, 12], "chunk": 500}
    s1, s2 = both_ways(service, case)
    for part in s1:
        assert s2[part] == s1[part], part
    # Runs on Feb 3, Mar 4 and Apr 9: February's and March's period ends of the four care-club
    # members and the trial's expiry go as sets (9); from mid-March the renewal bonus may react,
    # so April's renewals go through the pipeline and earn the bonus.
    assert len(did) == 9, did
    assert any(e[8] == "renewal-bonus" for e in s2["entries"])
    assert any(e[4] == "overdraft_recovery" for e in s2["entries"])
    assert any(m[1] == "expired" for m in s2["memberships"])
