"""Idempotency keys of API requests: claim, replay, keep the first answer."""

from __future__ import annotations

from ..customers import idempotency
from ..customers.idempotency import KEPT_HOURS, Answer
from ..infra.context import Ctx
from .app import use_case

__all__ = ["KEPT_HOURS", "Answer", "begin", "finish"]


@use_case
def begin(ctx: Ctx, key: str, fingerprint: str) -> Answer | None:
    """The first answer to replay, or None once the key is claimed for this request (committed
    before the request runs, so a concurrent one with the key sees it running)."""
    return idempotency.begin(ctx.session, ctx.company, key, fingerprint, ctx.clock.now())


@use_case
def finish(ctx: Ctx, key: str, answer: Answer | None) -> None:
    idempotency.finish(ctx.session, ctx.company, key, answer)
