"""Rewards in the admin as a person uses them: a real `keepwell serve` process and headless
Chromium (Debian's /usr/bin/chromium, driven by Playwright), like tests/test_admin_browser.py.
A customer with points redeems two rewards from the customer page; in the Redemptions queue
(reached through the Rewards menu) one is fulfilled and the other cancelled, after saying no to
the confirmation once. Screenshots are saved under the test's tmp_path (printed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from test_admin_rewards import CATALOG, PLAN, RULES

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEEPWELL = shutil.which("keepwell") or str(Path(sys.executable).parent / "keepwell")
PASSWORD = "browser test password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

if not Path(CHROMIUM).exists():
    if os.environ.get("KEEPWELL_REQUIRE_BROWSER"):
        raise RuntimeError("KEEPWELL_REQUIRE_BROWSER is set but chromium is not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed (CI installs it)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keepwell(env, *args, input=None) -> str:
    return subprocess.run([KEEPWELL, *args], env=env, input=input, text=True,
                          capture_output=True, check=True, timeout=120).stdout.strip()


@pytest.fixture
def server(tmp_path):
    """A company with the club's plan, points rules and catalog, and Rita with 180 points."""
    port = _free_port()
    env = {**os.environ, "KEEPWELL_DATABASE_URL": f"sqlite:///{tmp_path / 'kw.sqlite3'}", "KEEPWELL_COMPANY": "acme",
           "KEEPWELL_PASSWORD": PASSWORD}
    env.pop("KEEPWELL_REDIS_URL", None)
    _keepwell(env, "init", "--name", "Acme Heating", "--timezone", "America/Denver")
    _keepwell(env, "users", "add", "--company", "acme", "--email", "owner@acme.example", "--role", "owner")
    files = []
    for name, doc in (("plan", PLAN), ("rules", RULES), ("catalog", CATALOG)):
        (tmp_path / f"{name}.yaml").write_text(doc)
        files.append(str(tmp_path / f"{name}.yaml"))
    _keepwell(env, "rulesets", "publish", *files, "--effective-from", "2020-01-01")
    rita = _keepwell(env, "customers", "add", "--name", "Rita Redeemer")
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    _keepwell(env, "events", "post", "-", input=json.dumps(
        {"id": "pos-1", "type": "purchase", "customer": rita, "occurred_at": when, "data": {"amount": "180.00"}}))
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
    yield base, rita
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_redeem_at_the_counter_then_fulfil_and_cancel_in_the_queue(server, browser, tmp_path):
    base, rita = server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(30_000)

    def shot(name):
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    page.goto(base + "/admin/")
    page.get_by_label("Email").fill("owner@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/admin/$"))

    # The customer page: 180 points, Silver (Gold at 300), one lot.
    page.goto(f"{base}/admin/customers/details/?id={rita}")
    summary = page.locator("#points-summary")
    assert summary.locator('[data-key="balance"]').inner_text() == "180"
    assert summary.locator('[data-key="available"]').inner_text() == "180"
    assert page.locator("#loyalty-tier strong").inner_text() == "Silver"
    assert page.locator("#loyalty-next").inner_text() == "120 more points to reach Gold"
    assert page.locator("#lots tbody tr").count() == 1
    shot("01-points-panel")

    # Redeem the mug (30) and the $25 discount (50): 180 - 80 = 100.
    page.locator("#reward").select_option(label="Comfort Club mug — 30 points (2 left)")
    page.get_by_role("button", name="Redeem").click()
    page.wait_for_load_state()
    assert "Redeemed 1 × Comfort Club mug for 30 points" in page.locator(".alert-success").inner_text()
    shot("02-redeemed")
    page.locator("#reward").select_option("filter-discount")
    page.locator("#quantity").fill("4")  # 200 points: more than the 150 left
    page.get_by_role("button", name="Redeem").click()
    page.wait_for_load_state()
    assert "200 points asked, 150 available" in page.locator("#redeem-error").inner_text()
    shot("03-declined-beside-the-form")
    page.locator("#quantity").fill("1")
    page.get_by_role("button", name="Redeem").click()
    page.wait_for_load_state()
    assert page.locator('#points-summary [data-key="balance"]').inner_text() == "100"

    # Through the Rewards menu to the queue: both open.
    page.get_by_role("link", name="Rewards", exact=True).click()
    page.locator(".dropdown-menu").get_by_role("link", name="Redemptions", exact=True).click()
    page.wait_for_url(re.compile(r".*/admin/rewards/redemptions/$"))
    rows = page.locator("#redemptions tbody tr")
    assert rows.count() == 2
    shot("04-queue")
    discount = rows.filter(has_text="$25 off a filter change")
    discount.get_by_role("button", name="Fulfil").click()
    page.wait_for_load_state()
    assert "fulfilled" in page.locator(".alert-success").inner_text()
    mug = page.locator("#redemptions tbody tr").filter(has_text="Comfort Club mug")
    assert mug.locator('[data-key="status"]').inner_text() == "Ordered, to ship"
    # Cancel asks first: saying no keeps it.
    questions = []
    page.once("dialog", lambda d: (questions.append(d.message), d.dismiss()))
    mug.get_by_role("button", name="Cancel").click()
    assert questions == ["Cancel 1 × Comfort Club mug for Rita Redeemer? The 30 points go back to them."]
    assert page.locator("#redemptions tbody tr").filter(has_text="Comfort Club mug").count() == 1
    page.once("dialog", lambda d: d.accept())
    mug.get_by_role("button", name="Cancel").click()
    page.wait_for_load_state()
    assert "30 points given back" in page.locator(".alert-success").inner_text()
    assert "Nothing to fulfil." in page.locator("#redemptions").inner_text()
    shot("05-queue-done")

    page.goto(base + "/admin/rewards/redemptions/?status=all")
    statuses = page.locator('#redemptions [data-key="status"]').all_inner_texts()
    assert sorted(statuses) == ["Cancelled", "Fulfilled"]

    # Back on the panel: 100 + 30 = 130; the points economy says the same.
    page.goto(f"{base}/admin/customers/details/?id={rita}")
    assert page.locator('#points-summary [data-key="balance"]').inner_text() == "130"
    assert "Given back (redemption cancelled)" in page.locator("#points-history").inner_text()
    shot("06-points-panel-after")
    page.goto(base + "/admin/rewards/catalog/")
    assert page.locator('#reward-mug [data-key="stock"]').inner_text() == "2 left of 2"
    shot("07-catalog")
    page.goto(base + "/admin/rewards/economy/")
    assert page.locator('#economy [data-key="outstanding"]').inner_text() == "130"
    assert page.locator('#economy [data-key="liability"]').inner_text() == "1.30"
    shot("08-points-economy")
    assert len(list(shots.glob("*.png"))) == 8
