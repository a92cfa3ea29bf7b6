"""Reports: the numbers a membership business closes its month on, the same from the CLI, the
API, the admin and a scheduled email."""

from __future__ import annotations

from typing import Any

from ..infra.context import Ctx
from ..reporting import catalog, files
from ..reporting.files import ReportFile
from .app import reading

__all__ = ["list_reports", "run", "export", "ReportFile", "FORMATS"]

FORMATS = files.FORMATS


@reading
def list_reports(ctx: Ctx) -> list[dict[str, Any]]:
    """Every report with what it shows and the filters it takes."""
    return [s.to_dict() for s in catalog.listing()]


@reading
def run(ctx: Ctx, name: str, **filters: Any) -> dict[str, Any]:
    """A report's figures as JSON: sections of typed columns and rows."""
    return catalog.run(ctx, name, catalog.params(ctx, name, filters)).to_dict()


@reading
def export(ctx: Ctx, name: str, fmt: str, **filters: Any) -> ReportFile:
    """A report as a file: json, csv, xlsx or pdf."""
    if fmt not in FORMATS:
        from ..kernel.errors import InvalidDocument

        raise InvalidDocument.field("format", f"must be one of {', '.join(FORMATS)}")
    return files.render(catalog.run(ctx, name, catalog.params(ctx, name, filters)), fmt)
