"""Rendering notifications: the template (company override, the ruleset's own, or shipped) in a
sandboxed Jinja2 environment, with what the message is about."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment, safe_range

from ..customers.models import Company, Customer
from ..infra.context import Ctx
from ..kernel.errors import InvalidDocument, Problem
from ..kernel.periods import period_start
from ..memberships import memberships
from ..rewards import points
from .channels import DeliveryError, Message
from .models import MessageTemplate, OutboxFile, OutboxMessage

SHIPPED = Path(__file__).resolve().parent / "shipped" / "notifications.yaml"
RENDER_SECONDS = 1.0  # a message's template gets this long, and
MAX_OUTPUT = 100_000  # writes at most this many characters (an SMS is cut far shorter by its channel)
MAX_WIDTH = 1_000  # center(), indent() and friends: no padding to a gigabyte
_deadline: ContextVar[float] = ContextVar("template_deadline", default=float("inf"))


class TemplateTooCostly(DeliveryError):
    def __init__(self, what: str):
        super().__init__(f"template error: {what}; simplify the template", retryable=False)


def _on_time() -> None:
    if time.monotonic() > _deadline.get():
        raise TemplateTooCostly(f"it ran longer than {RENDER_SECONDS:g} s")


def _range(*args: int) -> Iterator[int]:
    """range() for templates: the sandbox's size limit, and the render deadline checked as it
    counts (a loop over range() calls nothing the sandbox could watch)."""
    for i, n in enumerate(safe_range(*args)):
        if not i & 1023:
            _on_time()
        yield n


class BudgetedSandbox(SandboxedEnvironment):
    """The sandbox, with a deadline on every call and operator, and no operator that makes
    a huge string or list ("x" * 10**9, 10 ** 10 ** 10)."""

    intercepted_binops = frozenset(["*", "**"])

    def call(self, __context, __obj, *args, **kwargs):  # type: ignore[no-untyped-def]
        _on_time()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context, operator, left, right):  # type: ignore[no-untyped-def]
        _on_time()
        huge_base = isinstance(left, int) and abs(left) > 2**64
        if operator == "**" and isinstance(right, int) and (right > 64 or huge_base):
            raise TemplateTooCostly("a power too large")
        if operator == "*":
            sizes = [len(v) for v in (left, right) if isinstance(v, str | list | tuple)]
            counts = [v for v in (left, right) if isinstance(v, int)]
            if sizes and counts and sizes[0] * max(counts[0], 0) > MAX_OUTPUT:
                raise TemplateTooCostly("a repetition too long")
        return super().call_binop(context, operator, left, right)


def _bounded(filter_fn: Callable[..., str]) -> Callable[..., str]:
    def bounded(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> str:
        if isinstance(width, int) and width > MAX_WIDTH:
            raise TemplateTooCostly(f"a width over {MAX_WIDTH}")
        return filter_fn(value, width, *args, **kwargs)

    return bounded


_env = BudgetedSandbox(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
_env.globals["range"] = _range
for _name in ("center", "indent", "wordwrap", "truncate"):
    _env.filters[_name] = _bounded(_env.filters[_name])


@cache
def shipped() -> dict[str, dict]:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def template_names() -> set[str]:
    return set(shipped())


def find_template(ctx: Ctx, name: str, channel: str, inline: dict | None) -> tuple[str, str]:
    """(subject, body) for a template name and channel: company override, ruleset, shipped."""
    override = ctx.session.scalar(sa.select(MessageTemplate).where(
        MessageTemplate.company_id == ctx.company.id, MessageTemplate.name == name, MessageTemplate.channel == channel))
    if override is not None:
        return override.subject or "", override.body
    for source in (inline or {}, shipped()):
        t = source.get(name)
        if t:
            body = t.get(channel) or t.get("email") or ""
            return t.get("subject", ""), body
    raise DeliveryError(f"no template {name!r} for channel {channel}", retryable=False)


def render(text: str, variables: dict) -> str:
    """The template with these variables, within RENDER_SECONDS and MAX_OUTPUT characters (a
    template over either fails for good: it would fail the same way on every retry)."""
    token = _deadline.set(time.monotonic() + RENDER_SECONDS)
    try:
        out, size = [], 0
        for chunk in _env.from_string(text).generate(**variables):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateTooCostly(f"it wrote more than {MAX_OUTPUT:,} characters")
            _on_time()
            out.append(chunk)
        return "".join(out)
    except DeliveryError:
        raise
    except TemplateError as exc:
        raise DeliveryError(f"template error: {exc}", retryable=False) from exc
    except Exception as exc:  # {{ 1 // 0 }}, {{ "a" + 1 }}: the template's fault, and it will not go away
        raise DeliveryError(f"template error: {type(exc).__name__}: {exc}", retryable=False) from exc
    finally:
        _deadline.reset(token)


def variables(ctx: Ctx, msg: OutboxMessage) -> dict:
    customer = ctx.session.get(Customer, msg.customer_id) if msg.customer_id else None
    payload = msg.payload or {}
    membership = None
    mid = payload.get("membership") or (payload.get("data") or {}).get("membership") or payload.get("result_membership")
    if mid:
        m = memberships.get(ctx, mid)
        membership = memberships.view(ctx, m)
        membership["renews_on"] = period_start(m.issued_on, m.period, m.current_period + 1).isoformat()
        # A reminder speaks of the renewal or expiry it was queued for, even when it goes out late
        # (quiet hours, retries, an outage) and the membership has moved on to its next period.
        for k in ("renews_on", "expires_on"):
            if payload.get(k):
                membership[k] = payload[k]
    return {
        "company": {"name": ctx.company.name, "slug": ctx.company.slug},
        "customer": {"id": customer.id, "name": customer.name, "email": customer.email, "phone": customer.phone}
        if customer else {},
        "event": {"id": payload.get("event"), "type": payload.get("type"), "local_date": payload.get("local_date")},
        "data": payload.get("data") or {},
        "membership": membership,
        "points": {"earned": (payload.get("points") or {}).get("earned", 0),
                   "balance": points.balance(ctx, customer.id) if customer else 0},
        "trigger": {"id": msg.rule, "ruleset": msg.ruleset},
    }


def recipient(company: Company, customer: Customer | None, msg: OutboxMessage) -> str:
    if msg.audience == "direct":  # one person by address: a team member's invitation, a member's sign-in link
        to = (msg.payload or {}).get("to") if msg.channel == "email" else None
    elif msg.audience == "company":
        # A company has an address for email and a URL for webhooks, but no phone number: a
        # company text used to go to its email address.
        to = {"webhook": company.webhook_url, "email": company.email}.get(msg.channel)
    elif msg.channel == "webhook":
        to = company.webhook_url
    else:
        to = (customer.email if msg.channel == "email" else customer.phone) if customer else None
    if not to:
        who = ("the company" if msg.audience == "company" or msg.channel == "webhook"
               else "the recipient" if msg.audience == "direct" else "the customer")
        raise DeliveryError(f"{who} has no {'address' if msg.channel != 'sms' else 'phone number'} for {msg.channel}",
                            retryable=False)
    return to


def build(ctx: Ctx, msg: OutboxMessage, inline_templates: dict | None) -> Message:
    customer = ctx.session.get(Customer, msg.customer_id) if msg.customer_id else None
    to = recipient(ctx.company, customer, msg)
    subject, body = find_template(ctx, msg.template or "", msg.channel, inline_templates)
    v = variables(ctx, msg)
    return Message(key=msg.key, channel=msg.channel, to=to, subject=render(subject, v).strip(), body=render(body, v),
                   data={"event": v["event"], "customer": v["customer"].get("id"), "trigger": v["trigger"],
                         "data": v["data"]}, created_at=msg.created_at,
                   attachments=tuple((a["filename"], a["html"]) for a in (msg.payload or {}).get("attach") or ()
                                     if msg.channel == "email"),
                   files=_files(ctx, msg) if msg.channel == "email" else ())


def _files(ctx: Ctx, msg: OutboxMessage) -> tuple[tuple[str, str, bytes], ...]:
    """The stored files the message attaches (`payload.files`: name, media type and digest)."""
    wanted = (msg.payload or {}).get("files") or []
    if not wanted:
        return ()
    digests = {f["digest"] for f in wanted}
    found = {digest: content for digest, content in ctx.session.execute(sa.select(OutboxFile.digest, OutboxFile.content)
                                                                         .where(OutboxFile.company_id == ctx.company.id,
                                                                                OutboxFile.digest.in_(digests)))}
    missing = digests - set(found)
    if missing:
        raise DeliveryError(f"the attached file {sorted(missing)[0][:12]} is no longer stored", retryable=False)
    return tuple((f["filename"], f["media_type"], bytes(found[f["digest"]])) for f in wanted)


def set_override(ctx: Ctx, name: str, channel: str, subject: str | None, body: str) -> None:
    """Store a company's own wording, after checking that it parses as a template."""
    from jinja2 import TemplateSyntaxError

    problems = []
    for field, text in (("subject", subject or ""), ("body", body)):
        try:
            _env.parse(text)
        except TemplateSyntaxError as exc:
            problems.append(Problem(f"{field}: line {exc.lineno}", exc.message or "template syntax error"))
    if not body.strip():
        problems.append(Problem("body", "is empty"))
    if problems:
        raise InvalidDocument(f"template {name} not saved", problems)
    row = ctx.session.scalar(sa.select(MessageTemplate).where(
        MessageTemplate.company_id == ctx.company.id, MessageTemplate.name == name, MessageTemplate.channel == channel))
    if row is None:
        ctx.session.add(
            MessageTemplate(company_id=ctx.company.id, name=name, channel=channel, subject=subject, body=body)
        )
    else:
        row.subject, row.body = subject, body


def listing(ctx: Ctx) -> list[dict[str, str]]:
    """Shipped templates and the company's overrides, with where each wording comes from."""
    own = {(t.name, t.channel): t for t in ctx.session.scalars(
        sa.select(MessageTemplate).where(MessageTemplate.company_id == ctx.company.id))}
    rows = [{"name": n, "channel": ch, "source": "company" if (n, ch) in own else "shipped"}
            for n, t in sorted(shipped().items()) for ch in ("email", "sms") if ch in t or (n, ch) in own]
    rows += [{"name": n, "channel": ch, "source": "company"} for (n, ch) in sorted(own)
             if not any(r["name"] == n and r["channel"] == ch for r in rows)]
    return rows


def remove_override(ctx: Ctx, name: str, channel: str) -> None:
    ctx.session.execute(sa.delete(MessageTemplate).where(
        MessageTemplate.company_id == ctx.company.id, MessageTemplate.name == name, MessageTemplate.channel == channel))
