"""Scheduled reports (#18, exports and delivery): a company has a report emailed weekly on a
weekday or monthly on a day, for a range relative to each run. Every problem of a schedule is
refused with its field; one made with the CLI or the API is listed by both; when its day comes,
the due work — `keepwell run-due` in the process, or a real RQ worker — renders the report and
sends one email per recipient through the outbox to a real SMTP server, the file attached with
the figures `keepwell report NAME --json` gives for the same range; a run done twice sends once;
a run whose commit fails leaves nothing; another company neither sees nor removes a schedule."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.kernel.errors import InvalidDocument
from keepwell.usecases import apikeys, companies, customers, due, memberships, reports
from keepwell.usecases.due import DueUnit
from kwmodels import OutboxFile, OutboxMessage, ReportSchedule
from mailserver import MailServer
from support import Cli, make_app, service
from test_workers import _close_in_process_service, burst, redis_server, redis_url, worker_env  # noqa: F401

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "250.00", "period": "monthly"},
                 "tiers": [{"id": "gold", "name": "Gold", "price": {"monthly": "20.00"}}]}}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _members(url: str) -> None:
    """Members of the Comfort Club: two who joined on the first of this month, one today, one
    the month before (so the previous month's report has someone at its start)."""
    with service(url) as svc:
        svc.publish(PLAN, "test", date(1970, 1, 1))
        today = companies.today(svc, "default")
        first = today.replace(day=1)
        before = (first - timedelta(days=1)).replace(day=1)
        for n, on in enumerate((first, first, today, before)):
            cid = customers.add_customer(svc, "default", f"Member {n}", f"member{n}@example.com")
            assert memberships.enroll(svc, "default", cid, "club", on)["status"] == "processed"


@pytest.fixture
def world(db_url):
    svc = make_app(db_url)
    _members(db_url)
    svc.add_company("other", "Other Heating")
    yield svc
    svc.close()


def api(svc):
    app = create_app({"TESTING": True}, service=svc, settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"}))
    return app.test_client()


def bearer(svc, company: str = "default", scopes=("admin",)) -> dict:
    return {"Authorization": f"Bearer {apikeys.create(svc, company, 'reports', list(scopes))}"}


def monthly(**changes) -> reports.ScheduleIn:
    spec = {"report": "membership-summary", "cadence": "monthly", "day": 1, "range": "last-month", "format": "xlsx",
            "recipients": ("owner@example.com", "books@example.com"), "plan": "club", "created_by": "test"}
    spec.update(changes)
    return reports.ScheduleIn(**spec)


def figures(cli: Cli, name: str, start: str, end: str) -> dict:
    """The Total row of `keepwell report NAME --json` for a range (the report's own figures)."""
    data = cli.json("report", name, "--plan", "club", "--from", start, "--to", end)
    [total] = [r for r in data["sections"][0]["rows"] if r["plan"] == "Total"]
    return {c["key"]: total[c["key"]] for c in data["sections"][0]["columns"] if c["kind"] == "int"}


def xlsx_total(content: bytes, columns: list[str]) -> dict:
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = next(i for i, r in enumerate(rows) if r and r[0] == "Plan")
    [total] = [r for r in rows[header + 1:] if r and r[0] == "Total"]
    titles = rows[header]
    keys = {"Active at start": "active_start", "Active at end": "active_end", "New": "new", "Renewed": "renewed",
            "Upgraded": "upgraded", "Downgraded": "downgraded", "Cancelled": "cancelled", "Expired": "expired"}
    return {keys[t]: v for t, v in zip(titles, total) if t in keys and keys[t] in columns}


def attachment(mail):
    [part] = list(mail.iter_attachments())
    return part


def report_keys(url: str) -> Counter:
    with service(url) as svc:
        return Counter(svc.run("default", lambda c: list(c.session.scalars(
            sa.select(OutboxMessage.key).where(OutboxMessage.key.like("report:%"))))))


# --- what a schedule must say ----------------------------------------------------------------------

def test_every_problem_of_a_schedule_is_refused_with_its_field(world):
    svc = world
    with pytest.raises(InvalidDocument) as bad:
        reports.add_schedule(svc, "default", reports.ScheduleIn(
            report="membership-summary", cadence="monthly", day=31, range="last-fortnight", format="docx",
            recipients=("bob@", "ok@example.com"), weekday="monday"))
    found = {p.path: p.message for p in bad.value.problems}
    assert found == {
        "day": "Day of month must be a number from 1 to 28 (every month has those days)",
        "weekday": "Weekday is for weekly schedules: a monthly one runs on a day of the month",
        "range": "Range must be one of last-7-days, last-week, last-month, last-quarter, last-12-months, "
                 "month-to-date, year-to-date",
        "format": "Format must be one of pdf, xlsx, csv",
        "recipients[0]": "Recipient 'bob@' is not an email address"}
    with pytest.raises(InvalidDocument) as bad:
        reports.add_schedule(svc, "default", reports.ScheduleIn(report="sales", cadence="yearly", range="last-month",
                                                                format="pdf", recipients=()))
    assert {p.path for p in bad.value.problems} == {"report", "cadence", "recipients"}
    with pytest.raises(InvalidDocument) as bad:
        reports.add_schedule(svc, "default", monthly(cadence="weekly", day=None, weekday="funday"))
    assert [(p.path, p.message) for p in bad.value.problems] == [
        ("weekday", "Weekday must be one of monday, tuesday, wednesday, thursday, friday, saturday, sunday")]
    # The report's own filters are checked as `keepwell report` checks them.
    with pytest.raises(InvalidDocument) as bad:
        reports.add_schedule(svc, "default", monthly(plan="no-such-plan"))
    assert [p.path for p in bad.value.problems] == ["plan"]
    with pytest.raises(InvalidDocument) as bad:
        reports.add_schedule(svc, "default", monthly(location="Nowhere"))
    assert [p.path for p in bad.value.problems] == ["location"]
    assert reports.list_schedules(svc, "default") == []  # nothing was saved


# --- made by the CLI and by the API ---------------------------------------------------------------

def test_a_schedule_made_with_the_cli_and_one_made_with_the_api_are_listed_by_both(world, db_url):
    svc = world
    cli = Cli(db_url)
    refused = cli("report", "schedule", "add", "churn", "--every", "monthly", "--day", "31", "--to", "bob@",
                  expect=1)
    assert "Day of month must be a number from 1 to 28" in refused.output
    assert "Recipient 'bob@' is not an email address" in refused.output
    made = cli.json("report", "schedule", "add", "membership-summary", "--every", "monthly", "--day", "1",
                    "--range", "last-month", "--format", "xlsx", "--to", "owner@example.com", "--to",
                    "Books@Example.com", "--plan", "club")
    today = companies.today(svc, "default")
    assert (made["report"], made["cadence"], made["day"], made["range"], made["format"], made["filters"]) == (
        "membership-summary", "monthly", 1, "last-month", "xlsx", {"plan": "club"})
    assert made["recipients"] == ["owner@example.com", "Books@example.com"]  # the domain normalised
    assert made["next_run_on"] == (today.replace(day=28) + timedelta(days=4)).replace(day=1).isoformat()
    text = cli.out("report", "schedule", "add", "churn", "--every", "weekly", "--on", "Friday", "--to",
                   "owner@example.com")
    assert text.startswith("schedule 2: churn weekly on Friday, last-week, as pdf to owner@example.com; next run ")

    c = api(svc)
    admin = bearer(svc)
    body = {"report": "operations", "cadence": "weekly", "weekday": "monday", "range": "last-7-days",
            "format": "csv", "recipients": ["ops@example.com"]}
    r = c.post("/api/v1/report_schedules", headers=admin, json=body)
    assert r.status_code == 201, r.get_json()
    assert (r.json["id"], r.json["weekday"], r.json["created_by"]) == (3, "monday", "API key reports")
    bad = c.post("/api/v1/report_schedules", headers=admin, json={**body, "recipients": ["bob@"]})
    assert bad.status_code == 422
    assert [(e["pointer"], e["message"]) for e in bad.json["errors"]] == [
        ("/recipients/0", "Recipient 'bob@' is not an email address")]
    bad = c.post("/api/v1/report_schedules", headers=admin, json={**body, "cadence": "monthly", "day": 29})
    assert [(e["pointer"], e["message"]) for e in bad.json["errors"]] == [
        ("/day", "Day of month must be a number from 1 to 28")]
    # A read key lists them; changing them takes admin.
    reader = bearer(svc, scopes=("read",))
    listed = c.get("/api/v1/report_schedules", headers=reader).json["report_schedules"]
    assert [s["report"] for s in listed] == ["membership-summary", "churn", "operations"]
    assert c.post("/api/v1/report_schedules", headers=reader, json=body).status_code == 403
    assert [s["id"] for s in cli.json("report", "schedule", "list")] == [1, 2, 3]
    assert "operations weekly on Monday, last-7-days, as csv to ops@example.com" in cli.out("report", "schedule",
                                                                                           "list")
    assert cli.out("report", "schedule", "remove", "2") == "removed report schedule 2"
    assert c.delete("/api/v1/report_schedules/3", headers=admin).status_code == 204
    assert [s["id"] for s in c.get("/api/v1/report_schedules", headers=admin).json["report_schedules"]] == [1]
    # `keepwell report NAME` and `keepwell report list` are as they were.
    assert "membership-summary" in cli.out("report", "list")
    assert cli.json("report", "membership-summary", "--plan", "club")["report"] == "membership-summary"


def test_another_company_neither_sees_nor_removes_a_schedule(world, db_url):
    svc = world
    mine = reports.add_schedule(svc, "default", monthly())
    c = api(svc)
    theirs = bearer(svc, "other")
    assert c.get("/api/v1/report_schedules", headers=theirs).json["report_schedules"] == []
    gone = c.delete(f"/api/v1/report_schedules/{mine.id}", headers=theirs)
    assert gone.status_code == 404 and gone.json["code"] == "not_found"
    other = Cli(db_url)
    other.env["KEEPWELL_COMPANY"] = "other"
    assert other.json("report", "schedule", "list") == []
    assert "no report schedule" in other("report", "schedule", "remove", str(mine.id), expect=1).output
    # Nor does its due work run another company's schedule.
    assert due.plan(svc, "other", mine.next_run_on + timedelta(days=40)) == []
    assert [s.id for s in reports.list_schedules(svc, "default")] == [mine.id]


# --- runs: rendered, sent once, attached ----------------------------------------------------------

def test_run_due_sends_the_report_to_each_recipient_once_with_the_file_attached(world, db_url):
    svc = world
    cli = Cli(db_url)
    made = reports.add_schedule(svc, "default", monthly())
    run_on = made.next_run_on
    start = (run_on - timedelta(days=1)).replace(day=1)
    end = run_on - timedelta(days=1)
    # Nothing is due before its day.
    assert [u.kind for u in due.plan(svc, "default", run_on - timedelta(days=1)) if u.kind == "report_schedule"] == []
    summary = cli.json("run-due", "--as-of", run_on.isoformat())
    assert summary["by_kind"]["report_schedule"] == 1
    assert report_keys(db_url) == Counter({f"report:{made.id}:{run_on}:owner@example.com": 1,
                                           f"report:{made.id}:{run_on}:books@example.com": 1})
    # Run again for the same day (run-due, and the very unit a second worker would take): nothing new.
    assert cli.json("run-due", "--as-of", run_on.isoformat())["by_kind"].get("report_schedule") is None
    unit = DueUnit("report_schedule", f"due:report:{made.id}:{run_on}", "", str(made.id), run_on)
    assert due.run_unit(svc, "default", unit)["emails_queued"] == 0
    assert sum(report_keys(db_url).values()) == 2
    # One copy of the file for both messages.
    assert svc.run("default", lambda c: c.session.scalar(sa.select(sa.func.count()).select_from(OutboxFile))) == 1
    after = reports.get_schedule(svc, "default", made.id)
    assert after.next_run_on == (run_on + timedelta(days=31)).replace(day=1)
    assert after.last_status == f"emailed {start} to {end} to 2 recipient(s)" and after.last_run_at is not None

    with MailServer() as smtp:
        cli.env.update({"KEEPWELL_SMTP_HOST": "127.0.0.1", "KEEPWELL_SMTP_PORT": str(smtp.port)})
        sent = cli.json("outbox", "deliver")
        assert [o["status"] for o in sent] == ["sent", "sent"]
        mails = smtp.wait_for(2, timeout=10)
        assert cli.json("outbox", "deliver") == []  # nothing left to send
    assert sorted(m["To"] for m in mails) == ["books@example.com", "owner@example.com"]
    assert {m["Subject"] for m in mails} == {f"Membership summary, {start} to {end} — Test Heating & Air"}
    expected = figures(cli, "membership-summary", start.isoformat(), end.isoformat())
    assert expected["active_end"] == 4 and expected["new"] == 3  # the members of the fixture, counted
    for mail in mails:
        part = attachment(mail)
        assert part.get_content_type() == XLSX
        assert part.get_filename() == f"membership-summary-{start}-to-{end}.xlsx"
        assert xlsx_total(part.get_content(), list(expected)) == expected
        assert "keepwell report schedule remove 1" in mail.get_body(("plain",)).get_content()


def test_a_run_whose_commit_fails_leaves_nothing_and_runs_whole_the_next_time(world, db_url):
    svc = world
    made = reports.add_schedule(svc, "default", monthly(format="csv", recipients=("owner@example.com",)))
    run_on = made.next_run_on

    def crash():
        raise RuntimeError("the machine stopped")

    with svc.database.before_commit(crash), pytest.raises(RuntimeError):
        svc.run_due(run_on)
    assert report_keys(db_url) == Counter()
    assert svc.run("default", lambda c: c.session.scalar(sa.select(sa.func.count()).select_from(OutboxFile))) == 0
    still = reports.get_schedule(svc, "default", made.id)
    assert (still.next_run_on, still.last_run_at, still.last_status) == (run_on, None, None)
    assert svc.run_due(run_on)["by_kind"]["report_schedule"] == 1
    assert report_keys(db_url) == Counter({f"report:{made.id}:{run_on}:owner@example.com": 1})


def test_a_missed_run_is_caught_up_for_its_own_range_and_a_removed_schedule_sends_nothing(world, db_url):
    svc = world
    weekly = reports.add_schedule(svc, "default", monthly(cadence="weekly", day=None, weekday="monday",
                                                          range="last-week", format="pdf",
                                                          recipients=("owner@example.com",)))
    gone = reports.add_schedule(svc, "default", monthly())
    reports.remove_schedule(svc, "default", gone.id)
    first = weekly.next_run_on
    # The workers were down for two weeks: each Monday's report goes, each for its own week.
    assert svc.run_due(first + timedelta(days=8))["by_kind"]["report_schedule"] == 2
    assert report_keys(db_url) == Counter({f"report:{weekly.id}:{first}:owner@example.com": 1,
                                           f"report:{weekly.id}:{first + timedelta(days=7)}:owner@example.com": 1})
    weeks = svc.run("default", lambda c: sorted(
        (m.payload["data"]["from"], m.payload["data"]["to"], m.payload["files"][0]["media_type"])
        for m in c.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.key.like("report:%")))))
    monday = first - timedelta(days=7)
    assert weeks == [(str(monday + timedelta(days=7 * k)), str(monday + timedelta(days=7 * k + 6)), "application/pdf")
                     for k in range(2)]
    assert reports.get_schedule(svc, "default", weekly.id).next_run_on == first + timedelta(days=14)
    assert svc.run("default", lambda c: c.session.scalar(sa.select(sa.func.count()).select_from(ReportSchedule))) == 1


def test_an_api_schedule_sends_its_csv_with_the_figures_of_its_range(world, db_url):
    svc = world
    c = api(svc)
    r = c.post("/api/v1/report_schedules", headers=bearer(svc), json={
        "report": "membership-summary", "cadence": "weekly", "weekday": "sunday", "range": "last-7-days",
        "format": "csv", "recipients": ["owner@example.com"], "plan": "club"})
    assert r.status_code == 201, r.get_json()
    run_on = date.fromisoformat(r.json["next_run_on"])
    start, end = run_on - timedelta(days=7), run_on - timedelta(days=1)
    svc.run_due(run_on)
    cli = Cli(db_url)
    with MailServer() as smtp:
        cli.env.update({"KEEPWELL_SMTP_HOST": "127.0.0.1", "KEEPWELL_SMTP_PORT": str(smtp.port)})
        cli("outbox", "deliver")
        [mail] = smtp.wait_for(1, timeout=10)
    part = attachment(mail)
    assert (part.get_content_type(), part.get_filename()) == ("text/csv", f"membership-summary-{start}-to-{end}.csv")
    table = list(csv.reader(io.StringIO(part.get_content())))
    header = next(i for i, row in enumerate(table) if row and row[0] == "Plan")
    [total] = [row for row in table[header + 1:] if row and row[0] == "Total"]
    expected = figures(cli, "membership-summary", start.isoformat(), end.isoformat())
    assert dict(zip([k for k in expected], total[3:])) == {k: str(v) for k, v in expected.items()}


# --- a real RQ worker -------------------------------------------------------------------------------

@pytest.mark.postgres_only
def test_a_worker_runs_the_schedule_as_due_work_and_delivers_it_once(postgres_url, redis_url, tmp_path):
    cli = Cli(postgres_url)
    cli.env["KEEPWELL_REDIS_URL"] = redis_url
    cli("init", "--timezone", "America/Denver")
    _members(postgres_url)
    made = cli.json("report", "schedule", "add", "membership-summary", "--every", "monthly", "--day", "1",
                    "--range", "last-month", "--format", "xlsx", "--to", "owner@example.com", "--to",
                    "books@example.com", "--plan", "club")
    run_on = date.fromisoformat(made["next_run_on"])
    start, end = (run_on - timedelta(days=1)).replace(day=1), run_on - timedelta(days=1)
    with MailServer() as smtp:
        env = worker_env(postgres_url, redis_url, smtp.port)
        # The day's other work first (the members' period ends): the report waits for it.
        queued = cli.json("run-due", "--as-of", run_on.isoformat())
        assert queued["enqueued"] >= 1 and queued["failed"] == []
        log = burst(env, tmp_path)
        assert "Traceback" not in log, log[-3000:]
        assert smtp.messages == []
        # The next tick finds the report due, and a worker renders and sends it.
        assert cli.json("run-due", "--as-of", run_on.isoformat())["enqueued"] == 1
        log = burst(env, tmp_path, name="report")
        assert "Traceback" not in log, log[-3000:]
        mails = smtp.wait_for(2, timeout=30)
        # Again: the schedule's next run is a month on, so nothing is enqueued or sent.
        again = cli.json("run-due", "--as-of", run_on.isoformat())
        assert again["enqueued"] == 0
        burst(env, tmp_path, name="again")
        assert len(smtp.messages) == 2
    assert smtp.keys() == Counter({f"report:{made['id']}:{run_on}:owner@example.com": 1,
                                   f"report:{made['id']}:{run_on}:books@example.com": 1})
    expected = figures(cli, "membership-summary", start.isoformat(), end.isoformat())
    for mail in mails:
        part = attachment(mail)
        assert part.get_content_type() == XLSX
        assert xlsx_total(part.get_content(), list(expected)) == expected
    listed = cli.json("report", "schedule", "list")
    assert listed[0]["next_run_on"] == (run_on + timedelta(days=31)).replace(day=1).isoformat()
    assert listed[0]["last_status"] == f"emailed {start} to {end} to 2 recipient(s)"
