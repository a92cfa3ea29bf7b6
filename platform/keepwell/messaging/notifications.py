"""Notification triggers: the NotificationTriggers in force react to every event by queueing
messages in the outbox (in the event's transaction), and their date triggers ("30 days before
renewal") are due work of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from ..events import due
from ..events.due import DueUnit
from ..events.registry import PendingEvent, react
from ..infra.context import Ctx
from ..kernel.errors import Problem
from ..kernel.periods import period_start
from ..memberships.due import own_membership
from ..memberships.models import Membership
from ..rulesets import kinds
from ..rulesets.in_force import evaluate, in_force
from . import outbox
from .templates import template_names

kinds.register("NotificationTriggers", "notification_triggers.schema.json", "Messages", compiled=True)


def _template_problems(doc: dict[str, Any]) -> list[Problem]:
    spec = doc.get("spec") or {}
    known = set(spec.get("templates") or {}) | template_names()
    return [
        Problem(f"spec.triggers[{i}].template", f"no template {t['template']!r}: define it in spec.templates "
                f"or use a shipped one ({', '.join(sorted(template_names()))})")
        for i, t in enumerate(spec.get("triggers") or []) if t.get("template") not in known
    ]


kinds.add_check("NotificationTriggers", _template_problems)


@react(order=20)
def notify(ctx: Ctx, event: PendingEvent, data: dict, local: date, member: Callable[[], dict],
           result: dict) -> None:
    for match in evaluate(ctx, "NotificationTriggers", event.type, local, data, member):
        for rule_id in match.rule_ids:
            t = match.rules.triggers[rule_id]
            outbox.add(ctx, key=f"notify:{event.key}:{match.rules.ref.split('@')[0]}:{t.id}",
                       event_id=event.id, customer_id=event.customer_id, kind="notification", channel=t.channel,
                       template=t.template, audience=t.audience, ruleset=match.rules.ref, rule=t.id,
                       payload={"event": event.key, "type": event.type, "data": data, "local_date": local.isoformat(),
                                "membership": event.membership_id, "points": result.get("points"),
                                **({"marketing": True} if t.marketing else {})})


# --- reminders: date triggers as due work --------------------------------------------------------

def _date_triggers(ctx: Ctx, on: date) -> Iterator[tuple[str, dict[str, Any]]]:
    for rules in in_force(ctx, "NotificationTriggers", on):
        for trig in rules.date_triggers:
            yield rules.ref, trig


def _reminders_due(ctx: Ctx, as_of: date) -> list[DueUnit]:
    """Reminders such as "30 days before renewal": due when as_of reaches the date, and only
    while the renewal or expiry is still ahead."""
    found: list[tuple[str, str, str]] = []
    triggers = list(_date_triggers(ctx, as_of))
    if not triggers:
        return []
    horizon = max(t["before"]["days"] for _r, t in triggers)
    rows = ctx.session.execute(
        sa.select(Membership.id, Membership.customer_id, Membership.expires_on, Membership.auto_renewal)
        .where(Membership.company_id == ctx.company.id, Membership.status == "active",
               Membership.expires_on >= as_of, Membership.expires_on <= as_of + timedelta(days=horizon))
    )
    for mid, cid, expires_on, renews in rows:
        for ruleset_ref, trig in triggers:
            target = trig["before"]["of"]
            if (target == "renewal") != bool(renews):
                continue
            if expires_on - timedelta(days=trig["before"]["days"]) <= as_of:
                key = f"notify:{ruleset_ref.split('@')[0]}:{trig['id']}:{mid}:{expires_on.isoformat()}"
                found.append((key, cid, mid))
    queued = outbox.existing_keys(ctx, [key for key, _c, _m in found])
    return [DueUnit("reminder", key, cid, mid, as_of) for key, cid, mid in found if key not in queued]


def _queue_reminder(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    return {"unit": unit.key, "queued": _queue(ctx, unit)}


def _queue(ctx: Ctx, unit: DueUnit) -> bool:
    if outbox.existing_keys(ctx, [unit.key]):
        return False
    _, ruleset_id, trigger_id = unit.key.split(":")[:3]
    m = own_membership(ctx, unit)
    for ruleset_ref, trig in _date_triggers(ctx, unit.as_of):
        if (ruleset_ref.split("@")[0], trig["id"]) != (ruleset_id, trigger_id):
            continue
        renewal = period_start(m.issued_on, m.period, m.current_period + 1)
        outbox.add(
            ctx, key=unit.key, event_id=None, customer_id=m.customer_id, kind="notification",
            channel=trig["channel"], template=trig["template"], audience=trig.get("audience", "customer"),
            ruleset=ruleset_ref, rule=trig["id"],
            payload={"membership": m.id, "expires_on": m.expires_on.isoformat(), "renews_on": renewal.isoformat(),
                     "days_before": trig["before"]["days"], **({"marketing": True} if trig.get("marketing") else {})},
        )
        return True
    return False


due.kind("reminder", 30, _reminders_due, _queue_reminder)
