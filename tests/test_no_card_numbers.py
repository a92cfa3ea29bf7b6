"""No card number is ever stored or logged (the billing issue): a real-looking card number is
sent through every entry point — the CLI, the API, the admin — in every place a person might
type one (a name, a description, a card token, a query), then every row of every table and
every log line are searched for it. Each entry point refuses it with a clear reason that does
not quote it back."""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa

from keepwell.app import create_app
from keepwell.customers.users import add_user
from keepwell.infra.tables import Base
from keepwell.usecases import apikeys
from support import Cli, event, make_app
from test_admin import PASSWORD, Browser

PAN = "4111111111111111"
SPACED = "4111 1111 1111 1111"
DASHED = "4111-1111-1111-1111"
SEEN = re.compile(r"4111[ -]?1111[ -]?1111[ -]?1111")


def every_row(db_url: str) -> str:
    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as c:
            return "\n".join(repr(tuple(row)) for t in Base.metadata.sorted_tables
                             for row in c.execute(sa.select(t)))
    finally:
        eng.dispose()


def test_a_card_number_goes_nowhere(db_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    svc = make_app(db_url)
    svc.run("default", lambda c: add_user(c.session, c.company, "owner@heat.example", PASSWORD, "owner"))
    cid = svc.add_customer("Ann Member")
    shown: list[str] = []

    # The CLI.
    cli = Cli(db_url)
    for args in (["customers", "add", "--name", f"Card {SPACED}"],
                 ["customers", "set", cid, "--name", PAN],
                 ["payment-methods", "add-token", cid, "--gateway", "sandbox", "--token", PAN]):
        r = cli(*args, expect=1)
        shown.append(r.output)
        assert "card number" in r.output
    [posted] = cli.post(event("till-pan", "purchase", cid, "2026-03-01", amount="10.00",
                              description=f"paid with {DASHED}"), expect=1)
    assert posted["status"] == "rejected" and "data.description" in str(posted)
    shown.append(str(posted))

    # The API.
    app = create_app({"TESTING": True}, service=svc)
    c = app.test_client()
    key = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 'till', ['admin'])}"}
    answers = [
        c.post("/api/v1/customers", headers=key, json={"name": f"Card {PAN}"}),
        c.patch(f"/api/v1/customers/{cid}", headers=key, json={"name": SPACED}),
        c.post(f"/api/v1/customers/{cid}/payment_methods", headers=key, json={"gateway": "sandbox", "token": PAN}),
        c.post("/api/v1/events", headers=key, json={"id": "api-pan", "type": "purchase", "customer": cid,
                                                    "occurred_at": "2026-03-01T12:00:00+00:00",
                                                    "data": {"amount": "5.00", "description": PAN}}),
        c.get(f"/api/v1/memberships/{PAN}"),
        c.get(f"/api/v1/customers?q={PAN}", headers=key),
        c.get(f"/api/v1/invoices?customer={DASHED}", headers=key),
        c.post("/sandbox/card", data={"return_to": "/admin/", "number": SPACED, "exp_month": "12", "exp_year": "2031",
                                      "cvc": "123"}),
    ]
    for r in answers:
        assert r.status_code < 500
        shown.append(r.get_data(as_text=True))
    assert [r.status_code for r in answers[:4]] == [422, 422, 422, 422]

    # The admin.
    b = Browser(app)
    assert b.login("owner@heat.example").status_code == 302
    r = b.post("/admin/customers/new/", {"name": f"Card {PAN}", "email": "", "phone": ""},
               token_from="/admin/customers/new/")
    assert r.status_code == 200 and "card number" in r.get_data(as_text=True)

    # Nothing stored, nothing logged, nothing quoted back.
    assert not SEEN.search(every_row(db_url))
    assert not SEEN.search("\n".join(rec.getMessage() for rec in caplog.records))
    assert not SEEN.search("\n".join(shown))
    svc.close()


def test_digits_inside_an_id_or_a_word_are_not_a_card_number():
    from keepwell.kernel.cards import has_pan, mask

    # Random hex ids hold long digit runs now and then; this one's 51473614734694 passes Luhn.
    for text in ("cus_51473614734694df", "enroll:cus_51473614734694df:care-club:2020-01-01", "ref4111111111111111x"):
        assert not has_pan(text) and mask(text) == text
    for text in (PAN, SPACED, DASHED, f"/memberships/{PAN}", f"q={PAN}&x=1", f"({SPACED})"):
        assert has_pan(text) and "1111" not in mask(text)
