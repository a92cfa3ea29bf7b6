"""The sandbox gateway's card page: what a payment provider's hosted page does, for trying
billing without one. A card typed here is turned into a sandbox token and goes no further: the
page hands the token back to the page that sent the member here (the admin's customer page,
later the portal), with the state it was given. The number is never stored, logged or shown
again. With Stripe, Stripe.js plays this part and no number reaches Keepwell at all."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, render_template_string, request
from flask.typing import ResponseReturnValue

from ...kernel.errors import InvalidDocument
from ...usecases import billing

bp = Blueprint("sandbox", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox card page</title>
<style nonce="{{ csp_nonce() }}">body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin-top:.8rem}input{font-size:1.1rem;padding:.5rem;width:100%;box-sizing:border-box}
.row{display:flex;gap:.5rem}.err{color:#a40000}button{margin-top:1rem;font-size:1.1rem;padding:.6rem 1.2rem}
small{color:#444}</style></head><body>
<h1>Add a card</h1>
<p><small>Keepwell's sandbox: it takes only test cards (4242 4242 4242 4242 succeeds; 4000 0000 0000 9995 has
no funds; see the README). Nothing is charged.</small></p>
{% if token %}
<p id="accepted">Card accepted: Visa ending {{ last4 }}.</p>
<form method="post" action="{{ return_to }}">
<input type="hidden" name="token" value="{{ token }}"><input type="hidden" name="csrf_token" value="{{ state }}">
<input type="hidden" name="action" value="token">
<button type="submit" id="continue">Continue</button></form>
{% else %}
<form method="post" autocomplete="off">
<input type="hidden" name="return_to" value="{{ return_to }}"><input type="hidden" name="state" value="{{ state }}">
<label for="number">Card number</label><input id="number" name="number" inputmode="numeric" autocomplete="cc-number">
{% if errors.number %}<p class="err" id="number-error">{{ errors.number }}</p>{% endif %}
<div class="row"><div><label for="exp_month">Expiry month</label>
<input id="exp_month" name="exp_month" inputmode="numeric" value="12"></div>
<div><label for="exp_year">Expiry year</label>
<input id="exp_year" name="exp_year" inputmode="numeric" value="2034"></div>
<div><label for="cvc">Security code</label>
<input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc"></div></div>
{% if errors.exp %}<p class="err">{{ errors.exp }}</p>{% endif %}
<button type="submit" id="save-card">Save card</button></form>
{% endif %}
</body></html>"""


def _return_to(value: str) -> str:
    """Only back to a page of this site (never an open redirect)."""
    parts = urlsplit(value or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        abort(400)
    return value


@bp.route("/sandbox/card", methods=["GET", "POST"])
def card_page() -> ResponseReturnValue:
    values: dict[str, Any] = {"return_to": _return_to(request.values.get("return_to", "")),
                              "state": request.values.get("state", "")[:200], "errors": {}, "token": None}
    if request.method == "POST":
        try:
            month, year = int(request.form.get("exp_month", "")), int(request.form.get("exp_year", ""))
        except ValueError:
            values["errors"]["exp"] = "Enter the expiry as a month (1-12) and a year, like 12 and 2030."
            return render_template_string(PAGE, **values), 422
        try:
            card = billing.sandbox_card(request.form.get("number", ""), month, year)
        except InvalidDocument as exc:
            values["errors"]["number"] = "Card number: " + (exc.problems[0].message if exc.problems else exc.message)
            return render_template_string(PAGE, **values), 422
        values.update(token=card["token"], last4=card["last4"])
    return render_template_string(PAGE, **values)
