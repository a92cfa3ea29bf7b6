"""Errors over HTTP: the one table from the core's error codes to statuses, and the one shape of
an API error, RFC 9457 problem details (`application/problem+json`): `type`, `title`, `status`,
`detail`, a stable `code`, and `errors[]` with each field's JSON pointer and message. The body
also keeps the earlier `error` object (`code`, `message`, `errors` with `path`) for clients
written against it."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response
from werkzeug.exceptions import HTTPException

from ...kernel.errors import Declined, InvalidDocument, KeepwellError

STATUS = {
    "not_found": 404,
    "conflict": 409,
    "invalid": 422,
    "compile_error": 422,
    "engine_limit": 422,
    "invalid_amount": 422,
    "declined": 402,
    "unauthorized": 401,
    "forbidden": 403,
    "not_configured": 503,
    "schema_out_of_date": 503,
    "delivery_failed": 502,
    "engine_failure": 500,
}
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
              415: "unsupported_media_type", 429: "rate_limited"}
TYPE_BASE = "https://keepwell.dev/problems/"  # a stable name per code; the README lists them
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def status_of(exc: KeepwellError) -> int:
    return STATUS.get(exc.code, 400)


def pointer(path: str) -> str:
    """A problem's path as a JSON pointer: "data.amount" -> "/data/amount", "events[3].id" ->
    "/events/3/id"; "(body)" and "(document)" are the whole body, ""."""
    if not path or path.startswith("("):
        return ""
    parts = [m.group(1) or m.group(2) for m in _SEGMENT.finditer(path)]
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def problem(status: int, code: str, title: str, detail: str, errors: list[dict[str, Any]] | None = None,
            **extra: Any) -> Response:
    body: dict[str, Any] = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail,
                            "code": code}
    if errors is not None:
        body["errors"] = errors
    body.update({k: v for k, v in extra.items() if v is not None})
    legacy: dict[str, Any] = {"code": code, "message": detail, **{k: v for k, v in extra.items() if v is not None}}
    if errors is not None:
        legacy["errors"] = [{"file": e.get("file"), "path": e["path"], "message": e["message"]} for e in errors]
    body["error"] = legacy
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def from_error(exc: KeepwellError) -> Response:
    status = status_of(exc)
    errors = None
    if isinstance(exc, InvalidDocument):
        errors = [{"pointer": pointer(p.path), "path": p.path, "message": p.message, "field": p.label or None,
                   "file": p.file or None} for p in exc.problems]
    title = exc.code.replace("_", " ").capitalize()
    reason = {"reason": exc.reason} if isinstance(exc, Declined) else {}  # why it was declined: a stable code
    return problem(status, exc.code, title, exc.message, errors, **reason, **exc.details)


def from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = HTTP_CODES.get(status, "http_error")
    response = problem(status, code, exc.name, exc.description or exc.name)
    if status == 405 and exc.response is None:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response
