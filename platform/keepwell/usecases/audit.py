"""The audit: every cached balance against the sum of its ledger, every lot against its draws,
every reference between the pipeline's rows (which the database no longer checks)."""

from __future__ import annotations

from typing import Any

from ..infra.context import Ctx
from ..ledger import audit as ledger_audit
from ..reporting.integrity import broken_references
from .app import reading


@reading
def audit(ctx: Ctx) -> dict[str, Any]:
    report = ledger_audit.run(ctx.session, ctx.company.id)
    broken = broken_references(ctx.session, ctx.company.id)
    report["drift"] += broken
    report["ok"] = not report["drift"]
    return report
