"""A Plan document resolved into the terms one membership lives by (plan defaults, tier overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import NotFound, Problem
from .money import to_cents

DEFAULT_TIER = "standard"


@dataclass(frozen=True)
class IncludedService:
    code: str
    name: str
    quantity: int


@dataclass(frozen=True)
class PlanTerms:
    plan_id: str
    plan_name: str
    tier: str
    tier_name: str
    currency: str
    period: str
    auto_renewal: bool
    has_allowance: bool
    allowance_cents: int
    overdraft_limit_cents: int
    unused_policy: str  # expire | carry_forward
    included_services: tuple[IncludedService, ...] = ()
    discount_percent: str = "0"
    priority: int | None = None
    emergency: dict = field(default_factory=dict)
    prices: dict = field(default_factory=dict)
    cancellation: dict = field(default_factory=dict)

    def service(self, code: str) -> IncludedService | None:
        return next((s for s in self.included_services if s.code == code), None)


def tiers(doc: dict) -> list[dict]:
    return (doc.get("spec") or {}).get("tiers") or [{"id": DEFAULT_TIER, "name": "Standard"}]


def resolve(doc: dict, tier: str | None) -> PlanTerms:
    spec = doc.get("spec") or {}
    available = tiers(doc)
    tier = tier or available[0]["id"]
    t = next((x for x in available if x["id"] == tier), None)
    if t is None:
        raise NotFound(f"plan {doc['metadata']['id']} has no tier {tier!r}; tiers: {', '.join(x['id'] for x in available)}")
    allowance = spec.get("allowance")
    period = (allowance or {}).get("period") or spec.get("period") or "yearly"
    auto_renewal = (allowance or {}).get("auto_renewal", spec.get("auto_renewal", True))
    amount = t.get("allowance_amount", (allowance or {}).get("amount", "0"))
    limit = t.get("overdraft_limit", ((allowance or {}).get("overdraft") or {}).get("limit", "0"))
    services = t.get("included_services", spec.get("included_services") or [])
    return PlanTerms(
        plan_id=doc["metadata"]["id"],
        plan_name=doc["metadata"].get("name", doc["metadata"]["id"]),
        tier=tier,
        tier_name=t.get("name", tier),
        currency=spec.get("currency", "USD"),
        period=period,
        auto_renewal=bool(auto_renewal),
        has_allowance=allowance is not None,
        allowance_cents=to_cents(amount),
        overdraft_limit_cents=to_cents(limit) if allowance is not None else 0,
        unused_policy=(allowance or {}).get("unused", "expire"),
        included_services=tuple(IncludedService(s["code"], s.get("name", s["code"]), int(s["quantity"])) for s in services),
        discount_percent=str(t.get("discount_percent", spec.get("discount_percent", "0"))),
        priority=t.get("priority", spec.get("priority")),
        emergency=t.get("emergency", spec.get("emergency") or {}),
        prices=t.get("price", spec.get("price") or {}),
        cancellation=spec.get("cancellation") or {},
    )


def plan_problems(doc: dict) -> list[Problem]:
    """Checks across fields that the schema cannot express."""
    spec = doc.get("spec") or {}
    problems: list[Problem] = []
    allowance = spec.get("allowance")
    if allowance:
        if "period" in spec and spec["period"] != allowance["period"]:
            problems.append(Problem("spec.period", f"differs from spec.allowance.period ({allowance['period']}): a membership has one period"))
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
    return problems


def _unique(items: list[dict], key: str, path: str, problems: list[Problem]) -> None:
    seen: set = set()
    for i, item in enumerate(items):
        value = item.get(key)
        if value in seen:
            problems.append(Problem(f"{path}[{i}].{key}", f"duplicate {key} {value!r}"))
        seen.add(value)
