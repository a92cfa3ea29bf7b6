"""Rewards in the admin (issue 15), through Flask's test client with CSRF on: the Points panel of
the customer page (balance, tier, lots, history, referral code and referrals), redeeming from
it, the Redemptions queue (fulfil, ship, cancel), the catalog's stock and the points economy.
The assertions are on what a person reads on the pages. Every number is worked out by hand in
the comments."""

from __future__ import annotations

import html
import re
import textwrap
from datetime import timedelta

import pytest
import yaml

from keepwell.app import create_app
from keepwell.customers.users import add_user
from keepwell.usecases import companies, memberships
from support import event, make_app

PASSWORD = "correct horse battery"

PLAN = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: comfort-club, name: Comfort Club}
    spec:
      period: yearly
      allowance: {amount: "100.00", period: yearly}
      included_services:
        - {code: AC_TUNE, quantity: 1}
      tiers:
        - {id: basic, name: Basic}
        - {id: elite, name: Elite}
    """)

RULES = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: EarningRules
    metadata: {id: club-points, name: Club points}
    spec:
      point_value: "0.01"
      expiry: {after_months: 12, order: oldest_first}
      loyalty_tiers:
        basis: points
        window: rolling_12_months
        downgrade: at_review
        review_on: "01-01"
        tiers:
          - {id: silver, name: Silver, threshold: "100"}
          - {id: gold, name: Gold, threshold: "300", multiplier: "2"}
      rules:
        - id: spend
          when: {event: purchase}
          earn: {points: 1, per: "1.00", of: data.amount}
        - id: referrer-reward
          when:
            event: referral_rewarded
            all: [{field: data.role, eq: referrer}]
          earn: {points: 500}
        - id: referee-reward
          when:
            event: referral_rewarded
            all: [{field: data.role, eq: referee}]
          earn: {points: 250}
    """)

CATALOG = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: RewardCatalog
    metadata: {id: club-rewards, name: Club rewards}
    spec:
      rewards:
        - {id: filter-discount, name: "$25 off a filter change", type: service_discount, points: 50,
           service_code: FILTER_CHANGE, amount_off: "25.00"}
        - {id: extra-tune, name: Extra A/C tune-up, type: free_service, points: 80, service_code: AC_TUNE}
        - {id: mug, name: Comfort Club mug, type: merchandise, points: 30, inventory: 2,
           limit: {quantity: 1, per: year}}
    """)


class Browser:
    """A test client that signs in and sends the CSRF token like the real pages do."""

    def __init__(self, app):
        self.client = app.test_client()

    def token(self, url: str = "/admin/login") -> str:
        page = self.client.get(url).get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def login(self, email: str):
        return self.client.post("/admin/login", data={"email": email, "password": PASSWORD, "csrf_token": self.token()})

    def page(self, url: str) -> str:
        r = self.client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        return r.get_data(as_text=True)

    def post(self, url: str, data: dict | None = None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token("/admin/"))
        return self.client.post(url, data=data, **kw)


def text(page: str, element_id: str | None = None) -> str:
    """What a person reads: the page (or one element of it, by id) without its tags."""
    if element_id is not None:
        m = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>', page)
        assert m, f"no #{element_id} on the page"
        tag, start, depth, i = m.group(1), m.end(), 1, m.end()
        for t in re.finditer(rf"<(/?){tag}\b[^>]*>", page[start:]):
            depth += -1 if t.group(1) else 1
            if depth == 0:
                i = start + t.start()
                break
        page = page[start:i]
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def flashes(page: str) -> str:
    return " ".join(text(page[m.start():m.end()]) for m in re.finditer(r'<div class="alert[^"]*"[^>]*>.*?</div>',
                                                                           page, flags=re.S))


@pytest.fixture
def site(db_url):
    svc = make_app(db_url, timezone="America/Denver")
    svc.add_company("other", "Other Plumbing", "UTC")
    for slug, email, role in (("default", "owner@heat.example", "owner"), ("default", "staff@heat.example", "staff"),
                              ("other", "owner@other.example", "owner")):
        svc.run(slug, lambda c, e=email, r=role: add_user(c.session, c.company, e, PASSWORD, r))
    today = companies.today(svc, "default")
    for doc in (PLAN, RULES, CATALOG):
        svc.publish(yaml.safe_load(doc), "test", today - timedelta(days=400))
    app = create_app({"TESTING": True}, service=svc)
    yield app, svc, today
    svc.close()


def signed_in(app, email="owner@heat.example") -> Browser:
    b = Browser(app)
    assert b.login(email).status_code == 302
    return b


def test_redeem_from_the_customer_page_fulfil_and_cancel_in_the_queue(site):
    app, svc, today = site
    days = [(today - timedelta(days=n)).isoformat() for n in range(31)]
    rita = svc.add_customer("Rita Redeemer", "rita@example.com")
    membership = svc.enroll(rita, "comfort-club", today - timedelta(days=20), tier="basic")["membership"]
    assert svc.post_event(event("pos-1", "purchase", rita, days[10], amount="120.00"))["status"] == "approved"
    assert svc.post_event(event("pos-2", "purchase", rita, days[5], amount="60.00"))["status"] == "approved"
    b = signed_in(app)
    url = f"/admin/customers/details/?id={rita}"

    # 120 + 60 = 180 points in two lots; 180 reaches Silver (100), Gold needs 300: 120 more.
    page = b.page(url)
    assert text(page, "points-summary") == ("Balance 180 Available to redeem 180 Pending (held for the return window) 0 "
                                            f"Loyalty tier Silver since {days[10]} 180 points earned in the "
                                            "qualifying window 120 more points to reach Gold")
    lots = text(page, "lots")
    assert f"{days[10]} 120 120" in lots and f"{days[5]} 60 60" in lots and "Available" in lots
    assert "Comfort Club mug — 30 points (2 left)" in text(page, "reward")
    assert "Comfort Club — Basic" in text(page, "redeem-membership")
    assert "Earned" in text(page, "points-history") and "Nothing redeemed yet" in text(page)

    # The mug: 30 points, all from the lot earned first (oldest first); merchandise is ordered.
    r = b.post(f"/admin/customers/redeem/{rita}", {"reward": "mug", "quantity": "1"})
    assert r.status_code == 302
    page = b.page(r.headers["Location"])
    said = flashes(page)
    assert "Redeemed 1 × Comfort Club mug for 30 points" in said and "ordered, to ship" in said
    assert f"30 from the points earned {days[10]}" in said and "Points balance now 150" in said
    assert text(page, "points-summary").startswith("Balance 150 Available to redeem 150")

    # Asking for more than there is: the reason beside the form, the form as typed.
    page = b.post(f"/admin/customers/redeem/{rita}", {"reward": "filter-discount", "quantity": "5"}).get_data(
        as_text=True)
    assert "250 points asked, 150 available" in text(page, "redeem-error")
    assert re.search(r'id="quantity" name="quantity" value="5"', page)
    page = b.post(f"/admin/customers/redeem/{rita}", {"reward": "mug", "quantity": "1"}).get_data(as_text=True)
    assert "at most 1 per year" in text(page, "redeem-error")
    page = b.post(f"/admin/customers/redeem/{rita}", {"reward": "", "quantity": "two"}).get_data(as_text=True)
    assert text(page, "reward-error") == "Choose a reward." and text(page, "quantity-error") == "Enter a whole number."

    # The $25 discount (50) waits to be fulfilled; the extra tune-up (80) is given at once as a
    # visit on the membership: 30 + 50 + 40 of lot 1 (120), then 40 of lot 2 (60). 150 - 130 = 20.
    b.post(f"/admin/customers/redeem/{rita}", {"reward": "filter-discount", "quantity": "1"})
    r = b.post(f"/admin/customers/redeem/{rita}", {"reward": "extra-tune", "quantity": "1", "membership": membership})
    said = flashes(b.page(r.headers["Location"]))
    assert "Redeemed 1 × Extra A/C tune-up for 80 points" in said and "fulfilled" in said
    assert f"40 from the points earned {days[10]}" in said and f"40 from the points earned {days[5]}" in said
    assert "Adds 1 extra AC_TUNE visit" in said and "Points balance now 20" in said

    # The queue shows what is still to do: the mug to ship and the discount to fulfil.
    queue = b.page("/admin/rewards/redemptions/")
    rows = text(queue, "redemptions")
    assert f"Rita Redeemer Comfort Club mug 1 30 {days[0]} Ordered, to ship" in rows
    assert f"Rita Redeemer $25 off a filter change 1 50 {days[0]} To fulfil" in rows
    assert "Extra A/C tune-up" not in rows  # fulfilled already
    assert "Ship" in rows and "Fulfil" in rows and rows.count("Cancel") == 2
    assert 'data-confirm="Cancel 1 × Comfort Club mug for Rita Redeemer? The 30 points go back to them."' in queue
    assert "1 left of 2" in text(b.page("/admin/rewards/catalog/"), "reward-mug")

    ids = dict(re.findall(r'id="redemption-(rdm_[0-9a-f]+)"><td><a [^>]+>Rita Redeemer</a></td>\s*<td>([^<]+)<', queue))
    by_name = {name: rid for rid, name in ids.items()}
    discount, mug = by_name["$25 off a filter change"], by_name["Comfort Club mug"]

    # Fulfil the discount; cancel the mug: its 30 points go back to lot 1, the mug back in stock.
    r = b.post(f"/admin/rewards/redemptions/{discount}/next", {"back": "/admin/rewards/redemptions/?status=open"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/rewards/redemptions/?status=open")
    assert "$25 off a filter change for Rita Redeemer: fulfilled." in flashes(b.page(r.headers["Location"]))
    staff = signed_in(app, "staff@heat.example")
    assert staff.post(f"/admin/rewards/redemptions/{mug}/cancel").status_code == 403
    assert "Cancel" not in text(staff.page("/admin/rewards/redemptions/"), "redemptions")
    r = b.post(f"/admin/rewards/redemptions/{mug}/cancel")
    page = b.page(r.headers["Location"])
    assert "Comfort Club mug for Rita Redeemer cancelled: 30 points given back." in flashes(page)
    assert "Nothing to fulfil." in text(page, "redemptions")
    # a second cancel of the same redemption gives nothing back twice
    b.post(f"/admin/rewards/redemptions/{mug}/cancel")
    assert "Cancelled" in text(b.page("/admin/rewards/redemptions/?status=cancelled"), "redemptions")
    everything = text(b.page("/admin/rewards/redemptions/?status=all"), "redemptions")
    assert all(name in everything for name in ("Comfort Club mug", "$25 off a filter change", "Extra A/C tune-up"))
    assert "2 left of 2" in text(b.page("/admin/rewards/catalog/"), "reward-mug")

    # The panel: 20 + 30 = 50; lot 1 has its 30 back, lot 2 keeps 20.
    page = b.page(url)
    assert text(page, "points-summary").startswith("Balance 50 Available to redeem 50 Pending")
    lots = text(page, "lots")
    assert f"{days[10]} 120 30" in lots and f"{days[5]} 60 20" in lots
    history = text(page, "points-history")
    assert "Given back (redemption cancelled): cancelled: 1 x Comfort Club mug 30 50" in history
    assert "Redeemed: 1 x Extra A/C tune-up -80 20" in history
    mine = text(page, "customer-redemptions")
    assert "Comfort Club mug 1 30 Cancelled" in mine and "$25 off a filter change 1 50 Fulfilled" in mine

    # The membership page: the customer's points and the way to the panel.
    page = b.page(f"/admin/memberships/show/{membership}")
    assert text(page, "membership-points").startswith("Points of Rita Redeemer: 50 (50 available to redeem")
    assert f'href="/admin/customers/details/?id={rita}#points"' in page

    # The economy: 50 outstanding worth 0.50; 180 earned, 30 + 50 + 80 - 30 = 130 redeemed, none
    # expired: no breakage.
    page = b.page("/admin/rewards/economy/")
    stats = text(page, "economy")
    assert "50 points outstanding" in stats and "0.50 their value (0.01 a point)" in stats
    assert "0.0% breakage" in stats
    assert text(page, "totals") == "Total 180 130 0 0 0"


def test_referral_code_and_the_friends_who_joined_with_it(site):
    app, svc, today = site
    rob = svc.add_customer("Rob Referrer")
    b = signed_in(app)
    url = f"/admin/customers/details/?id={rob}"
    page = b.page(url)
    assert "Show referral code" in text(page, "referral") and "No one has joined" in text(page)
    page = b.post(f"/admin/customers/referral-code/{rob}").get_data(as_text=True)
    code = text(page, "referral-code")
    assert re.fullmatch(r"[A-Z2-9]{8}", code)
    assert text(b.post(f"/admin/customers/referral-code/{rob}").get_data(as_text=True), "referral-code") == code
    # A friend joins with the code: both are rewarded at once (no holding period): 500 to Rob.
    fay = svc.add_customer("Fay Friend")
    memberships.enroll(svc, "default", fay, "comfort-club", today, tier="basic", referral_code=code)
    page = b.page(url)
    assert text(page, "referral-code") == code
    assert text(page, "referrals") == f"Friend Referred Status Rewarded Fay Friend {today} Rewarded {today}"
    assert text(page, "points-summary").startswith("Balance 500 Available to redeem 500")
    # 500 points in the window: past Gold's 300, the highest tier
    assert text(page, "loyalty-tier").startswith("Gold since") and text(page, "loyalty-next") == "The highest tier"


def test_another_companys_redemptions_and_customers_are_not_found(site):
    app, svc, today = site
    ann = svc.add_customer("Ann")
    svc.post_event(event("p1", "purchase", ann, today.isoformat(), amount="100.00"))
    b = signed_in(app)
    r = b.post(f"/admin/customers/redeem/{ann}", {"reward": "filter-discount", "quantity": "1"})
    rid = re.search(r"redemption (rdm_[0-9a-f]+)", flashes(b.page(r.headers["Location"]))).group(1)
    other = signed_in(app, "owner@other.example")
    assert other.post(f"/admin/rewards/redemptions/{rid}/next").status_code == 404
    assert other.post(f"/admin/rewards/redemptions/{rid}/cancel").status_code == 404
    assert other.post(f"/admin/customers/redeem/{ann}", {"reward": "filter-discount"}).status_code == 404
    assert "Ann" not in text(other.page("/admin/rewards/redemptions/?status=all"), "redemptions")
    assert "No reward catalog is in force" in text(other.page("/admin/rewards/catalog/"))
    assert "To fulfil" in text(b.page("/admin/rewards/redemptions/"), "redemptions")


def test_the_rewards_menu_and_an_empty_economy(site):
    app, _svc, _today = site
    b = signed_in(app)
    home = b.page("/admin/")
    assert "Rewards" in home
    for href, label in (("/admin/rewards/catalog/", "Catalog"), ("/admin/rewards/redemptions/", "Redemptions"),
                        ("/admin/rewards/economy/", "Points economy")):
        assert re.search(rf'href="{href}"[^>]*>\s*{label}\s*<', home), label
    page = b.page("/admin/rewards/economy/?from=2026-05-01&to=2026-01-01")
    assert "From must be on or before To" in flashes(page)
    assert "No points earned or used in this range." in text(page, "months")
    catalog = text(b.page("/admin/rewards/catalog/"), "catalog")
    assert "Comfort Club mug Merchandise shipped 30 2 left of 2 1 per year per customer Available" in catalog
    assert "$25 off a filter change Service FILTER_CHANGE: 25.00 off Service discount 50 Unlimited" in catalog


def test_a_manual_adjustment_needs_a_reason_and_names_the_staff_member(site):
    app, svc, today = site
    ann = svc.add_customer("Ann Adjusted", "ann@example.com")
    b = signed_in(app)
    url = f"/admin/customers/details/?id={ann}"
    page = b.post(f"/admin/customers/adjust-points/{ann}", {"amount": "75", "reason": ""}).get_data(as_text=True)
    assert "Give a reason for the adjustment" in text(page, "adjust")
    page = b.post(f"/admin/customers/adjust-points/{ann}", {"amount": "lots", "reason": "x"}).get_data(as_text=True)
    assert "Points must be a whole number" in text(page, "adjust")
    r = b.post(f"/admin/customers/adjust-points/{ann}", {"amount": "75", "reason": "Missed visit, sorry"})
    page = b.page(r.headers["Location"])
    assert "Adjusted +75 points (Missed visit, sorry). Points balance now 75." in flashes(page)
    assert "Missed visit, sorry (by owner@heat.example (admin))" in text(page, "points-history")
    page = b.post(f"/admin/customers/adjust-points/{ann}", {"amount": "-100", "reason": "typo"}).get_data(as_text=True)
    assert "100 points asked, 75 available" in text(page, "adjust")
    staff = signed_in(app, "staff@heat.example")  # staff read the panel but do not adjust
    assert 'id="adjust"' not in staff.page(url)
    assert staff.post(f"/admin/customers/adjust-points/{ann}", {"amount": "5", "reason": "x"}).status_code == 403
