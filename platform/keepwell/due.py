"""Due work, computed from an `as_of` date so it can run for any date (tests and back-fills
drive time this way). Each unit is small and keyed deterministically: a period end of one
membership, a points expiry of one customer, one reminder. Running it twice does nothing new.

`run_units` does many units in the caller's transaction (a chunk): what they need is loaded and
locked in a few queries and the rows they append are written in bulk, through the same code as
one unit (`run_unit`); a crash leaves a chunk applied whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from . import events, memberships, points
from .ledger import book
from .models import Membership, OutboxMessage
from .periods import period_start
from .rules import in_force
from .tenancy import Ctx


@dataclass(frozen=True)
class DueUnit:
    """One unit of due work; `key` is deterministic, so enqueuing it twice runs it once."""

    kind: str  # period_end | points_expiry | reminder
    key: str
    customer: str
    subject: str  # membership id, or the expiry date for points
    as_of: date

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "customer": self.customer, "subject": self.subject,
                "as_of": self.as_of.isoformat()}


def plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    """Everything due up to `as_of` (exclusive of work dated on as_of itself: a period ending on
    the 30th is due on the 1st)."""
    units = [DueUnit("period_end", f"due:period_end:{mid}:{as_of}", cid, mid, as_of)
             for mid, cid in memberships.due_for_close(ctx, as_of)]
    units += [DueUnit("points_expiry", f"points_expired:{cid}:{through}", cid, through.isoformat(), as_of)
              for cid, through in points.next_expiry_dates(ctx, as_of)]
    units += [DueUnit("reminder", key, cid, mid, as_of) for key, cid, mid in _reminders_due(ctx, as_of)]
    return units


def run_units(ctx: Ctx, units: list[DueUnit]) -> list[dict]:
    """Do many units of due work inside the caller's transaction, with exactly the effects of
    doing them one at a time, in order."""
    b = book(ctx)
    events.lock_customers(ctx, [u.customer for u in units])
    present = [c for c in dict.fromkeys(u.customer for u in units) if b.customers.get(c) is not None]
    memberships.load(ctx, present)
    b.load_owners(present + [m.id for c in present for m in b.members.get(c, ())])
    keys = []
    for u in units:
        m = b.member_ids.get(u.subject) if u.kind == "period_end" else None
        if m is not None:
            keys += events.period_keys(m)
        elif u.kind == "points_expiry":
            keys.append(u.key)
    events.lookup_keys(ctx, keys)
    b.ids.want(events.Event.__table__, 2 * len(units))
    b.ids.want(events.LedgerEntry.__table__, 6 * len(units))
    b.depth += 1
    try:
        out = [run_unit(ctx, u) for u in units]
    except BaseException:
        b.rollback(0)
        raise
    finally:
        b.depth -= 1
    b.flush()
    return out


def run_unit(ctx: Ctx, unit: DueUnit) -> dict:
    """Do one unit of due work inside the caller's transaction."""
    b = book(ctx)
    if not b.depth:
        return run_units(ctx, [unit])[0]
    events.customer(ctx, unit.customer)  # locked: it serialises every writer of the customer's balances
    if unit.kind == "period_end":
        m = _membership_of(ctx, unit, lock=True)
        closed = events.catch_up(ctx, m, unit.as_of)
        return {"unit": unit.key, "periods_closed": len(closed), "status": m.status, "expires_on": m.expires_on.isoformat()}
    if unit.kind == "points_expiry":
        through = date.fromisoformat(unit.subject)
        # A lot earned by a late (back-dated) event can expire through a date whose expiry event
        # exists already: that event is not run again, so the lot gets one under the next key.
        key, n = unit.key, 1
        while True:
            res = events.post(ctx, {"id": key, "type": "points_expired", "customer": unit.customer,
                                    "occurred_at": ctx.start_of(through + timedelta(days=1)).isoformat(),
                                    "data": {"through": unit.subject}}, trusted=True)
            if not res.get("duplicate"):
                return {"unit": unit.key, "expired_points": res.get("expired_points", 0)}
            if points.expirable(ctx, unit.customer, through) == 0:
                return {"unit": unit.key, "expired_points": 0}  # done before: a replay expires nothing
            n += 1
            key = f"{unit.key}:{n}"
    if unit.kind == "reminder":
        return {"unit": unit.key, "queued": _queue_reminder(ctx, unit)}
    raise ValueError(f"unknown due work {unit.kind}")


def _membership_of(ctx: Ctx, unit: DueUnit, lock: bool = False):
    """The unit's membership, which must be the unit's customer's: the customer row is what
    serialises writers, so work on another customer's membership under this lock is refused."""
    from .errors import NotFound

    m = memberships.get(ctx, unit.subject, lock=lock)
    if m.customer_id != unit.customer:
        raise NotFound(f"membership {m.id!r} does not belong to customer {unit.customer!r}")
    return m


def _date_triggers(ctx: Ctx, on: date):
    for rules in in_force(ctx, "NotificationTriggers", on):
        for trig in rules.date_triggers:
            yield rules.ref, trig


def _reminders_due(ctx: Ctx, as_of: date) -> list[tuple[str, str, str]]:
    """Reminders such as "30 days before renewal": due when as_of reaches the date, and only
    while the renewal or expiry is still ahead."""
    due = []
    triggers = list(_date_triggers(ctx, as_of))
    if not triggers:
        return due
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
                due.append((key, cid, mid))
    queued = _outbox_keys(ctx, [key for key, _c, _m in due])
    return [d for d in due if d[0] not in queued]


def _outbox_keys(ctx: Ctx, keys: list[str]) -> set[str]:
    """Which of these outbox keys exist already (written, or pending in this transaction)."""
    found = {k for k in keys if k in book(ctx).outbox_keys}
    todo = [k for k in dict.fromkeys(keys) if k not in found]
    for i in range(0, len(todo), 500):
        found.update(ctx.session.scalars(sa.select(OutboxMessage.key).where(
            OutboxMessage.company_id == ctx.company.id, OutboxMessage.key.in_(todo[i:i + 500]))))
    return found


def _queue_reminder(ctx: Ctx, unit: DueUnit) -> bool:
    if _outbox_keys(ctx, [unit.key]):
        return False
    _, ruleset_id, trigger_id = unit.key.split(":")[:3]
    m = _membership_of(ctx, unit)
    for ruleset_ref, trig in _date_triggers(ctx, unit.as_of):
        if (ruleset_ref.split("@")[0], trig["id"]) != (ruleset_id, trigger_id):
            continue
        renewal = period_start(m.issued_on, m.period, m.current_period + 1)
        events.add_outbox(
            ctx, key=unit.key, event_id=None, customer_id=m.customer_id, kind="notification",
            channel=trig["channel"], template=trig["template"], audience=trig.get("audience", "customer"),
            ruleset=ruleset_ref, rule=trig["id"],
            payload={"membership": m.id, "expires_on": m.expires_on.isoformat(), "renews_on": renewal.isoformat(),
                     "days_before": trig["before"]["days"]},
        )
        return True
    return False
