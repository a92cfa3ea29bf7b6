"""The member portal (its own issue): a member asks for a sign-in link, reads it at a real SMTP
server, signs in with it once and sees their plan, allowance, overdraft, included visits and
points; the link is bound to its company and single-use; asking tells nobody whether an email
is a member's; another company's member never sees this company's portal as theirs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.messaging.channels import ChannelSettings, channels_from
from keepwell.usecases import billing, customers, memberships
from keepwell.usecases import rewards as rewards_uc
from keepwell.usecases.messaging import deliver_due
from mailserver import MailServer, wait_until
from support import event, make_app

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "250.00", "period": "monthly", "overdraft": {"limit": "50.00"}},
                 "discount_percent": "10",
                 "included_services": [{"code": "TUNEUP", "name": "Tune-up", "quantity": 2}],
                 "tiers": [{"id": "gold", "name": "Gold", "price": {"monthly": "20.00"}}]}}


@pytest.fixture
def world(db_url):
    svc = make_app(db_url)
    svc.add_company("other", "Other Heating")
    svc.publish(PLAN, "test", date(1970, 1, 1))
    app = create_app({"TESTING": True}, service=svc,
                     settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k", "KEEPWELL_SMTP_HOST": "127.0.0.1"}))
    today = datetime.now(UTC).date() - timedelta(days=1)
    olive = customers.add_customer(svc, "default", "Olive Member", "olive@example.com")
    memberships.enroll(svc, "default", olive, "club", today)
    svc.post_event(event("till-1", "purchase", olive, today.isoformat(), amount="280.00", pay_with="membership"))
    outsider = customers.add_customer(svc, "other", "Otto Other", "otto@example.com")
    yield svc, app, olive, outsider
    svc.close()


def ask_for_link(client, company: str, email: str):
    page = client.get(f"/portal/{company}/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(f"/portal/{company}/sign-in", data={"email": email, "csrf_token": csrf})


def links_emailed(svc, smtp: MailServer, n: int) -> list[tuple[list[str], str]]:
    """(recipients, link path) of the sign-in links the outbox delivered (other mail set aside)."""
    deliver_due(svc, channels_from(ChannelSettings(smtp_port=smtp.port)))

    def links() -> list[tuple[list[str], str]]:
        found = []
        for to, m in list(smtp.received):
            if "sign-in link" in (m["Subject"] or ""):
                text = m.get_body(preferencelist=("plain",)).get_content()
                found.append((to, re.search(r"http://localhost(/portal/\S+/link/[A-Za-z0-9_-]+)", text).group(1)))
        return found

    wait_until(lambda: len(links()) >= n, 10, what=f"{n} sign-in link(s)")
    return links()


def test_a_member_signs_in_with_the_emailed_link_and_sees_their_membership(world):
    svc, app, olive, _ = world
    client = app.test_client()
    assert client.get("/portal/default/").headers["Location"].endswith("/portal/default/sign-in")
    sent = ask_for_link(client, "default", "Olive@Example.com")
    assert sent.status_code == 200 and "Check your email" in sent.get_data(as_text=True)
    with MailServer() as smtp:
        [(to, path)] = links_emailed(svc, smtp, 1)
    assert to == ["olive@example.com"]
    r = client.get(path)
    assert r.status_code == 302 and r.headers["Location"].endswith("/portal/default/")
    home = client.get("/portal/default/").get_data(as_text=True)
    assert "Olive Member" in home and "Comfort Club — Gold" in home
    assert re.search(r'data-key="balance">0\.00', home)  # 280.00 spent of 250.00
    assert re.search(r'data-key="overdraft_used">30\.00', home) and re.search(r'data-key="overdraft_left">20\.00', home)
    assert re.search(r'data-key="discount">10%', home)
    assert "Tune-up: <strong>2 left</strong>" in home
    # The link worked once; a used one says so and signs nobody in.
    fresh = app.test_client()
    again = fresh.get(path)
    assert again.status_code == 404 and "has expired or has been used" in again.get_data(as_text=True)
    assert fresh.get("/portal/default/").status_code == 302


def test_asking_for_a_link_tells_nobody_who_is_a_member_and_links_stay_in_their_company(world):
    svc, app, _olive, _outsider = world
    client = app.test_client()
    unknown = ask_for_link(client, "default", "nobody@example.com").get_data(as_text=True)
    member = ask_for_link(client, "default", "olive@example.com").get_data(as_text=True)
    def strip(html: str) -> str:  # the email typed and the response's nonce differ; nothing else may
        return re.sub(r'<strong>[^<]*</strong>|nonce="[^"]+"', "", html)
    assert strip(unknown) == strip(member)
    ask_for_link(client, "default", "otto@example.com")  # Otto is a customer of the other company
    ask_for_link(client, "other", "otto@example.com")
    with MailServer() as smtp:
        got = links_emailed(svc, smtp, 2)
    assert sorted(to[0] for to, _ in got) == ["olive@example.com", "otto@example.com"]
    otto_path = next(path for to, path in got if to == ["otto@example.com"])
    assert otto_path.startswith("/portal/other/")
    # Otto's link at this company's portal signs nobody in.
    wrong = app.test_client()
    assert wrong.get(otto_path.replace("/portal/other/", "/portal/default/")).status_code == 404
    # Signed in at the other company, this company's portal is still closed to Otto.
    assert wrong.get(otto_path).status_code == 302
    assert "Otto Other" in wrong.get("/portal/other/").get_data(as_text=True)
    assert wrong.get("/portal/default/").status_code == 302
    assert app.test_client().get("/portal/no-such-company/sign-in").status_code == 404


def test_asking_for_links_again_and_again_is_throttled(world):
    _svc, app, _olive, _ = world
    client = app.test_client()
    codes = [ask_for_link(client, "default", "olive@example.com").status_code for _ in range(6)]
    assert codes[:5] == [200] * 5 and codes[5] == 429
    assert "Too many sign-in links" in ask_for_link(client, "default", "olive@example.com").get_data(as_text=True)


def test_signing_out_ends_the_member_session(world):
    svc, app, _olive, _ = world
    client = app.test_client()
    ask_for_link(client, "default", "olive@example.com")
    with MailServer() as smtp:
        [(_to, path)] = links_emailed(svc, smtp, 1)
    client.get(path)
    home = client.get("/portal/default/").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home).group(1)
    assert client.post("/portal/default/sign-out", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/portal/default/").status_code == 302


def signed_in(svc, client, company: str = "default", email: str = "olive@example.com"):
    ask_for_link(client, company, email)
    with MailServer() as smtp:
        [(_to, path)] = links_emailed(svc, smtp, 1)
    assert client.get(path).status_code == 302
    return client


def csrf_of(client, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


CATALOG = {"apiVersion": "keepwell/v1", "kind": "RewardCatalog", "metadata": {"id": "gifts", "name": "Gifts"},
           "spec": {"rewards": [{"id": "mug", "name": "Branded mug", "type": "merchandise", "points": 5,
                                 "inventory": 3}]}}


def test_every_page_of_the_portal_shows_the_members_own_records_and_no_one_elses(world):
    svc, app, olive, _ = world
    svc.publish(CATALOG, "test", date(1970, 1, 1))
    today = datetime.now(UTC).date() - timedelta(days=1)
    svc.post_event(event("adj-1", "adjustment", olive, today.isoformat(), unit="points", amount="20", reason="welcome"))
    bob = customers.add_customer(svc, "default", "Bob Neighbour", "bob@example.com")
    bob_m = memberships.enroll(svc, "default", bob, "club", today)["membership"]
    client = signed_in(svc, app.test_client())

    history = client.get("/portal/default/history").get_data(as_text=True)
    assert "Membership allowance" in history and "Closing balance" in history and "welcome" in history
    pdf_link = re.search(r'href="(/portal/default/statement/mem_[0-9a-f]+\.pdf\?[^"]+)"', history).group(1)
    pdf = client.get(pdf_link.replace("&amp;", "&"))
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    bobs_pdf = re.sub(r"mem_[0-9a-f]+", bob_m, pdf_link).replace("&amp;", "&")
    assert client.get(bobs_pdf).status_code == 404  # a neighbour's statement is not found

    rewards = client.get("/portal/default/rewards").get_data(as_text=True)
    assert "Branded mug" in rewards and 'id="redeem-mug"' in rewards
    confirm = client.get("/portal/default/rewards?reward=mug").get_data(as_text=True)
    assert "Spend 5 points on Branded mug?" in confirm
    key = re.search(r'name="key" value="([^"]+)"', confirm).group(1)
    csrf = csrf_of(client, "/portal/default/rewards")
    for _ in range(2):  # a second press of the same form is the same redemption
        client.post("/portal/default/rewards", data={"reward": "mug", "key": key, "csrf_token": csrf})
    after = client.get("/portal/default/rewards").get_data(as_text=True)
    assert re.search(r'data-key="points">15<', after) and after.count("data-redemption=") == 1
    redemption = re.search(r'data-redemption="([^"]+)"', after).group(1)
    # Bob's redemption is not Olive's to cancel.
    svc.post_event(event("adj-2", "adjustment", bob, today.isoformat(), unit="points", amount="20", reason="hi"))
    bob_redemption = rewards_uc.redeem(svc, "default", bob, "mug")["redemption"]
    assert client.post(f"/portal/default/redemptions/{bob_redemption}/cancel",
                       data={"csrf_token": csrf}).status_code == 404
    client.post(f"/portal/default/redemptions/{redemption}/cancel", data={"csrf_token": csrf})
    assert re.search(r'data-key="points">20<', client.get("/portal/default/rewards").get_data(as_text=True))

    code = re.search(r'id="referral-code">([A-Z0-9]+)<', client.get("/portal/default/referrals").get_data(as_text=True))
    assert code and code.group(1) in client.get("/portal/default/referrals").get_data(as_text=True)  # the same one
    assert code.group(1) == rewards_uc.referral_code(svc, "default", olive)

    prefs = client.get("/portal/default/preferences").get_data(as_text=True)
    assert 'id="channel-sms" checked' in prefs
    client.post("/portal/default/preferences", data={"email": "on", "csrf_token": csrf})
    prefs = client.get("/portal/default/preferences").get_data(as_text=True)
    assert 'id="channel-sms" checked' not in prefs and 'id="channel-email" checked' in prefs

    mine = re.search(r'data-membership="(mem_[0-9a-f]+)"', client.get("/portal/default/").get_data(as_text=True)).group(1)
    preview = client.get(f"/portal/default/membership/{mine}/cancel").get_data(as_text=True)
    assert "Cancel your membership?" in preview and "No, keep my membership" in preview
    assert client.get(f"/portal/default/membership/{bob_m}/cancel").status_code == 404
    assert client.post(f"/portal/default/membership/{bob_m}/cancel", data={"csrf_token": csrf}).status_code == 404
    assert memberships.show(svc, "default", bob_m)["status"] == "active"

    cards_page = client.get("/portal/default/billing").get_data(as_text=True)
    assert 'id="add-card"' in cards_page and "/sandbox/card?return_to=" in cards_page
    bob_card = billing.add_test_card(svc, "default", bob, "success")
    assert client.post("/portal/default/billing/cards", data={"action": "remove", "pm": bob_card["id"],
                                                              "csrf_token": csrf}).status_code == 404


def test_the_contractor_invites_a_customer_to_the_portal_from_their_page(world):
    from keepwell.customers.users import add_user

    svc, app, olive, _ = world
    svc.run("default", lambda c: add_user(c.session, c.company, "desk@heat.example", "correct horse battery", "staff"))
    admin = app.test_client()
    page = admin.get("/admin/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    admin.post("/admin/login", data={"email": "desk@heat.example", "password": "correct horse battery",
                                     "csrf_token": csrf})
    csrf = csrf_of(admin, f"/admin/customers/details/?id={olive}")
    assert admin.post(f"/admin/customers/portal-invite/{olive}", data={"csrf_token": csrf}).status_code == 302
    assert "on its way to olive@example.com" in admin.get(f"/admin/customers/details/?id={olive}").get_data(
        as_text=True)
    with MailServer() as smtp:
        [(to, path)] = links_emailed(svc, smtp, 1)
    member = app.test_client()
    assert to == ["olive@example.com"] and member.get(path).status_code == 302
    assert "Olive Member" in member.get("/portal/default/").get_data(as_text=True)
    nomail = customers.add_customer(svc, "default", "No Mail")
    admin.post(f"/admin/customers/portal-invite/{nomail}", data={"csrf_token": csrf})
    assert "has no email address" in admin.get(f"/admin/customers/details/?id={nomail}").get_data(as_text=True)


def test_a_member_pays_a_failed_invoice_with_a_new_card(world):
    svc, app, _olive, _ = world
    start = datetime.now(UTC).date() - timedelta(days=1)
    pat = customers.add_customer(svc, "default", "Pat Payer", "pat@example.com")
    billing.add_test_card(svc, "default", pat, "insufficient_funds", True)
    memberships.enroll(svc, "default", pat, "club", start, cadence="monthly")
    billing.run(svc, "default", start)
    [inv] = billing.invoices_of(svc, "default", customer=pat)
    assert inv["status"] == "open"  # the card had no funds
    client = signed_in(svc, app.test_client(), email="pat@example.com")
    page = client.get("/portal/default/billing").get_data(as_text=True)
    assert f'id="pay-{inv["number"]}"' in page
    csrf = csrf_of(client, "/portal/default/billing")
    declined = client.post(f"/portal/default/invoices/{inv['number']}/pay", data={"csrf_token": csrf})
    assert "declined" in client.get(declined.headers["Location"]).get_data(as_text=True)
    good = billing.add_test_card(svc, "default", pat, "success", True)
    assert good["default"]
    client.post(f"/portal/default/invoices/{inv['number']}/pay", data={"csrf_token": csrf})
    assert billing.invoice(svc, "default", inv["number"])["status"] == "paid"
    assert f'id="pay-{inv["number"]}"' not in client.get("/portal/default/billing").get_data(as_text=True)
    # Someone else's invoice is not theirs to pay.
    other = customers.add_customer(svc, "default", "Ola Other", "ola@example.com")
    billing.add_test_card(svc, "default", other, "decline", True)
    memberships.enroll(svc, "default", other, "club", start, cadence="monthly")
    billing.run(svc, "default", start)
    [theirs] = billing.invoices_of(svc, "default", customer=other)
    assert client.post(f"/portal/default/invoices/{theirs['number']}/pay", data={"csrf_token": csrf}).status_code == 404


TIERED = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "care", "name": "Home Care"},
          "spec": {"allowance": {"amount": "100.00", "period": "monthly"},
                   "tiers": [{"id": "basic", "name": "Basic", "price": {"monthly": "30.00"}},
                             {"id": "plus", "name": "Plus", "price": {"monthly": "60.00"}}]}}


def test_a_member_sees_what_another_tier_costs_before_changing_to_it(world):
    svc, app, _olive, _ = world
    svc.publish(TIERED, "test", date(1970, 1, 1))
    start = datetime.now(UTC).date() - timedelta(days=1)
    tia = customers.add_customer(svc, "default", "Tia Tier", "tia@example.com")
    billing.add_test_card(svc, "default", tia, "success", True)
    mid = memberships.enroll(svc, "default", tia, "care", start, tier="basic", cadence="monthly")["membership"]
    billing.run(svc, "default", start)
    client = signed_in(svc, app.test_client(), email="tia@example.com")
    choose = client.get(f"/portal/default/membership/{mid}/tier").get_data(as_text=True)
    assert '<option value="plus"' in choose and 'value="basic"' not in choose
    preview = client.get(f"/portal/default/membership/{mid}/tier?tier=plus").get_data(as_text=True)
    assert "Moving to Plus today" in preview
    expected = memberships.change_tier_preview(svc, "default", mid, "plus", datetime.now(UTC).date())
    assert re.search(rf'data-key="due_now">{re.escape(expected["due_now"])}<', preview)
    assert expected["due_now"] != "0.00"
    csrf = csrf_of(client, f"/portal/default/membership/{mid}/tier")
    assert client.post(f"/portal/default/membership/{mid}/tier", data={"tier": "plus", "csrf_token": csrf}
                       ).status_code == 302
    home = client.get("/portal/default/").get_data(as_text=True)
    assert "Home Care — Plus" in home
    olive_m = memberships.of_customer(svc, "default", _olive)[0]["id"]
    assert client.get(f"/portal/default/membership/{olive_m}/tier?tier=gold").status_code == 404


def test_a_member_downloads_all_their_data_as_json_and_csv(world):
    import csv
    import io
    import json

    svc, app, olive, _ = world
    client = signed_in(svc, app.test_client())
    data = json.loads(client.get("/portal/default/my-data.json").get_data(as_text=True))
    assert data["customer"]["id"] == olive and data["customer"]["email"] == "olive@example.com"
    [m] = data["memberships"]
    assert m["plan_name"] == "Comfort Club" and m["statement"]["closing"]["overdraft_used"] == "30.00"
    assert all(x["template"] != "member_sign_in" for x in data["messages"])  # sign-in mail is not a message to them
    rows = list(csv.reader(io.StringIO(client.get("/portal/default/my-data.csv").get_data(as_text=True))))
    assert rows[0] == ["Date", "Membership", "Account", "What", "Amount", "Balance after"]
    assert ["Allowance", "Charge", "-280.00"] == [rows[2][2], rows[2][3], rows[2][4]]
    assert client.get("/portal/default/my-data.xml").status_code == 404
    assert app.test_client().get("/portal/default/my-data.json").status_code == 302  # signed-in members only


PROMO = {"apiVersion": "keepwell/v1", "kind": "NotificationTriggers", "metadata": {"id": "promo", "name": "Offers"},
         "spec": {"triggers": [{"id": "thanks-offer", "on": {"event": "purchase"}, "template": "spring_offer",
                                "channel": "email", "marketing": True}],
                  "templates": {"spring_offer": {"subject": "20% off a spring tune-up", "email": "Book now."}}}}


def test_marketing_goes_only_to_members_who_agreed_and_waits_for_their_own_quiet_hours(world):
    svc, app, olive, _ = world
    svc.publish(PROMO, "test", date(1970, 1, 1))
    client = signed_in(svc, app.test_client())
    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    with MailServer() as smtp:
        svc.post_event(event("till-2", "purchase", olive, day, amount="5.00"))
        deliver_due(svc, channels_from(ChannelSettings(smtp_port=smtp.port)))
        assert not any("spring" in (m["Subject"] or "") for m in smtp.messages)  # no consent yet: skipped

        csrf = csrf_of(client, "/portal/default/preferences")
        bad = client.post("/portal/default/preferences", data={"email": "on", "marketing": "on",
                                                               "quiet_hours": "late", "csrf_token": csrf})
        assert bad.status_code == 400 and "use HH:MM-HH:MM" in bad.get_data(as_text=True)
        client.post("/portal/default/preferences", data={"email": "on", "marketing": "on", "quiet_hours": "",
                                                         "csrf_token": csrf})
        page = client.get("/portal/default/preferences").get_data(as_text=True)
        assert 'id="marketing" checked' in page and "You agreed on" in page and "this site" in page
        svc.post_event(event("till-3", "purchase", olive, day, amount="5.00"))
        deliver_due(svc, channels_from(ChannelSettings(smtp_port=smtp.port)))
        wait_until(lambda: any("spring" in (m["Subject"] or "") for m in smtp.messages), 10, what="the offer")

        # Her own quiet hours, around now (UTC, the company's zone): the next offer waits.
        now = datetime.now(UTC)
        window = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=2)):%H:%M}"
        client.post("/portal/default/preferences", data={"email": "on", "marketing": "on", "quiet_hours": window,
                                                         "csrf_token": csrf})
        svc.post_event(event("till-4", "purchase", olive, day, amount="5.00"))
        outcomes = deliver_due(svc, channels_from(ChannelSettings(smtp_port=smtp.port)))
        assert [o.detail for o in outcomes] == ["quiet hours"]
        # Withdrawn: recorded as a second choice, and offers stop.
        client.post("/portal/default/preferences", data={"email": "on", "quiet_hours": "", "csrf_token": csrf})
    with svc.database.engine.connect() as conn:
        rows = conn.exec_driver_sql("select granted, source from marketing_consents order by id").fetchall()
    assert [(bool(g), s) for g, s in rows] == [(True, "portal"), (False, "portal")]


def test_enrolment_can_send_the_portal_invitation(world):
    from keepwell.customers.users import add_user

    svc, app, _olive, _ = world
    svc.run("default", lambda c: add_user(c.session, c.company, "desk@heat.example", "correct horse battery", "manager"))
    admin = app.test_client()
    csrf = csrf_of(admin, "/admin/login")
    admin.post("/admin/login", data={"email": "desk@heat.example", "password": "correct horse battery",
                                     "csrf_token": csrf})
    new = customers.add_customer(svc, "default", "Nell New", "nell@example.com")
    form = admin.get(f"/admin/memberships/enroll?customer={new}").get_data(as_text=True)
    assert re.search(r'id="invite" name="invite" value="1" checked', form)
    r = admin.post("/admin/memberships/enroll", data={"customer": new, "plan": "club|gold",
                                                      "on": (datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
                                                      "invite": "1", "csrf_token": csrf_of(admin, "/admin/memberships/enroll")})
    assert r.status_code == 302
    assert "on its way to nell@example.com" in admin.get(r.headers["Location"]).get_data(as_text=True)
    with MailServer() as smtp:
        [(to, path)] = links_emailed(svc, smtp, 1)
    assert to == ["nell@example.com"]
    member = app.test_client()
    member.get(path)
    assert "Comfort Club — Gold" in member.get("/portal/default/").get_data(as_text=True)


def test_a_member_asks_for_an_included_visit_and_the_office_is_told(world):
    svc, app, olive, _ = world
    from keepwell.usecases import companies

    companies.update(svc, "default", email="office@heat.example")
    client = signed_in(svc, app.test_client())
    page = client.get("/portal/default/visits").get_data(as_text=True)
    assert "Tune-up — included, 2 left this period" in page
    choice = re.search(r'<option value="(mem_[0-9a-f]+:TUNEUP)"', page).group(1)
    csrf = csrf_of(client, "/portal/default/visits")
    vague = client.post("/portal/default/visits", data={"service": "other", "notes": "", "csrf_token": csrf})
    assert vague.status_code == 400 and "Tell us what needs doing" in vague.get_data(as_text=True)
    asked = client.post("/portal/default/visits", data={"service": choice, "preferred": "weekday mornings",
                                                        "notes": "upstairs unit", "csrf_token": csrf})
    assert asked.status_code == 302
    mine = client.get("/portal/default/visits").get_data(as_text=True)
    assert "Waiting for us to book it" in mine and "weekday mornings" in mine
    with MailServer() as smtp:
        deliver_due(svc, channels_from(ChannelSettings(smtp_port=smtp.port)))
        wait_until(lambda: any("Visit requested" in (m["Subject"] or "") for m in smtp.messages), 10, what="mail")
        [office] = [(to, m) for to, m in smtp.received if "Visit requested" in (m["Subject"] or "")]
    assert office[0] == ["office@heat.example"] and "Tune-up for Olive Member" in office[1]["Subject"]
    assert "upstairs unit" in office[1].get_content()
    request_id = re.search(r'data-request="(vr_[0-9a-f]+)"', mine).group(1)
    assert request_id in svc_admin_page(svc, app, olive)  # the office sees it on the customer page
    client.post(f"/portal/default/visits/{request_id}/cancel", data={"csrf_token": csrf})
    assert "Called off" in client.get("/portal/default/visits").get_data(as_text=True)
    assert client.post("/portal/default/visits/vr_0000000000000000/cancel", data={"csrf_token": csrf}).status_code == 404


def svc_admin_page(svc, app, customer_id: str) -> str:
    """The customer's page in the admin, as a staff member sees it."""
    from keepwell.customers.users import add_user

    svc.run("default", lambda c: add_user(c.session, c.company, "front@heat.example", "correct horse battery", "staff"))
    admin = app.test_client()
    admin.post("/admin/login", data={"email": "front@heat.example", "password": "correct horse battery",
                                     "csrf_token": csrf_of(admin, "/admin/login")})
    return admin.get(f"/admin/customers/details/?id={customer_id}").get_data(as_text=True)


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def test_the_portal_wears_the_companys_colour_and_logo(world, db_url, tmp_path):
    from support import Cli

    svc, app, _olive, _ = world
    cli = Cli(db_url)
    light = cli("companies", "set", "--brand-color", "#ffee88", expect=1).output
    assert "too light for white text" in light and "4.5:1" in light
    assert "like #0b5cad" in cli("companies", "set", "--brand-color", "navy", expect=1).output
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    assert "PNG or JPEG" in cli("companies", "set", "--logo", str(svg), expect=1).output
    png = tmp_path / "logo.png"
    png.write_bytes(PNG)
    cli("companies", "set", "--brand-color", "#7A1F3D", "--logo", str(png))
    shown = cli.json("companies", "show")
    assert shown["brand_color"] == "#7a1f3d" and shown["logo"] is True
    page = app.test_client().get("/portal/default/sign-in").get_data(as_text=True)
    assert "--brand:#7a1f3d" in page and 'src="/portal/default/logo"' in page
    logo = app.test_client().get("/portal/default/logo")
    assert logo.status_code == 200 and logo.mimetype == "image/png" and logo.data == PNG
    assert app.test_client().get("/portal/other/logo").status_code == 404  # the other company has none


def set_password(client, password: str, confirm: str | None = None):
    csrf = csrf_of(client, "/portal/default/preferences")
    return client.post("/portal/default/password", data={"password": password, "confirm": confirm or password,
                                                          "csrf_token": csrf})


def password_sign_in(client, email: str, password: str, company: str = "default"):
    csrf = csrf_of(client, f"/portal/{company}/sign-in")
    return client.post(f"/portal/{company}/sign-in/password", data={"email": email, "password": password,
                                                                   "csrf_token": csrf})


def test_a_member_sets_a_password_signs_in_with_it_and_their_other_sessions_end(world):
    svc, app, _olive, _ = world
    phone = signed_in(svc, app.test_client())
    laptop = signed_in(svc, app.test_client())
    differ = set_password(laptop, "maple kettle harbour", "maple kettle harbor")
    assert differ.status_code == 400 and "The two passwords differ" in differ.get_data(as_text=True)
    weak = set_password(laptop, "password123")
    assert weak.status_code == 400 and "too easy to guess" in weak.get_data(as_text=True)
    assert set_password(laptop, "maple kettle harbour").status_code == 302
    assert "You can sign in with your email and password" in laptop.get("/portal/default/preferences").get_data(
        as_text=True)
    # The session that set it goes on; the other one has ended.
    assert laptop.get("/portal/default/").status_code == 200
    assert phone.get("/portal/default/").headers["Location"].endswith("/sign-in")
    fresh = app.test_client()
    wrong = password_sign_in(fresh, "olive@example.com", "maple kettle harbor")
    nobody = password_sign_in(fresh, "nobody@example.com", "maple kettle harbour")
    assert wrong.status_code == nobody.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True) and "do not match" in nobody.get_data(as_text=True)
    assert fresh.get("/portal/default/").status_code == 302
    ok = password_sign_in(fresh, "Olive@example.com", "maple kettle harbour")
    assert ok.status_code == 302 and "Olive Member" in fresh.get("/portal/default/").get_data(as_text=True)
    # The password is this company's: at another company's portal it signs nobody in.
    assert password_sign_in(app.test_client(), "olive@example.com", "maple kettle harbour", "other").status_code == 401


def test_wrong_passwords_are_throttled_per_account(world):
    svc, app, _olive, _ = world
    set_password(signed_in(svc, app.test_client()), "maple kettle harbour")
    client = app.test_client()
    codes = [password_sign_in(client, "olive@example.com", f"wrong guess {i}").status_code for i in range(6)]
    assert codes == [401] * 5 + [429]
    refused = password_sign_in(client, "olive@example.com", "maple kettle harbour")
    assert refused.status_code == 429 and "Too many wrong passwords" in refused.get_data(as_text=True)


CHOOSY = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "choosy", "name": "Flex Plan"},
          "spec": {"period": "monthly", "members_choose_renewal": True,
                   "tiers": [{"id": "basic", "name": "Basic", "price": {"monthly": "10.00"}},
                             {"id": "plus", "name": "Plus", "price": {"monthly": "15.00"}}]}}


def renewal_choice(client, mid: str, choice: str):
    csrf = csrf_of(client, "/portal/default/")
    return client.post(f"/portal/default/membership/{mid}/renewal", data={"auto_renewal": choice, "csrf_token": csrf})


def test_a_member_turns_renewal_off_where_the_plan_lets_them_and_the_membership_ends_with_its_period(world):
    svc, app, olive, _ = world
    svc.publish(CHOOSY, "test", date(1970, 1, 1))
    start = datetime.now(UTC).date() - timedelta(days=1)
    fay = customers.add_customer(svc, "default", "Fay Flex", "fay@example.com")
    mid = memberships.enroll(svc, "default", fay, "choosy", start, tier="basic")["membership"]
    client = signed_in(svc, app.test_client(), email="fay@example.com")
    home = client.get("/portal/default/").get_data(as_text=True)
    assert "Stop automatic renewal" in home and "Renews on" in home
    done = renewal_choice(client, mid, "off")
    assert done.status_code == 302
    home = client.get("/portal/default/").get_data(as_text=True)
    assert "will not renew" in home, re.findall(r'<div class="alert[^>]*>[^<]*', home)
    assert "Ends on" in home and "Renew automatically" in home
    shown = memberships.show(svc, "default", mid)
    assert shown["auto_renewal"] is False
    # The choice is an event: the office sees who changed it.
    from keepwell.usecases import events as events_uc
    [changed] = [e for e in events_uc.list_events(svc, "default", customer=fay)["events"]
                 if e["type"] == "renewal_changed"]
    assert changed["payload"]["data"] == {"membership": mid, "auto_renewal": False, "by": "member"}
    # Its period ends: it expires instead of renewing.
    svc.run_due(date.fromisoformat(shown["expires_on"]) + timedelta(days=1))
    assert memberships.show(svc, "default", mid)["status"] == "expired"
    # Olive's plan leaves renewal to the office: no button, and the form asked anyway says why.
    olive_client = signed_in(svc, app.test_client())
    olive_mid = memberships.of_customer(svc, "default", olive)[0]["id"]
    assert "Stop automatic renewal" not in olive_client.get("/portal/default/").get_data(as_text=True)
    renewal_choice(olive_client, olive_mid, "off")
    assert "renewal is set by" in olive_client.get("/portal/default/").get_data(as_text=True)
    assert memberships.show(svc, "default", olive_mid)["auto_renewal"] is True
    # Someone else's membership is not found.
    assert renewal_choice(olive_client, mid, "on").status_code == 404


def test_renewal_turned_off_stays_off_through_a_change_of_tier_and_the_office_can_turn_it_back_on(world):
    svc, _app, _olive, _ = world
    svc.publish(CHOOSY, "test", date(1970, 1, 1))
    today = datetime.now(UTC).date()
    gus = customers.add_customer(svc, "default", "Gus Flex", "gus@example.com")
    mid = memberships.enroll(svc, "default", gus, "choosy", today - timedelta(days=1), tier="basic")["membership"]
    memberships.set_renewal(svc, "default", mid, False, by="member")
    moved = memberships.change_tier(svc, "default", mid, "plus", today).membership
    assert memberships.show(svc, "default", moved)["auto_renewal"] is False
    back = memberships.set_renewal(svc, "default", moved, True)
    assert back["auto_renewal"] is True and memberships.show(svc, "default", moved)["auto_renewal"] is True


def test_a_member_sees_their_next_booked_visit_and_no_one_elses(world):
    from keepwell.usecases import scheduling

    svc, app, olive, _ = world
    bob = customers.add_customer(svc, "default", "Bob Neighbour", "bob@example.com")
    [olive_m] = [m["id"] for m in memberships.of_customer(svc, "default", olive)]
    scheduling.set_duration(svc, "default", "TUNEUP", 60)
    tess = scheduling.add_technician(svc, "default", "Tess Tech", {"mon-fri": "08:00-17:00"},
                                     skills=["TUNEUP"])["id"]
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=7 - today.weekday())  # next week's Monday
    later = scheduling.schedule_visit(svc, "default", olive, "TUNEUP", f"{monday + timedelta(days=2)}T14:00", tess,
                                      membership_id=olive_m)
    first = scheduling.schedule_visit(svc, "default", olive, "TUNEUP", f"{monday}T09:30", tess, membership_id=olive_m)
    theirs = scheduling.schedule_visit(svc, "default", bob, "TUNEUP", f"{monday}T11:00", tess)
    client = signed_in(svc, app.test_client())

    home = client.get("/portal/default/").get_data(as_text=True)
    nxt = re.search(r'<strong data-key="next_visit">([^<]+)</strong> · ([^<]+)</p>', home)
    assert nxt.groups() == (f"Mon {monday.day} {monday:%b} {monday.year}, 09:30", "Tune-up")
    assert "Tess Tech is booked for it" in home

    page = client.get("/portal/default/visits").get_data(as_text=True)
    booked = re.findall(r'<li data-visit="(vis_[0-9a-f]+)">', page)
    assert booked == [first["id"], later["id"]]  # soonest first; Bob's visit is not there
    assert theirs["id"] not in page

    scheduling.cancel_visit(svc, "default", first["id"], "contractor", "technician ill")
    home = client.get("/portal/default/").get_data(as_text=True)
    wed = monday + timedelta(days=2)
    assert f"Wed {wed.day} {wed:%b} {wed.year}, 14:00" in home
