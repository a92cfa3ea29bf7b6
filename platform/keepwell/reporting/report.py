"""A report as data: titled sections of typed columns and rows (and, where it helps, a chart),
the same figures whichever way they leave — JSON, CSV, Excel or PDF (`reporting.files`).

Values are kept exact: money in integer cents (of the report's currency), points and counts as
integers, percentages as `Decimal` percent with two places (25.00 for a quarter), dates as
`date`. Each export shows them its own way (a spreadsheet gets numbers with formats) but never
rounds differently."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..kernel.money import format_cents

KINDS = ("text", "int", "money", "percent", "date", "points")


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"  # one of KINDS

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind


@dataclass(frozen=True)
class Chart:
    """A chart drawn on the server (reporting.charts): a line or bars per label."""

    kind: str  # line | bars
    title: str
    labels: list[str]
    series: dict[str, list[int | float]]
    stacked: bool = False


@dataclass
class Section:
    id: str
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    note: str = ""
    chart: Chart | None = None

    def add(self, *values: Any) -> None:
        assert len(values) == len(self.columns), (self.id, values)
        self.rows.append(tuple(values))

    def as_dicts(self) -> list[dict[str, Any]]:
        return [{c.key: json_value(c.kind, v) for c, v in zip(self.columns, row, strict=True)} for row in self.rows]


@dataclass
class Report:
    name: str
    title: str
    filters: dict[str, str]  # what it was run for, as given (from, to, plan...), for every export's heading
    currency: str
    sections: list[Section]
    company: str = ""
    generated_on: str = ""

    def section(self, section_id: str) -> Section:
        return next(s for s in self.sections if s.id == section_id)

    def to_dict(self) -> dict[str, Any]:
        return {"report": self.name, "title": self.title, "company": self.company, "generated_on": self.generated_on,
                "filters": self.filters, "currency": self.currency,
                "sections": [{"id": s.id, "title": s.title, "note": s.note,
                              "columns": [{"key": c.key, "title": c.title, "kind": c.kind} for c in s.columns],
                              "rows": s.as_dicts()} for s in self.sections]}


def percent(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """part/whole in percent, two places, half up (None when there is no whole to share)."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def json_value(kind: str, v: Any) -> Any:
    """A value as the JSON API shows it: money as text with two places ("12.50", as everywhere
    in the API), percent as text ("25.00"), dates ISO, counts and points as numbers."""
    if v is None:
        return None
    if kind == "money":
        return format_cents(int(v))
    if kind == "percent":
        return f"{Decimal(v):.2f}"
    if kind == "date":
        return v.isoformat() if isinstance(v, date) else str(v)
    return v


def text_value(kind: str, v: Any) -> str:
    """A value as a CSV cell or a PDF table shows it: the JSON text, plain."""
    shown = json_value(kind, v)
    return "" if shown is None else str(shown)
