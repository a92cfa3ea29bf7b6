"""Importing a file of events, split by customer so that several workers can share it.

Every effect of an event belongs to its customer (the pipeline locks that customer's row), and a
customer's events must apply in the file's order. So the file is cut into parts by customer, each
part keeps its lines in order, and parts can run at the same time in different processes without
waiting on each other's rows: the same events, the same effects, as posting the file in one go
(tests/test_import.py compares both row for row).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .app import Keepwell
from .events import BATCH, stream_events

PROBLEMS_KEPT = 1000  # the rejected lines a summary lists; the counts cover them all


@dataclass(frozen=True)
class Line:
    """One line of the file: its number, and the event on it (or, when the line is not an
    event at all, the result that says why)."""

    number: int
    payload: Any = None
    error: dict[str, Any] | None = None

    def to_list(self) -> list[Any]:  # a job's argument: plain values
        return [self.number, self.payload, self.error]

    @classmethod
    def from_list(cls, v: list[Any]) -> Line:
        return cls(int(v[0]), v[1], v[2])


@dataclass
class ImportSummary:
    """What an import (or one part of it) did: events by outcome, and the lines it refused."""

    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # approved | processed | declined | duplicate | ...
    problems: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, **result}, first PROBLEMS_KEPT
    parts: int = 1

    def add(self, line: Line, result: dict[str, Any]) -> None:
        self.events += 1
        status = "duplicate" if result.get("duplicate") else str(result.get("status"))
        self.outcomes[status] += 1
        if status in ("rejected", "error") and len(self.problems) < PROBLEMS_KEPT:
            self.problems.append({"line": line.number, **result})

    def merge(self, other: ImportSummary) -> None:
        self.events += other.events
        self.outcomes.update(other.outcomes)
        self.problems = sorted(self.problems + other.problems, key=lambda p: p["line"])[:PROBLEMS_KEPT]

    @property
    def failed(self) -> int:
        return self.outcomes["rejected"] + self.outcomes["error"]

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "parts": self.parts, "outcomes": dict(sorted(self.outcomes.items())),
                "failed": self.failed, "problems": self.problems}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImportSummary:
        return cls(int(d["events"]), Counter(d["outcomes"]), list(d["problems"]), int(d.get("parts", 1)))


def part_of(customer: object, parts: int) -> int:
    """The part a customer's events go to: the same for every line, run and machine."""
    key = customer if isinstance(customer, str) else ""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % parts


def split(lines: Iterable[Line], parts: int) -> list[list[Line]]:
    """The lines by part, each part in file order. Lines that are not events go to part 0, where
    they are reported in their place."""
    out: list[list[Line]] = [[] for _ in range(max(parts, 1))]
    for line in lines:
        who = line.payload.get("customer") if isinstance(line.payload, dict) else None
        out[part_of(who, len(out)) if line.error is None else 0].append(line)
    return out


def import_part(app: Keepwell, company: str, lines: list[Line], chunk: int = BATCH) -> ImportSummary:
    """Post one part's events in order through the batched path (a transaction per chunk; the
    results stream as chunks commit, so a part of any size holds one chunk in memory)."""
    summary = ImportSummary()
    results = stream_events(app, company, (ln.payload for ln in lines if ln.error is None), chunk)
    for line in lines:
        summary.add(line, line.error if line.error is not None else next(results))
    return summary
