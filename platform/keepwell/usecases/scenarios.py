"""Sample scenarios: a template pack's proof that its rules give the results it promises.

A scenario (YAML) names customers, then runs steps through the use cases (enrolments,
events, due work) and checks expectations on results, memberships and points. Values in
`expect` are a subset: only the keys given are compared.

    timezone: America/Denver        # the test company's time zone (default UTC)
    customers: {alice: {name: Alice Smith}}
    steps:
      - enroll: {customer: alice, plan: hvac-comfort-club, tier: gold, on: "2024-01-15", as: m1}
      - event: {id: pos-1, type: purchase, customer: alice, occurred_at: "2024-02-01T10:00:00-07:00",
                data: {amount: "120.00", pay_with: membership}}
        expect: {status: approved, balance: "380.00"}
      - run_due: "2024-07-15"
      - membership: m1
        expect: {status: active, allowance: {balance: "500.00"}}
      - points: alice
        expect: {balance: 120}

Billing steps: `payment_method: {customer, test_card, default, on, as}` (a sandbox card),
`billing_run: DATE`, `change_tier: {membership, tier, on, at, as}`, `cancel: {membership, on,
at, requested_on}` (the day it is asked, for notice), `cancel_preview: {...}` and
`invoices: MEMBERSHIP|CUSTOMER` (answers `invoices` and `count`).

Rewards steps: `referral_code: {customer, as}` (the code, for an enrolment's `referral_code`),
`redeem: {customer, reward, quantity, membership, on, as}`, `redemption: {redemption, status,
on}` (fulfil with status next, or cancel), `points: CUSTOMER` or `points: {customer, on}`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from ..kernel.clock import FixedClock
from ..kernel.errors import InvalidDocument, KeepwellError, Problem
from ..rulesets.documents import load_file
from . import billing, customers, due, events, memberships, rewards
from .app import Keepwell


@dataclass
class Outcome:
    scenario: str
    failures: list[str] = field(default_factory=list)
    steps: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def differences(expected, actual, path: str = "") -> list[str]:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '.'}: expected a mapping, got {actual!r}"]
        out = []
        for k, v in expected.items():
            if k not in actual:
                out.append(f"{path}.{k}: missing (expected {v!r})")
            else:
                out.extend(differences(v, actual[k], f"{path}.{k}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{path}[{i}]")]
    if str(expected) != str(actual):
        return [f"{path or '.'}: expected {expected!r}, got {actual!r}"]
    return []


def run_scenario(app: Keepwell, path: str | Path, company: str) -> Outcome:
    """Run one scenario file in a company and collect failures."""
    doc = load_file(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise InvalidDocument("not a scenario", [Problem("steps", "a scenario needs a list of steps", str(path))])
    out = Outcome(str(path))
    # A scenario is a rehearsal: its clock reads each step's own moment, so the company's bounds
    # on how far from "now" an event may be dated hold as they would on that day.
    clock = FixedClock(app.clock.now())
    app = dataclasses.replace(app, clock=clock)
    ids: dict[str, str] = {}
    for ref, info in (doc.get("customers") or {}).items():
        ids[ref] = customers.add_customer(app, company, info.get("name", ref), info.get("email"))
    for i, step in enumerate(doc["steps"]):
        where = f"steps[{i}]"
        out.steps += 1
        clock.moment = _moment_of(step, clock.moment)
        try:
            actual = _run_step(app, step, ids, company)
        except KeepwellError as exc:
            actual = {"status": "error", **exc.to_dict()}
        if "expect" in step:
            out.failures.extend(f"{path}: {where}{d}" for d in differences(step["expect"], actual))
        elif actual.get("status") in ("error", "rejected"):
            out.failures.append(f"{path}: {where}: {actual.get('message')}")
    return out


def _moment_of(step: dict, current: datetime) -> datetime:
    """When a step happens: its event's moment, its enrolment's or due run's day (noon UTC)."""
    try:
        if isinstance(step.get("event"), dict) and step["event"].get("occurred_at"):
            return datetime.fromisoformat(str(step["event"]["occurred_at"])).astimezone(UTC)
        day = (step.get("enroll") or {}).get("on") if isinstance(step.get("enroll"), dict) else step.get("run_due")
        day = day or step.get("billing_run")
        for name in ("payment_method", "change_tier", "cancel", "cancel_preview", "redeem", "redemption", "points"):
            if isinstance(step.get(name), dict):  # the day it is asked (a cancellation with notice before its last day)
                day = step[name].get("requested_on") or step[name].get("on") or day
        if day:
            return datetime.combine(date.fromisoformat(str(day)), time(12), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        pass  # the step itself reports what is wrong with its date
    return current


def _run_step(app: Keepwell, step: dict, ids: dict[str, str], company: str) -> dict:
    if "enroll" in step:
        e = dict(step["enroll"])
        result = memberships.enroll(app, company, ids[e["customer"]], e["plan"], date.fromisoformat(str(e["on"])),
                                    tier=e.get("tier"), key=e.get("id"), cadence=e.get("cadence"),
                                    payment_method=ids.get(e.get("payment_method"), e.get("payment_method")),
                                    referral_code=ids.get(e.get("referral_code"), e.get("referral_code")))
        if e.get("as") and result.get("membership"):
            ids[e["as"]] = result["membership"]
        return result
    if "event" in step:
        payload = dict(step["event"])
        payload["customer"] = ids.get(payload.get("customer"), payload.get("customer"))
        data = dict(payload.get("data") or {})
        for name in ("membership", "referral_code"):
            if data.get(name) in ids:
                data[name] = ids[data[name]]
        payload["data"] = data
        return events.post_event(app, company, payload)
    if "run_due" in step:
        return due.run(app, company, date.fromisoformat(str(step["run_due"]))).to_dict()
    if "membership" in step:
        m = memberships.show(app, company, ids.get(step["membership"], step["membership"]))
        m["services"] = {s["code"]: s for s in m["services"]}
        return m
    if any(k in step for k in ("points", "redeem", "redemption", "referral_code")):
        return _rewards_step(app, step, ids, company)
    return _billing_step(app, step, ids, company)


def _rewards_step(app: Keepwell, step: dict, ids: dict[str, str], company: str) -> dict:
    """Steps of the rewards program: points, redemptions and their fulfilment, referral codes."""
    def day(d: dict) -> date | None:
        return date.fromisoformat(str(d["on"])) if d.get("on") else None

    if "points" in step:
        p = step["points"] if isinstance(step["points"], dict) else {"customer": step["points"]}
        return rewards.points(app, company, ids.get(p["customer"], p["customer"]), day(p))
    if "redeem" in step:
        r = dict(step["redeem"])
        done = rewards.redeem(app, company, ids[r["customer"]], r["reward"], int(r.get("quantity", 1)), day(r),
                              ids.get(r.get("membership"), r.get("membership")), r.get("ship_to"), r.get("id"))
        if r.get("as"):
            ids[r["as"]] = done["redemption"]
        return done
    if "redemption" in step:
        r = dict(step["redemption"])
        return rewards.change_redemption(app, company, ids.get(r["redemption"], r["redemption"]),
                                         r.get("status", "next"), r.get("tracking"), r.get("reason"), day(r))
    c = dict(step["referral_code"])
    code = rewards.referral_code(app, company, ids[c["customer"]])
    if c.get("as"):
        ids[c["as"]] = code
    return {"code": code}


def _billing_step(app: Keepwell, step: dict, ids: dict[str, str], company: str) -> dict:
    """Steps of a member's billing: cards, billing runs, changes of tier, cancellations, invoices."""
    def day(d: dict, name: str = "on") -> date:
        return date.fromisoformat(str(d[name]))

    if "payment_method" in step:
        p = dict(step["payment_method"])
        pm = billing.add_test_card(app, company, ids[p["customer"]], p["test_card"], bool(p.get("default")))
        if p.get("as"):
            ids[p["as"]] = pm["id"]
        return pm
    if "billing_run" in step:
        return billing.run(app, company, date.fromisoformat(str(step["billing_run"])))
    if "change_tier" in step:
        c = dict(step["change_tier"])
        changed = memberships.change_tier(app, company, ids.get(c["membership"], c["membership"]), c["tier"], day(c),
                                          c.get("at"))
        if c.get("as"):
            ids[c["as"]] = changed.membership
        return changed.to_dict()
    if "cancel" in step:
        c = dict(step["cancel"])
        return memberships.cancel(app, company, ids.get(c["membership"], c["membership"]), day(c), c.get("at"))
    if "cancel_preview" in step:
        c = dict(step["cancel_preview"])
        return memberships.cancel_preview(app, company, ids.get(c["membership"], c["membership"]), day(c), c.get("at"))
    if "invoices" in step:
        owner = ids.get(step["invoices"], step["invoices"])
        found = (billing.invoices_of(app, company, membership=owner) if owner.startswith("mem_")
                 else billing.invoices_of(app, company, customer=owner))
        return {"invoices": found, "count": len(found)}
    raise InvalidDocument.field("steps", f"unknown step {sorted(step)}", f"unknown step {sorted(step)}")
