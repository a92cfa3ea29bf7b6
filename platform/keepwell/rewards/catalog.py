"""The reward catalog: the RewardCatalog rulesets in force, each reward with its cost (per
membership tier), stock, dates, limit per customer and who may redeem it. Eligibility is written
in the points rules' condition language and matched by the same engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from ..infra.context import Ctx
from ..kernel.errors import CompileError, Declined, Problem
from ..kernel.money import format_cents, to_cents
from ..rulesets import kinds
from ..rulesets.compiler import CompiledRules, compile_document, make_fact
from ..rulesets.in_force import in_force
from .models import Redemption, RewardStock

kinds.register("RewardCatalog", "reward_catalog.schema.json", "Rewards")

TYPES = {"service_discount": "Service discount", "free_service": "Free service", "merchandise": "Merchandise",
         "account_credit": "Account credit"}


@dataclass(frozen=True)
class Reward:
    catalog: str  # id@version of the catalog
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def type(self) -> str:
        return str(self.spec["type"])

    @property
    def stock_key(self) -> str | None:
        return f"{self.catalog.split('@')[0]}:{self.id}" if "inventory" in self.spec else None

    def cost(self, membership_tier: str | None) -> int:
        return int((self.spec.get("tier_points") or {}).get(membership_tier or "", self.spec["points"]))

    def available_on(self, day: date) -> bool:
        window = self.spec.get("available")
        if window and not (window["from"] <= day.isoformat() <= window["to"]):
            return False
        seasons = self.spec.get("seasons")
        return not seasons or day.month in seasons

    def initial_status(self) -> str:
        """Free services and credits are given at once; a discount waits to be used; goods are
        ordered (shipped) or wait to be picked up."""
        if self.type in ("free_service", "account_credit"):
            return "fulfilled"
        if self.type == "merchandise" and self.spec.get("shipping", True):
            return "ordered"
        return "pending"


def rulesets_on(ctx: Ctx, day: date) -> list[CompiledRules]:
    return in_force(ctx, "RewardCatalog", day)


def rewards_on(ctx: Ctx, day: date) -> list[tuple[Reward, CompiledRules]]:
    out = []
    for rules in rulesets_on(ctx, day):
        version = _content(ctx, rules)
        for spec in (version.get("spec") or {}).get("rewards") or []:
            out.append((Reward(rules.ref, spec), rules))
    return out


def _content(ctx: Ctx, rules: CompiledRules) -> dict:
    from ..rulesets.in_force import index

    for versions in index(ctx).by_kind.get("RewardCatalog", []):
        for v in versions:
            if v.ref == rules.ref:
                return v.content
    return {}


def lookup(ctx: Ctx, reward_id: str, day: date) -> tuple[Reward, CompiledRules] | None:
    """The reward of the catalog in force on `day`, with its catalog; None if it has none such."""
    return next(((reward, rules) for reward, rules in rewards_on(ctx, day) if reward.id == reward_id), None)


def eligible(ctx: Ctx, reward: Reward, rules: CompiledRules, day: date, data: dict, member: dict) -> bool:
    if reward.id not in rules.definition:
        return True
    return reward.id in ctx.rules.matches(rules, make_fact("redemption", day, data, member))


def period_of(per: str, day: date) -> tuple[date, date] | None:
    """The calendar period a limit counts over (None: ever)."""
    if per == "ever":
        return None
    if per == "month":
        start = day.replace(day=1)
        end = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    elif per == "quarter":
        q = (day.month - 1) // 3
        start = date(day.year, 3 * q + 1, 1)
        end = date(day.year + (q == 3), (3 * q + 3) % 12 + 1, 1)
    else:
        start, end = date(day.year, 1, 1), date(day.year + 1, 1, 1)
    return start, end


def redeemed_in(ctx: Ctx, customer_id: str, reward_id: str, day: date, per: str) -> int:
    q = sa.select(sa.func.coalesce(sa.func.sum(Redemption.quantity), 0)).where(
        Redemption.company_id == ctx.company.id, Redemption.customer_id == customer_id,
        Redemption.reward_id == reward_id, Redemption.status != "cancelled")
    window = period_of(per, day)
    if window:
        q = q.where(Redemption.redeemed_on >= window[0], Redemption.redeemed_on < window[1])
    ctx.session.flush()
    return int(ctx.session.scalar(q) or 0)


def taken(ctx: Ctx, key: str) -> int:
    return int(ctx.session.scalar(sa.select(RewardStock.taken).where(
        RewardStock.company_id == ctx.company.id, RewardStock.key == key)) or 0)


def reserve(ctx: Ctx, reward: Reward, quantity: int) -> None:
    """Take `quantity` of the reward's stock, or decline out_of_stock. One conditional UPDATE:
    two transactions racing for the last unit cannot both get it (the second waits for the
    first's row lock, then sees its count). Given back if the event is undone."""
    key = reward.stock_key
    if key is None:
        return
    limit = int(reward.spec["inventory"])
    session = ctx.session
    exists = session.scalar(sa.select(sa.func.count()).select_from(RewardStock).where(
        RewardStock.company_id == ctx.company.id, RewardStock.key == key))
    if not exists:
        insert = _insert(session)(RewardStock).values(company_id=ctx.company.id, key=key, taken=0)
        session.execute(insert.on_conflict_do_nothing())
    moved = session.execute(sa.update(RewardStock).where(
        RewardStock.company_id == ctx.company.id, RewardStock.key == key,
        RewardStock.taken + quantity <= limit).values(taken=RewardStock.taken + quantity)).rowcount
    if not moved:
        left = max(limit - taken(ctx, key), 0)
        raise Declined("out_of_stock", f"{reward.name}: {left} left, {quantity} asked", left=left)
    ctx.unit.on_undo(lambda: release(ctx, key, quantity))


def release(ctx: Ctx, key: str | None, quantity: int) -> None:
    if key is None:
        return
    ctx.session.execute(sa.update(RewardStock).where(RewardStock.company_id == ctx.company.id,
                                                     RewardStock.key == key)
                        .values(taken=RewardStock.taken - quantity))


def _insert(session: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def view(ctx: Ctx, reward: Reward, day: date) -> dict[str, Any]:
    spec = reward.spec
    key = reward.stock_key
    out: dict[str, Any] = {"id": reward.id, "name": reward.name, "type": reward.type,
                           "type_name": TYPES[reward.type], "points": int(spec["points"]),
                           "catalog": reward.catalog, "available": reward.available_on(day)}
    for k in ("description", "tier_points", "service_code", "amount_off", "percent_off", "credit", "seasons",
              "limit", "eligible"):
        if k in spec:
            out[k] = spec[k]
    if "available" in spec:
        out["available_dates"] = spec["available"]
    if reward.type == "merchandise":
        out["shipping"] = bool(spec.get("shipping", True))
    if key is not None:
        out["inventory"] = int(spec["inventory"])
        out["in_stock"] = max(int(spec["inventory"]) - taken(ctx, key), 0)
    return out


def credit_cents(reward: Reward) -> int:
    return to_cents(reward.spec["credit"])


def describe(reward: Reward) -> str:
    spec = reward.spec
    if reward.type == "service_discount":
        off = f"{format_cents(to_cents(spec['amount_off']))}" if "amount_off" in spec else f"{spec['percent_off']}%"
        return f"{off} off {spec['service_code']}"
    if reward.type == "free_service":
        return f"an extra {spec['service_code']} visit"
    if reward.type == "account_credit":
        return f"{spec['credit']} added to the allowance"
    return reward.name


def _check(doc: dict[str, Any]) -> list[Problem]:
    """Reward ids unique in a catalog; a limited-time reward's dates in order; who may redeem
    it written in conditions the engine takes."""
    problems: list[Problem] = []
    try:
        compile_document(doc, "check@0")
    except CompileError as exc:
        problems.extend(exc.problems)
    seen = set()
    for i, r in enumerate((doc.get("spec") or {}).get("rewards") or []):
        if r.get("id") in seen:
            problems.append(Problem(f"spec.rewards[{i}].id", f"reward ID {r['id']!r} is used twice"))
        seen.add(r.get("id"))
        window = r.get("available")
        if window and window["from"] > window["to"]:
            problems.append(Problem(f"spec.rewards[{i}].available", "the available dates end before they start"))
    return problems


kinds.add_check("RewardCatalog", _check)
