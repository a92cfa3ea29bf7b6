"""Errors over HTTP: the one table from the core's error codes to statuses."""

from __future__ import annotations

from ...kernel.errors import KeepwellError

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


def status_of(exc: KeepwellError) -> int:
    return STATUS.get(exc.code, 400)
