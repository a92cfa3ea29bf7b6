"""Checks of Plan documents across fields, which the JSON Schema cannot express; registered as
the Plan kind's checks, so every validation of a plan runs them."""

from __future__ import annotations

from ..kernel.errors import Problem
from ..rulesets import kinds
from .terms import tiers


def plan_problems(doc: dict) -> list[Problem]:
    """Checks across fields that the schema cannot express."""
    spec = doc.get("spec") or {}
    problems: list[Problem] = []
    allowance = spec.get("allowance")
    if allowance:
        if "period" in spec and spec["period"] != allowance["period"]:
            problems.append(
                Problem(
                    "spec.period",
                    f"differs from spec.allowance.period ({allowance['period']}): a membership has one period",
                )
            )
        if "auto_renewal" in spec and "auto_renewal" in allowance and spec["auto_renewal"] != allowance["auto_renewal"]:
            problems.append(Problem("spec.auto_renewal", "differs from spec.allowance.auto_renewal"))
    _unique(spec.get("tiers") or [], "id", "spec.tiers", problems)
    _unique(spec.get("included_services") or [], "code", "spec.included_services", problems)
    for i, t in enumerate(spec.get("tiers") or []):
        _unique(t.get("included_services") or [], "code", f"spec.tiers[{i}].included_services", problems)
        if ("allowance_amount" in t or "overdraft_limit" in t) and not allowance:
            problems.append(Problem(f"spec.tiers[{i}]", "sets allowance terms but the plan has no allowance block"))
    tier_ids = {t["id"] for t in tiers(doc)}
    for i, promo in enumerate(spec.get("promotions") or []):
        w = promo.get("window") or {}
        if w.get("from", "") > w.get("to", "~"):
            problems.append(Problem(f"spec.promotions[{i}].window", "window ends before it starts"))
        for j, tid in enumerate(promo.get("applies_to_tiers") or []):
            if tid not in tier_ids:
                problems.append(Problem(f"spec.promotions[{i}].applies_to_tiers[{j}]", f"no tier {tid!r} in this plan"))
    problems += _dunning_problems(spec.get("billing") or {})
    return problems


def _dunning_problems(billing: dict) -> list[Problem]:
    """Failed payments: the cancellation comes after every retry and after the suspension."""
    retries = billing.get("retry_days", [1, 3, 7])
    cancel = billing.get("cancel_after_days", 21)
    out = []
    if retries != sorted(set(retries)):
        out.append(Problem("spec.billing.retry_days", "the retry days must go up, each day once (e.g. [1, 3, 7])"))
    if retries and max(retries) >= cancel:
        out.append(Problem("spec.billing.cancel_after_days", f"cancelling on day {cancel} comes before the last "
                           f"retry (day {max(retries)}): cancel after the last retry"))
    if billing.get("suspend_after_days", 7) >= cancel:
        out.append(Problem("spec.billing.suspend_after_days", "the suspension must come before the cancellation"))
    return out


def _unique(items: list[dict], key: str, path: str, problems: list[Problem]) -> None:
    seen: set = set()
    for i, item in enumerate(items):
        value = item.get(key)
        if value in seen:
            problems.append(Problem(f"{path}[{i}].{key}", f"duplicate {key} {value!r}"))
        seen.add(value)


kinds.register("Plan", "plan.schema.json", "Membership plans")
kinds.add_check("Plan", plan_problems)
