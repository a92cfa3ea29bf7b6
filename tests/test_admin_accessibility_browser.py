"""Every admin page the workspace walk (test_workspace_browser.py) does not visit, in a real
browser on a 1280 px desktop, signed in as an owner: the team, locations, webhooks and their
deliveries, the rewards catalog, redemptions and points economy, template packs and a pack's
install page, the rulesets list, a ruleset's history, a version, a compare, the editor of each
ruleset kind (and a new one), simulate, the customer form, enrol, a membership, its cancel and
tier-change confirmations, its statement, a customer, the ledger and events with a filter, an
event, the Reports page, a report's form, its figures, its error beside a field and a prepared
report file, and the 404 page. axe-core finds no serious or critical violation on any of them.
Screenshots are saved to the test's temporary folder."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from keepwell.usecases import Keepwell, companies, customers, events, memberships, packs, rewards, rulesets, webhooks
from test_admin_browser import browser, server, sign_in  # noqa: F401
from test_workspace_browser import accessibility_problems

COMPANY = "acme"


def _data(url: str) -> dict[str, str]:
    """What the pages show, written through the use cases on the server's own database: the HVAC
    pack (and a second version of its plan, to compare), a webhook endpoint, a member with
    purchases, points and a redemption, a customer who is not a member."""
    app = Keepwell.open(url)
    try:
        today = companies.today(app, COMPANY)
        packs.install(app, COMPANY, packs.find("hvac"), author="test", effective_from=date(2020, 1, 1))
        plan = rulesets.show(app, COMPANY, "hvac-comfort-club")["content"]
        plan["metadata"]["name"] = "Comfort Club (2026)"
        rulesets.publish(app, COMPANY, plan, "test", date(2020, 1, 1), note="New name")
        hook = webhooks.add(app, COMPANY, "https://hooks.example.com/acme", ["membership.enrolled", "points.earned"])
        olive = customers.add_customer(app, COMPANY, "Olive Overdraft", "olive@example.com", "+13035550100")
        customers.add_customer(app, COMPANY, "Walter Walk-in", "walter@example.com")
        on = today - timedelta(days=60)
        membership = memberships.enroll(app, COMPANY, olive, "hvac-comfort-club", on, tier="basic",
                                        cadence="monthly")["membership"]
        events.post_events(app, COMPANY, [
            {"id": "pos-1", "type": "purchase", "customer": olive, "occurred_at": f"{on + timedelta(days=5)}T17:00:00Z",
             "data": {"amount": "120.00", "pay_with": "membership"}},
            {"id": "pos-2", "type": "purchase", "customer": olive, "occurred_at": f"{on + timedelta(days=9)}T17:00:00Z",
             "data": {"amount": "3100.00", "pay_with": "card"}}])
        rewards.redeem(app, COMPANY, olive, "hvac-filter-discount", on=today - timedelta(days=1), key="redeem-1")
        return {"customer": olive, "membership": membership, "hook": str(hook["id"]), "today": today.isoformat()}
    finally:
        app.close()


def test_every_admin_page_has_no_serious_accessibility_violation(server, browser, tmp_path):
    ids = _data(f"sqlite:///{tmp_path / 'kw.sqlite3'}")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    sign_in(page, server, "owner@acme.example")
    m, c, on = ids["membership"], ids["customer"], ids["today"]
    pages = {
        "users": "/admin/users/",
        "locations": "/admin/locations/",
        "webhooks": "/admin/webhooks/",
        "webhook-deliveries": f"/admin/webhooks/{ids['hook']}/deliveries",
        "rewards-catalog": "/admin/rewards/catalog/",
        "redemptions": "/admin/rewards/redemptions/",
        "points-economy": "/admin/rewards/economy/",
        "packs": "/admin/packs/",
        "pack-install": "/admin/packs/plumbing",
        "rulesets": "/admin/rulesets/",
        "ruleset": "/admin/rulesets/r/hvac-comfort-club",
        "version": "/admin/rulesets/r/hvac-comfort-club/v/1",
        "diff": "/admin/rulesets/r/hvac-comfort-club/diff?a=1&b=2",
        "editor-plan": "/admin/rulesets/r/hvac-comfort-club/edit",
        "editor-plan-yaml": "/admin/rulesets/r/hvac-comfort-club/edit?mode=yaml",
        "editor-earning-rules": "/admin/rulesets/r/hvac-comfort-rewards/edit",
        "editor-notification-triggers": "/admin/rulesets/r/hvac-comfort-notices/edit",
        "editor-reward-catalog": "/admin/rulesets/r/hvac-comfort-rewards-catalog/edit",
        "editor-new": "/admin/rulesets/new?kind=Plan",
        "simulate": "/admin/rulesets/r/hvac-comfort-club/simulate",
        "customer-form": "/admin/customers/new/",
        "customer-edit": f"/admin/customers/edit/?id={c}",
        "customer": f"/admin/customers/details/?id={c}",
        "enroll": f"/admin/memberships/enroll?customer={c}",
        "memberships": "/admin/memberships/",
        "membership": f"/admin/memberships/show/{m}",
        "cancel-confirm": f"/admin/memberships/cancel/{m}?on={on}",
        "tier-confirm": f"/admin/memberships/upgrade/{m}?tier=premium&on={on}",
        "statement": f"/admin/memberships/statement/{m}",
        "ledger": "/admin/ledger/",
        "ledger-filtered": f"/admin/ledger/?q={m}",
        "events": "/admin/events/",
        "reports": "/admin/reports/",
        "report-form": "/admin/reports/r/statement",
        "report-run": f"/admin/reports/r/membership-summary?run=1&from=2020-01-01&to={on}",
        "report-statement": f"/admin/reports/r/statement?run=1&scope=membership&membership={m}&to={on}",
        "report-error": "/admin/reports/r/churn?run=1&from=2026-03-01&to=2026-02-01",
    }
    checked: dict[str, list[str]] = {}
    status: dict[str, int] = {}

    def look(name: str, url: str, expect: int = 200) -> None:
        response = page.goto(server + url)
        assert response is not None
        status[name] = response.status
        assert response.status == expect, (name, url, response.status)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        checked[name] = accessibility_problems(page)

    for name, url in pages.items():
        if name != "report-error":
            look(name, url)
    # An event's own page, from the events list.
    page.goto(server + "/admin/events/")
    href = page.locator('a[href*="/admin/events/details/"]').first.get_attribute("href")
    assert href
    look("event", href)
    look("report-error", pages["report-error"], expect=422)  # the form with its error beside the field
    # A report file prepared from the page, listed with its Download button once ready.
    page.goto(server + pages["report-run"])
    page.get_by_role("button", name="Prepare file").click()
    page.wait_for_load_state()
    page.locator("#report-files").get_by_role("link", name=re.compile("Download")).first.wait_for(timeout=60_000)
    look("report-file-ready", "/admin/reports/")
    look("not-found", "/admin/customers/details/?id=cus_nobody", expect=404)
    assert page.locator("h1").inner_text() == "Page not found"  # the admin's own page, with a way back
    assert page.locator("a", has_text="Back to Keepwell").count() == 1
    look("no-such-pack", "/admin/packs/no-such-pack", expect=404)

    failures = {k: v for k, v in checked.items() if v}
    assert not failures, json.dumps(failures, indent=1)
    assert len(list(shots.glob("*.png"))) == len(checked)
