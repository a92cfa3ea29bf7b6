"""The member portal in a real browser on a 390 px phone (a `keepwell serve` process, Debian's
Chromium via Playwright): the emailed sign-in link read from a real SMTP server, home with the
right balances, redeem a reward, ask for an included visit, add a card on the sandbox's card page, see what cancelling would
refund and back out, turn text messages off. No page scrolls sideways; axe-core reports no
serious or critical violation on any of them. Screenshots are saved to the test's folder."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta

import yaml

from mailserver import MailServer
from test_admin_browser import _keepwell, browser, server  # noqa: F401
from test_workspace_browser import VIEWPORTS, accessibility_problems

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "250.00", "period": "monthly", "overdraft": {"limit": "50.00"}},
                 "discount_percent": "10",
                 "included_services": [{"code": "TUNEUP", "name": "Spring tune-up", "quantity": 1}],
                 "tiers": [{"id": "gold", "name": "Gold"}]}}
CATALOG = {"apiVersion": "keepwell/v1", "kind": "RewardCatalog", "metadata": {"id": "gifts", "name": "Gifts"},
           "spec": {"rewards": [{"id": "filter", "name": "Free air filter", "type": "merchandise", "points": 40,
                                 "inventory": 10}]}}


def test_a_member_uses_the_portal_on_a_phone(server, browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    env = {**os.environ, "KEEPWELL_DATABASE_URL": f"sqlite:///{tmp_path / 'kw.sqlite3'}", "KEEPWELL_COMPANY": "acme"}
    env.pop("KEEPWELL_REDIS_URL", None)
    for name, doc in (("plan", PLAN), ("catalog", CATALOG)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc))
        _keepwell(env, "rulesets", "publish", str(tmp_path / f"{name}.yaml"), "--effective-from", "2020-01-01")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    olive = _keepwell(env, "customers", "add", "--name", "Olive Member", "--email", "olive@example.com",
                      "--phone", "303-555-0100").stdout.strip()
    _keepwell(env, "enroll", olive, "club", "--on", yesterday)
    events = [{"id": "till-1", "type": "purchase", "customer": olive, "occurred_at": f"{yesterday}T12:00:00+00:00",
               "data": {"amount": "280.00", "pay_with": "membership", "description": "Capacitor"}},
              {"id": "adj-1", "type": "adjustment", "customer": olive, "occurred_at": f"{yesterday}T12:00:00+00:00",
               "data": {"unit": "points", "amount": "100", "reason": "welcome"}}]
    _keepwell(env, "events", "post", "-", input="\n".join(json.dumps(e) for e in events) + "\n")

    page = browser.new_context(**VIEWPORTS["phone"]).new_page()
    page.set_default_timeout(30_000)
    checked: dict[str, list[str]] = {}

    def look(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        checked[name] = accessibility_problems(page)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"{name} scrolls sideways ({wide} px)"

    page.goto(server + "/portal/acme/")
    page.wait_for_url(re.compile(r".*/portal/acme/sign-in$"))
    look("01-sign-in")
    page.locator("#email").fill("olive@example.com")
    page.locator("#send-link").click()
    assert "Check your email" in page.locator("#link-sent").inner_text()
    look("02-link-sent")
    with MailServer() as smtp:
        _keepwell({**env, "KEEPWELL_SMTP_HOST": "127.0.0.1", "KEEPWELL_SMTP_PORT": str(smtp.port)},
                  "outbox", "deliver")
        [mail] = smtp.wait_for(1, timeout=10)
    link = re.search(r"http://127\.0\.0\.1:\d+/portal/acme/link/\S+", mail.get_content()).group(0)
    page.goto(link)
    page.wait_for_url(re.compile(r".*/portal/acme/$"))
    card = page.locator("#membership-1")
    assert "Comfort Club — Gold" in card.inner_text()
    assert card.locator('[data-key="balance"]').inner_text().startswith("0.00")
    assert card.locator('[data-key="overdraft_used"]').inner_text() == "30.00"
    assert card.locator('[data-key="overdraft_left"]').inner_text() == "20.00"
    assert page.locator('#points [data-key="points"]').inner_text().startswith("100")
    look("03-home")

    page.get_by_role("link", name="Rewards").click()
    page.locator("#redeem-filter").click()
    assert "Spend 40 points on Free air filter?" in page.locator("#confirm-redeem").inner_text()
    look("04-redeem-confirm")
    page.locator("#redeem-confirmed").click()
    page.wait_for_url(re.compile(r".*/portal/acme/rewards$"))
    assert page.locator('[data-key="points"]').first.inner_text().startswith("60")
    assert "Free air filter" in page.locator("#redemptions").inner_text()
    look("05-redeemed")

    page.get_by_role("link", name="Visits").click()
    page.locator("#service").select_option(index=0)  # the spring tune-up the membership includes
    page.get_by_label("When suits you?").fill("weekday mornings")
    page.locator("#ask-visit").click()
    page.wait_for_url(re.compile(r".*/portal/acme/visits$"))
    assert "Waiting for us to book it" in page.locator("#visit-requests").inner_text()
    look("05b-visit-requested")

    page.get_by_role("link", name="Billing").click()
    page.locator("#add-card").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Security code").fill("123")
    page.locator("#save-card").click()
    page.locator("#continue").click()
    page.wait_for_url(re.compile(r".*/portal/acme/billing$"))
    assert "Visa ending 4242" in page.locator("#cards").inner_text()
    look("06-card-added")

    page.get_by_role("link", name="Home").click()
    page.locator("#cancel-link-1").click()
    assert "Cancel your membership?" in page.locator("#cancel-preview").inner_text()
    look("07-cancel-preview")
    page.locator("#keep-membership").click()
    page.wait_for_url(re.compile(r".*/portal/acme/$"))
    assert "Active" in page.locator('#membership-1 [data-key="status"]').inner_text()

    page.get_by_role("link", name="Preferences").click()
    page.locator("#channel-sms").uncheck()
    page.locator("#save-preferences").click()
    page.wait_for_url(re.compile(r".*/portal/acme/preferences$"))
    assert not page.locator("#channel-sms").is_checked() and page.locator("#channel-email").is_checked()
    look("08-preferences")
    page.get_by_role("link", name="History").click()
    assert "Charge: Capacitor" in page.locator("#statement-1").inner_text()
    look("09-history")

    assert {name: found for name, found in checked.items() if found} == {}
