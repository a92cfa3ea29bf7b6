"""The Reports page as a contractor uses it, in a real browser (a `keepwell serve` process on the
embedded default, Debian's Chromium driven by Playwright), on a desktop and on a 390 px phone:
open Reports from the menu, choose the Membership summary, run it for the last few months, read
the figures in the table (the same as `keepwell report membership-summary --json`), download the
CSV at once, then prepare the Excel file, watch "Your report files" refresh by itself until
Download appears, and download it. axe-core finds no serious or critical violation on the pages.
Screenshots are saved under the test's tmp_path (printed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from test_admin_browser import KEEPWELL, browser  # noqa: F401
from test_admin_rewards import PLAN
from test_admin_rewards_browser import _free_port, _keepwell
from test_workspace_browser import VIEWPORTS, accessibility_problems

PASSWORD = "browser test password"


@pytest.fixture
def server(tmp_path):
    """A company with the club's plan and two members who joined 40 days ago."""
    port = _free_port()
    env = {**os.environ, "KEEPWELL_DATABASE_URL": f"sqlite:///{tmp_path / 'kw.sqlite3'}", "KEEPWELL_COMPANY": "acme",
           "KEEPWELL_PASSWORD": PASSWORD}
    env.pop("KEEPWELL_REDIS_URL", None)
    _keepwell(env, "init", "--name", "Acme Heating", "--timezone", "America/Denver")
    _keepwell(env, "users", "add", "--company", "acme", "--email", "owner@acme.example", "--role", "owner")
    (tmp_path / "plan.yaml").write_text(PLAN)
    _keepwell(env, "rulesets", "publish", str(tmp_path / "plan.yaml"), "--effective-from", "2020-01-01")
    joined = (date.today() - timedelta(days=40)).isoformat()
    for name, tier in (("Ann Allowance", "basic"), ("Eli Elite", "elite")):
        cid = _keepwell(env, "customers", "add", "--name", name)
        _keepwell(env, "enroll", cid, "comfort-club", "--tier", tier, "--on", joined)
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([KEEPWELL, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / "serve.log").read_text())
            time.sleep(0.2)
    yield base, env
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_a_contractor_runs_a_report_and_prepares_its_file(server, browser, tmp_path, device):
    base, env = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    context = browser.new_context(**VIEWPORTS[device], accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    checked: dict[str, list[str]] = {}

    def look(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        checked[name] = accessibility_problems(page)
        if device == "phone":  # nothing scrolls sideways but the tables, inside their own box
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, name

    page.goto(base + "/admin/")
    page.get_by_label("Email").fill("owner@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/admin/$"))

    # Reports, from the menu.
    if device == "phone":
        page.get_by_role("button", name="Menu").click()
    page.get_by_role("link", name="Reports", exact=True).click()
    page.wait_for_url(re.compile(r".*/admin/reports/$"))
    assert page.locator("#catalog article").count() == 7
    assert "No report files yet" in page.locator("#report-files").inner_text()
    look("01-catalog")

    # The Membership summary: its form starts on the last full month; three months back instead.
    page.get_by_role("link", name="Choose filters and run the Membership summary").click()
    page.wait_for_url(re.compile(r".*/admin/reports/r/membership-summary$"))
    today = date.today()
    last = today.replace(day=1) - timedelta(days=1)
    assert page.get_by_label("From").input_value() == last.replace(day=1).isoformat()
    assert page.get_by_label("To").input_value() == last.isoformat()
    start = (today.replace(day=1) - timedelta(days=62)).replace(day=1).isoformat()
    page.get_by_label("From").fill(start)
    page.get_by_label("To").fill(today.isoformat())
    page.get_by_label("Tier").select_option(label="Elite (Comfort Club)")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#figures")
    look("02-figures")

    # The table holds the CLI's figures, cell for cell.
    expected = json.loads(_keepwell(env, "report", "membership-summary", "--from", start, "--to", today.isoformat(),
                                    "--tier", "elite", "--json"))
    for s in expected["sections"]:
        table = page.locator(f'table[data-section="{s["id"]}"]')
        cells = table.locator("tbody td[data-key]")
        got = [cells.nth(i).get_attribute("data-value") for i in range(cells.count())]
        assert got == ["" if r[c["key"]] is None else str(r[c["key"]]) for r in s["rows"] for c in s["columns"]], s["id"]
    assert page.locator("#figures-for").inner_text().startswith("From ")

    # Download now: the CSV, the same as the CLI's.
    with page.expect_download() as waiting:
        page.locator("#download-csv").click()
    csv_path = tmp_path / f"{device}.csv"
    waiting.value.save_as(csv_path)
    cli_csv = _keepwell(env, "report", "membership-summary", "--from", start, "--to", today.isoformat(),
                        "--tier", "elite", "--csv")
    assert csv_path.read_text().replace("\r\n", "\n").strip() == cli_csv.replace("\r\n", "\n").strip()

    # Prepare the Excel file: the list refreshes by itself until Download shows.
    page.get_by_label("Or prepare a file in the background").select_option(label="Excel")
    page.get_by_role("button", name="Prepare file").click()
    page.wait_for_load_state()
    assert "The Membership summary is being prepared as an Excel file" in page.locator(".alert-success").inner_text()
    row = page.locator("#report-files tbody tr").first
    assert "Membership summary" in row.inner_text() and "Excel" in row.inner_text()
    download = row.get_by_role("link", name=re.compile("Download"))
    download.wait_for(state="visible", timeout=60_000)
    assert row.locator('[data-key="status-text"]').inner_text() == "Ready"
    assert row.locator('[data-key="bar"]').get_attribute("aria-valuenow") == "100"
    look("03-file-ready")
    with page.expect_download() as waiting:
        download.click()
    xlsx_path = tmp_path / f"{device}.xlsx"
    waiting.value.save_as(xlsx_path)
    assert waiting.value.suggested_filename == f"membership-summary-{start}-to-{today.isoformat()}.xlsx"
    cli_xlsx = tmp_path / f"{device}-cli.xlsx"
    _keepwell(env, "report", "membership-summary", "--from", start, "--to", today.isoformat(), "--tier", "elite",
              "--xlsx", "-o", str(cli_xlsx))

    def cells_of(path):
        book = load_workbook(path)
        return {s.title: [list(r) for r in s.iter_rows(values_only=True)] for s in book.worksheets}

    assert cells_of(xlsx_path) == cells_of(cli_xlsx)

    # Back on Reports, the file is listed there too.
    page.goto(base + "/admin/reports/")
    assert page.locator("#report-files tbody tr").first.get_by_role("link", name=re.compile("Download")).count() == 1
    look("04-catalog-with-file")

    failures = {k: v for k, v in checked.items() if v}
    assert not failures, json.dumps(failures, indent=1)
