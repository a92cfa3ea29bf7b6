"""Compiles EarningRules and NotificationTriggers documents into engine rulesets.

The condition language is data, never code: each `{field, op: value}` becomes a durable_rules
JSON test. Amounts are computed by our own small functions from typed fields (no eval).
The compiler enforces the engine's limits with clear errors, because past them durable_rules
hangs or fails silently (see DESIGN.md, "The engine adapter").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ..kernel.errors import CompileError, EngineLimit, Problem
from ..kernel.money import MoneyError, floor_multiply, to_cents
from .documents import content_hash
from .event_types import EVENT_TYPES, INTEGER, MONEY, STRING

MAX_RULES = 400  # at 512 the first post hangs; around 600 registration hangs
MAX_FACT_FIELDS = 255


def _base_fact_fields() -> tuple[str, ...]:
    return ("id", "sid", "type", "local_date") + tuple(f"m_{k}" for k in EVENT_TYPES.member_fields)


_COMPARISONS = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists")


@dataclass(frozen=True)
class EarnRule:
    id: str
    points: int
    per_cents: int | None
    of: str | None  # a data field holding money
    multiplier: Decimal
    tier_multiplier: bool

    def points_for(self, fact: dict, tier_multipliers: dict[str, Decimal]) -> int:
        base = self.points
        if self.per_cents:
            value = fact.get(fact_key(self.of))
            if not isinstance(value, int) or value <= 0:
                return 0
            base = self.points * (value // self.per_cents)
        mult = self.multiplier
        if self.tier_multiplier:
            mult *= tier_multipliers.get(fact.get("m_tier") or "", Decimal(1))
        return floor_multiply(base, mult)


@dataclass(frozen=True)
class Trigger:
    id: str
    template: str
    channel: str
    audience: str
    marketing: bool = False  # sent only to customers who agreed to marketing messages


@dataclass(frozen=True)
class CompiledRules:
    """A document turned into one engine ruleset plus the typed actions of its rules."""

    ref: str  # id@version, written on every ledger entry the rules produce
    name: str  # engine registration name: by content, since a name registers once per process
    definition: dict  # durable_rules JSON form, without actions
    order: tuple[str, ...]  # rule ids in document order: effects are applied in this order
    earn: dict[str, EarnRule] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    tier_multipliers: dict[str, Decimal] = field(default_factory=dict)
    expiry_months: int | None = None
    point_value: str | None = None
    date_triggers: tuple[dict, ...] = ()  # "N days before renewal/expiry": due work, not engine rules
    # The program's policies beside the rules (expiry order, pending points, refunds, referrals,
    # loyalty tiers): the EarningRules spec without its rules, read by the rewards area.
    policies: dict = field(default_factory=dict)


def fact_key(data_field: str) -> str:
    return "d_" + data_field


def compile_document(doc: dict, ref: str) -> CompiledRules:
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    problems: list[Problem] = []
    if kind == "EarningRules":
        items, path = spec.get("rules") or [], "spec.rules"
    elif kind == "NotificationTriggers":
        items = [t for t in spec.get("triggers") or [] if "on" in t]
        path = "spec.triggers"
    elif kind == "RewardCatalog":  # who may redeem each reward: a condition on a redemption
        items, path = [r for r in spec.get("rewards") or [] if r.get("eligible")], "spec.rewards"
    else:
        raise CompileError(f"{kind} documents have no engine rules", [Problem("kind", f"cannot compile {kind!r}")])

    if len(items) > MAX_RULES:
        raise EngineLimit(
            "too many rules for one ruleset",
            [
                Problem(
                    path, f"{len(items)} rules; the engine supports at most {MAX_RULES} per ruleset: split the document"
                )
            ],
        )

    definition: dict = {}
    earn: dict[str, EarnRule] = {}
    triggers: dict[str, Trigger] = {}
    referenced: set[str] = set()
    all_items = {"EarningRules": spec.get("rules"), "RewardCatalog": spec.get("rewards")}.get(
        kind, spec.get("triggers")) or []
    for index, item in enumerate(all_items or []):
        where = f"{path}[{index}]"
        rid = item.get("id") or f"rule{index}"
        if rid in definition:
            problems.append(Problem(f"{where}.id", f"duplicate rule id {rid!r}"))
            continue
        when, part = _when_of(kind, item)
        if when is None:  # a date-offset trigger (due work), or a reward anyone may redeem
            continue
        test = _compile_when(when, item.get("window") if kind == "EarningRules" else None, f"{where}.{part}",
                             problems, referenced)
        if test is None:
            continue
        definition[rid] = {"all": [{"m": test}]}
        if kind == "EarningRules":
            earn[rid] = _compile_earn(item, where, problems)
        elif kind == "NotificationTriggers":
            triggers[rid] = Trigger(rid, item["template"], item["channel"], item.get("audience", "customer"),
                                    bool(item.get("marketing", False)))

    base = len(_base_fact_fields())
    if base + len(referenced) > MAX_FACT_FIELDS:
        problems.append(
            Problem(path, f"rules refer to {len(referenced)} fields; the engine reads at most {MAX_FACT_FIELDS - base}")
        )
    if problems:
        raise CompileError("ruleset does not compile", problems)

    multipliers = {k: Decimal(v) for k, v in (spec.get("tier_multipliers") or {}).items()}
    expiry = (spec.get("expiry") or {}).get("after_months")
    return CompiledRules(
        ref=ref,
        name="kw_" + content_hash(definition)[:24],
        definition=definition,
        order=tuple(definition),
        earn=earn,
        triggers=triggers,
        tier_multipliers=multipliers,
        expiry_months=expiry,
        point_value=spec.get("point_value"),
        date_triggers=tuple(t for t in spec.get("triggers") or [] if "before" in t)
        if kind == "NotificationTriggers"
        else (),
        policies={k: v for k, v in spec.items() if k != "rules"} if kind == "EarningRules" else {},
    )


def _when_of(kind: str, item: dict) -> tuple[dict | None, str]:
    """What a rule of this kind matches, and where in the item it is written."""
    if kind == "EarningRules":
        return item.get("when"), "when"
    if kind == "RewardCatalog":
        eligible = item.get("eligible")
        return ({"event": "redemption", **eligible} if eligible else None), "eligible"
    return item.get("on"), "on"


def _compile_when(
    when: dict, window: dict | None, path: str, problems: list[Problem], referenced: set[str]
) -> dict | None:
    events = when.get("event")
    if not events:
        # A rule on member state alone would re-fire forever in the engine: every rule needs an event.
        problems.append(Problem(f"{path}.event", "every rule must name the event type(s) it reacts to"))
        return None
    events = [events] if isinstance(events, str) else list(events)
    unknown = [e for e in events if e not in EVENT_TYPES.names]
    if unknown:
        problems.append(
            Problem(f"{path}.event", f"unknown event type(s) {unknown}; known: {', '.join(EVENT_TYPES.names)}")
        )
        return None
    tests: list[dict] = [_any_of("type", events)]
    if window:
        tests.append({"$gte": {"local_date": window["from"]}})
        tests.append({"$lte": {"local_date": window["to"]}})
        if window["from"] > window["to"]:
            problems.append(Problem(f"{path.rsplit('.', 1)[0]}.window", "window ends before it starts"))
    for i, cond in enumerate(when.get("all") or []):
        t = _compile_condition(cond, events, f"{path}.all[{i}]", problems, referenced)
        if t is not None:
            tests.append(t)
    any_tests = [
        t
        for i, cond in enumerate(when.get("any") or [])
        if (t := _compile_condition(cond, events, f"{path}.any[{i}]", problems, referenced)) is not None
    ]
    if any_tests:
        tests.append(any_tests[0] if len(any_tests) == 1 else {"$or": any_tests})
    return tests[0] if len(tests) == 1 else {"$and": tests}


def _any_of(key: str, values: list) -> dict:
    return {key: values[0]} if len(values) == 1 else {"$or": [{key: v} for v in values]}


def _compile_condition(
    cond: dict, events: list[str], path: str, problems: list[Problem], referenced: set[str]
) -> dict | None:
    name = cond.get("field", "")
    ftype = EVENT_TYPES.field_type(events, name)
    if ftype is None:
        problems.append(Problem(f"{path}.field", f"unknown field {name!r} for event(s) {', '.join(events)}"))
        return None
    ops = [op for op in OPERATORS if op in cond]
    if len(ops) != 1:
        problems.append(Problem(path, f"give exactly one operator of {', '.join(OPERATORS)}"))
        return None
    op = ops[0]
    key = ("m_" if name.startswith("member.") else "d_") + name.split(".", 1)[1]
    referenced.add(key)
    if op == "exists":
        return {"$ex" if cond[op] else "$nex": {key: 1}}
    raw = cond[op]
    if op in ("in", "not_in"):
        if not isinstance(raw, list) or not raw:
            problems.append(Problem(f"{path}.{op}", "must be a non-empty list"))
            return None
        values = [_typed(v, ftype, f"{path}.{op}[{i}]", problems) for i, v in enumerate(raw)]
        if any(v is None for v in values):
            return None
        if op == "in":
            return _any_of(key, values)
        tests = [{"$neq": {key: v}} for v in values]
        return tests[0] if len(tests) == 1 else {"$and": tests}
    value = _typed(raw, ftype, f"{path}.{op}", problems)
    if value is None:
        return None
    if op in ("lt", "lte", "gt", "gte") and ftype == STRING:
        problems.append(Problem(f"{path}.{op}", f"{name} is text: use eq, ne, in or not_in"))
        return None
    return {key: value} if op == "eq" else {_COMPARISONS[op]: {key: value}}


def _typed(value, ftype: str, path: str, problems: list[Problem]):
    if ftype == MONEY:
        try:
            return to_cents(value)
        except MoneyError as exc:
            problems.append(Problem(path, f"{exc} (money is a decimal string like \"100.00\")"))
            return None
    if ftype == INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(Problem(path, f"{value!r} is not a whole number"))
            return None
        return value
    if not isinstance(value, str):
        problems.append(Problem(path, f"{value!r} is not text"))
        return None
    return value


def _compile_earn(item: dict, where: str, problems: list[Problem]) -> EarnRule:
    earn = item.get("earn") or {}
    per_cents = None
    of = earn.get("of")
    if earn.get("per") is not None:
        try:
            per_cents = to_cents(earn["per"])
        except MoneyError as exc:
            problems.append(Problem(f"{where}.earn.per", str(exc)))
        if per_cents is not None and per_cents <= 0:
            problems.append(Problem(f"{where}.earn.per", "must be more than zero"))
            per_cents = None
        events = item["when"]["event"]
        events = [events] if isinstance(events, str) else events
        if of is None or not of.startswith("data.") or EVENT_TYPES.field_type(events, of) != MONEY:
            problems.append(Problem(f"{where}.earn.of", f"{of!r} is not a money field of {', '.join(events)}"))
        else:
            of = of.split(".", 1)[1]
    return EarnRule(
        id=item.get("id", ""),
        points=int(earn.get("points", 0)),
        per_cents=per_cents,
        of=of,
        multiplier=Decimal(item.get("multiplier", "1")),
        tier_multiplier=bool(item.get("tier_multiplier", True)),
    )


def make_fact(event_type: str, local_date: date, data: dict, member: dict) -> dict:
    """The one message the engine sees: the event's typed data and the member snapshot, flattened."""
    fact: dict = {"type": event_type, "local_date": local_date.isoformat()}
    for k in EVENT_TYPES.member_fields:
        fact["m_" + k] = member.get(k) or ""
    types = EVENT_TYPES.data_fields(event_type)
    for k, v in data.items():
        ftype = types.get(k)
        if ftype is None or v is None:
            continue
        fact[fact_key(k)] = to_cents(v) if ftype == MONEY else v
    if len(fact) + 2 > MAX_FACT_FIELDS:
        raise EngineLimit(
            "event too large for the engine", [Problem("data", f"{len(fact)} fields; at most {MAX_FACT_FIELDS - 2}")]
        )
    return fact
