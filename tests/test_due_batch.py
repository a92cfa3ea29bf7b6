"""Due work in chunks (`keepwell.usecases.due.run`: many units per transaction, rows written in bulk) has
exactly the effects of running each unit alone (`run_due_unit`, what a worker job does): the
same period ends and renewals, ledger entries, points expiries and reminders. Running it twice
has one effect; a crash in a chunk leaves that chunk wholly undone and the earlier ones wholly
done, and running again finishes the work as if nothing had happened."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from keepwell.events import due
from keepwell.events import pipeline as events
from keepwell.rulesets.validation import validate_event
from kwmodels import Event, Membership
from support import make_app
from test_batch_ingest import bind, ev, setup_company, snapshot

AS_OF = date(2024, 6, 12)


def history(customers: dict[str, str]) -> list[dict]:
    out = [ev("enrol-ada", "enrolled", "Ada", date(2024, 1, 1), plan="care-club"),
           ev("enrol-grace", "enrolled", "Grace", date(2024, 1, 15), plan="care-club"),
           ev("enrol-linus", "enrolled", "Linus", date(2024, 1, 31), plan="care-club"),
           ev("p1", "purchase", "Ada", date(2024, 1, 20), amount="130.00", pay_with="membership"),  # overdraft
           ev("p2", "purchase", "Grace", date(2024, 1, 20), amount="10.00", pay_with="membership"),
           ev("s1", "service_completed", "Linus", date(2024, 1, 31), service_code="AC_TUNE")]
    return bind(out, customers)


def setup(app, slug: str) -> None:
    customers = setup_company(app, slug)
    for r in app.post_events(history(customers), company=slug):
        assert r["status"] in ("approved", "processed"), r


def run_one_unit_at_a_time(app, as_of: date, company: str) -> int:
    """What workers do: every unit alone, in its own transaction, until nothing is left."""
    seen, n = set(), 0
    while True:
        units = [u for u in app.due_plan(as_of, company=company) if u.key not in seen]
        if not units:
            return n
        for u in units:
            app.run_due_unit(u, company=company)
            seen.add(u.key)
            n += 1


def ordered(snap: dict) -> dict:
    """Units of different customers run in an order set by their (random) ids: entries compare
    as a set; the order within an account shows in every entry's balance_after."""
    return dict(snap, entries=sorted(snap["entries"], key=str))


@pytest.fixture
def service(db_url):
    app = make_app(db_url)
    yield app
    app.close()


@pytest.mark.parametrize("chunk", [500, 2])
def test_due_work_in_chunks_equals_one_unit_at_a_time(service, chunk):
    setup(service, "one")
    setup(service, "many")
    units = run_one_unit_at_a_time(service, AS_OF, "one")
    summary = service.run_due(AS_OF, company="many", chunk=chunk)
    assert summary["units"] == units > 3
    assert summary["periods_closed"] >= 12 and summary["reminders_queued"] >= 1
    s1, s2 = ordered(snapshot(service, "one")[0]), ordered(snapshot(service, "many")[0])
    for part in s1:
        assert s2[part] == s1[part], part
    # The overdraft Ada used in January was recovered from February's allowance.
    assert any(e[4] == "overdraft_recovery" and e[2] == "allowance" for e in s2["entries"])
    assert any(e[0].startswith("points_expired:") for e in s2["events"])


def test_running_due_work_twice_has_one_effect(service):
    setup(service, "twice")
    first = service.run_due(AS_OF, company="twice", chunk=3)
    before, _ = snapshot(service, "twice")
    again = service.run_due(AS_OF, company="twice", chunk=3)
    after, _ = snapshot(service, "twice")
    assert first["units"] > 0 and again["units"] == 0
    assert after == before
    # And a unit run again on its own (a worker's job delivered twice) changes nothing either.
    for unit in service.due_plan(AS_OF - timedelta(days=40), company="twice"):
        service.run_due_unit(unit, company="twice")
    assert snapshot(service, "twice")[0] == before


def test_a_crash_leaves_whole_chunks_applied_or_not_at_all(service, monkeypatch):
    setup(service, "clean")
    setup(service, "crash")
    service.run_due(AS_OF, company="clean", chunk=2)
    units = [u for u in service.due_plan(AS_OF, company="crash") if u.kind == "period_end"]
    assert len(units) == 3
    doomed = units[2].subject  # the first unit of the second chunk
    real = due.run_unit

    def crashing(ctx, unit):
        if unit.subject == doomed:
            raise RuntimeError("power cut")
        return real(ctx, unit)

    monkeypatch.setattr(due, "run_unit", crashing)
    with pytest.raises(RuntimeError):
        service.run_due(AS_OF, company="crash", chunk=2)

    def state(c):
        ms = {m.id: m.current_period for m in c.session.scalars(sa.select(Membership).where(Membership.company_id == c.company.id))}
        closed = set(c.session.scalars(sa.select(Event.membership_id).where(Event.company_id == c.company.id,
                                                                            Event.type == "period_ended")))
        return ms, closed

    periods, closed = service.run("crash", state)
    assert all(periods[u.subject] > 0 for u in units[:2])  # the first chunk: done
    assert periods[doomed] == 0 and doomed not in closed  # the second: not at all
    monkeypatch.setattr(due, "run_unit", real)
    service.run_due(AS_OF, company="crash", chunk=2)
    assert ordered(snapshot(service, "crash")[0]) == ordered(snapshot(service, "clean")[0])


def test_the_platform_builds_valid_events():
    """Events the platform builds are not run through the schema again (pipeline._post `built`):
    they must be valid by construction."""
    at = events.platform_payload("x", "period_ended", "c", __import__("datetime").datetime(2024, 1, 1), {})
    for key, type_ in (("period_ended:mem_0123456789abcdef:12", "period_ended"), ("renewed:mem_0123456789abcdef:13", "renewed"),
                       ("expired:mem_0123456789abcdef", "expired")):
        from datetime import datetime, time
        from zoneinfo import ZoneInfo

        when = datetime.combine(date(2024, 2, 29), time.min, tzinfo=ZoneInfo("America/Denver"))
        payload = events.platform_payload(key, type_, "cus_0123456789abcdef", when, {"membership": "mem_0123456789abcdef"})
        assert validate_event(payload) == [], payload
    assert at["type"] == "period_ended"
