"""The plan editor as a contractor sees it, in a real browser (a `keepwell serve` process, Debian's
Chromium via Playwright) on a 1280 px desktop and a 390 px phone: the plan in sections in the
order a contractor thinks in (price before tiers), the tiers side by side, one "Renews
automatically", a page about a third as long as the one long form it replaces, no sideways
scrolling, sections that fold, a problem that opens its section, the save/publish bar always in
view, a form saved unchanged that changes nothing, and no serious accessibility problem (axe-core).
Screenshots are saved to the test's temporary folder."""

from __future__ import annotations

import json
import re

import pytest

from test_admin_browser import browser, server, sign_in  # noqa: F401
from test_workspace_browser import VIEWPORTS, accessibility_problems

SECTIONS = ["Plan and price", "Tiers", "Allowance and overdraft", "Included visits", "Discounts and priority",
            "Promotions", "Renewal and cancellation"]
# The HVAC plan's editor was one long form before it had sections: about 13,900 px high on a
# desktop and 19,000 px on a phone. Half of that at most, now.
BEFORE = {"desktop": 13_900, "phone": 19_000}


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_the_plan_editor_in_sections(server, browser, tmp_path, device):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    width, height = VIEWPORTS[device]["viewport"]["width"], VIEWPORTS[device]["viewport"]["height"]
    page = browser.new_context(**VIEWPORTS[device]).new_page()
    page.set_default_timeout(30_000)
    checked: dict[str, list[str]] = {}

    def look(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        page.screenshot(path=str(shots / f"{name}-in-view.png"))  # what is on the screen now
        checked[name] = accessibility_problems(page)

    def section(title: str):
        return page.locator("details.kw-section", has=page.locator("summary", has_text=title))

    def toolbar_in_view() -> bool:
        box = page.locator("#editor-toolbar").bounding_box()
        return box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height + 1

    sign_in(page, server, "owner@acme.example")
    page.goto(server + "/admin/packs/hvac")
    page.locator("#effective_from").fill("2020-01-01")
    page.locator("#install").click()
    page.wait_for_url(re.compile(r".*/admin/rulesets/$"))
    edit = server + "/admin/rulesets/r/hvac-comfort-club/edit"
    page.goto(edit)

    # The sections, in order; price, tiers and allowance open, the rest one click away.
    titles = [" ".join(t.split()) for t in page.locator("details.kw-section > summary .kw-section-title").all_inner_texts()]
    assert titles == SECTIONS
    assert [section(t).get_attribute("open") is not None for t in SECTIONS] == [True, True, True, False, False,
                                                                                False, False]
    price = page.locator('[name="spec-price-monthly"]').bounding_box()
    first_tier = page.locator('[name="spec-tiers-0-name"]').bounding_box()
    assert price and first_tier and price["y"] < first_tier["y"]  # the price before the tiers

    # Half the height of the old page at most, and nothing to scroll sideways.
    tall = page.evaluate("document.documentElement.scrollHeight")
    assert tall <= BEFORE[device] / 2, tall
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    print(f"{device}: {tall} px high")

    # The tiers side by side: a column per tier, a row per setting.
    table = page.locator("#spec-tiers-table")
    assert table.locator("thead th").count() == 1 + 3
    assert table.locator("tbody tr").first.locator("td").count() == 3
    assert [" ".join(t.split()) for t in table.locator(".kw-col-title").all_inner_texts()] == [
        "Tier 1: Basic", "Tier 2: Premium", "Tier 3: Elite"]
    if device == "phone":  # the table scrolls inside its own box
        assert page.evaluate("(() => { const w = document.querySelector('.kw-table-wrap');"
                             " return w.scrollWidth > w.clientWidth && w.clientWidth <= innerWidth; })()")
    table.scroll_into_view_if_needed()
    look(f"01-{device}-plan-editor")

    # The save/publish bar stays in view, at the top of the page and further down.
    assert toolbar_in_view()
    page.locator('[name="spec-allowance-amount"]').scroll_into_view_if_needed()
    assert toolbar_in_view()

    # One "Renews automatically", in Renewal and cancellation.
    section("Renewal and cancellation").locator("summary").click()
    assert page.get_by_label("Renews automatically").count() == 1
    assert page.locator("label", has_text="Renews automatically").count() == 1
    assert section("Renewal and cancellation").get_by_label("Renews automatically").is_visible()

    # A section folds and unfolds; what is folded stays folded through Validate, what is opened stays open.
    tiers = section("Tiers")
    tiers.locator("summary").click()
    assert tiers.get_attribute("open") is None and not table.is_visible()
    tiers.locator("summary").click()
    assert tiers.get_attribute("open") is not None and table.is_visible()
    tiers.locator("summary").click()
    section("Included visits").locator("summary").click()
    page.locator("#validate").click()
    page.wait_for_load_state()
    assert section("Tiers").get_attribute("open") is None
    assert section("Included visits").get_attribute("open") is not None
    assert section("Renewal and cancellation").get_attribute("open") is not None

    # Saved as it is, the form changes nothing: the draft saved from it would change no line, and
    # published (from another day) Compare finds no change.
    page.goto(edit)
    page.locator("#save").click()
    page.wait_for_url(re.compile(r".*/admin/rulesets/r/hvac-comfort-club/edit.*"))
    assert "Draft saved." in page.content()
    page.locator("#publish").click()
    assert "0 lines change" in page.locator("#confirm-publish").inner_text()
    page.locator("#publish-confirmed").click()
    page.wait_for_url(re.compile(r".*/admin/rulesets/r/hvac-comfort-club$"))
    assert "Published version 2" in page.content()
    page.goto(server + "/admin/rulesets/r/hvac-comfort-club/diff?a=1&b=2")
    assert "These two versions have the same content." in page.content()
    assert page.locator(".kw-diff .diff_add, .kw-diff .diff_chg, .kw-diff .diff_sub").count() == 0

    # A problem in a folded section opens it, beside its field, and the section says so.
    page.goto(edit)
    discounts = section("Discounts and priority")
    discounts.locator("summary").click()
    page.locator('[name="spec-priority"]').fill("9")
    discounts.locator("summary").click()  # folded again before Validate
    assert discounts.get_attribute("open") is None
    page.locator("#validate").click()
    page.wait_for_load_state()
    discounts = section("Discounts and priority")
    assert discounts.get_attribute("open") is not None
    error = page.locator("#spec-priority-errors")
    assert error.is_visible() and "Scheduling priority must be at most 5" in error.inner_text()
    assert "1 problem" in discounts.locator("summary").inner_text()
    assert section("Promotions").get_attribute("open") is None  # no problem there: still folded
    error.scroll_into_view_if_needed()
    look(f"02-{device}-plan-editor-error")
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # The YAML is one click away, and back.
    page.locator("#mode-yaml").click()
    assert "priority: 9" in page.locator("#yaml").input_value()
    page.locator("#mode-form").click()
    assert page.locator('[name="spec-priority"]').input_value() == "9"

    failures = {k: v for k, v in checked.items() if v}
    assert not failures, json.dumps(failures, indent=1)
