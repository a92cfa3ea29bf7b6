"""Due work, computed from an `as_of` date so it can run for any date (tests and back-fills
drive time this way). Each unit is small and keyed deterministically: a period end of one
membership, a points expiry of one customer, one reminder. Running it twice does nothing new.

The areas register the kinds of due work they own (`kind`): how to find what is due, what to
look up in bulk before a chunk of it runs, and how to do one unit. `run_units` does many units
in the caller's transaction (a chunk), with exactly the effects of doing them one at a time;
a crash leaves a chunk applied whole or not at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..customers.customers import lock_names
from ..infra.context import Ctx
from ..infra.memory import collector_paused
from . import pipeline, registry


@dataclass(frozen=True)
class DueUnit:
    """One unit of due work; `key` is deterministic, so enqueuing it twice runs it once."""

    kind: str  # period_end | points_expiry | reminder | report_schedule...
    key: str
    customer: str  # "" for work that belongs to no customer (a scheduled report)
    subject: str  # membership id, or the expiry date for points
    as_of: date

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "customer": self.customer, "subject": self.subject,
                "as_of": self.as_of.isoformat()}

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> DueUnit:
        return cls(d["kind"], d["key"], d["customer"], d["subject"], date.fromisoformat(d["as_of"]))


Planner = Callable[[Ctx, date], list[DueUnit]]
Keys = Callable[[Ctx, list[DueUnit]], list[str]]  # event keys a chunk's units may write (looked up at once)
Runner = Callable[[Ctx, DueUnit], dict[str, Any]]
# Many units as a set: the results of those it did, by key (the rest run one at a time); it is
# given only units whose customer has no other work in the chunk, and the customers' names.
ManyRunner = Callable[[Ctx, list[DueUnit], dict[str, str]], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class DueKind:
    name: str
    order: int
    plan: Planner
    run: Runner
    keys: Keys | None = None
    entries_per_unit: int = 0  # ledger entries a unit usually writes (ids drawn up front)
    many: ManyRunner | None = None
    # Work of one customer runs with the customer locked (it serialises every writer of their
    # balances); work of the company's own (a scheduled report) locks what it needs itself.
    per_customer: bool = True


_kinds: dict[str, DueKind] = {}


def kind(
    name: str, order: int, plan: Planner, run: Runner, keys: Keys | None = None, entries_per_unit: int = 0,
    many: ManyRunner | None = None, per_customer: bool = True,
) -> None:
    _kinds[name] = DueKind(name, order, plan, run, keys, entries_per_unit, many, per_customer)


def plan(ctx: Ctx, as_of: date) -> list[DueUnit]:
    """Everything due up to `as_of` (exclusive of work dated on as_of itself: a period ending on
    the 30th is due on the 1st)."""
    return [u for k in sorted(_kinds.values(), key=lambda k: k.order) for u in k.plan(ctx, as_of)]


def other_work_due(ctx: Ctx, as_of: date, kind_name: str) -> bool:
    """Whether any kind of due work but `kind_name` has something due up to `as_of` (a kind that
    reports on the day's work waits for it)."""
    return any(k.plan(ctx, as_of) for k in sorted(_kinds.values(), key=lambda k: k.order) if k.name != kind_name)


def run_units(ctx: Ctx, units: list[DueUnit], as_sets: bool = True) -> list[dict[str, Any]]:
    """Do many units of due work inside the caller's transaction, with exactly the effects of
    doing them one at a time, in order. With `as_sets`, the kinds that can do many units as a set
    do those they can first: only units whose customer has no other unit in the chunk, so that no
    unit's effects are seen by another out of order."""
    from ..ledger.models import LedgerEntry

    with collector_paused(), ctx.unit.scope():
        done: dict[str, dict[str, Any]] = {}
        if as_sets and any(k.many for k in _kinds.values()):
            # Every customer of the chunk locked at once, in id order (as the pipeline locks
            # them): a chunk never holds some customers while waiting for others out of order.
            names = lock_names(ctx.session, ctx.company.id, [u.customer for u in units if u.customer])
            alone = Counter(u.customer for u in units)
            for k in _kinds.values():
                mine = [u for u in units if u.kind == k.name and alone[u.customer] == 1]
                if mine and k.many is not None:
                    done.update(k.many(ctx, mine, names))
        rest = [u for u in units if u.key not in done]
        present = pipeline.lock(ctx, [u.customer for u in rest if u.customer])
        registry.run_preload(ctx, present)
        keys: list[str] = []
        for k in _kinds.values():
            mine = [u for u in rest if u.kind == k.name]
            if mine and k.keys is not None:
                keys += k.keys(ctx, mine)
        pipeline.lookup_keys(ctx, keys)
        ids = ctx.unit.ids
        ids.want(pipeline.EVENTS, 2 * len(rest))
        ids.want(LedgerEntry.__table__,  # type: ignore[arg-type]
                 sum(found.entries_per_unit for u in rest if (found := _kinds.get(u.kind))))
        results = iter([run_unit(ctx, u) for u in rest])
        return [done[u.key] if u.key in done else next(results) for u in units]


def run_unit(ctx: Ctx, unit: DueUnit) -> dict[str, Any]:
    """Do one unit of due work inside the caller's transaction."""
    if not ctx.unit.depth:
        return run_units(ctx, [unit])[0]
    found = _kinds.get(unit.kind)
    if found is None:
        raise ValueError(f"unknown due work {unit.kind}")
    if found.per_customer:
        pipeline.customer(ctx, unit.customer)  # locked: it serialises every writer of the customer's balances
    return found.run(ctx, unit)
