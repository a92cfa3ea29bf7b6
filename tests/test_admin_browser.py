"""The admin UI as a person uses it: a real `keepwell serve` process, real headless Chromium
(Debian's /usr/bin/chromium, driven by Playwright). Screenshots of each main page are saved to a
temporary folder (printed, and kept by pytest's tmp_path)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEEPWELL = shutil.which("keepwell") or str(Path(sys.executable).parent / "keepwell")
PASSWORD = "browser test password"
# Chromium as root in a container, on a machine without outside network.
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


def _keepwell(env, *args, input=None):
    return subprocess.run([KEEPWELL, *args], env=env, input=input, text=True,
                          capture_output=True, check=True, timeout=120)


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {**os.environ, "KEEPWELL_DATABASE_URL": f"sqlite:///{tmp_path / 'kw.sqlite3'}", "KEEPWELL_COMPANY": "acme",
           "KEEPWELL_PASSWORD": PASSWORD}
    env.pop("KEEPWELL_REDIS_URL", None)
    _keepwell(env, "init", "--name", "Acme Heating", "--timezone", "America/Denver")
    _keepwell(env, "companies", "add", "rival", "--name", "Rival Air")
    _keepwell(env, "users", "add", "--company", "acme", "--email", "owner@acme.example", "--role", "owner")
    _keepwell(env, "users", "add", "--company", "rival", "--email", "owner@rival.example", "--role", "owner")
    log = open(tmp_path / "serve.log", "w")  # a file, not a pipe: request logs must never block the server
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
    yield base
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


def sign_in(page, base, email):
    page.goto(base + "/admin/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/admin/$"))


def test_a_contractor_sets_up_a_program_and_another_company_cannot_see_it(server, browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    page = browser.new_context(**phone).new_page()
    page.set_default_timeout(30_000)

    def shot(name):
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    # Sign in (wrong password first).
    page.goto(server + "/admin/")
    page.get_by_label("Email").fill("owner@acme.example")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert "do not match" in page.locator("#login-error").inner_text()
    shot("01-sign-in")
    sign_in(page, server, "owner@acme.example")
    assert "Acme Heating" in page.content()
    shot("02-home")

    # Install the HVAC pack with its default prices.
    page.goto(server + "/admin/packs/")
    shot("03-packs")
    page.locator("#pack-hvac").click()
    page.get_by_label("Basic allowance").fill("250.00")
    shot("04-pack-install")
    page.locator("#install").click()
    page.wait_for_url(re.compile(r".*/admin/rulesets/$"))
    assert "Comfort Club hvac-comfort-club\tMembership plans\tVersion 1" in page.locator("#rulesets").inner_text()
    shot("05-rulesets")

    # Change the allowance amount in the form generated from the schema: a bad value first.
    page.goto(server + "/admin/rulesets/r/hvac-comfort-club/edit")
    amount = page.locator('[name="spec-allowance-amount"]')
    assert amount.input_value() == "250.00"
    amount.fill("12.3.4")
    page.locator("#validate").click()
    error = page.locator("#spec-allowance-amount-errors")
    # In words, beside the field; no pattern, no path.
    assert error.is_visible() and error.inner_text().strip() == "Allowance amount must be an amount like 250.00"
    summary = page.locator("#problems").inner_text()
    assert "Allowance amount must be an amount like 250.00" in summary and "spec." not in summary
    shot("06-editor-error")
    page.locator('[name="spec-allowance-amount"]').fill("300.00")
    page.locator("#validate").click()
    assert page.locator("#problems").count() == 0
    # The same draft as YAML and back: nothing lost.
    page.locator("#mode-yaml").click()
    assert "amount: '300.00'" in page.locator("#yaml").input_value()
    shot("07-editor-yaml")
    page.locator("#mode-form").click()
    assert page.locator('[name="spec-allowance-amount"]').input_value() == "300.00"
    page.locator("#effective_from").fill("2026-01-01")
    page.locator("#publish").click()
    assert "Publish version 2" in page.locator("#confirm-publish").inner_text()
    page.locator("#note").fill("Allowance up to 300.00")
    page.locator("#publish-confirmed").click()
    page.wait_for_url(re.compile(r".*/admin/rulesets/r/hvac-comfort-club$"))
    versions = page.locator("#versions").inner_text()
    assert "Version 2" in versions and "Allowance up to 300.00" in versions
    shot("08-ruleset-history")
    page.goto(server + "/admin/rulesets/r/hvac-comfort-club/diff?a=1&b=2")
    assert "300.00" in page.content()
    shot("09-diff")

    # Enroll a customer on the basic tier and see the new allowance on the membership page.
    page.goto(server + "/admin/customers/new/")
    page.locator("#name").fill("Maria Garcia")
    page.locator("#email").fill("maria@example.com")
    page.locator("input[type=submit]").first.click()
    page.goto(server + "/admin/memberships/enroll")
    page.locator("#customer").select_option(page.locator("#customer option", has_text="Maria Garcia").get_attribute("value"))
    page.locator("#plan").select_option("hvac-comfort-club|basic")
    page.locator("#on").fill("2026-02-01")
    shot("10-enroll")
    page.locator("#enroll").click()
    page.wait_for_url(re.compile(r".*/admin/memberships/show/mem_[0-9a-f]+$"))
    membership_url = page.url
    assert page.locator('#allowance [data-key="balance"]').inner_text() == "300.00"
    assert "hvac-comfort-club@2" in page.locator("#plan-version").inner_text()
    shot("11-membership")
    page.goto(server + "/admin/ledger/")
    assert "hvac-comfort-club@2" in page.content()
    shot("12-ledger")
    page.goto(server + "/admin/events/")
    shot("13-events")

    # Another company's owner gets nothing: not the membership, not the lists.
    other = browser.new_context(**phone).new_page()
    sign_in(other, server, "owner@rival.example")
    response = other.goto(membership_url)
    assert response.status == 404
    other.goto(server + "/admin/memberships/")
    assert "Maria" not in other.content()
    other.goto(server + "/admin/customers/")
    assert "Maria" not in other.content()
    other.screenshot(path=str(shots / "14-other-company.png"), full_page=True)
    assert len(list(shots.glob("*.png"))) == 14


def test_serve_demo_prints_a_login_that_works(tmp_path, browser):
    port = _free_port()
    env = {**os.environ, "KEEPWELL_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    env.pop("KEEPWELL_REDIS_URL", None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([KEEPWELL, "serve", "--demo", "--port", str(port)], env=env, cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            login = None
            for _ in range(300):
                login = re.search(r"sign in as (\S+) / (\S+)", log_path.read_text())
                if login and "Keepwell on http" in log_path.read_text():
                    break
                assert proc.poll() is None, log_path.read_text()
                time.sleep(0.2)
            assert login, log_path.read_text()
            page = browser.new_page()
            for _ in range(100):
                try:
                    page.goto(f"http://127.0.0.1:{port}/admin/")
                    break
                except sync_api.Error:
                    time.sleep(0.2)
            page.get_by_label("Email").fill(login.group(1))
            page.get_by_label("Password").fill(login.group(2))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r".*/admin/$"))
            assert "Demo Heating &amp; Air" in page.content() or "Demo Heating & Air" in page.content()
            page.goto(f"http://127.0.0.1:{port}/admin/memberships/")
            assert "Maria Garcia" in page.content()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
