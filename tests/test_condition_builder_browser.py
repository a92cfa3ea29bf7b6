"""The condition builder of earning rules in a real browser (a `keepwell serve` process, Debian's
Chromium via Playwright), on a desktop and on a phone: a contractor adds "Amount is at least 100"
to an earning rule with the rows (no YAML typed), saves, and finds the same condition in the YAML
view; the Field lists follow the event type (conditions.js); axe-core finds no serious or
critical accessibility violation. Screenshots are saved to the test's temporary folder."""

from __future__ import annotations

import re

import pytest

from test_admin_browser import browser, server, sign_in  # noqa: F401
from test_workspace_browser import VIEWPORTS, accessibility_problems


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_a_contractor_adds_a_condition_with_the_builder(server, browser, tmp_path, device):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    page = browser.new_context(**VIEWPORTS[device]).new_page()
    page.set_default_timeout(30_000)
    checked: dict[str, list[str]] = {}

    def look(name: str, builder: str = "") -> None:
        """A screenshot (and one of the rule's builder), and axe-core's verdict on the page."""
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        if builder:
            page.locator(f"#{builder}").screenshot(path=str(shots / f"{name}-builder.png"))
        checked[name] = accessibility_problems(page)

    sign_in(page, server, "owner@acme.example")
    page.goto(server + "/admin/packs/hvac")
    page.locator("#install").click()
    page.wait_for_url(re.compile(r".*/admin/rulesets/$"))

    page.goto(server + "/admin/rulesets/r/hvac-comfort-rewards/edit")
    w = "spec-rules-0-when"
    rows = page.locator(f"#{w}-g-0 .kw-cond")
    n = rows.count()
    assert n >= 1 and page.locator(f"#{w}-g-0-c-0-field").input_value() == "member.status"
    # The Field list follows the event type(s), without a round trip to the server: a purchase's
    # fields; with service visits too, only what both carry; a service visit's.
    field = page.locator(f"#{w}-g-0-c-0-field")

    def offered(title: str) -> bool:
        return field.locator("option", has_text=title).count() == 1

    assert offered("Paid with") and offered("Amount") and not offered("Technician")
    page.locator(f"#{w}-event").select_option(["purchase", "service_completed"])
    assert not offered("Paid with") and offered("Amount") and not offered("Technician")
    page.locator(f"#{w}-event").select_option(["service_completed"])
    assert offered("Technician") and not offered("Paid with")
    page.locator(f"#{w}-event").select_option(["purchase"])
    assert offered("Paid with") and not offered("Technician")
    assert field.input_value() == "member.status" and offered("Membership status")  # the chosen field stays

    # Add a condition: Amount · is at least · 100.
    page.locator(f"#{w}-g-0-add").click()
    row = f"{w}-g-0-c-{n}"
    page.locator(f"#{row}-field").wait_for()
    page.get_by_label("Field").nth(n).select_option(label="Amount")  # the row's controls have labels
    page.locator(f"#{row}-op").select_option(label="is at least")
    page.locator(f"#{row}-value").fill("100")
    look("01-builder-new-condition", w)
    page.locator("#save").click()
    page.wait_for_url(re.compile(r".*/edit\?mode=form$"))
    assert page.locator(f"#{row}-field").input_value() == "data.amount"
    assert page.locator(f"#{row}-op").input_value() == "gte"
    assert page.locator(f"#{row}-value").input_value() == "100"
    look("02-builder-saved", w)

    # The same condition in the YAML view: data.amount, gte: 100 (a number).
    page.locator("#mode-yaml").click()
    text = page.locator("#yaml").input_value()
    assert re.search(r"- field: data\.amount\n\s+gte: 100\n", text), text
    look("03-yaml")

    # A wrong value: its problem in words, beside its row.
    page.locator("#mode-form").click()
    page.locator(f"#{row}-op").select_option(label="is one of")
    page.locator(f"#{row}-value").fill("100, lots")
    page.locator("#validate").click()
    error = page.locator(f"#{row}-errors")
    assert "“Amount” is an amount" in error.inner_text()
    look("04-builder-error", w)

    assert checked == {name: [] for name in checked}, checked
