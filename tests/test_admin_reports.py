"""The admin's Reports page (issue 18), through Flask's test client with CSRF on and the admin's
real sign-in: every report of the catalog run from its form shows, cell for cell, the figures
of `keepwell report NAME --json` for the same filters; a filter that is wrong is said beside its
field; CSV, Excel and PDF download with the CLI's figures; a report file is prepared by a job —
a thread of the web process in the embedded default, a real `keepwell worker` with Redis — its
progress reaching done and its download the same file; another company's file is not found."""

from __future__ import annotations

import html
import io
import re
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from keepwell.app import create_app
from keepwell.customers.users import add_user
from keepwell.infra.settings import Settings
from keepwell.usecases import companies, customers, locations, memberships, report_files, reports
from kwmodels import ReportFileRow
from mailserver import wait_until
from support import Cli, event, make_app
from test_admin_rewards import PASSWORD, Browser, flashes, text
from test_workers import Proc, redis_server, redis_url, worker_env  # noqa: F401  (fixtures)

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "250.00", "period": "monthly", "overdraft": {"limit": "50.00"}},
                 "tiers": [{"id": "gold", "name": "Gold", "price": {"monthly": "20.00"}},
                           {"id": "silver", "name": "Silver", "price": {"monthly": "12.00"}}]}}
RULES = {"apiVersion": "keepwell/v1", "kind": "EarningRules", "metadata": {"id": "club-points", "name": "Club points"},
         "spec": {"point_value": "0.01", "rules": [{"id": "spend", "when": {"event": "purchase"},
                                                    "earn": {"points": 1, "per": "1.00", "of": "data.amount"}}]}}
PERIOD = {"from": "2025-01-01", "to": "2025-02-20"}


@pytest.fixture
def site(db_url):
    """Two members of the club at the Denver location (Ann overdraws in January), one at none; a
    second company with an owner of its own."""
    svc = make_app(db_url)
    svc.add_company("other", "Other Plumbing", "UTC")
    for slug, email, role in (("default", "owner@heat.example", "owner"), ("default", "staff@heat.example", "staff"),
                              ("other", "owner@other.example", "owner")):
        svc.run(slug, lambda c, e=email, r=role: add_user(c.session, c.company, e, PASSWORD, r))
    svc.publish(PLAN, "test", date(1970, 1, 1))
    svc.publish(RULES, "test", date(1970, 1, 1))
    denver = locations.add_location(svc, "default", "Denver", "8.00")["id"]
    ann = customers.add_customer(svc, "default", "Ann Allowance", "ann@example.com", location=denver)
    bo = customers.add_customer(svc, "default", "Bo Saver", "bo@example.com", location=denver)
    cy = customers.add_customer(svc, "default", "Cy Silver", "cy@example.com")
    ann_m = memberships.enroll(svc, "default", ann, "club", date(2025, 1, 1), tier="gold")["membership"]
    memberships.enroll(svc, "default", bo, "club", date(2025, 1, 15), tier="gold")
    memberships.enroll(svc, "default", cy, "club", date(2025, 1, 20), tier="silver")
    svc.post_event(event("a-1", "purchase", ann, "2025-01-10", amount="100.00", pay_with="membership"))
    svc.post_event(event("a-2", "purchase", ann, "2025-01-20", amount="180.00", pay_with="membership"))
    svc.post_event(event("b-1", "purchase", bo, "2025-01-20", amount="40.00", pay_with="membership"))
    svc.run_due(date(2025, 2, 20))
    app = create_app({"TESTING": True}, service=svc, settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"}))
    yield app, svc, {"ann": ann, "ann_m": ann_m, "denver": denver}
    svc.close()


def signed_in(app, email="owner@heat.example") -> Browser:
    b = Browser(app)
    assert b.login(email).status_code == 302
    return b


def tables(page: str) -> dict[str, list[dict[str, str]]]:
    """Each section's table on the page: its rows as {column key: the cell's exact value}."""
    out = {}
    for m in re.finditer(r'<table[^>]*data-section="([^"]+)"[^>]*>(.*?)</table>', page, flags=re.S):
        body = m.group(2).split("<tbody>", 1)[1]
        rows = []
        for tr in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S):
            cells = re.findall(r'<td data-key="([^"]+)" data-value="([^"]*)"', tr)
            if cells:
                rows.append({k: html.unescape(v) for k, v in cells})
        out[html.unescape(m.group(1))] = rows
    return out


def shown(value) -> str:
    return "" if value is None else str(value)


def query(**given) -> str:
    return "&".join(f"{k}={v}" for k, v in {**given, "run": "1"}.items())


RUNS = [  # (report, the form's fields, the same filters for `keepwell report`)
    ("statement", {"scope": "plan", "plan": "club"}, {"plan": "club"}),
    ("statement", {"scope": "all", "location": "DENVER"}, {"location": "DENVER"}),
    ("statement", {"scope": "membership", "membership": "ANN_M"}, {"membership": "ANN_M"}),
    ("membership-summary", {}, {}),
    ("churn", {"tier": "gold"}, {"tier": "gold"}),
    ("recurring-revenue", {"plan": "club"}, {"plan": "club"}),
    ("deferred-revenue", {}, {}),
    ("points", {"location": "DENVER"}, {"location": "DENVER"}),
    ("operations", {}, {}),
]


def test_every_report_run_from_the_admin_shows_the_figures_of_the_cli(site, db_url):
    app, svc, ids = site
    b = signed_in(app)
    cli = Cli(db_url)
    subst = {"DENVER": ids["denver"], "ANN_M": ids["ann_m"]}
    ran = set()
    for name, form, filters in RUNS:
        form = {k: subst.get(v, v) for k, v in form.items()}
        filters = {k: subst.get(v, v) for k, v in filters.items()}
        page = b.page(f"/admin/reports/r/{name}?{query(**PERIOD, **form)}")
        expected = cli.json("report", name, "--from", PERIOD["from"], "--to", PERIOD["to"],
                            *[a for k, v in filters.items() for a in (f"--{k}", v)])
        assert expected == reports.run(svc, "default", name, **PERIOD, **filters)  # the CLI is the use case
        got = tables(page)
        assert list(got) == [s["id"] for s in expected["sections"]], name
        for s in expected["sections"]:
            assert got[s["id"]] == [{c["key"]: shown(r[c["key"]]) for c in s["columns"]} for r in s["rows"]], (name, s["id"])
            assert s["title"] in text(page, f"section-{s['id']}-title")
        ran.add(name)
    assert ran == {r["name"] for r in reports.list_reports(svc, "default")}  # every report of the catalog

    # What a person reads: money with its currency, beside the column titles. Ann's January: 250.00
    # granted, 280.00 spent (30.00 of it from the overdraft), paid back on Feb 1: 220.00 left.
    page = b.page(f"/admin/reports/r/statement?{query(**PERIOD, scope='membership', membership=ids['ann_m'])}")
    lines = text(page, f"section-membership-{ids['ann_m']}")
    assert "Membership allowance $250.00 $250.00" in lines
    assert "Membership Overdraft Payment -$30.00 $220.00" in lines
    assert "Closing balance — $220.00 $0.00" in lines
    assert "From 1 Jan 2025 · To 20 Feb 2025" in text(page, "figures-for")
    # A report with a chart shows it, drawn on the server.
    page = b.page(f"/admin/reports/r/points?{query(**PERIOD)}")
    assert re.search(r'<figure class="kw-chart"[^>]*><svg', page)


def test_the_catalog_the_form_and_its_defaults(site):
    app, svc, ids = site
    b = signed_in(app, "staff@heat.example")  # reports change nothing: staff run them too
    home = b.page("/admin/")
    assert re.search(r'href="/admin/reports/"[^>]*>\s*Reports\s*<', home)
    page = b.page("/admin/reports/")
    catalog = text(page, "catalog")
    for r in reports.list_reports(svc, "default"):
        assert r["title"] in catalog and r["description"] in catalog
    assert "Filters: From, To, Location (only the customers of one location)" in text(page, "report-points")
    assert "No report files yet" in text(page, "report-files")
    # The form: the last full month, the company's own plans, tiers and locations.
    today = companies.today(svc, "default")
    last = today.replace(day=1) - timedelta(days=1)
    page = b.page("/admin/reports/r/churn")
    assert f'id="from" name="from" value="{last.replace(day=1).isoformat()}"' in page
    assert f'id="to" name="to" value="{last.isoformat()}"' in page
    assert text(page, "plan") == "Every plan Comfort Club"
    assert text(page, "tier") == "Every tier Gold (Comfort Club) Silver (Comfort Club)"
    assert text(page, "location") == "Every location Denver"
    assert 'id="figures"' not in page  # not run yet
    assert 'id="scope"' not in page and 'id="scope-membership"' in b.page("/admin/reports/r/statement")
    assert 'id="plan"' not in b.page("/admin/reports/r/points")  # points take no plan
    assert b.client.get("/admin/reports/r/no-such-report").status_code == 404
    assert Browser(app).client.get("/admin/reports/").status_code == 302  # signed out: to the sign-in page


def test_a_wrong_filter_is_said_beside_its_field(site):
    app, _svc, _ids = site
    b = signed_in(app)
    r = b.client.get(f"/admin/reports/r/churn?{query(**{'from': '2025-03-01', 'to': '2025-02-01'})}")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert text(page, "from-error") == "From must be on or before the last day (to)."
    assert 'aria-describedby="from-error"' in page and 'id="figures"' not in page
    assert 'value="2025-03-01"' in page  # the form as typed
    page = b.client.get(f"/admin/reports/r/churn?{query(**{'from': '2025-13-01'})}").get_data(as_text=True)
    assert text(page, "from-error") == "From must be a date like 2026-01-31."
    page = b.client.get(f"/admin/reports/r/statement?{query(**PERIOD, scope='membership', membership='mem_nobody')}"
                        ).get_data(as_text=True)
    assert "mem_nobody" in text(page, "membership-error")
    page = b.client.get(f"/admin/reports/r/statement?{query(**PERIOD, scope='plan')}").get_data(as_text=True)
    assert text(page, "plan-error") == "Choose the plan."
    page = b.client.get(f"/admin/reports/r/statement?{query(**PERIOD, scope='all', plan='nope')}").get_data(as_text=True)
    assert 'id="figures"' in page  # the plan is not the scope: every member, the stray field left out
    page = b.client.get(f"/admin/reports/r/churn?{query(**PERIOD, plan='no-such-plan')}").get_data(as_text=True)
    assert text(page, "plan-error") == "There is no plan 'no-such-plan'."
    page = b.client.get(f"/admin/reports/r/churn?{query(**{'from': '2010-01-01', 'to': '2025-01-01'})}").get_data(
        as_text=True)
    assert text(page, "from-error") == "Reports cover at most ten years: choose a later first day."


def test_downloads_carry_the_figures_of_the_cli(site, db_url, tmp_path):
    app, svc, _ids = site
    b = signed_in(app)
    q = query(**PERIOD, scope="plan", plan="club")
    page = b.page(f"/admin/reports/r/statement?{q}")
    hrefs = {fmt: html.unescape(re.search(rf'id="download-{fmt}" href="([^"]+)"', page).group(1))
             for fmt in ("csv", "xlsx", "pdf")}
    cli = Cli(db_url)
    args = ("report", "statement", "--plan", "club", "--from", PERIOD["from"], "--to", PERIOD["to"])
    got = b.client.get(hrefs["csv"])
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert 'filename="statement-2025-01-01-to-2025-02-20.csv"' in got.headers["Content-Disposition"]
    assert got.get_data(as_text=True).replace("\r\n", "\n") == cli.out(*args, "--csv").replace("\r\n", "\n") + "\n"
    got = b.client.get(hrefs["xlsx"])
    assert got.status_code == 200
    out = tmp_path / "cli.xlsx"
    cli(*args, "--xlsx", "-o", str(out))

    def cells(book):
        return {s.title: [list(r) for r in s.iter_rows(values_only=True)] for s in book.worksheets}

    assert cells(load_workbook(io.BytesIO(got.data))) == cells(load_workbook(out))
    sheet = load_workbook(io.BytesIO(got.data))["Memberships"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert sum(1 for r in rows if r and str(r[0]).startswith("mem_")) == 3
    got = b.client.get(hrefs["pdf"])
    assert got.status_code == 200 and got.mimetype == "application/pdf" and got.data.startswith(b"%PDF")
    # A large report is not made in the request: it becomes a report file (the rule in the README).
    reports.DOWNLOAD_NOW_ROWS["csv"], before = 1, reports.DOWNLOAD_NOW_ROWS["csv"]
    try:
        r = b.client.get(hrefs["csv"])
    finally:
        reports.DOWNLOAD_NOW_ROWS["csv"] = before
    assert r.status_code == 302 and r.headers["Location"].endswith("#report-files")
    assert "This report is large, so the CSV file is being prepared" in flashes(b.page(r.headers["Location"]))
    wait_until(lambda: _statuses(svc) == ["done"], timeout=60, what="the large report's file")


def _statuses(svc, company="default"):
    return [f["status"] for f in report_files.listing(svc, company)]


def _status(b: Browser, file_id: str) -> dict:
    r = b.client.get(f"/admin/reports/files/status?ids={file_id}")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    [found] = r.json["files"]
    return found


def _prepare(b: Browser, name: str, fmt: str, **form) -> str:
    r = b.post(f"/admin/reports/r/{name}/prepare", {**form, "format": fmt})
    assert r.status_code == 302, r.get_data(as_text=True)
    page = b.page(r.headers["Location"])
    assert "is being prepared as a" in flashes(page)
    return re.search(r'id="file-(rpf_[0-9a-f]+)"', page).group(1)


def test_a_report_file_prepared_in_the_web_process_and_downloaded(site):
    """The embedded default (no Redis): the job runs in a thread of the web process."""
    app, svc, _ids = site
    b = signed_in(app)
    fid = _prepare(b, "statement", "xlsx", **PERIOD, scope="plan", plan="club")
    found = wait_until(lambda: (s := _status(b, fid))["status"] == "done" and s, timeout=60, what="the file")
    assert found["progress"]["done"] == found["progress"]["total"] == 2  # one section, then the workbook
    assert found["percent"] == 100 and found["status_text"] == "Ready" and found["download_url"]
    page = b.page("/admin/reports/")
    row = text(page, f"file-{fid}")
    assert "Membership statement" in row and "1 Jan 2025 to 20 Feb 2025 · plan club" in row and "Excel" in row
    assert "Ready" in row and "Download" in row
    got = b.client.get(found["download_url"])
    assert got.status_code == 200
    expected = reports.export(svc, "default", "statement", "xlsx", plan="club", **PERIOD)
    assert got.headers["Content-Disposition"] == f'attachment; filename="{expected.filename}"'
    sheet = lambda data: [list(r) for r in load_workbook(io.BytesIO(data))["Memberships"].iter_rows(values_only=True)]
    assert sheet(got.data) == sheet(expected.content)
    # Another company's owner: the file, its status and its Prepare again are not there.
    other = signed_in(app, "owner@other.example")
    assert other.client.get(found["download_url"]).status_code == 404
    assert other.client.get(f"/admin/reports/files/status?ids={fid}").json == {"files": []}
    assert other.post(f"/admin/reports/files/{fid}/again").status_code == 404
    assert "No report files yet" in text(other.page("/admin/reports/"), "report-files")
    assert b.client.get("/admin/reports/files/rpf_nothing").status_code == 404
    # A POST without the form's CSRF token is refused.
    assert b.client.post("/admin/reports/r/churn/prepare", data={"format": "csv"}).status_code == 400


def test_a_report_whose_filters_no_longer_hold_fails_saying_why(site):
    app, svc, _ids = site
    b = signed_in(app)
    made = report_files.queue(svc, "default", "churn", "csv", "owner@heat.example", plan="club", **PERIOD)

    def plan_gone(c):  # as if the plan had gone since the file was asked for
        row = c.session.get(ReportFileRow, made["id"])
        row.params = {**row.params, "plan": "gone"}

    svc.run("default", plan_gone)
    done = report_files.run(svc, "default", made["id"])
    assert done["status"] == "failed" and done["error"] == "Plan: there is no plan 'gone'."
    row = text(b.page("/admin/reports/"), f"file-{made['id']}")
    assert "Failed" in row and "there is no plan 'gone'" in row and "Prepare again" in row
    assert report_files.run(svc, "default", made["id"])["status"] == "failed"  # run again: nothing changes
    r = b.post(f"/admin/reports/files/{made['id']}/again")
    assert r.status_code == 302
    assert "Not prepared" in flashes(b.page(r.headers["Location"]))  # the plan is still gone


def test_report_files_expire_after_seven_days(site):
    app, svc, _ids = site
    b = signed_in(app)
    made = report_files.queue(svc, "default", "churn", "csv", "owner@heat.example", **PERIOD)
    assert report_files.run(svc, "default", made["id"])["status"] == "done"
    assert made["expires_at"][:10] == (date.fromisoformat(made["created_at"][:10]) + timedelta(days=7)).isoformat()
    assert b.client.get(f"/admin/reports/files/{made['id']}").status_code == 200

    def eight_days_on(c):
        row = c.session.get(ReportFileRow, made["id"])
        row.expires_at = row.expires_at - timedelta(days=8)

    svc.run("default", eight_days_on)
    assert b.client.get(f"/admin/reports/files/{made['id']}").status_code == 404
    assert report_files.listing(svc, "default") == []
    report_files.queue(svc, "default", "churn", "csv", "owner@heat.example", **PERIOD)  # asking again purges
    assert svc.run("default", lambda c: c.session.get(ReportFileRow, made["id"])) is None


@pytest.mark.postgres_only
def test_a_report_file_job_on_a_real_worker_reaches_done(postgres_url, redis_url, tmp_path):
    svc = make_app(postgres_url)
    try:
        svc.run("default", lambda c: add_user(c.session, c.company, "owner@heat.example", PASSWORD, "owner"))
        svc.publish(PLAN, "test", date(1970, 1, 1))
        for i in range(3):
            cid = customers.add_customer(svc, "default", f"Member {i}", f"m{i}@example.com")
            memberships.enroll(svc, "default", cid, "club", date(2025, 1, 1 + i), tier="gold")
        app = create_app({"TESTING": True}, service=svc,
                         settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k", "KEEPWELL_REDIS_URL": redis_url}))
        b = signed_in(app)
        fid = _prepare(b, "membership-summary", "xlsx", **PERIOD)
        assert _status(b, fid)["status"] == "queued"  # no worker yet: it waits in the queue
        env = worker_env(postgres_url, redis_url, 1)
        worker = Proc(env, "worker", "--name", f"reports-{fid}", log=tmp_path / "worker.log")
        try:
            seen = set()

            def done():
                s = _status(b, fid)
                seen.add(s["status"])
                assert s["status"] != "failed", (s, worker.text()[-3000:])
                return s if s["status"] == "done" else None

            found = wait_until(done, timeout=120, interval=0.1, what="the worker to prepare the file")
        finally:
            worker.close()
        total = found["progress"]["total"]
        assert total == len(reports.run(svc, "default", "membership-summary", **PERIOD)["sections"]) + 1
        assert found["progress"]["done"] == total
        got = b.client.get(found["download_url"])
        assert got.status_code == 200
        expected = reports.export(svc, "default", "membership-summary", "xlsx", **PERIOD)
        assert got.headers["Content-Disposition"] == f'attachment; filename="{expected.filename}"'

        def cells(data):
            book = load_workbook(io.BytesIO(data))
            return {s.title: [list(r) for r in s.iter_rows(values_only=True)] for s in book.worksheets}

        assert cells(got.data) == cells(expected.content) and len(cells(got.data)) == total - 1
        # The job again (a tick finding it, a retry) changes nothing: the file is done.
        assert report_files.run(svc, "default", fid)["status"] == "done"
    finally:
        svc.close()


@pytest.mark.postgres_only
def test_a_worker_killed_while_storing_the_file_leaves_no_half_file_and_the_next_one_finishes(
        postgres_url, redis_url, tmp_path):
    """The worker is SIGKILLed with the file made but not stored: the row is still running, with
    no content; once its heartbeat has expired (RQ gives the job up) and the row has given no word
    for a while, the workers' tick takes it up again and the next worker stores the whole file."""
    import sqlalchemy as sa

    from test_workers import kill_tree

    svc = make_app(postgres_url)
    try:
        svc.publish(PLAN, "test", date(1970, 1, 1))
        cid = customers.add_customer(svc, "default", "Member", "m@example.com")
        memberships.enroll(svc, "default", cid, "club", date(2025, 1, 1), tier="gold")
        made = report_files.queue(svc, "default", "statement", "csv", "owner@heat.example", plan="club", **PERIOD)
        env = worker_env(postgres_url, redis_url, 1)
        marker = tmp_path / "fault"
        doomed = Proc(env, "worker", "--burst", "--name", "doomed", log=tmp_path / "doomed.log",
                      fault=("report:written", marker))  # the burst's tick enqueues the waiting file
        try:
            wait_until(marker.exists, timeout=120, what="the job to make the file")
            kill_tree(doomed.p.pid)
            doomed.p.wait(timeout=10)
        finally:
            doomed.close()
        row = svc.run("default", lambda c: c.session.get(ReportFileRow, made["id"]))
        assert (row.status, row.attempts, row.size, row.filename, row.finished_at) == ("running", 1, None, None, None)
        assert svc.run("default", lambda c: c.session.scalar(
            sa.select(ReportFileRow.content).where(ReportFileRow.id == made["id"]))) is None
        # Time passes: the dead worker's heartbeat expires, the row has said nothing for 10 minutes.
        from rq import Queue
        from rq.registry import StartedJobRegistry

        from keepwell.interfaces.jobs import queues

        StartedJobRegistry(queue=Queue(queues.REPORTS, connection=queues.connection(redis_url))).cleanup(
            timestamp=__import__("time").time() + 3600)
        svc.run("default", lambda c: c.session.execute(sa.update(ReportFileRow).values(
            updated_at=ReportFileRow.updated_at - timedelta(minutes=10))))
        after = Proc(env, "worker", "--burst", "--name", "after", log=tmp_path / "after.log")
        try:
            assert after.wait(120) == 0, after.text()[-3000:]
        finally:
            after.close()
        done = report_files.get(svc, "default", made["id"])
        assert done["status"] == "done" and done["progress"]["done"] == done["progress"]["total"] == 2
        row = svc.run("default", lambda c: c.session.get(ReportFileRow, made["id"]))
        assert row.attempts == 2
        expected = reports.export(svc, "default", "statement", "csv", plan="club", **PERIOD)
        assert report_files.content(svc, "default", made["id"]).content == expected.content
    finally:
        svc.close()
