"""The OpenAPI 3.1 document of the REST API, generated from the contract (`contract.py`: the
same request schemas the views validate with) and the JSON Schemas events and rulesets are
validated with, bundled into `components` so the document stands alone (no network needed)."""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

from ...usecases import apikeys, idempotency, rulesets, webhooks
from . import contract

SCHEMA_FILES = ("common", "event", "ruleset", "plan", "earning_rules", "notification_triggers")
_EXTERNAL = re.compile(r"^https://keepwell\.dev/schemas/([a-z_]+)\.schema\.json(#.*)?$")

PROBLEM = {
    "type": "object", "required": ["type", "title", "status", "detail", "code"],
    "description": "RFC 9457 problem details. `errors` lists every problem of a request, each with its field.",
    "properties": {
        "type": {"type": "string", "format": "uri"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable: not_found, invalid, declined, forbidden, rate_limited..."},
        "errors": {"type": "array", "items": {"type": "object", "required": ["pointer", "message"], "properties": {
            "pointer": {"type": "string", "description": "JSON pointer to the field"},
            "path": {"type": "string"},
            "message": {"type": "string", "description": "In words, starting with the field's label"},
            "field": {"type": ["string", "null"], "description": "The field's label, e.g. \"Allowance amount\""}}}},
        "reason": {"type": "string", "description": "Why a charge was declined"},
        "needed_scope": {"type": "string", "description": "The scope a key lacked (403)"},
    },
}
CUSTOMER = {"type": "object", "required": ["id", "name"], "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "email": {"type": ["string", "null"]},
    "phone": {"type": ["string", "null"], "description": "E.164"},
    "external_id": {"type": ["string", "null"], "description": "The id another system knows them by"},
    "location": {"type": ["string", "null"], "description": "The location they are served at (its sales tax)"},
    "service_address": {"type": ["string", "null"]}}}
CUSTOMER_PAGE = {"type": "object", "required": ["customers", "limit"], "properties": {
    "customers": {"type": "array", "items": {"$ref": "#/components/schemas/Customer"}},
    "limit": {"type": "integer"}, "has_more": {"type": "boolean"},
    "next": {"type": ["string", "null"], "description": "The next page's URL"}, "offset": {"type": "integer"}}}

_TEXT_OR_NULL = {"type": ["string", "null"]}
_MONEY_TEXT = {"type": "string", "examples": ["250.00"]}
MEMBERSHIP = {"type": "object", "required": ["id", "customer", "status", "plan", "tier", "issued_on", "period",
                                             "expires_on", "auto_renewal", "services"], "properties": {
    "id": {"type": "string"},
    "customer": {"type": "object", "required": ["id", "name"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "email": _TEXT_OR_NULL}},
    "status": {"enum": ["active", "past_due", "suspended", "cancelled", "expired"],
               "description": "past_due, suspended: active, with a payment failed (see Billing)"},
    "plan": {"type": "string", "description": "The plan version it is pinned to, id@version"},
    "plan_name": {"type": "string"}, "tier": {"type": "string"}, "tier_name": {"type": "string"},
    "issued_on": {"type": "string", "format": "date"},
    "period": {"type": "object", "required": ["kind", "index", "start", "end"], "properties": {
        "kind": {"type": "string"}, "index": {"type": "integer"},
        "start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"}}},
    "expires_on": {"type": "string", "format": "date"}, "auto_renewal": {"type": "boolean"},
    "members_choose_renewal": {"type": "boolean", "description": "The member may turn renewal off and on "
                               "themselves (the plan lets them)"},
    "ended_on": {"type": ["string", "null"], "format": "date"},
    "allowance": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["amount", "balance"], "properties": {
        k: _MONEY_TEXT for k in ("amount", "balance", "overdraft_limit", "overdraft_used", "overdraft_left",
                                 "available")}}]},
    "services": {"type": "array", "items": {"type": "object", "required": ["code", "quantity", "used", "left"],
                                            "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                                                           "quantity": {"type": "integer"},
                                                           "used": {"type": "integer"},
                                                           "left": {"type": "integer"}}}},
    "discount_percent": {"type": "string"}}}
EVENT = {"type": "object", "required": ["id", "type", "customer", "occurred_at", "local_date", "status", "result"],
         "properties": {"id": {"type": "string"}, "type": {"type": "string"}, "customer": {"type": "string"},
                        "membership": _TEXT_OR_NULL, "occurred_at": {"type": "string"},
                        "local_date": {"type": "string", "format": "date"},
                        "status": {"enum": ["processed", "declined"]}, "payload": {"type": "object"},
                        "result": {"type": "object", "description": "The answer it was given, ledger entries "
                                   "included"}}}
WEBHOOK_ENDPOINT = {"type": "object", "required": ["id", "url", "event_types", "enabled"], "properties": {
    "id": {"type": "integer"}, "url": {"type": "string"}, "event_types": {"type": "array", "items": {"type": "string"}},
    "description": _TEXT_OR_NULL, "enabled": {"type": "boolean"}, "disabled_reason": _TEXT_OR_NULL,
    "created_at": _TEXT_OR_NULL}}
COMPANY = {"type": "object", "required": ["slug", "name", "timezone"], "properties": {
    "slug": {"type": "string"}, "name": {"type": "string"}, "timezone": {"type": "string"}, "email": _TEXT_OR_NULL,
    "webhook_url": _TEXT_OR_NULL, "quiet_hours": _TEXT_OR_NULL, "webhook_secret_set": {"type": "boolean"},
    "webhook_disabled_reason": _TEXT_OR_NULL, "phone_region": {"type": "string"},
    "future_hours": {"type": "integer"}, "backdate_days": {"type": "integer"},
    "max_periods_per_event": {"type": "integer"}, "adjustment_limit": _MONEY_TEXT,
    "adjustment_limit_points": {"type": "integer"}, "receipt_shows_balance": {"type": "boolean"},
    "brand_color": _TEXT_OR_NULL, "logo": {"type": "boolean"}}}

REPORT_SCHEDULE = {"type": "object", "required": ["id", "report", "cadence", "range", "format", "recipients",
                                                  "next_run_on", "active"], "properties": {
    "id": {"type": "integer"}, "report": {"type": "string"}, "cadence": {"enum": ["weekly", "monthly"]},
    "weekday": _TEXT_OR_NULL, "day": {"type": ["integer", "null"]}, "range": {"type": "string"},
    "filters": {"type": "object", "additionalProperties": {"type": "string"},
                "description": "location (its id), plan, tier"},
    "format": {"enum": ["pdf", "xlsx", "csv"]}, "recipients": {"type": "array", "items": {"type": "string"}},
    "next_run_on": {"type": "string", "format": "date", "description": "The day of the next run (company time)"},
    "last_run_at": _TEXT_OR_NULL, "last_status": _TEXT_OR_NULL, "created_by": {"type": "string"},
    "active": {"type": "boolean"}}}


def _page_of(name: str, item: str) -> dict[str, Any]:
    return {"type": "object", "required": [name, "limit", "has_more"], "properties": {
        name: {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}, "limit": {"type": "integer"},
        "has_more": {"type": "boolean"}, "next": {"type": ["string", "null"], "description": "The next page's URL"}}}


RESPONSES = {"Membership": MEMBERSHIP, "MembershipPage": _page_of("memberships", "Membership"),
             "MembershipList": {"type": "object", "required": ["memberships"], "properties": {
                 "memberships": {"type": "array", "items": {"$ref": "#/components/schemas/Membership"}}}},
             "Event": EVENT, "EventPage": _page_of("events", "Event"), "WebhookEndpoint": WEBHOOK_ENDPOINT,
             "WebhookEndpointList": {"type": "object", "required": ["webhook_endpoints"], "properties": {
                 "webhook_endpoints": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookEndpoint"}},
                 "event_types": {"type": "object", "additionalProperties": {"type": "string"}}}},
             "Company": COMPANY, "ReportSchedule": REPORT_SCHEDULE,
             "ReportScheduleList": {"type": "object", "required": ["report_schedules"], "properties": {
                 "report_schedules": {"type": "array", "items": {"$ref": "#/components/schemas/ReportSchedule"}}}}}


def _local(node: Any, owner: str) -> Any:
    """A schema with every $ref pointing inside this document: another file's definitions at
    #/components/schemas/<file>, its own at #/components/schemas/<owner>."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("$id", "$schema"):
                continue
            if k == "$ref" and isinstance(v, str):
                m = _EXTERNAL.match(v)
                if m:
                    v = f"#/components/schemas/{m.group(1)}{(m.group(2) or '#')[1:]}"
                elif v.startswith("#/"):
                    v = f"#/components/schemas/{owner}{v[1:]}"
            out[k] = _local(v, owner)
        return out
    if isinstance(node, list):
        return [_local(v, owner) for v in node]
    return node


def _operation(e: contract.Endpoint) -> dict[str, Any]:
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in re.findall(r"{(\w+)}", e.path)]
    params += [{"name": n, "in": "query", "required": False, "schema": s, "description": d} for n, s, d in e.query]
    if e.idempotent:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
                       "description": f"The same key and request answer the first response again (kept "
                                      f"{idempotency.KEPT_HOURS} h); the key with another request is 422; "
                                      "while the first still runs, 409."})
    responses: dict[str, Any] = {}
    for status, shape in e.answers.items():
        if shape == "empty":
            responses[str(status)] = {"description": "Done; no content"}
            continue
        if shape == "report":
            responses[str(status)] = {"description": "The report: JSON (format=json, the default), or the file asked "
                                      "for", "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
            continue
        if shape == "pdf":
            responses[str(status)] = {"description": "The document, as PDF", "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
            continue
        media = "application/problem+json" if shape == "Problem" else "application/json"
        schema = {"type": "object"} if shape == "object" else {"$ref": f"#/components/schemas/{shape}"}
        responses[str(status)] = {"description": _STATUS_TEXT.get(status, "Answer"),
                                  "content": {media: {"schema": schema}}}
    for status, text in ((401, "No key, or an unknown or revoked one"), (403, "The key lacks the scope"),
                         (429, "Past the key's rate limit (see Retry-After)")):
        responses[str(status)] = {"description": text, "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    op: dict[str, Any] = {"operationId": e.operation, "summary": e.summary, "parameters": params,
                          "responses": responses, "security": [{"apiKey": [e.scope]}],
                          "x-scope": e.scope, "description": f"Needs the `{e.scope}` scope."}
    if e.body:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{e.body}"}}}}
    return op


_STATUS_TEXT = {200: "OK", 201: "Created (a charge approved)", 202: "Accepted: runs in the background",
                402: "Declined: the reason, and what is available", 404: "Not found in the key's company",
                422: "Invalid: every problem with its field"}


WEBHOOK_BODY = {
    "type": "object", "required": ["type", "timestamp", "id", "data"],
    "properties": {
        "type": {"type": "string", "description": "The event type"},
        "timestamp": {"type": "string", "format": "date-time", "description": "When the message was queued"},
        "id": {"type": "string", "description": "The message id (also the webhook-id header): the same on every "
               "retry, so a receiver drops copies"},
        "data": {"type": "object", "required": ["event", "customer", "result"], "properties": {
            "event": {"type": "object", "description": "The Keepwell event: id, type, occurred_at, local_date, status"},
            "customer": {"type": "object", "description": "id and name"},
            "membership": {"type": ["string", "null"]},
            "result": {"type": "object", "description": "The event's answer, as GET /events/{id} gives it, "
                       "ledger entries included"}}}}}


def _webhooks() -> dict[str, Any]:
    """What subscribed endpoints receive: one POST per event type, signed per Standard Webhooks
    (webhook-id, webhook-timestamp, webhook-signature)."""
    return {t: {"post": {"summary": summary, "operationId": f"webhook_{t.replace('.', '_')}",
                         "description": "Verify the webhook-signature header with the company's whsec_ secret "
                                        "(any Standard Webhooks library) before trusting the body.",
                         "requestBody": {"content": {"application/json": {"schema": WEBHOOK_BODY}}},
                         "responses": {"200": {"description": "Received (any 2xx); 410 turns the endpoint off, "
                                                              "anything else is retried for about three days"}}}}
            for t, summary in webhooks.TYPES.items()}


@cache
def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {name: _local(copy.deepcopy(rulesets.schema_document(name)), name)
                               for name in SCHEMA_FILES}
    schemas.update(Problem=PROBLEM, Customer=CUSTOMER, CustomerPage=CUSTOMER_PAGE, **copy.deepcopy(RESPONSES))
    schemas.update({k: copy.deepcopy(v) for k, v in contract.BODIES.items()})
    paths: dict[str, Any] = {}
    for e in contract.ENDPOINTS:
        paths.setdefault(e.path, {})[e.method] = _operation(e)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Keepwell REST API", "version": "1",
                 "description": "Memberships and rewards for home-service contractors. Authenticate with "
                                "`Authorization: Bearer <key>`; each key acts for one company within its scopes."},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "webhooks": _webhooks(),
        "components": {"schemas": schemas, "securitySchemes": {"apiKey": {
            "type": "http", "scheme": "bearer",
            "description": "Scopes: " + "; ".join(f"`{k}`: {v}" for k, v in apikeys.SCOPES.items())}}},
    }
