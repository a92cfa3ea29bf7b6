"""A Plan document resolved into the terms one membership lives by (plan defaults, tier overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ..kernel.errors import NotFound
from ..kernel.money import to_cents

DEFAULT_TIER = "standard"


@dataclass(frozen=True)
class IncludedService:
    code: str
    name: str
    quantity: int


@dataclass(frozen=True)
class Promotion:
    """A limited-time offer of the plan, for the tiers it applies to: bonus points for joining
    in its window, and an extra discount on services during it."""

    id: str
    name: str
    starts: date
    ends: date
    discount_percent: str = "0"
    bonus_points: int = 0

    def active_on(self, day: date) -> bool:
        return self.starts <= day <= self.ends


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
    overdraft_unused: str = "keep_facility"  # keep_facility | add_to_allowance
    late_charges: str = "current_period"  # current_period | decline
    billing_proration: str = "daily"  # daily | full_period | none: how a first, short billing period is billed
    billing_anchor_day: int | None = None  # the day of the month billing periods start (None: the enrolment day)
    included_services: tuple[IncludedService, ...] = ()
    discount_percent: str = "0"
    priority: int | None = None
    emergency: dict = field(default_factory=dict)
    prices: dict = field(default_factory=dict)
    cancellation: dict = field(default_factory=dict)
    billing: dict = field(default_factory=dict)  # the plan's billing terms (retries, tier changes...)
    promotions: tuple[Promotion, ...] = ()  # those that apply to this tier
    members_choose_renewal: bool = False  # members may turn renewal off and on from the portal
    revenue_policy: str = "by_day"  # by_day | by_visit: how the deferred revenue report earns the fee
    unused_visits: str = "release_at_period_end"  # by_visit: release_at_period_end | release_at_expiry

    @property
    def visits_included(self) -> int:
        """The included visits of a period, every service counted."""
        return sum(s.quantity for s in self.included_services)

    def service(self, code: str) -> IncludedService | None:
        return next((s for s in self.included_services if s.code == code), None)

    def discount_on(self, day: date) -> tuple[Decimal, Promotion | None]:
        """The member discount on services that day (percent), and the promotion that adds to
        it, if one runs then (the first of them, when several would)."""
        promo = next((p for p in self.promotions if p.active_on(day) and Decimal(p.discount_percent)), None)
        extra = Decimal(promo.discount_percent) if promo else Decimal(0)
        return min(Decimal(self.discount_percent) + extra, Decimal(100)), promo


def tiers(doc: dict) -> list[dict]:
    return (doc.get("spec") or {}).get("tiers") or [{"id": DEFAULT_TIER, "name": "Standard"}]


def resolve(doc: dict, tier: str | None) -> PlanTerms:
    spec = doc.get("spec") or {}
    available = tiers(doc)
    tier = tier or available[0]["id"]
    t = next((x for x in available if x["id"] == tier), None)
    if t is None:
        raise NotFound(
            f"plan {doc['metadata']['id']} has no tier {tier!r}; tiers: {', '.join(x['id'] for x in available)}"
        )
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
        members_choose_renewal=bool(spec.get("members_choose_renewal", False)),
        has_allowance=allowance is not None,
        allowance_cents=to_cents(amount),
        overdraft_limit_cents=to_cents(limit) if allowance is not None else 0,
        unused_policy=(allowance or {}).get("unused", "expire"),
        overdraft_unused=((allowance or {}).get("overdraft") or {}).get("unused", "keep_facility"),
        late_charges=spec.get("late_charges", "current_period"),
        billing_proration=(spec.get("billing") or {}).get("proration", "daily"),
        billing_anchor_day=(spec.get("billing") or {}).get("anchor_day"),
        included_services=tuple(
            IncludedService(s["code"], s.get("name", s["code"]), int(s["quantity"])) for s in services
        ),
        discount_percent=str(t.get("discount_percent", spec.get("discount_percent", "0"))),
        priority=t.get("priority", spec.get("priority")),
        emergency=t.get("emergency", spec.get("emergency") or {}),
        prices=t.get("price", spec.get("price") or {}),
        cancellation=spec.get("cancellation") or {},
        billing=spec.get("billing") or {},
        revenue_policy=(spec.get("revenue_recognition") or {}).get("policy", "by_day"),
        unused_visits=(spec.get("revenue_recognition") or {}).get("unused_visits", "release_at_period_end"),
        promotions=tuple(
            Promotion(p["id"], p.get("name", p["id"]), date.fromisoformat(p["window"]["from"]),
                      date.fromisoformat(p["window"]["to"]), str(p.get("discount_percent", "0")),
                      int(p.get("bonus_points", 0)))
            for p in spec.get("promotions") or [] if tier in (p.get("applies_to_tiers") or [tier])),
    )


_terms: dict[tuple[str, str | None], PlanTerms] = {}


def terms_of(content_hash: str, content: dict, tier: str | None) -> PlanTerms:
    """A plan version's terms for a tier; published versions never change, so this is cached."""
    key = (content_hash, tier)
    found = _terms.get(key)
    if found is None:
        found = _terms[key] = resolve(content, tier)
    return found
