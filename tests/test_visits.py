"""Visits (#19): service durations, technicians (skills and certification expiry, hours, time
off, capacity), scheduling with each refusal in words, automatic assignment, double-booking
refused under concurrency (PostgreSQL), completion through the event pipeline (entitlement drawn
and points earned once), calendar feeds across a daylight-saving change, the CLI and the API."""

from __future__ import annotations

import json
import threading
from datetime import date

import pytest
import yaml
from icalendar import Calendar

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.kernel.errors import Declined, InvalidDocument, NotFound
from keepwell.usecases import apikeys, memberships, rewards
from keepwell.usecases import scheduling as sched
from support import make_app

PLAN = yaml.safe_load("""
apiVersion: keepwell/v1
kind: Plan
metadata: {id: comfort, name: Comfort Club}
spec:
  period: yearly
  included_services:
    - {code: AC_TUNE, quantity: 2}
""")
RULES = yaml.safe_load("""
apiVersion: keepwell/v1
kind: EarningRules
metadata: {id: club-points, name: Club points}
spec:
  point_value: "0.01"
  rules:
    - id: tune-up
      when:
        event: service_completed
        all:
          - {field: data.service_code, in: [AC_TUNE]}
      earn: {points: 50}
""")
C = "default"
TZ = "America/New_York"
WEEK = {"mon-fri": "08:00-17:00"}


@pytest.fixture
def world(db_url):
    svc = make_app(db_url, TZ)
    svc.add_company("other", "Other Co", TZ)
    svc.publish(PLAN, "test", date(2020, 1, 1))
    svc.publish(RULES, "test", date(2020, 1, 1))
    customer = svc.add_customer("Ann Member")
    m = svc.enroll(customer, "comfort", date(2026, 1, 1))["membership"]
    sched.set_duration(svc, C, "AC_TUNE", 90)
    yield svc, customer, m
    svc.close()


def tech(svc, name="Tess", skills=("AC_TUNE",), hours=None, capacity=6, company=C):
    return sched.add_technician(svc, company, name, hours or WEEK, capacity=capacity, skills=list(skills))["id"]


def declined(fn, *args, **kwargs) -> Declined:
    with pytest.raises(Declined) as caught:
        fn(*args, **kwargs)
    return caught.value


# 2026-11-02 is a Monday; 2026-11-01 the day New York leaves daylight saving time.

def test_a_visit_is_booked_in_company_time_and_shown_in_it(world):
    svc, customer, m = world
    t = tech(svc)
    v = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00", t, membership_id=m)
    assert (v["start"], v["end"]) == ("2026-11-02T09:00:00-05:00", "2026-11-02T10:30:00-05:00")
    assert v["start_utc"] == "2026-11-02T14:00:00+00:00" and v["status"] == "scheduled"
    assert v["id"].startswith("vis_") and len(v["id"]) < 24
    assert [x["id"] for x in sched.list_visits(svc, C, technician_id=t)] == [v["id"]]


def test_each_refusal_says_why(world):
    svc, customer, _m = world
    t = tech(svc, skills=("AC_TUNE:2026-11-30", "FURNACE"), capacity=2)
    sched.set_duration(svc, C, "FURNACE", 60)
    plumber = tech(svc, "Pete", skills=("DRAIN",))
    sched.add_time_off(svc, C, t, date(2026, 11, 10), date(2026, 11, 12), "training")

    e = declined(sched.schedule_visit, svc, C, customer, "AC_TUNE", "2026-11-02T09:00", plumber)
    assert e.reason == "no_skill" and "Pete is not qualified for AC_TUNE" in e.message
    e = declined(sched.schedule_visit, svc, C, customer, "AC_TUNE", "2026-12-01T09:00", t)
    assert e.reason == "certification_expired" and "expired on 2026-11-30" in e.message
    e = declined(sched.schedule_visit, svc, C, customer, "AC_TUNE", "2026-11-02T16:00", t)
    assert e.reason == "outside_hours" and "(16:00-17:30) is outside" in e.message and "08:00-17:00" in e.message
    e = declined(sched.schedule_visit, svc, C, customer, "AC_TUNE", "2026-11-07T09:00", t)  # a Saturday
    assert e.reason == "outside_hours" and "does not work on Saturdays" in e.message
    e = declined(sched.schedule_visit, svc, C, customer, "AC_TUNE", "2026-11-11T09:00", t)
    assert e.reason == "time_off" and "off from 2026-11-10 to 2026-11-12" in e.message
    sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-03T09:00", t)
    e = declined(sched.schedule_visit, svc, C, customer, "FURNACE", "2026-11-03T10:00", t)
    assert e.reason == "overlap" and "already booked from 09:00 to 10:30" in e.message
    sched.schedule_visit(svc, C, customer, "FURNACE", "2026-11-03T10:30", t)  # back to back is fine
    e = declined(sched.schedule_visit, svc, C, customer, "FURNACE", "2026-11-03T13:00", t)
    assert e.reason == "capacity" and "capacity is 2 a day" in e.message
    e = declined(sched.schedule_visit, svc, C, customer, "DRAIN", "2026-11-03T13:00", plumber)
    assert e.reason == "no_duration" and "DRAIN has no duration" in e.message
    assert "keepwell services duration DRAIN MINUTES" in e.message


def test_a_technician_is_picked_when_none_is_named(world):
    svc, customer, _m = world
    busy = tech(svc, "Busy")
    free = tech(svc, "Free")
    tech(svc, "Off", skills=("AC_TUNE",), hours={"sat": "08:00-12:00"})
    tech(svc, "Unqualified", skills=("DRAIN",))
    first = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00", busy)
    picked = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T13:00")
    assert picked["technician"] == free  # the least loaded that day, qualified and working
    again = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00")
    assert again["technician"] == free  # Busy is booked then
    e = declined(sched.schedule_visit, svc, C, customer, "AC_TUNE", "2026-11-02T09:30")
    assert e.reason == "no_technician_free"
    assert first["technician"] == busy


def test_reschedule_and_cancel_leave_the_entitlement_alone(world):
    svc, customer, m = world
    t = tech(svc)
    v = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00", t, membership_id=m)
    other = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T11:00", t)
    moved = sched.reschedule_visit(svc, C, v["id"], "2026-11-02T09:30")
    assert moved["start"] == "2026-11-02T09:30:00-05:00"  # its own old slot does not clash with itself
    e = declined(sched.reschedule_visit, svc, C, v["id"], "2026-11-02T11:30")
    assert e.reason == "overlap" and other["id"] in e.message
    done = sched.cancel_visit(svc, C, v["id"], "contractor", "van broke down")
    assert (done["status"], done["cancelled_by"], done["cancel_reason"]) == ("cancelled", "contractor", "van broke down")
    assert memberships.show(svc, C, m)["services"][0]["left"] == 2  # drawn only at completion
    assert declined(sched.complete_visit, svc, C, v["id"]).reason == "visit_cancelled"
    with pytest.raises(InvalidDocument):
        sched.cancel_visit(svc, C, other["id"], "dog")


def test_completion_draws_the_entitlement_and_earns_points_once(world):
    svc, customer, m = world
    t = tech(svc)
    v = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00", t, membership_id=m)
    before = memberships.show(svc, C, m)["services"][0]
    assert (before["used"], before["left"]) == (0, 2)
    done = sched.complete_visit(svc, C, v["id"])
    assert done["status"] == "completed" and done["result"]["covered"] is True and done["event"] == f"visit:{v['id']}"
    after = memberships.show(svc, C, m)["services"][0]
    assert (after["used"], after["left"]) == (1, 1)
    assert rewards.points(svc, C, customer)["balance"] == 50
    again = sched.complete_visit(svc, C, v["id"])
    assert again["status"] == "completed" and again["already_completed"] is True
    assert memberships.show(svc, C, m)["services"][0]["left"] == 1
    assert rewards.points(svc, C, customer)["balance"] == 50


def test_completion_marks_the_request_it_answers_done(world):
    from keepwell.usecases import portal

    svc, customer, m = world
    t = tech(svc)
    req = portal.request_visit(svc, C, customer, f"{m}:AC_TUNE", "mornings", None)["id"]
    v = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00", t, request_id=req)
    assert v["membership"] == m and v["request"] == req
    assert sched.requests_of(svc, C, customer)[0]["status"] == "scheduled"
    sched.complete_visit(svc, C, v["id"])
    assert sched.requests_of(svc, C, customer)[0]["status"] == "done"


def test_another_companys_ids_are_not_found(world):
    svc, customer, _m = world
    t = tech(svc)
    v = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00", t)
    sched.set_duration(svc, "other", "AC_TUNE", 60)
    theirs = svc.add_customer("Theirs", company="other")
    for call in (lambda: sched.get_visit(svc, "other", v["id"]), lambda: sched.get_technician(svc, "other", t),
                 lambda: sched.cancel_visit(svc, "other", v["id"], "member"),
                 lambda: sched.complete_visit(svc, "other", v["id"]),
                 lambda: sched.add_time_off(svc, "other", t, date(2026, 11, 5)),
                 lambda: sched.schedule_visit(svc, "other", theirs, "AC_TUNE", "2026-11-02T09:00", t),
                 lambda: sched.schedule_visit(svc, "other", customer, "AC_TUNE", "2026-11-02T09:00"),
                 lambda: sched.calendar_token(svc, "other", "technician", t)):
        with pytest.raises(NotFound):
            call()
    assert sched.get_visit(svc, C, v["id"])["status"] == "scheduled"


def _race(svc, customers: list[str], technician: str | None) -> tuple[list[dict], list[Declined]]:
    """Every customer books the same slot at once, each in its own thread and transaction."""
    barrier = threading.Barrier(len(customers))
    won: list[dict] = []
    lost: list[Declined] = []

    def book(customer: str) -> None:
        barrier.wait()
        try:
            won.append(sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00", technician))
        except Declined as exc:
            lost.append(exc)

    threads = [threading.Thread(target=book, args=(c,)) for c in customers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return won, lost


def test_double_booking_is_impossible_under_concurrency(postgres_url):
    svc = make_app(postgres_url, TZ)
    try:
        sched.set_duration(svc, C, "AC_TUNE", 90)
        t = tech(svc)
        customers = [svc.add_customer(f"Racer {n}") for n in range(6)]
        won, lost = _race(svc, customers, t)
        assert len(won) == 1 and len(lost) == len(customers) - 1
        assert {e.reason for e in lost} == {"overlap"} and all("already booked" in e.message for e in lost)
        assert len(sched.list_visits(svc, C, technician_id=t)) == 1
        # Unnamed: each free technician is given the slot once, the rest are told none is free.
        others = [tech(svc, "Second"), tech(svc, "Third")]
        won, lost = _race(svc, customers, None)
        assert sorted(v["technician"] for v in won) == sorted(others)
        assert len(lost) == len(customers) - 2 and {e.reason for e in lost} == {"no_technician_free"}
        assert len(sched.list_visits(svc, C, status="scheduled")) == 3
    finally:
        svc.close()


def test_the_calendar_feed_shows_local_times_across_daylight_saving(world):
    svc, customer, m = world
    t = tech(svc, hours={"mon-sun": "08:00-17:00"})
    sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-10-31T09:00", t, membership_id=m)  # EDT, -04:00
    late = sched.schedule_visit(svc, C, customer, "AC_TUNE", "2026-11-02T09:00", t)  # EST, -05:00
    feed = sched.calendar_token(svc, C, "technician", t)
    cal = Calendar.from_ical(sched.calendar_feed(svc, feed["token"]))
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == [TZ]
    starts = sorted(e.decoded("dtstart") for e in cal.walk("VEVENT"))
    assert [(s.hour, s.minute, s.utcoffset().total_seconds() / 3600) for s in starts] == [(9, 0, -4), (9, 0, -5)]
    assert all(e["DTSTART"].params["TZID"] == TZ for e in cal.walk("VEVENT"))
    sched.cancel_visit(svc, C, late["id"], "member")
    mine = sched.calendar_token(svc, C, "customer", customer)
    statuses = sorted(str(e["STATUS"]) for e in Calendar.from_ical(sched.calendar_feed(svc, mine["token"])).walk("VEVENT"))
    assert statuses == ["CANCELLED", "CONFIRMED"]
    assert sched.calendar_token(svc, C, "technician", t) == feed  # the same address until rotated
    rotated = sched.calendar_token(svc, C, "technician", t, rotate=True)
    assert rotated["token"] != feed["token"]
    with pytest.raises(NotFound):
        sched.calendar_feed(svc, feed["token"])
    assert Calendar.from_ical(sched.calendar_feed(svc, rotated["token"])).walk("VEVENT")


def test_the_cli_books_lists_moves_cancels_and_completes(cli, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    cli("rulesets", "publish", str(plan))
    customer = cli.out("customers", "add", "--name", "Cli Member")
    m = cli.out("enroll", customer, "comfort", "--on", "2026-01-01")
    res = cli("visits", "schedule", customer, "AC_TUNE", "--at", "2026-11-02T09:00", expect=1)
    assert "AC_TUNE has no duration" in res.stderr and "keepwell services duration AC_TUNE MINUTES" in res.stderr
    assert "60 minutes" in cli.out("services", "duration", "ac_tune", "60")
    assert cli.json("services", "duration") == [{"service_code": "AC_TUNE", "minutes": 60}]
    t = cli.out("technicians", "add", "--name", "Tess Tech", "--skill", "AC_TUNE:2027-06-30",
                "--hours", "mon-fri=08:00-17:00", "--capacity", "4")
    res = cli("technicians", "add", "--name", "Bad", "--hours", "mon=17:00-08:00", expect=1)
    assert "Working hours for mon must be a start and an end the same day" in res.stderr
    cli("technicians", "time-off", t, "--from", "2026-11-09", "--to", "2026-11-13", "--reason", "holiday")
    [shown] = cli.json("technicians", "list")
    assert shown["skills"] == [{"service_code": "AC_TUNE", "expires_on": "2027-06-30"}]
    assert shown["time_off"] == [{"from": "2026-11-09", "to": "2026-11-13", "reason": "holiday"}]
    assert "Tess Tech" in cli.out("technicians", "list")
    res = cli("visits", "schedule", customer, "AC_TUNE", "--at", "2026-11-10T09:00", expect=1)
    assert "no technician qualified for AC_TUNE is free" in res.stderr
    v = cli.json("visits", "schedule", customer, "AC_TUNE", "--at", "2026-11-02T09:00", "--membership", m)
    assert v["technician"] == t and v["start"] == "2026-11-02T09:00:00-07:00"  # the company is in Denver
    res = cli("visits", "schedule", customer, "AC_TUNE", "--at", "2026-11-02T09:30", "--technician", t, expect=1)
    assert "already booked from 09:00 to 10:00" in res.stderr
    moved = cli.json("visits", "reschedule", v["id"], "--at", "2026-11-03T10:00")
    assert moved["start"] == "2026-11-03T10:00:00-07:00"
    assert v["id"] in cli.out("visits", "list", "--technician", t)
    other = cli.json("visits", "schedule", customer, "AC_TUNE", "--at", "2026-11-04T09:00")
    assert "cancelled by contractor" in cli.out("visits", "cancel", other["id"], "--by", "contractor")
    assert "covered by the membership" in cli.out("visits", "complete", v["id"])
    assert "completed already" in cli.out("visits", "complete", v["id"])
    assert cli.json("membership", "show", m)["services"][0]["left"] == 1
    assert [x["status"] for x in cli.json("visits", "list", "--customer", customer)] == ["completed", "cancelled"]
    assert cli.out("technicians", "calendar", t).startswith("/calendar/")
    assert cli.json("visits", "calendar", customer)["path"].endswith(".ics")


@pytest.fixture
def api(db_url):
    svc = make_app(db_url, TZ)
    svc.add_company("other", "Other Co", TZ)
    svc.publish(PLAN, "test", date(2020, 1, 1))
    svc.publish(RULES, "test", date(2020, 1, 1))
    c = create_app({"TESTING": True}, service=svc, settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"})).test_client()
    admin = {"Authorization": f"Bearer {apikeys.create(svc, C, 'office', ['admin'])}"}
    yield svc, c, admin
    svc.close()


def test_the_api_books_refuses_completes_and_serves_the_feed(api):
    svc, c, admin = api
    customer = svc.add_customer("Api Member")
    m = svc.enroll(customer, "comfort", date(2026, 1, 1))["membership"]
    r = c.post("/api/v1/technicians", headers=admin, json={"name": "Tess", "hours": {"mon-fri": "08:00-17:00"},
                                                           "skills": [{"service_code": "AC_TUNE"}]})
    assert r.status_code == 201, r.get_json()
    t = r.json["id"]
    booking = {"customer": customer, "service_code": "AC_TUNE", "start": "2026-11-02T09:00", "membership": m}
    r = c.post("/api/v1/visits", headers=admin, json=booking)
    assert (r.status_code, r.json["reason"]) == (402, "no_duration")
    assert c.post("/api/v1/service_durations", headers=admin,
                  json={"service_code": "AC_TUNE", "minutes": 90}).status_code == 200
    assert c.get("/api/v1/service_durations", headers=admin).json["durations"] == [
        {"service_code": "AC_TUNE", "minutes": 90}]
    writer = {"Authorization": f"Bearer {apikeys.create(svc, C, 'dispatch', ['read', 'visits:write'])}"}
    r = c.post("/api/v1/visits", headers=writer, json=booking)
    assert r.status_code == 201, r.get_json()
    v = r.json
    r = c.post("/api/v1/visits", headers=writer, json={**booking, "technician": t, "start": "2026-11-02T10:00"})
    assert (r.status_code, r.json["reason"]) == (402, "overlap") and "already booked" in r.json["detail"]
    r = c.post(f"/api/v1/technicians/{t}/time_off", headers=admin, json={"from": "2026-11-05", "to": "2026-11-06"})
    assert r.status_code == 201 and r.json["time_off"][0]["from"] == "2026-11-05"
    r = c.post(f"/api/v1/visits/{v['id']}/reschedule", headers=writer, json={"start": "2026-11-05T09:00"})
    assert (r.status_code, r.json["reason"]) == (402, "time_off")
    r = c.post(f"/api/v1/visits/{v['id']}/reschedule", headers=writer, json={"start": "2026-11-04T09:00"})
    assert r.status_code == 200 and r.json["start"] == "2026-11-04T09:00:00-05:00"
    assert [x["id"] for x in c.get(f"/api/v1/visits?technician={t}&from=2026-11-04&to=2026-11-04",
                                   headers=writer).json["visits"]] == [v["id"]]
    r = c.post(f"/api/v1/visits/{v['id']}/complete", headers=writer, json={})
    assert r.status_code == 200 and r.json["status"] == "completed"
    assert c.post(f"/api/v1/visits/{v['id']}/complete", headers=writer, json={}).json["already_completed"] is True
    assert memberships.show(svc, C, m)["services"][0]["left"] == 1
    assert rewards.points(svc, C, customer)["balance"] == 50
    r = c.post(f"/api/v1/visits/{v['id']}/cancel", headers=writer, json={"by": "member"})
    assert (r.status_code, r.json["reason"]) == (402, "visit_completed")
    feed = c.post(f"/api/v1/technicians/{t}/calendar", headers=admin, json={}).json
    r = c.get(feed["path"])
    assert r.status_code == 200 and r.mimetype == "text/calendar"
    [event] = Calendar.from_ical(r.data).walk("VEVENT")
    assert event.decoded("dtstart").isoformat() == "2026-11-04T09:00:00-05:00"
    rotated = c.post(f"/api/v1/technicians/{t}/calendar", headers=admin, json={"rotate": True}).json
    assert c.get(feed["path"]).status_code == 404 and c.get(rotated["path"]).status_code == 200
    mine = c.post(f"/api/v1/customers/{customer}/calendar", headers=admin, json={}).json
    assert c.get(mine["path"]).status_code == 200
    # Another company's key finds none of it.
    other = {"Authorization": f"Bearer {apikeys.create(svc, 'other', 'theirs', ['admin'])}"}
    assert c.get(f"/api/v1/visits/{v['id']}", headers=other).status_code == 404
    assert c.get(f"/api/v1/technicians/{t}", headers=other).status_code == 404
    assert c.get("/api/v1/visits", headers=other).json["visits"] == []
    assert json.loads(c.get(f"/api/v1/visits/{v['id']}", headers=admin).data)["status"] == "completed"
