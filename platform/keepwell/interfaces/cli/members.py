"""Customers and memberships: add and change customers, enrol, show, move to a plan version,
points, statements."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

import click

from ...kernel.errors import Conflict, Declined
from ...usecases import billing, memberships, rewards
from ...usecases import customers as customers_uc
from ...usecases import locations as locations_uc
from .common import Obj, emit, handled, json_option, parse_date

CHANNELS = click.Choice(["email", "sms", "webhook"])


@click.group("customers")
def customers() -> None:
    """Customers of the company."""


@customers.command("add")
@click.option("--name", required=True)
@click.option("--email", default=None)
@click.option("--phone", default=None, help="For SMS, e.g. +15551234567.")
@click.option("--external-id", default=None, help="The id another system (your POS) knows them by.")
@click.option("--location", default=None, help="The location they are served at (id or name): its sales tax.")
@click.option("--address", "service_address", default=None, help="The service address.")
@click.pass_obj
@handled
def customers_add(obj: Obj, name: str, email: str | None, phone: str | None, external_id: str | None,
                  location: str | None, service_address: str | None) -> None:
    """Add a customer; prints its id."""
    click.echo(customers_uc.add_customer(obj.app, obj.company, name, email, phone, external_id, location,
                                         service_address))


@customers.command("set")
@click.argument("customer")
@click.option("--name", default=None)
@click.option("--email", default=None)
@click.option("--phone", default=None, help="For SMS, e.g. +15551234567.")
@click.option("--opt-out", "opt_out", multiple=True, type=CHANNELS, help="Stop messages on a channel.")
@click.option("--opt-in", "opt_in", multiple=True, type=CHANNELS, help="Allow a channel again.")
@click.option("--external-id", default=None, help="The id another system (your POS) knows them by.")
@click.option("--location", default=None, help="The location they are served at (id or name; \"\" for none).")
@click.option("--address", "service_address", default=None, help="The service address.")
@click.pass_obj
@handled
def customers_set(obj: Obj, customer: str, name: str | None, email: str | None, phone: str | None,
                  opt_out: tuple[str, ...], opt_in: tuple[str, ...], external_id: str | None, location: str | None,
                  service_address: str | None) -> None:
    """Change a customer's contact details, external id, location, address and channel preferences."""
    click.echo(customers_uc.update_customer(obj.app, obj.company, customer, name=name, email=email, phone=phone,
                                            opt_out=opt_out, opt_in=opt_in, external_id=external_id,
                                            location=location, service_address=service_address))


@customers.command("list")
@json_option
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0)
@click.pass_obj
@handled
def customers_list(obj: Obj, as_json: bool, limit: int, offset: int) -> None:
    rows = customers_uc.list_customers(obj.app, obj.company, limit, offset)
    emit(rows, as_json, lambda rows: [click.echo(f"{r['id']}  {r['name']}  {r['email'] or ''}") for r in rows])


@click.command()
@click.argument("customer")
@click.argument("plan")
@click.option("--tier", default=None, help="Tier id (default: the plan's first tier).")
@click.option("--on", "on", callback=parse_date, required=True, help="Issue date (YYYY-MM-DD, company time).")
@click.option("--key", default=None, help="Idempotency key (default: enroll:CUSTOMER:PLAN:DATE).")
@click.option("--allow-second", is_flag=True,
              help="Enrol even if the customer already has an active membership of this plan (a second home).")
@click.option("--cadence", type=click.Choice(["monthly", "quarterly", "yearly"]), default=None,
              help="Bill the member at this cadence (one the plan prices for the tier); leave out if billed elsewhere.")
@click.option("--payment-method", "payment_method", default=None,
              help="Charge the membership to this card (pm_...; default: the customer's default card).")
@click.option("--referral-code", "referral_code", default=None,
              help="The referral code of the customer who referred this one.")
@click.pass_obj
@handled
def enroll(obj: Obj, customer: str, plan: str, tier: str | None, on: date, key: str | None, allow_second: bool,
           cadence: str | None, payment_method: str | None, referral_code: str | None) -> None:
    """Enroll CUSTOMER on PLAN (id or id@version); prints the membership id."""
    result = memberships.enroll(obj.app, obj.company, customer, plan, on, tier=tier, key=key, allow_second=allow_second,
                                cadence=cadence, payment_method=payment_method, referral_code=referral_code)
    if result.get("warning") or result.get("type") != "enrolled":
        # The key names an earlier, different event: its membership (if any) is not this one's.
        raise Conflict(f"key {result['event']!r} was already used for a different event; nothing enrolled "
                            "(pass another --key)")
    if result["status"] == "declined":
        raise Declined(result.get("reason", "declined"), result.get("message", "enrolment declined"))
    click.echo(result["membership"])


@click.group("membership")
def membership() -> None:
    """Memberships."""


@membership.command("show")
@click.argument("membership_id")
@json_option
@click.pass_obj
@handled
def membership_show(obj: Obj, membership_id: str, as_json: bool) -> None:
    """Status, plan version, tier, expiry, allowance and included services of a membership."""
    emit(memberships.show(obj.app, obj.company, membership_id), as_json, _print_membership)


AT_CHOICE = click.Choice(["now", "period_end"])


@membership.command("list")
@click.option("--customer", default=None, help="Only this customer's memberships.")
@click.option("--plan", default=None, help="Only memberships of this plan (any version).")
@click.option("--status", default=None,
              type=click.Choice(["active", "past_due", "suspended", "cancelled", "expired"]),
              help="past_due and suspended: active memberships whose payment failed.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--after", default=None, help="The last membership id of the previous page.")
@json_option
@click.pass_obj
@handled
def membership_list(obj: Obj, customer: str | None, plan: str | None, status: str | None, limit: int,
                    after: str | None, as_json: bool) -> None:
    """Memberships oldest first, a page at a time."""
    found = memberships.list_memberships(obj.app, obj.company, limit, after, customer, plan, status)
    emit(found["memberships"], as_json, lambda rows: [click.echo(
        f"{m['id']}  {m['customer']['name']}  {m['plan']} ({m['tier_name']})  [{m['status']}]") for m in rows])


@membership.command("cancel")
@click.argument("membership_id")
@click.option("--on", "on", callback=parse_date, required=True, help="The last day (YYYY-MM-DD, company time).")
@click.option("--at", "at", type=AT_CHOICE, default=None,
              help="now (default): it ends on that day, refunded by the plan's terms; period_end: it ends when the "
                   "billing period holding that day ends, nothing prorated.")
@click.option("--preview", is_flag=True, help="Only say what cancelling would do and refund; nothing changes.")
@json_option
@click.pass_obj
@handled
def membership_cancel(obj: Obj, membership_id: str, on: date, at: str | None, preview: bool, as_json: bool) -> None:
    """Cancel a membership on a day (or, with --preview, say what that would do and refund)."""
    if preview:
        emit(memberships.cancel_preview(obj.app, obj.company, membership_id, on, at), as_json,
             lambda d: click.echo(f"{d['membership']} would be cancelled, ending {d['ends_on']}"
                                  + (f", refunding {d['refund']} {d['currency']}" if "refund" in d else "")
                                  + f": {d['note']}"))
        return
    result = memberships.cancel(obj.app, obj.company, membership_id, on, at)
    if result.get("status") == "declined":
        raise Declined(result.get("reason", "declined"), result.get("message", "not cancelled"))
    emit(result, as_json, lambda r: click.echo(
        f"{membership_id} {r.get('status')}" + (f" until {r['ends_on']}" if r.get("at") == "period_end" else "")
        + (f", refunded {r['refund']} {r['currency']}" if r.get("refund") not in (None, "0.00") else "")))


@membership.command("change-tier")
@click.argument("membership_id")
@click.argument("tier")
@click.option("--on", "on", callback=parse_date, required=True, help="The day of the change (company time).")
@click.option("--at", "at", type=AT_CHOICE, default=None,
              help="now: move on that day, prorated by day; period_end: move when the billing period ends "
                   "(default: the plan's choice).")
@click.option("--preview", is_flag=True, help="Only say what it would credit, charge and ask now; nothing changes.")
@json_option
@click.pass_obj
@handled
def membership_change_tier(obj: Obj, membership_id: str, tier: str, on: date, at: str | None, preview: bool,
                           as_json: bool) -> None:
    """Move a membership to another tier: at once (it ends; one on the new tier starts, in one
    transaction, the unused days credited and the rest charged at the new price) or at the end
    of the billing period."""
    if preview:
        emit(memberships.change_tier_preview(obj.app, obj.company, membership_id, tier, on, at), as_json,
             lambda d: click.echo(f"credit {d['credit']}, charge {d['charge']}, due now {d['due_now']}"))
        return
    changed = memberships.change_tier(obj.app, obj.company, membership_id, tier, on, at)
    emit(changed.to_dict(), as_json, lambda d: click.echo(d["membership"]))


@membership.command("renewal")
@click.argument("membership_id")
@click.argument("choice", type=click.Choice(["on", "off"]))
@json_option
@click.pass_obj
@handled
def membership_renewal(obj: Obj, membership_id: str, choice: str, as_json: bool) -> None:
    """Turn automatic renewal off (the membership ends with its period) or on again."""
    done = memberships.set_renewal(obj.app, obj.company, membership_id, choice == "on")
    emit(done, as_json, lambda d: click.echo(
        f"{membership_id} renews automatically after {d['expires_on']}" if d["auto_renewal"]
        else f"{membership_id} ends on {d['expires_on']} (it will not renew)"))


@membership.command("migrate")
@click.argument("plan")
@click.option("--to", "target", required=True, help="The plan version to move to, e.g. 3 or vip-customer@3.")
@click.option("--apply", is_flag=True, help="Do it. Without --apply only the preview is shown.")
@json_option
@click.pass_obj
@handled
def membership_migrate(obj: Obj, plan: str, target: str, apply: bool, as_json: bool) -> None:
    """Move PLAN's active memberships to another version of it. Memberships stay pinned to the
    version they enrolled on until this is applied; the preview shows what each would change."""
    target = target if "@" in target else f"{plan}@{target}"
    rows = memberships.move(obj.app, obj.company, plan, target, apply=apply)

    def human(rows: list[dict[str, Any]]) -> None:
        if not rows:
            click.echo(f"no active membership of {plan} to move to {target}")
        for r in rows:
            changes = (
                ", ".join(f"{k} {v['from']} -> {v['to']}" for k, v in r["changes"].items()) or "no change in terms"
            )
            state = "" if not apply else ("  [moved]" if r.get("applied") else "  [NOT moved]")
            click.echo(f"{r['membership']} ({r['tier']}) {r['from']} -> {r['to']}: {r['problem'] or changes}{state}")

    emit(rows, as_json, human)
    if apply and any(not r.get("applied") for r in rows):
        sys.exit(1)


def _print_membership(m: dict[str, Any]) -> None:
    click.echo(f"{m['id']}  {m['customer']['name']}  [{m['status']}]")
    click.echo(f"  plan      {m['plan']} ({m['plan_name']}), tier {m['tier_name']}")
    click.echo(
        f"  period    {m['period']['start']} .. {m['period']['end']} ({m['period']['kind']} #{m['period']['index']})"
    )
    renews = "  (renews automatically)" if m["auto_renewal"] and m["status"] == "active" else ""
    click.echo(f"  expires   {m['expires_on']}{renews}")
    a = m.get("allowance")
    if a:
        click.echo(f"  allowance {a['balance']} of {a['amount']}; overdraft used {a['overdraft_used']} of "
                   f"{a['overdraft_limit']}")
    for s in m["services"]:
        click.echo(f"  service   {s['code']:<14} used {s['used']} of {s['quantity']}, {s['left']} left")


@click.group("points")
def points() -> None:
    """Rewards points."""


@points.command("show")
@click.argument("customer")
@click.option("--on", "on", callback=parse_date, default=None,
              help="What is pending, available and expired on this day (today).")
@json_option
@click.pass_obj
@handled
def points_show(obj: Obj, customer: str, on: date | None, as_json: bool) -> None:
    """Points balance and lots (with their expiry) of a customer."""

    def human(d: dict[str, Any]) -> None:
        held = f", {d['pending']} pending" if d["pending"] else ""
        click.echo(f"{d['customer']['name']}: {d['balance']} points ({d['available']} available{held})")
        if d.get("tier"):
            t = d["tier"]
            click.echo(f"  loyalty tier: {t['name'] or 'none yet'}"
                       + (f" ({t['next']['needs']} more for {t['next']['name']})" if t.get("next") else ""))
        for lot in d["lots"]:
            click.echo(f"  lot {lot['lot']}: {lot['remaining']}/{lot['points']} earned {lot['earned_on']}, "
                       f"expires {lot['expires_on'] or 'never'} [{lot['status']}]")

    emit(rewards.points(obj.app, obj.company, customer, on), as_json, human)


@click.command()
@click.argument("membership_id", required=False)
@click.option("--from", "start", callback=parse_date, required=True)
@click.option("--to", "end", callback=parse_date, required=True)
@click.option("--plan", default=None, help="With --pdf/--html: the statements of every member of this plan.")
@click.option("--pdf", "pdf", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the statement as a PDF (house-account style) to this file.")
@click.option("--html", "html", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write it as an HTML page to this file.")
@json_option
@click.pass_obj
@handled
def statement(obj: Obj, membership_id: str | None, start: date, end: date, plan: str | None, pdf: str | None,
              html: str | None, as_json: bool) -> None:
    """Every entry of a membership's accounts between two dates, with why it happened; with
    --pdf/--html, the statement a member reads (of one membership, or of a whole --plan)."""
    if pdf or html:
        for path, kind in ((pdf, "pdf"), (html, "html")):
            if path:
                document = memberships.statement_document(obj.app, obj.company, start, end, membership_id, plan, kind)
                with open(path, "wb") as f:
                    f.write(document)
                click.echo(path)
        return
    if not membership_id:
        raise click.UsageError("name a membership (or --plan with --pdf/--html)")

    def human(d: dict[str, Any]) -> None:
        m = d["membership"]
        click.echo(f"Statement {m['id']} ({m['customer']['name']}, {m['plan']}) {d['from']} .. {d['to']}")
        for sec in d["accounts"]:
            click.echo(f"\n  {sec['account']}: opening {sec['opening']}")
            for e in sec["entries"]:
                click.echo(f"    {e['date']}  {e['kind']:<19} {e['amount']:>10}  = {e['balance']:>10}   {e['rule']} "
                           f"({e['ruleset']}; event {e['event']})")
            click.echo(f"  {sec['account']}: closing {sec['closing']}")

    emit(memberships.statement(obj.app, obj.company, membership_id, start, end), as_json, human)


@click.group("billing")
def billing_group() -> None:
    """Billing members for their memberships."""


@billing_group.command("run")
@click.option("--as-of", callback=parse_date, required=True,
              help="Invoice every billing period begun by this day and collect what is due by then.")
@click.pass_obj
@handled
def billing_run(obj: Obj, as_of: date) -> None:
    """Invoice and collect what is due: charges, retries of failed payments, past-due,
    suspended and cancelled memberships (workers do the same as due work); prints a JSON
    summary with invoices, charged, failed and retried."""
    click.echo(json.dumps(billing.run(obj.app, obj.company, as_of)))


@click.group("invoices")
def invoices_group() -> None:
    """Invoices, numbered without gaps when they are finalised."""


@invoices_group.command("list")
@click.argument("owner")
@json_option
@click.pass_obj
@handled
def invoices_list(obj: Obj, owner: str, as_json: bool) -> None:
    """The invoices of a membership (mem_...) or a customer (cus_...)."""
    rows = (billing.invoices_of(obj.app, obj.company, membership=owner) if owner.startswith("mem_")
            else billing.invoices_of(obj.app, obj.company, customer=owner))
    emit(rows, as_json, lambda rows: [click.echo(
        f"{r['number']:>6} {r['status']:<6} {r['issued_on']} {r['period_start']}..{r['period_end']} "
        f"{r['total']:>10} {r['currency']}  due {r['amount_due']}") for r in rows])


@invoices_group.command("show")
@click.argument("number", type=int)
@click.option("--pdf", "pdf", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the invoice (a receipt once paid) as a PDF to this file.")
@click.option("--html", "html", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write it as an HTML page to this file.")
@json_option
@click.pass_obj
@handled
def invoices_show(obj: Obj, number: int, pdf: str | None, html: str | None, as_json: bool) -> None:
    """An invoice with its lines, payments and credit notes; or, with --pdf/--html, its document."""
    for path, kind in ((pdf, "pdf"), (html, "html")):
        if path:
            with open(path, "wb") as f:
                f.write(billing.invoice_document(obj.app, obj.company, number, kind))
            click.echo(path)
    if pdf or html:
        return

    def human(inv: dict) -> None:
        click.echo(f"Invoice {inv['number']} ({inv['status']}) issued {inv['issued_on']}, {inv['currency']}")
        for line in inv["lines"]:
            click.echo(f"  {line['description']:<70} {line['amount']:>10}")
        click.echo(f"  {'total':<70} {inv['total']:>10}\n  {'due':<70} {inv['amount_due']:>10}")

    emit(billing.invoice(obj.app, obj.company, number), as_json, human)


@click.group("payment-methods")
def payment_methods_group() -> None:
    """Customers' cards, kept by the payment gateway (Keepwell holds only a token, the brand, the
    last four digits and the expiry)."""


def _card_line(r: dict) -> None:
    click.echo(f"{r['id']}  {r['label']}{'  (default)' if r['default'] else ''}")


@payment_methods_group.command("add")
@click.argument("customer")
@click.option("--test-card", "card", required=True,
              type=click.Choice(["success", "decline", "insufficient_funds", "expired", "hard_decline",
                                 "network_error"]),
              help="A sandbox test card: how its charges answer (network_error: taken, but the answer is lost).")
@click.option("--default", "default", is_flag=True, help="Make it the customer's default card.")
@json_option
@click.pass_obj
@handled
def payment_methods_add(obj: Obj, customer: str, card: str, default: bool, as_json: bool) -> None:
    """Add a sandbox test card to CUSTOMER; prints the payment method id."""
    pm = billing.add_test_card(obj.app, obj.company, customer, card, default)
    emit(pm, as_json, lambda r: click.echo(r["id"]))


@payment_methods_group.command("add-token")
@click.argument("customer")
@click.option("--gateway", "gateway_name", required=True, type=click.Choice(["sandbox", "stripe"]),
              help="The gateway that tokenised the card (its own page, Stripe.js...).")
@click.option("--token", required=True, help="The gateway's token for the card (Stripe: pm_...); never a number.")
@click.option("--default", "default", is_flag=True, help="Make it the customer's default card.")
@json_option
@click.pass_obj
@handled
def payment_methods_add_token(obj: Obj, customer: str, gateway_name: str, token: str, default: bool,
                              as_json: bool) -> None:
    """Add a card a gateway tokenised to CUSTOMER; prints the payment method id."""
    pm = billing.add_card_token(obj.app, obj.company, customer, gateway_name, token, default)
    emit(pm, as_json, lambda r: click.echo(r["id"]))


@payment_methods_group.command("list")
@click.argument("customer")
@json_option
@click.pass_obj
@handled
def payment_methods_list(obj: Obj, customer: str, as_json: bool) -> None:
    """CUSTOMER's cards, the default one marked."""
    rows = billing.payment_methods_of(obj.app, obj.company, customer)
    emit(rows, as_json, lambda rows: [_card_line(r) for r in rows])


@payment_methods_group.command("set-default")
@click.argument("payment_method")
@json_option
@click.pass_obj
@handled
def payment_methods_default(obj: Obj, payment_method: str, as_json: bool) -> None:
    """Make PAYMENT_METHOD its customer's default card (failed invoices are tried with it next run)."""
    emit(billing.set_default_payment_method(obj.app, obj.company, payment_method), as_json, _card_line)


@payment_methods_group.command("remove")
@click.argument("payment_method")
@json_option
@click.pass_obj
@handled
def payment_methods_remove(obj: Obj, payment_method: str, as_json: bool) -> None:
    """Stop charging PAYMENT_METHOD (kept for the payments that name it)."""
    emit(billing.remove_payment_method(obj.app, obj.company, payment_method), as_json, _card_line)


@click.group("locations")
def locations_group() -> None:
    """The places the company serves, each with its sales tax."""


@locations_group.command("add")
@click.argument("name")
@click.option("--tax-rate", default="0", show_default=True, help="Sales tax in percent, e.g. 8.25.")
@click.option("--tax-name", default=None, help="What invoices call the tax (default: Sales tax).")
@click.option("--address", default=None, help="Street, town and postcode.")
@click.option("--timezone", default=None,
              help="IANA time zone when not the company's (America/Denver): its customers' quiet hours.")
@json_option
@click.pass_obj
@handled
def locations_add(obj: Obj, name: str, tax_rate: str, tax_name: str | None, address: str | None,
                  timezone: str | None, as_json: bool) -> None:
    """Add a location; prints its id."""
    emit(locations_uc.add_location(obj.app, obj.company, name, tax_rate, tax_name, address, timezone), as_json,
         lambda r: click.echo(r["id"]))


@locations_group.command("set")
@click.argument("location")
@click.option("--name", default=None, help="A new name.")
@click.option("--tax-rate", default=None, help="Sales tax in percent; invoices issued from now on charge it.")
@click.option("--tax-name", default=None, help="What invoices call the tax.")
@click.option("--address", default=None, help="Street, town and postcode (\"\" clears it).")
@click.option("--timezone", default=None, help="IANA time zone (\"\": the company's).")
@json_option
@click.pass_obj
@handled
def locations_set(obj: Obj, location: str, name: str | None, tax_rate: str | None, tax_name: str | None,
                  address: str | None, timezone: str | None, as_json: bool) -> None:
    """Change a location (by id or name)."""
    emit(locations_uc.change_location(obj.app, obj.company, location, name, tax_rate, tax_name, address, timezone),
         as_json, lambda r: click.echo(f"{r['id']}  {r['name']}  {r['tax_name']} {r['tax_rate']}%"
                                       f"{'  ' + r['timezone'] if r['timezone'] else ''}"))


@locations_group.command("list")
@json_option
@click.pass_obj
@handled
def locations_list(obj: Obj, as_json: bool) -> None:
    emit(locations_uc.list_locations(obj.app, obj.company), as_json, lambda rows: [
        click.echo(f"{r['id']}  {r['name']}  {r['tax_name']} {r['tax_rate']}%"
                   f"{'  ' + r['timezone'] if r['timezone'] else ''}{'  ' + r['address'] if r['address'] else ''}")
        for r in rows])


COMMANDS = [locations_group, customers, enroll, membership, points, statement, billing_group, invoices_group,
            payment_methods_group]
