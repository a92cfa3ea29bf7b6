"""The member portal: members sign in with a one-time emailed link and see their membership and
rewards. Each use case acts for one company and, once signed in, one customer: whatever a page
asks for is looked up among that customer's own records."""

from __future__ import annotations

from typing import Any

from ..customers import member_access
from ..customers.customers import get_customer
from ..infra.context import Ctx
from ..memberships import memberships
from ..messaging import outbox
from ..rewards import points as points_area
from .app import reading, use_case

__all__ = ["home", "request_link", "sign_in"]

LIVE = ("active", "past_due", "suspended")


@use_case
def request_link(ctx: Ctx, email: str, link_base: str) -> None:
    """Email a sign-in link to the member with this email, if there is one: the answer is the
    same either way. `link_base` is where this company's portal is served (…/portal/acme)."""
    member = member_access.member_by_email(ctx.session, ctx.company, email)
    if member is None or not member.email:
        return
    link, token = member_access.new_link(ctx.session, ctx.company, member, ctx.clock.now())
    with ctx.unit.scope():
        outbox.add(ctx, key=f"member-link:{link.digest}", event_id=None, customer_id=member.id, kind="notification",
                   channel="email", template="member_sign_in", audience="direct", ruleset=None, rule=None,
                   payload={"to": member.email, "data": {"link": f"{link_base.rstrip('/')}/link/{token}",
                                                         "minutes": member_access.LINK_MINUTES}})


@use_case
def sign_in(ctx: Ctx, token: str) -> dict[str, str]:
    """The member an emailed link signs in (the link is used up)."""
    member = member_access.take_link(ctx.session, ctx.company, token, ctx.clock.now())
    return {"customer": member.id, "name": member.name}


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
                       "available": points_area.usable(ctx, member.id, today), "expiring": lots[:3]}}
