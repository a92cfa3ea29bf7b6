"""The audit: every cached balance against the sum of its ledger, every lot against its draws."""

from __future__ import annotations

from typing import Any

from ..infra.context import Ctx
from ..ledger import audit as ledger_audit
from .app import reading


@reading
def audit(ctx: Ctx) -> dict[str, Any]:
    return ledger_audit.run(ctx.session, ctx.company.id)
