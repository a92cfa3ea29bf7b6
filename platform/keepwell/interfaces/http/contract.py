"""The REST API's contract, in one place: the JSON Schema of each request body (the views
validate with these, `validated`), and the table of endpoints (path, scope, body, answers) that
the OpenAPI document (`openapi.py`) is generated from. A test checks that every route of the API
is in the table and the table has no route the app lacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from ...kernel.errors import InvalidDocument, Problem
from ...usecases.webhooks import TYPES as WEBHOOK_TYPES

MONEY = {"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,2})?$", "examples": ["250.00"]}
DAY = {"type": "string", "format": "date", "examples": ["2026-03-01"]}
ID = {"type": "string", "minLength": 1, "maxLength": 200}

BODIES: dict[str, dict[str, Any]] = {
    "CustomerIn": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Full name"},
                       "email": {"type": ["string", "null"], "maxLength": 254, "format": "email"},
                       "phone": {"type": ["string", "null"], "maxLength": 40,
                                 "description": "With area code, or international (+13035550100)"}}},
    "CustomerUpdate": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                       "email": {"type": "string", "maxLength": 254, "format": "email"},
                       "phone": {"type": "string", "maxLength": 40}}},
    "EnrollmentIn": {
        "type": "object", "required": ["customer", "plan", "on"], "additionalProperties": False,
        "properties": {"customer": ID, "plan": {**ID, "description": "The Plan ruleset's id"},
                       "on": {**DAY, "description": "The day the membership starts (company time)"},
                       "tier": {**ID, "description": "A tier of the plan (default: its first)"},
                       "id": {**ID, "description": "Idempotency key (default enroll:CUSTOMER:PLAN:DAY)"},
                       "allow_second": {"type": "boolean", "description": "A second active membership of "
                                        "the same plan is refused unless true"}}},
    "SimulationIn": {
        "type": "object", "required": ["draft", "from", "to"],
        "properties": {"draft": {"description": "A ruleset document, or a list of them",
                                 "oneOf": [{"$ref": "#/components/schemas/ruleset"},
                                           {"type": "array", "items": {"$ref": "#/components/schemas/ruleset"}}]},
                       "from": DAY, "to": DAY,
                       "events": {"type": "array", "items": {"$ref": "#/components/schemas/event"},
                                  "description": "A sample stream instead of the recorded events"}}},
    "CancelIn": {"type": "object", "additionalProperties": False,
                 "properties": {"on": {**DAY, "description": "The last day (default: today, company time)"}}},
    "TierChangeIn": {"type": "object", "required": ["tier"], "additionalProperties": False,
                     "properties": {"tier": {**ID, "description": "A tier of the membership's plan"},
                                    "on": {**DAY, "description": "The day of the change (default: today)"}}},
    "ApiKeyIn": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 120,
                                "description": "What uses the key (\"front desk POS\")"},
                       "scopes": {"type": "array", "minItems": 1, "uniqueItems": True,
                                  "items": {"enum": ["read", "events:write", "customers:write", "memberships:write",
                                                     "adjustments:write", "admin"]}}}},
    "WebhookEndpointIn": {
        "type": "object", "required": ["url", "event_types"], "additionalProperties": False,
        "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 500, "format": "uri",
                               "description": "Where the events go (http or https)"},
                       "event_types": {"type": "array", "minItems": 1, "uniqueItems": True,
                                       "items": {"enum": list(WEBHOOK_TYPES)}},
                       "description": {"type": "string", "maxLength": 300,
                                       "description": "What receives them (\"bookkeeping sync\")"}}},
    "WebhookEndpointUpdate": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 500, "format": "uri"},
                       "event_types": {"type": "array", "minItems": 1, "uniqueItems": True,
                                       "items": {"enum": list(WEBHOOK_TYPES)}},
                       "description": {"type": "string", "maxLength": 300},
                       "enabled": {"type": "boolean", "description": "true turns an endpoint that was turned off "
                                   "(after a 410 or days of failures) back on"}}},
    "EventsIn": {"oneOf": [{"$ref": "#/components/schemas/event"},
                           {"type": "object", "required": ["events"], "properties": {
                               "events": {"type": "array", "maxItems": 500,
                                          "items": {"$ref": "#/components/schemas/event"}}}}]},
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # OpenAPI style: /customers/{customer_id}
    operation: str  # the view's name (its Flask endpoint is api.<operation>)
    summary: str
    scope: str
    body: str | None = None
    query: tuple[tuple[str, dict[str, Any], str], ...] = ()  # (name, schema, description)
    answers: dict[int, str] = field(default_factory=lambda: {200: "object"})
    idempotent: bool = False  # takes an Idempotency-Key header


PAGE = (("limit", {"type": "integer", "minimum": 0, "maximum": 500, "default": 50}, "Page size"),)
ENDPOINTS = (
    Endpoint("post", "/events", "post_events", "Post one event, or a batch of up to 500", "events:write",
             "EventsIn", answers={201: "object", 200: "object", 402: "Problem", 422: "Problem"}),
    Endpoint("get", "/events", "list_events", "Stored events, oldest first, a page at a time", "read",
             query=PAGE + (("starting_after", {"type": "string", "maxLength": 200}, "The last event id of the "
                            "previous page"), ("customer", {"type": "string"}, "One customer's"),
                           ("type", {"type": "string"}, "One type's (purchase, service_completed...)")),
             answers={200: "object", 422: "Problem"}),
    Endpoint("get", "/events/{event_id}", "get_event", "One stored event: what was sent, its status and result",
             "read", answers={200: "object", 404: "Problem"}),
    Endpoint("post", "/customers", "add_customer", "Add a customer", "customers:write", "CustomerIn",
             answers={201: "Customer", 409: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/customers", "list_customers", "Customers, a page at a time, found by email, phone or name",
             "read", query=PAGE + (("starting_after", {"type": "string", "maxLength": 200},
                                    "The last id of the previous page"),
                                   ("email", {"type": "string"}, "Exact email"),
                                   ("phone", {"type": "string"}, "Phone number, any format"),
                                   ("q", {"type": "string"}, "Part of the name"),
                                   ("offset", {"type": "integer", "minimum": 0, "maximum": 999_999_999},
                                    "Old-style paging")),
             answers={200: "CustomerPage", 422: "Problem"}),
    Endpoint("get", "/customers/{customer_id}", "get_customer", "One customer", "read",
             answers={200: "Customer", 404: "Problem"}),
    Endpoint("patch", "/customers/{customer_id}", "update_customer", "Change a customer's name, email or phone",
             "customers:write", "CustomerUpdate", answers={200: "Customer", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/customers/{customer_id}/memberships", "customer_memberships", "A customer's memberships",
             "read", answers={200: "object", 404: "Problem"}),
    Endpoint("get", "/customers/{customer_id}/points", "customer_points", "Points balance, lots and history",
             "read", answers={200: "object", 404: "Problem"}),
    Endpoint("post", "/enrollments", "enroll", "Enrol a customer in a plan", "memberships:write", "EnrollmentIn",
             answers={201: "object", 200: "object", 402: "Problem", 404: "Problem", 409: "Problem", 422: "Problem"},
             idempotent=True),
    Endpoint("get", "/memberships/{membership_id}", "membership", "A membership: plan, period, balances",
             "read", answers={200: "object", 404: "Problem"}),
    Endpoint("post", "/memberships/{membership_id}/cancel", "cancel_membership", "Cancel a membership on a day",
             "memberships:write", "CancelIn", answers={200: "object", 402: "Problem", 404: "Problem",
                                                        422: "Problem"}),
    Endpoint("post", "/memberships/{membership_id}/tier", "change_tier", "Move a membership to another tier "
             "(it ends; one on the new tier starts, in one transaction)", "memberships:write", "TierChangeIn",
             answers={201: "object", 402: "Problem", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/memberships/{membership_id}/statement", "statement", "Statement lines of a date range",
             "read", query=(("from", DAY, "First day"), ("to", DAY, "Last day")),
             answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/rulesets", "list_rulesets", "The company's rulesets", "read"),
    Endpoint("get", "/api_keys", "list_api_keys", "The company's API keys (never their secrets)", "admin"),
    Endpoint("post", "/api_keys", "create_api_key", "A new API key; its secret is in this answer only", "admin",
             "ApiKeyIn", answers={201: "object", 409: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("delete", "/api_keys/{key_id}", "revoke_api_key", "Revoke a key: it stops working at once here, within "
             "the key cache's seconds elsewhere", "admin", answers={204: "empty", 404: "Problem"}),
    Endpoint("get", "/webhook_endpoints", "list_webhook_endpoints", "The company's webhook endpoints, and the event "
             "types they may subscribe to", "admin"),
    Endpoint("post", "/webhook_endpoints", "add_webhook_endpoint", "Subscribe a URL to event types", "admin",
             "WebhookEndpointIn", answers={201: "object", 409: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/webhook_endpoints/{endpoint_id}", "get_webhook_endpoint", "One webhook endpoint", "admin",
             answers={200: "object", 404: "Problem"}),
    Endpoint("patch", "/webhook_endpoints/{endpoint_id}", "update_webhook_endpoint", "Change an endpoint's URL, "
             "types or description, or turn it back on", "admin", "WebhookEndpointUpdate",
             answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("delete", "/webhook_endpoints/{endpoint_id}", "remove_webhook_endpoint", "Remove an endpoint", "admin",
             answers={204: "empty", 404: "Problem"}),
    Endpoint("get", "/webhook_endpoints/{endpoint_id}/deliveries", "webhook_deliveries", "The endpoint's delivery "
             "log: every message, newest first, with each attempt", "admin", query=PAGE,
             answers={200: "object", 404: "Problem"}),
    Endpoint("post", "/simulations", "simulate", "What a draft ruleset would change (202: runs on a worker)",
             "read", "SimulationIn", answers={200: "object", 202: "object", 409: "Problem", 422: "Problem"},
             idempotent=True),
    Endpoint("get", "/simulations/{job_id}", "simulation_status", "A background simulation's progress and report",
             "read", answers={200: "object", 404: "Problem"}),
)


def _validator(name: str) -> Draft202012Validator:
    from .openapi import document  # the components the bodies refer to

    doc = document()
    return Draft202012Validator({**BODIES[name], "components": doc["components"]},
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


_validators: dict[str, Draft202012Validator] = {}


def validated(name: str, body: Any) -> Any:
    """The body when it matches its schema; else every problem, each with its path."""
    v = _validators.get(name)
    if v is None:
        v = _validators[name] = _validator(name)
    problems = [Problem(".".join(map(str, e.absolute_path)) or "(body)", e.message)
                for e in sorted(v.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))]
    if problems:
        raise InvalidDocument("request body rejected", problems)
    return body
