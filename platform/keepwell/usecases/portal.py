"""The member portal: members sign in with a one-time emailed link and see their membership and
rewards. Each use case acts for one company and, once signed in, one customer: whatever a page
asks for is looked up among that customer's own records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from ..customers import consent, member_access
from ..customers.companies import quiet_hours
from ..customers.customers import get_customer, opted_out, set_preference
from ..infra.context import Ctx
from ..kernel.errors import Declined, NotFound
from ..memberships import memberships
from ..memberships.models import Membership
from ..messaging import outbox
from ..rewards import points as points_area
from ..rewards import redemptions as redemptions_area
from ..scheduling import requests as visit_requests
from ..scheduling import visits as booked_visits
from . import billing as billing_uc
from . import memberships as memberships_uc
from . import rewards as rewards_uc
from .app import reading, use_case

__all__ = ["billing", "cancel", "cancel_preview", "cancel_redemption", "history", "home", "preferences", "redeem",
           "remove_card", "request_link", "rewards", "set_channels", "set_default_card", "sign_in", "statement_pdf",
           "add_card", "change_tier", "change_tier_preview", "invite", "pay_invoice", "referrals", "tiers",
           "export", "export_rows", "EXPORT_COLUMNS", "set_renewal", "sign_in_password", "session_current",
           "set_password", "visits", "request_visit", "cancel_visit_request"]

CHANNELS = ("email", "sms")
# What a member may still call off themselves: nothing has left the shop yet.
MEMBER_CANCELS = ("pending", "ordered")


def _same(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The use case itself, run inside this one's transaction: the portal does what the admin
    and the API do, for the signed-in member's own records only."""
    return fn.__wrapped__  # type: ignore[attr-defined, no-any-return]


def _own_membership(ctx: Ctx, customer_id: str, membership_id: str) -> Membership:
    """One of the member's memberships; anyone else's (or none) is not found, as it would be at
    another company."""
    m = ctx.session.get(Membership, membership_id)
    if m is None or m.company_id != ctx.company.id or m.customer_id != customer_id:
        raise NotFound(f"no membership {membership_id!r}")
    return m

LIVE = ("active", "past_due", "suspended")


@use_case
def request_link(ctx: Ctx, email: str, link_base: str) -> None:
    """Email a sign-in link to the member with this email, if there is one: the answer is the
    same either way. `link_base` is where this company's portal is served (…/portal/acme)."""
    member = member_access.member_by_email(ctx.session, ctx.company, email)
    if member is not None and member.email:
        _send_link(ctx, member, link_base)


@use_case
def invite(ctx: Ctx, customer_id: str, link_base: str) -> str:
    """The contractor invites a customer to the portal: a sign-in link goes to their email (the
    answer). A customer without an email cannot be invited."""
    member = get_customer(ctx.session, ctx.company.id, customer_id)
    if not member.email:
        raise Declined("no_email", f"{member.name} has no email address: add one to invite them")
    _send_link(ctx, member, link_base)
    return member.email


def _send_link(ctx: Ctx, member: Any, link_base: str) -> None:
    link, token = member_access.new_link(ctx.session, ctx.company, member, ctx.clock.now())
    with ctx.unit.scope():
        outbox.add(ctx, key=f"member-link:{link.digest}", event_id=None, customer_id=member.id, kind="notification",
                   channel="email", template="member_sign_in", audience="direct", ruleset=None, rule=None,
                   payload={"to": member.email, "data": {"link": f"{link_base.rstrip('/')}/link/{token}",
                                                         "minutes": member_access.LINK_MINUTES}})


@use_case
def sign_in(ctx: Ctx, token: str) -> dict[str, Any]:
    """The member an emailed link signs in (the link is used up), with their session version."""
    member = member_access.take_link(ctx.session, ctx.company, token, ctx.clock.now())
    return {"customer": member.id, "name": member.name,
            "version": member_access.session_version(ctx.session, member.id)}


@reading
def sign_in_password(ctx: Ctx, email: str, password: str) -> dict[str, Any] | None:
    """The member this email and password sign in, or None (the same answer for an unknown email,
    a member without a password and a wrong one)."""
    found = member_access.authenticate(ctx.session, ctx.company, email, password)
    if found is None:
        return None
    member, version = found
    return {"customer": member.id, "name": member.name, "version": version}


@reading
def session_current(ctx: Ctx, customer_id: str, version: int) -> bool:
    """Whether a portal session of this version still holds (a password set since ends it)."""
    return member_access.session_version(ctx.session, customer_id) == version


@use_case
def set_password(ctx: Ctx, customer_id: str, password: str) -> int:
    """The signed-in member sets their own password (their other sessions end): the answer is
    the version this session goes on with."""
    member = get_customer(ctx.session, ctx.company.id, customer_id)
    return member_access.set_password(ctx.session, ctx.company, member, password, ctx.clock.now())


@reading
def home(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """What a member sees first: their memberships (live ones first) with benefits, included
    visits, allowance and overdraft, and their points with the lots that expire next."""
    member = get_customer(ctx.session, ctx.company.id, customer_id)
    today = ctx.today()
    held = [memberships.view(ctx, m) for m in memberships.of_customer(ctx, member.id)]
    held.sort(key=lambda m: (m["status"] not in LIVE, m["issued_on"]), reverse=False)
    lots = [lot for lot in points_area.lots(ctx, member.id, today)
            if lot["remaining"] and lot["expires_on"] and lot["expires_on"] >= today.isoformat()]
    lots.sort(key=lambda lot: lot["expires_on"])
    return {"company": {"name": ctx.company.name, "slug": ctx.company.slug}, "today": today.isoformat(),
            "member": {"id": member.id, "name": member.name, "email": member.email},
            "memberships": held, "live": [m for m in held if m["status"] in LIVE],
            "points": {"balance": points_area.balance(ctx, member.id),
                       "available": points_area.usable(ctx, member.id, today), "expiring": lots[:3]},
            "next_visit": next(iter(booked_visits.upcoming(ctx, member.id, 1)), None)}


@reading
def history(ctx: Ctx, customer_id: str, start: date | None = None, end: date | None = None) -> dict[str, Any]:
    """The member's statements (each membership's, over the range: the last twelve months to
    today by default), invoices and receipts."""
    get_customer(ctx.session, ctx.company.id, customer_id)
    end = end or ctx.today()
    start = start or (end - timedelta(days=365))
    statements = []
    for m in memberships.of_customer(ctx, customer_id):
        if m.issued_on <= end and (m.ended_on is None or m.ended_on >= start):
            statements.append(_same(memberships_uc.statement)(ctx, m.id, max(start, m.issued_on), end))
    return {"from": start.isoformat(), "to": end.isoformat(), "statements": statements,
            "invoices": _same(billing_uc.invoices_of)(ctx, customer=customer_id)}


@reading
def statement_pdf(ctx: Ctx, customer_id: str, membership_id: str, start: date, end: date) -> bytes:
    _own_membership(ctx, customer_id, membership_id)
    return _same(memberships_uc.statement_document)(ctx, start, end, membership_id=membership_id)  # type: ignore[no-any-return]


@reading
def invoice_pdf(ctx: Ctx, customer_id: str, number: int) -> bytes:
    if _same(billing_uc.invoice)(ctx, number).get("customer") != customer_id:
        raise NotFound(f"no invoice {number}")
    return _same(billing_uc.invoice_document)(ctx, number)  # type: ignore[no-any-return]


@reading
def rewards(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """What the member's points buy today, and their redemptions."""
    today = ctx.today()
    mine = _same(rewards_uc.list_redemptions)(ctx, customer=customer_id)
    return {"points": _same(rewards_uc.points)(ctx, customer_id, today),
            "catalog": _same(rewards_uc.catalog_list)(ctx, today, customer_id),
            "redemptions": [{**r, "member_can_cancel": r["status"] in MEMBER_CANCELS} for r in mine]}


@use_case
def redeem(ctx: Ctx, customer_id: str, reward: str, quantity: int, key: str) -> dict[str, Any]:
    """Spend points on a reward (the key makes a second press of the same form the same one)."""
    return _same(rewards_uc.redeem)(ctx, customer_id, reward, quantity, key=key)  # type: ignore[no-any-return]


@use_case
def cancel_redemption(ctx: Ctx, customer_id: str, redemption_id: str) -> dict[str, Any]:
    """Cancel one of the member's redemptions before it has gone out (the points come back)."""
    r = redemptions_area.get(ctx, redemption_id)
    if r.customer_id != customer_id:
        raise NotFound(f"no redemption {redemption_id!r}")
    if r.status not in MEMBER_CANCELS:
        raise Declined("not_cancellable", f"this redemption is {r.status} already: ask us if it should be undone")
    return _same(rewards_uc.change_redemption)(ctx, redemption_id, "cancelled",  # type: ignore[no-any-return]
                                               reason="cancelled by the member")


@reading
def preferences(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    member = get_customer(ctx.session, ctx.company.id, customer_id)
    company_quiet = f"{ctx.company.quiet_start}-{ctx.company.quiet_end}" if ctx.company.quiet_start else ""
    return {"email": member.email, "phone": member.phone,
            "channels": {ch: not opted_out(ctx.session, member.id, ch) for ch in CHANNELS},
            "marketing": consent.view(ctx.session, member.id),
            "quiet_hours": f"{member.quiet_start}-{member.quiet_end}" if member.quiet_start else "",
            "has_password": member_access.has_password(ctx.session, member.id),
            "company_quiet_hours": company_quiet}


@use_case
def set_channels(ctx: Ctx, customer_id: str, wanted: dict[str, bool], marketing: bool | None = None,
                 quiet: str | None = None) -> None:
    """Which channels the member hears from the company on (email, text messages), whether they
    agree to marketing messages (recorded with the time and "portal"), and their own quiet
    hours ("21:00-08:00"; "" for the company's)."""
    member = get_customer(ctx.session, ctx.company.id, customer_id)
    if quiet is not None:
        member.quiet_start, member.quiet_end = quiet_hours(quiet)
    for ch in CHANNELS:
        if ch in wanted:
            set_preference(ctx.session, ctx.company.id, customer_id, ch, not wanted[ch])
    if marketing is not None:
        consent.record(ctx.session, ctx.company.id, customer_id, marketing, "portal", ctx.clock.now())


@reading
def cancel_preview(ctx: Ctx, customer_id: str, membership_id: str) -> dict[str, Any]:
    """What cancelling today would refund, changing nothing."""
    _own_membership(ctx, customer_id, membership_id)
    return _same(memberships_uc.cancel_preview)(ctx, membership_id, ctx.today())  # type: ignore[no-any-return]


@use_case
def cancel(ctx: Ctx, customer_id: str, membership_id: str) -> dict[str, Any]:
    _own_membership(ctx, customer_id, membership_id)
    return _same(memberships_uc.cancel)(ctx, membership_id, ctx.today())  # type: ignore[no-any-return]


@use_case
def set_renewal(ctx: Ctx, customer_id: str, membership_id: str, on: bool) -> dict[str, Any]:
    """The member turns their membership's automatic renewal off or on, where the plan lets them."""
    _own_membership(ctx, customer_id, membership_id)
    return _same(memberships_uc.set_renewal)(ctx, membership_id, on, by="member")  # type: ignore[no-any-return]


@reading
def billing(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    return {"cards": _same(billing_uc.payment_methods_of)(ctx, customer_id),
            "invoices": _same(billing_uc.invoices_of)(ctx, customer=customer_id)}


@use_case
def add_card(ctx: Ctx, customer_id: str, token: str) -> dict[str, Any]:
    """A card the sandbox's card page (the payment provider's page) turned into a token; a card
    added pays the member's failed invoices at once."""
    return _same(billing_uc.add_card_token)(ctx, customer_id, "sandbox", token, True)  # type: ignore[no-any-return]


def _own_card(ctx: Ctx, customer_id: str, pm: str) -> None:
    if all(c["id"] != pm for c in _same(billing_uc.payment_methods_of)(ctx, customer_id)):
        raise NotFound(f"no card {pm!r}")


@use_case
def set_default_card(ctx: Ctx, customer_id: str, pm: str) -> dict[str, Any]:
    _own_card(ctx, customer_id, pm)
    return _same(billing_uc.set_default_payment_method)(ctx, pm)  # type: ignore[no-any-return]


@use_case
def remove_card(ctx: Ctx, customer_id: str, pm: str) -> dict[str, Any]:
    _own_card(ctx, customer_id, pm)
    return _same(billing_uc.remove_payment_method)(ctx, pm)  # type: ignore[no-any-return]


@use_case
def referrals(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """The member's referral code (made the first time they look) and who joined with it."""
    code = _same(rewards_uc.referral_code)(ctx, customer_id)
    return {"code": code, **_same(rewards_uc.referrals_of)(ctx, customer_id)}


@use_case
def pay_invoice(ctx: Ctx, customer_id: str, number: int) -> dict[str, Any]:
    """Pay one of the member's open invoices now, with their card."""
    if _same(billing_uc.invoice)(ctx, number).get("customer") != customer_id:
        raise NotFound(f"no invoice {number}")
    return _same(billing_uc.pay_invoice)(ctx, number)  # type: ignore[no-any-return]


@reading
def tiers(ctx: Ctx, customer_id: str, membership_id: str) -> list[tuple[str, str]]:
    """The tiers the member's membership can move to today."""
    _own_membership(ctx, customer_id, membership_id)
    return _same(memberships_uc.tiers_in_force)(ctx, membership_id, ctx.today())  # type: ignore[no-any-return]


@reading
def change_tier_preview(ctx: Ctx, customer_id: str, membership_id: str, tier: str) -> dict[str, Any]:
    """What moving to `tier` today would credit, charge and ask now, changing nothing."""
    _own_membership(ctx, customer_id, membership_id)
    return _same(memberships_uc.change_tier_preview)(ctx, membership_id, tier,  # type: ignore[no-any-return]
                                                     ctx.today())


@use_case
def change_tier(ctx: Ctx, customer_id: str, membership_id: str, tier: str) -> dict[str, Any]:
    _own_membership(ctx, customer_id, membership_id)
    return _same(memberships_uc.change_tier)(ctx, membership_id, tier, ctx.today()).to_dict()  # type: ignore[no-any-return]


@reading
def export(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """Everything Keepwell holds about the member, as they may take it away: contact details and
    choices, memberships with every statement line since they joined, points and redemptions,
    referrals, invoices, and the messages sent to them."""
    member = get_customer(ctx.session, ctx.company.id, customer_id)
    today = ctx.today()
    held = memberships.of_customer(ctx, member.id)
    statements = [_same(memberships_uc.statement)(ctx, m.id, m.issued_on, min(today, m.ended_on or today))
                  for m in held]
    return {"company": ctx.company.name, "exported_on": today.isoformat(),
            "customer": {"id": member.id, "name": member.name, "email": member.email, "phone": member.phone,
                         "service_address": member.service_address,
                         "added_on": member.created_at.date().isoformat()},
            "preferences": {"channels": {ch: not opted_out(ctx.session, member.id, ch) for ch in CHANNELS}},
            "memberships": [{**st["membership"], "statement": st["house"]} for st in statements],
            "points": _same(rewards_uc.points)(ctx, member.id, today),
            "redemptions": _same(rewards_uc.list_redemptions)(ctx, customer=member.id, limit=10_000),
            "referrals": _same(rewards_uc.referrals_of)(ctx, member.id)["referrals"],
            "invoices": _same(billing_uc.invoices_of)(ctx, customer=member.id),
            "messages": outbox.of_customer(ctx.session, ctx.company.id, member.id, 10_000)}


EXPORT_COLUMNS = ("Date", "Membership", "Account", "What", "Amount", "Balance after")


def export_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The export's statement lines as one table (the CSV a spreadsheet opens)."""
    rows: list[tuple[Any, ...]] = []
    for m in data["memberships"]:
        house = m["statement"]
        for line in house.get("lines", []):
            rows.append((line["date"], m["id"], "Allowance", line["description"], line["amount"], line["balance"]))
        for visits in house.get("visits", []):
            for line in visits["lines"]:
                rows.append((line["date"], m["id"], f"Visits: {visits['service']}", line["description"],
                             line["amount"], ""))
        for line in (house.get("points") or {}).get("lines", []):
            rows.append((line["date"], m["id"], "Points", line["description"], line["amount"], line["balance"]))
    return sorted(rows, key=lambda r: (r[0], r[1]))


@reading
def visits(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """What the member can ask a visit for, their requests, and the visits booked for them."""
    return {"choices": visit_requests.choices(ctx, customer_id),
            "requests": visit_requests.of_customer(ctx, customer_id),
            "upcoming": booked_visits.upcoming(ctx, customer_id)}


@use_case
def request_visit(ctx: Ctx, customer_id: str, choice: str, preferred: str | None, notes: str | None) -> dict[str, Any]:
    """Ask for an included service ("MEMBERSHIP:CODE") or extra work ("other"); the office is told."""
    return visit_requests.view(visit_requests.request(ctx, customer_id, choice, preferred, notes))


@use_case
def cancel_visit_request(ctx: Ctx, customer_id: str, request_id: str) -> dict[str, Any]:
    return visit_requests.view(visit_requests.cancel(ctx, customer_id, request_id))
