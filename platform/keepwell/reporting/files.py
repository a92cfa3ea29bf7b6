"""A report as a file: CSV (formula-safe, sections one after another), Excel (openpyxl in
write-only mode, so a large report streams to the file instead of building every cell first;
one sheet per section, numbers as numbers with formats) and PDF (the invoices' renderer, with
the charts drawn on the server). Every file carries the same figures as the JSON."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..infra.pdf import html_to_pdf, render_html
from ..kernel.exports import csv_text, spreadsheet_safe
from . import charts
from .report import Chart, Report, Section, text_value

FORMATS = ("json", "csv", "xlsx", "pdf")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}
_NUMBER_FORMATS = {"money": "#,##0.00", "percent": "0.00", "int": "#,##0", "points": "#,##0", "date": "yyyy-mm-dd"}


# Told (sections written, steps in all) as a file is made: one step per section, and a last one
# for the file itself (the workbook saved, the PDF laid out). A job reports it to its row.
Progress = Callable[[int, int], None]


def _quiet(done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class ReportFile:
    content: bytes
    media_type: str
    filename: str


def filename(r: Report, fmt: str) -> str:
    return f"{r.name}-{r.filters.get('from', '')}-to-{r.filters.get('to', '')}.{fmt}".replace("--", "-")


def heading(r: Report) -> list[str]:
    """The lines above every export: the report, the company, what it was run for."""
    run_for = ", ".join(f"{k} {v}" for k, v in r.filters.items())
    return [f"{r.title} — {r.company}", f"{run_for}; amounts in {r.currency}; made on {r.generated_on}"]


def steps(r: Report) -> int:
    """How many steps making a file of the report takes (Progress's total)."""
    return len(r.sections) + 1


def to_csv(r: Report, progress: Progress = _quiet) -> bytes:
    """The sections one after another, each with its title row and column titles, a blank row
    between (a spreadsheet opens it as one sheet; Excel gets one sheet per section)."""
    parts = [csv_text([heading(r)[0]], [[heading(r)[1]]])]
    for n, s in enumerate(r.sections, 1):
        parts.append("\r\n" + csv_text([s.title], []))
        parts.append(csv_text([c.title for c in s.columns],
                              ([text_value(c.kind, v) for c, v in zip(s.columns, row, strict=True)] for row in s.rows)))
        progress(n, steps(r))
    return "".join(parts).encode("utf-8")


def _cell(kind: str, v: Any) -> Any:
    if v is None:
        return None
    if kind == "money":
        return Decimal(int(v)) / 100
    if kind == "percent":
        return Decimal(v)
    if kind == "date":
        return v if isinstance(v, date) else str(v)
    if kind in ("int", "points"):
        return int(v)
    return spreadsheet_safe(str(v))


def _sheet_title(s: Section, taken: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", " ", s.title)[:31].strip() or s.id[:31]
    title, n = base, 2
    while title.lower() in taken:  # sheet names are unique, case aside
        suffix = f" ({n})"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(title.lower())
    return title


def to_xlsx(r: Report, progress: Progress = _quiet) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)
    taken: set[str] = set()
    for n, s in enumerate(r.sections, 1):
        sheet = book.create_sheet(_sheet_title(s, taken))
        for line in heading(r):
            sheet.append([line])
        sheet.append([s.title])
        titles = []
        for c in s.columns:
            cell = WriteOnlyCell(sheet, value=c.title)
            cell.font = bold
            titles.append(cell)
        sheet.append(titles)
        for row in s.rows:
            cells = []
            for c, v in zip(s.columns, row, strict=True):
                cell = WriteOnlyCell(sheet, value=_cell(c.kind, v))
                if c.kind in _NUMBER_FORMATS and v is not None:
                    cell.number_format = _NUMBER_FORMATS[c.kind]
                cells.append(cell)
            sheet.append(cells)
        if s.note:
            sheet.append([])
            sheet.append([s.note])
        progress(n, steps(r))
    if not r.sections:
        book.create_sheet("Report").append(heading(r))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def chart_svg(chart: Chart, width: int = 640, height: int = 260) -> str:
    series = {k: [v for v in vs] for k, vs in chart.series.items()}
    if chart.kind == "line":
        return charts.line(chart.title, chart.labels, series, width, height)  # type: ignore[arg-type]
    return charts.bars(chart.title, chart.labels, series, width, height, stacked=chart.stacked)  # type: ignore[arg-type]


def to_html(r: Report, progress: Progress = _quiet) -> str:
    sections = []
    for n, s in enumerate(r.sections, 1):
        sections.append({"s": s, "rows": [[text_value(c.kind, v) for c, v in zip(s.columns, row, strict=True)]
                                          for row in s.rows],
                         "chart": chart_svg(s.chart) if s.chart else None})
        progress(n, steps(r))
    return render_html(Path(__file__).parent / "templates", "report.html", r=r, heading=heading(r), sections=sections)


def to_pdf(r: Report, progress: Progress = _quiet) -> bytes:
    return html_to_pdf(to_html(r, progress))


def render(r: Report, fmt: str, progress: Progress = _quiet) -> ReportFile:
    import json

    if fmt == "json":
        content = json.dumps(r.to_dict(), indent=2).encode("utf-8")
    elif fmt == "csv":
        content = to_csv(r, progress)
    elif fmt == "xlsx":
        content = to_xlsx(r, progress)
    elif fmt == "pdf":
        content = to_pdf(r, progress)
    else:
        from ..kernel.errors import InvalidDocument

        raise InvalidDocument.field("format", f"must be one of {', '.join(FORMATS)}")
    return ReportFile(content, MEDIA_TYPES[fmt], filename(r, fmt))
