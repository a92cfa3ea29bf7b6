"""Visit requests: a member asks for an included service (one their membership has left this
period) or for extra work; the company is told by email (through the outbox, in the same
transaction); the member can call off a request the office has not scheduled yet."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..customers.customers import get_customer
from ..infra.context import Ctx
from ..kernel.errors import Declined, InvalidDocument, NotFound
from ..kernel.ids import new_id
from ..kernel.text import storable
from ..memberships import entitlements, memberships
from ..messaging import outbox
from .models import VisitRequest

OPEN = ("requested", "scheduled")
EXTRA = "other"


def choices(ctx: Ctx, customer_id: str) -> list[dict[str, Any]]:
    """What the member can ask for: each included service of a live membership with what is
    left this period, then extra work."""
    out = []
    for m in memberships.of_customer(ctx, customer_id):
        if m.status != "active":
            continue
        terms = memberships.plan_of(ctx, m)[1]
        for svc in entitlements.usage(ctx, m, terms):
            if svc["quantity"] or svc["left"]:
                out.append({"value": f"{m.id}:{svc['code']}", "membership": m.id, "code": svc["code"],
                            "name": svc["name"], "left": svc["left"], "plan": terms.plan_name})
    return out


def _text(field: str, value: str | None, most: int) -> str | None:
    text = " ".join((storable(field, value or "") or "").split())
    if len(text) > most:
        raise InvalidDocument.field(field, f"Please keep it under {most} characters")
    return text or None


def request(ctx: Ctx, customer_id: str, choice: str, preferred: str | None, notes: str | None) -> VisitRequest:
    member = get_customer(ctx.session, ctx.company.id, customer_id)
    preferred, notes = _text("preferred", preferred, 200), _text("notes", notes, 1000)
    if choice == EXTRA:
        if not notes:
            raise InvalidDocument.field("notes", "Tell us what needs doing")
        found: dict[str, Any] = {"membership": None, "code": None, "name": "Extra work", "left": 0}
    else:
        found = next((c for c in choices(ctx, member.id) if c["value"] == choice), {})
        if not found:
            raise InvalidDocument.field("service", "Choose one of your included services, or other work")
        if found["left"] <= 0:
            raise Declined("none_left", f"your {found['name']} visits for this period are used: choose other work "
                           "and we will quote it")
    req = VisitRequest(id=new_id("vr"), company_id=ctx.company.id, customer_id=member.id,
                       membership_id=found["membership"], service_code=found["code"], service_name=found["name"],
                       included=choice != EXTRA, preferred=preferred, notes=notes, status="requested")
    ctx.session.add(req)
    ctx.session.flush()
    with ctx.unit.scope():  # the office hears of it with the request, never without it
        outbox.add(ctx, key=f"visit-requested:{req.id}", event_id=None, customer_id=member.id, kind="notification",
                   channel="email", template="visit_requested", audience="company", ruleset=None, rule=None,
                   payload={"membership": req.membership_id, "data": view(req) | {"customer_name": member.name}})
    return req


def view(r: VisitRequest) -> dict[str, Any]:
    return {"id": r.id, "customer": r.customer_id, "membership": r.membership_id, "service": r.service_name,
            "service_code": r.service_code, "included": r.included, "preferred": r.preferred, "notes": r.notes,
            "status": r.status, "requested_on": r.created_at.date().isoformat()}


def of_customer(ctx: Ctx, customer_id: str) -> list[dict[str, Any]]:
    rows = ctx.session.scalars(sa.select(VisitRequest).where(VisitRequest.company_id == ctx.company.id,
                                                             VisitRequest.customer_id == customer_id)
                               .order_by(VisitRequest.created_at.desc(), VisitRequest.id.desc()))
    return [view(r) for r in rows]


def cancel(ctx: Ctx, customer_id: str, request_id: str) -> VisitRequest:
    r = ctx.session.get(VisitRequest, request_id)
    if r is None or r.company_id != ctx.company.id or r.customer_id != customer_id:
        raise NotFound(f"no visit request {request_id!r}")
    if r.status != "requested":
        raise Declined("already_scheduled", "this visit is scheduled already: call us to change it")
    r.status, r.changed_at = "cancelled", ctx.clock.now()
    return r
