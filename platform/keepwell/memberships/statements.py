"""A membership's statement: its accounts' entries between two dates, with the membership; and the
same entries as a house-account statement a member reads (`house`): opening balance, one line per
charge, reset, expiry, adjustment and overdraft payment in date order, closing balance.

The allowance and the overdraft are two ledger accounts; the house account shows them as one:
a charge past the balance is one line (its overdraft part shows in "overdraft used"), and the
overdraft recovered from the next period's allowance is the "Membership Overdraft Payment" line.
Points are the customer's, shown beside it with their own balance.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..events.pipeline import keys_of
from ..infra.context import Ctx
from ..infra.pdf import html_to_pdf, render_html
from ..kernel.money import format_cents, to_cents
from ..ledger.book import ALLOWANCE, OVERDRAFT, POINTS, VISITS
from ..ledger.statements import for_owner
from . import memberships
from .models import Membership

OVERDRAFT_PAYMENT = "Membership Overdraft Payment"  # the contractor's words for the line
# What each kind of entry is called on a statement (a kind not listed reads as its name in words).
ALLOWANCE_WORDS = {
    "grant": "Membership allowance",
    "debit": "Charge",
    "overdraft": "Charge",
    "expire": "Unused allowance expired",
    "overdraft_recovery": OVERDRAFT_PAYMENT,
    "overdraft_unused": "Unused overdraft added to the allowance",
    "adjust": "Adjustment",
    "credit": "Account credit",
    "credit_reversed": "Account credit taken back",
}
POINTS_WORDS = {
    "earn": "Points earned",
    "redeem": "Points redeemed",
    "redeem_cancelled": "Redemption cancelled: points returned",
    "expire": "Points expired",
    "adjust": "Points adjusted",
    "clawback": "Points taken back (refund)",
}
VISITS_WORDS = {"grant": "Included visits for the period", "draw": "Visit used", "expire": "Unused visits expired"}


def statement(ctx: Ctx, membership_id: str, start: date, end: date) -> dict[str, Any]:
    m = memberships.get(ctx, membership_id)
    out = for_owner(ctx, m.id, start, end, keys_of)
    out["membership"] = memberships.view(ctx, m)
    points = [s for s in for_owner(ctx, m.customer_id, start, end, keys_of)["accounts"] if s["unit"] == POINTS]
    out["house"] = house_account(out["accounts"], points)
    return out


def of_plan(ctx: Ctx, plan_key: str, start: date, end: date) -> list[dict[str, Any]]:
    """The statements of every membership of a plan (any version) that was in force at some
    point of the range, oldest first."""
    ids = ctx.session.scalars(
        sa.select(Membership.id).where(
            Membership.company_id == ctx.company.id,
            memberships.of_plan(ctx, plan_key),
            Membership.issued_on <= end,
            sa.or_(Membership.ended_on.is_(None), Membership.ended_on >= start),
        ).order_by(Membership.issued_on, Membership.id))
    return [statement(ctx, i, start, end) for i in ids]


def house_account(sections: list[dict[str, Any]], points: list[dict[str, Any]]) -> dict[str, Any]:
    """The statement lines a member reads, from the ledger sections of `for_owner`."""
    by_account = {s["account"]: s for s in sections}
    allowance, overdraft = by_account.get(ALLOWANCE), by_account.get(OVERDRAFT)
    out: dict[str, Any] = {"currency": (allowance or overdraft or {}).get("currency", "USD")}
    if allowance is not None or overdraft is not None:
        out.update(_money_lines(allowance, overdraft))
    visits = [s for s in sections if s["unit"] == VISITS]
    out["visits"] = [{"service": s["account"].split(":", 1)[-1], "opening": s["opening"], "closing": s["closing"],
                      "lines": [_line(e, VISITS_WORDS) for e in s["entries"]]} for s in visits]
    if points:
        p = points[0]
        out["points"] = {"opening": p["opening"], "closing": p["closing"],
                         "lines": [{**_line(e, POINTS_WORDS), "balance": e["balance"]} for e in p["entries"]]}
    return out


def _money_lines(allowance: dict[str, Any] | None, overdraft: dict[str, Any] | None) -> dict[str, Any]:
    """Allowance and overdraft entries merged into one line per thing that happened (same day,
    event and kind), with both balances after each line."""
    balance = to_cents(allowance["opening"]) if allowance else 0
    used = -to_cents(overdraft["opening"]) if overdraft else 0
    opening = (balance, used)
    entries = [(e, ALLOWANCE) for e in (allowance or {}).get("entries", [])] + \
              [(e, OVERDRAFT) for e in (overdraft or {}).get("entries", [])]
    entries.sort(key=lambda pair: pair[0]["date"])  # stable: each account's own order within a day
    groups: dict[tuple[str, Any, str], dict[str, Any]] = {}
    for e, account in entries:
        kind = "debit" if e["kind"] == "overdraft" else e["kind"]
        g = groups.setdefault((e["date"], e["event"], kind), {"entry": e, "kind": kind, ALLOWANCE: 0, OVERDRAFT: 0})
        g[account] += to_cents(e["amount"])
        if account == ALLOWANCE or g["entry"].get("memo") is None:
            g["entry"] = e
    lines = []
    for g in groups.values():
        part_a, part_o = g[ALLOWANCE], g[OVERDRAFT]
        balance += part_a
        used -= part_o
        # The overdraft payment moves money from the new allowance to the overdraft: the member
        # sees the payment (what left the allowance), not the two halves that cancel out.
        amount = part_a if g["kind"] == "overdraft_recovery" else part_a + part_o
        line = _line({**g["entry"], "kind": g["kind"]}, ALLOWANCE_WORDS)
        line.update(amount=format_cents(amount), balance=format_cents(balance), overdraft_used=format_cents(used))
        lines.append(line)
    return {"opening": {"balance": format_cents(opening[0]), "overdraft_used": format_cents(opening[1])},
            "lines": lines,
            "closing": {"balance": format_cents(balance), "overdraft_used": format_cents(used)}}


def _line(e: dict[str, Any], words: dict[str, str]) -> dict[str, Any]:
    label = words.get(e["kind"]) or e["kind"].replace("_", " ").capitalize()
    memo = e.get("memo")
    described = f"{label}: {memo}" if memo and e["kind"] in ("debit", "adjust", "credit", "earn", "redeem") else label
    return {"date": e["date"], "description": described, "kind": e["kind"], "amount": e["amount"],
            "event": e.get("event"), "rule": e.get("rule")}


def document(ctx: Ctx, statements: list[dict[str, Any]], start: date, end: date, fmt: str = "pdf") -> bytes:
    """Statements as the page a member keeps: PDF (each membership from a new page), or HTML."""
    html = render_html(Path(__file__).parent / "templates", "statement.html", statements=statements,
                       company=ctx.company, start=start, end=end)
    return html_to_pdf(html) if fmt == "pdf" else html.encode("utf-8")
