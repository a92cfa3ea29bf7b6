"""Periods that end: the unused remainder expires, the membership renews into its next period
(or expires), and the ledger says so entry by entry.

A period end is an event of its own (`period_ended`, then `renewed` or `expired`), with a key
made from the membership and the period, so due work and a late-arriving purchase can never
close a period twice: whichever comes first closes it, the other finds the event stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from ..events.pipeline import platform_payload, post_platform
from ..infra.context import Ctx
from ..kernel.errors import Declined, InvalidDocument
from ..kernel.periods import period_end, period_start
from ..ledger import Posting
from . import allowance, entitlements
from .memberships import members, plan_of
from .models import AnyMembership, Membership
from .terms import PlanTerms

ONE_DAY = timedelta(days=1)

Poster = Callable[[dict[str, Any]], dict[str, Any]]  # posts a platform event, returns its answer


def close_period(ctx: Ctx, m: AnyMembership, event_id: int,
                 plan: tuple[str, PlanTerms] | None = None) -> dict[str, Any]:
    """Close the current period: renew into the next one, or expire the membership. `plan` is
    the membership's (plan_of), when the caller has it already."""
    plan_ref, terms = plan or plan_of(ctx, m)
    k = m.current_period
    next_start = period_start(m.issued_on, m.period, k + 1)
    renew = m.auto_renewal
    why = Posting(event_id, plan_ref, "", next_start, k + 1 if renew else k)
    allowance.close_period(ctx, m, terms, why, renew)
    entitlements.close_period(ctx, m, terms, why, renew)
    state = members(ctx)
    if renew:
        state.set(m, "current_period", k + 1)
        state.set(m, "expires_on", period_end(m.issued_on, m.period, k + 1))
    else:
        state.set(m, "status", "expired")
        state.set(m, "ended_on", m.expires_on)
    return {"membership": m.id, "closed_period": k, "renewed": renew, "status": m.status,
            "expires_on": m.expires_on.isoformat()}


def choose(ctx: Ctx, m: AnyMembership, on: bool, by_member: bool) -> None:
    """Set `m` to renew at the end of its period, or to end with it. Renewal cannot be turned on
    for a plan that does not renew; a member may change it only where the plan lets members
    choose (the office always may)."""
    terms = plan_of(ctx, m)[1]
    if m.status != "active":
        raise Declined("not_active", f"membership {m.id} is {m.status}: there is nothing left to renew")
    if by_member and not terms.members_choose_renewal:
        raise Declined("renewal_set_by_company", f"The {terms.plan_name} plan's renewal is set by "
                       f"{ctx.company.name}: call or email us to change it")
    if on and not terms.auto_renewal:
        raise Declined("plan_does_not_renew", f"The {terms.plan_name} plan does not renew automatically: it ends "
                       f"on {m.expires_on.isoformat()}")
    if m.auto_renewal != on:
        members(ctx).set(m, "auto_renewal", on)


def periods_behind(m: Membership, upto: date, most: int) -> int:
    """How many of `m`'s periods ended before `upto` (counting stops past `most`)."""
    if m.status != "active" or m.expires_on >= upto:
        return 0
    n, k = 0, m.current_period
    while n <= most and period_end(m.issued_on, m.period, k) < upto:
        n, k = n + 1, k + 1
    return n


def catch_up(ctx: Ctx, m: Membership, upto: date, for_event: bool = True) -> list[dict[str, Any]]:
    """Close every period of `m` that ended before `upto`, each as its own platform event. An
    event may close at most the company's `max_periods_per_event`: more than that is refused (a
    long-neglected membership is brought up to date by due work, not by one purchase)."""
    most = ctx.company.max_periods_per_event
    if for_event and periods_behind(m, upto, most) > most:
        raise InvalidDocument.field(
            "occurred_at", f"membership {m.id} would close more than {most} ended periods at once; run due work "
            "(`keepwell run-due`) to bring it up to date first, or check the event's date")
    results = []
    while m.status == "active" and m.expires_on < upto:
        results.append(close_period_event(ctx, m))
    return results


def closes_once(m: AnyMembership, upto: date) -> bool:
    """Whether catching `m` up to `upto` closes exactly its current period (and no later one)."""
    if m.status != "active" or m.expires_on >= upto:
        return False
    return not m.auto_renewal or period_end(m.issued_on, m.period, m.current_period + 1) >= upto


def close_period_event(ctx: Ctx, m: AnyMembership, post: Poster | None = None) -> dict[str, Any]:
    """Close the current period as its events: `period_ended`, then `renewed` or `expired`
    (posted by `post`, the pipeline's own by default)."""
    send: Poster = post or (lambda payload: post_platform(ctx, payload))
    k = m.current_period
    at = ctx.start_of(m.expires_on + ONE_DAY)
    res = send(platform_payload(f"period_ended:{m.id}:{k}", "period_ended", m.customer_id, at, {"membership": m.id}))
    if m.status == "active":
        send(platform_payload(f"renewed:{m.id}:{k + 1}", "renewed", m.customer_id, at, {"membership": m.id}))
    elif m.status == "expired":
        send(platform_payload(f"expired:{m.id}", "expired", m.customer_id, at, {"membership": m.id}))
    return res


def period_keys(m: AnyMembership) -> list[str]:
    """The keys of the events that close `m`'s current period (to look them up in bulk)."""
    k = m.current_period
    return [f"period_ended:{m.id}:{k}", f"renewed:{m.id}:{k + 1}", f"expired:{m.id}"]
