"""Checks of Plan documents across fields, which the JSON Schema cannot express; registered as
the Plan kind's checks, so every validation of a plan runs them."""

from __future__ import annotations

import re

from ..kernel.errors import Problem
from ..kernel.money import MoneyError, to_cents
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
                    f"Membership period differs from the allowance period ({allowance['period']}): "
                    "a membership has one period",
                )
            )
        if "auto_renewal" in spec and "auto_renewal" in allowance and spec["auto_renewal"] != allowance["auto_renewal"]:
            problems.append(Problem("spec.auto_renewal", "Renews automatically differs from the allowance's setting: "
                                    "a membership renews or does not"))
    _unique(spec.get("tiers") or [], "id", "spec.tiers", "Tier ID", problems)
    _unique(spec.get("included_services") or [], "code", "spec.included_services", "Service code", problems)
    for i, t in enumerate(spec.get("tiers") or []):
        _unique(t.get("included_services") or [], "code", f"spec.tiers[{i}].included_services", "Service code",
                problems)
        if ("allowance_amount" in t or "overdraft_limit" in t) and not allowance:
            problems.append(Problem(f"spec.tiers[{i}]", f"Tier {t.get('name') or i + 1} sets an allowance amount or "
                                    "overdraft limit, but the plan has no spending allowance"))
    tier_ids = {t["id"] for t in tiers(doc)}
    for i, promo in enumerate(spec.get("promotions") or []):
        w = promo.get("window") or {}
        if w.get("from", "") > w.get("to", "~"):
            problems.append(Problem(f"spec.promotions[{i}].window", "Dates: the promotion ends before it starts"))
        for j, tid in enumerate(promo.get("applies_to_tiers") or []):
            if tid not in tier_ids:
                problems.append(Problem(f"spec.promotions[{i}].applies_to_tiers[{j}]",
                                        f"Tiers: this plan has no tier “{tid}”"))
    problems += _dunning_problems(spec.get("billing") or {})
    return problems


def _dunning_problems(billing: dict) -> list[Problem]:
    """Failed payments: the cancellation comes after every retry and after the suspension."""
    retries = billing.get("retry_days", [1, 3, 7])
    cancel = billing.get("cancel_after_days", 21)
    out = []
    if retries != sorted(set(retries)):
        out.append(Problem("spec.billing.retry_days", "Retry days must go up, each day once (like 1, 3, 7)"))
    if retries and max(retries) >= cancel:
        out.append(Problem("spec.billing.cancel_after_days", f"Cancel after (days unpaid): day {cancel} comes before "
                           f"the last retry (day {max(retries)}); cancel after the last retry"))
    if billing.get("suspend_after_days", 7) >= cancel:
        out.append(Problem("spec.billing.suspend_after_days",
                           "Suspend after (days unpaid) must come before the cancellation"))
    return out


def _unique(items: list[dict], key: str, path: str, label: str, problems: list[Problem]) -> None:
    seen: set = set()
    for i, item in enumerate(items):
        value = item.get(key)
        if value in seen:
            problems.append(Problem(f"{path}[{i}].{key}", f"{label} “{value}” is used twice", label=label))
        seen.add(value)


_AMOUNT = re.compile(r"\$\s?([0-9][0-9,]*(?:\.[0-9]{1,2})?)")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s?%")


def description_warnings(doc: dict) -> list[Problem]:
    """Tier descriptions that quote an amount or a percentage the tier no longer has ("$250
    yearly allowance" after the allowance went to 300.00): shown before publishing, not errors."""
    if doc.get("kind") != "Plan":
        return []
    out = []
    for i, tier in enumerate(tiers(doc)):
        text = tier.get("description") or ""
        amounts = {to_cents(v) for v in _money_values(tier, doc.get("spec") or {})}
        percents = {to_cents(str(v)) for v in (tier.get("discount_percent"), (doc.get("spec") or {}).get(
            "discount_percent")) if v is not None}
        for m in _AMOUNT.finditer(text):
            if to_cents(m.group(1).replace(",", "")) not in amounts:
                out.append(Problem(f"spec.tiers[{i}].description", f"Tier description of {tier.get('name')} says "
                                   f"${m.group(1)}, which is none of the tier's prices or amounts",
                                   label="Tier description"))
        for m in _PERCENT.finditer(text):
            if to_cents(m.group(1)) not in percents:
                out.append(Problem(f"spec.tiers[{i}].description", f"Tier description of {tier.get('name')} says "
                                   f"{m.group(1)}%, but the member discount is not {m.group(1)}%",
                                   label="Tier description"))
    return out


def _money_values(tier: dict, spec: dict) -> list[str]:
    allowance = spec.get("allowance") or {}
    values = [tier.get("allowance_amount", allowance.get("amount")),
              tier.get("overdraft_limit", (allowance.get("overdraft") or {}).get("limit")),
              *(tier.get("price") or spec.get("price") or {}).values(), (spec.get("cancellation") or {}).get("fee")]
    return [str(v) for v in values if isinstance(v, (str, int)) and _is_amount(str(v))]


def _is_amount(text: str) -> bool:
    try:
        to_cents(text)
    except MoneyError:
        return False
    return True


kinds.register("Plan", "plan.schema.json", "Membership plans")
kinds.add_check("Plan", plan_problems)
kinds.add_warning("Plan", description_warnings)
