"""The REST API's contract, in one place: the JSON Schema of each request body (the views
validate with these, `validated`), and the table of endpoints (path, scope, body, answers) that
the OpenAPI document (`openapi.py`) is generated from. A test checks that every route of the API
is in the table and the table has no route the app lacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ...kernel import schema_messages
from ...kernel.errors import InvalidDocument
from ...usecases.reports import CADENCES, RANGES, SCHEDULE_FORMATS, WEEKDAYS
from ...usecases.webhooks import TYPES as WEBHOOK_TYPES

MONEY = {"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,2})?$", "examples": ["250.00"]}
DAY = {"type": "string", "format": "date", "examples": ["2026-03-01"]}
# A location's address and own time zone ("" clears either).
LOCATION_MORE: dict[str, Any] = {
    "address": {"type": "string", "maxLength": 300, "description": "Street, town and postcode"},
    "timezone": {"type": "string", "maxLength": 64, "description": "IANA time zone when not the company's, e.g. "
                 "\"America/Denver\": its customers' quiet hours are kept in it"}}
ID = {"type": "string", "minLength": 1, "maxLength": 200}

BODIES: dict[str, dict[str, Any]] = {
    "CustomerIn": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Full name"},
                       "email": {"type": ["string", "null"], "maxLength": 254, "format": "email"},
                       "phone": {"type": ["string", "null"], "maxLength": 40,
                                 "description": "With area code, or international (+13035550100)"},
                       "external_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 100,
                                       "description": "The id another system (your POS) knows them by; one "
                                                      "customer each"},
                       "location": {"type": "string", "minLength": 1, "maxLength": 120,
                                    "description": "The location they are served at (id or name): its sales tax"},
                       "service_address": {"type": "string", "maxLength": 300}}},
    "CustomerUpdate": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                       "email": {"type": "string", "maxLength": 254, "format": "email"},
                       "phone": {"type": "string", "maxLength": 40},
                       "external_id": {"type": "string", "minLength": 1, "maxLength": 100},
                       "location": {"type": "string", "maxLength": 120,
                                    "description": "The location they are served at (id or name; empty: none)"},
                       "service_address": {"type": "string", "maxLength": 300},
                       "opt_out": {"type": "array", "uniqueItems": True, "items": {"enum": ["email", "sms", "webhook"]},
                                   "description": "Channels the customer no longer wants messages on"},
                       "opt_in": {"type": "array", "uniqueItems": True, "items": {"enum": ["email", "sms", "webhook"]},
                                  "description": "Channels allowed again"}}},
    "EnrollmentIn": {
        "type": "object", "required": ["customer", "plan", "on"], "additionalProperties": False,
        "properties": {"customer": ID, "plan": {**ID, "description": "The Plan ruleset's id"},
                       "on": {**DAY, "description": "The day the membership starts (company time)"},
                       "tier": {**ID, "description": "A tier of the plan (default: its first)"},
                       "id": {**ID, "description": "Idempotency key (default enroll:CUSTOMER:PLAN:DAY)"},
                       "allow_second": {"type": "boolean", "description": "A second active membership of "
                                        "the same plan is refused unless true"},
                       "cadence": {"enum": ["monthly", "quarterly", "yearly"],
                                   "description": "Bill the member at this cadence (one the plan prices for the "
                                                  "tier); leave out for a membership billed elsewhere"},
                       "referral_code": {"type": "string", "minLength": 4, "maxLength": 20,
                                         "description": "The code of the customer who referred this one"}}},
    "RedemptionIn": {
        "type": "object", "required": ["customer", "reward"], "additionalProperties": False,
        "properties": {"customer": ID, "reward": {**ID, "description": "The catalog reward's id"},
                       "quantity": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
                       "on": {**DAY, "description": "Day of the redemption (default: today)"},
                       "membership": {**ID, "description": "The membership a free service or a credit goes to"},
                       "ship_to": {"type": "string", "minLength": 1, "maxLength": 300},
                       "id": {**ID, "description": "Idempotency key (default: a new one)"}}},
    "PointsAdjustmentIn": {
        "type": "object", "required": ["amount", "reason"], "additionalProperties": False,
        "properties": {"amount": {"type": "integer", "minimum": -10**9, "maximum": 10**9,
                                  "description": "Points to add, negative to deduct"},
                       "reason": {"type": "string", "minLength": 1, "maxLength": 300},
                       "on": DAY, "id": {**ID, "description": "Idempotency key (default: a new one)"}}},
    "RedemptionChangeIn": {
        "type": "object", "additionalProperties": False,
        "properties": {"tracking": {"type": "string", "minLength": 1, "maxLength": 120},
                       "reason": {"type": "string", "minLength": 1, "maxLength": 400},
                       "on": {**DAY, "description": "Day of the change (default: today)"}}},
    "SimulationIn": {
        "type": "object", "required": ["draft", "from", "to"],
        "properties": {"draft": {"description": "A ruleset document, or a list of them",
                                 "oneOf": [{"$ref": "#/components/schemas/ruleset"},
                                           {"type": "array", "items": {"$ref": "#/components/schemas/ruleset"}}]},
                       "from": DAY, "to": DAY,
                       "events": {"type": "array", "items": {"$ref": "#/components/schemas/event"},
                                  "description": "A sample stream instead of the recorded events"}}},
    "PaymentMethodIn": {
        "type": "object", "additionalProperties": False,
        "properties": {"test_card": {"enum": ["success", "decline", "insufficient_funds", "expired", "hard_decline",
                                              "network_error"],
                                     "description": "A sandbox test card (how its charges answer)"},
                       "gateway": {"enum": ["sandbox", "stripe"], "description": "The gateway that tokenised the "
                                   "card (with token)"},
                       "token": {"type": "string", "minLength": 1, "maxLength": 200,
                                 "description": "The gateway's token for the card (never a card number)"},
                       "default": {"type": "boolean", "description": "Make it the customer's default card"}},
        "oneOf": [{"required": ["test_card"]}, {"required": ["gateway", "token"]}]},
    "LocationIn": {"type": "object", "required": ["name"], "additionalProperties": False,
                   "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 120},
                                  "tax_rate": {"type": "string", "maxLength": 12,
                                               "description": "Sales tax in percent, e.g. \"8.25\" (default 0)"},
                                  "tax_name": {"type": "string", "maxLength": 60,
                                               "description": "What invoices call it (default \"Sales tax\")"},
                                  **LOCATION_MORE}},
    "LocationUpdate": {"type": "object", "additionalProperties": False, "minProperties": 1,
                       "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 120},
                                      "tax_rate": {"type": "string", "maxLength": 12,
                                                   "description": "Sales tax in percent, e.g. \"8.25\"; invoices "
                                                   "issued from now on charge it"},
                                      "tax_name": {"type": "string", "maxLength": 60}, **LOCATION_MORE}},
    "BillingRunIn": {"type": "object", "required": ["as_of"], "additionalProperties": False,
                     "properties": {"as_of": {**DAY, "description": "Invoice and collect what is due by this day"}}},
    "CancelIn": {"type": "object", "additionalProperties": False,
                 "properties": {"on": {**DAY, "description": "The last day (default: today, company time)"},
                                "at": {"enum": ["now", "period_end"], "description": "now (default): it ends on "
                                       "that day, refunded by the plan's terms; period_end: when the billing period "
                                       "holding that day ends, nothing prorated"}}},
    "TierChangeIn": {"type": "object", "required": ["tier"], "additionalProperties": False,
                     "properties": {"tier": {**ID, "description": "A tier of the membership's plan"},
                                    "on": {**DAY, "description": "The day of the change (default: today)"},
                                    "at": {"enum": ["now", "period_end"], "description": "now: on that day, the "
                                           "unused days credited and the rest charged at the new price; period_end: "
                                           "when the billing period ends (default: the plan's choice)"}}},
    "RenewalIn": {"type": "object", "required": ["auto_renewal"], "additionalProperties": False,
                  "properties": {"auto_renewal": {"type": "boolean", "description": "true: it renews at the end of "
                                                  "each period; false: it ends with the current one"}}},
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
    "RulesetsValidateIn": {
        "type": "object", "required": ["documents"], "additionalProperties": False,
        "properties": {"documents": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"type": "object"},
                                     "description": "Ruleset documents (Plan, EarningRules, NotificationTriggers)"}}},
    "RulesetIn": {
        "type": "object", "required": ["document"], "additionalProperties": False,
        "properties": {"document": {"type": "object", "description": "A ruleset document; saved as the draft of "
                                    "its ruleset (valid or not: the answer lists its problems)"},
                       "publish": {"type": "boolean", "default": False,
                                   "description": "Publish it as the next version (it must be valid)"},
                       "effective_from": {**DAY, "description": "When the published version takes effect "
                                          "(default: today, company time)"}}},
    "RollbackIn": {
        "type": "object", "required": ["to_version"], "additionalProperties": False,
        "properties": {"to_version": {"type": "integer", "minimum": 1, "maximum": 1_000_000,
                                      "description": "The version whose content is published again"},
                       "effective_from": {**DAY, "description": "Default: today"}}},
    "PackInstallIn": {
        "type": "object", "additionalProperties": False,
        "properties": {"values": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 200},
                                  "description": "The pack's parameters (GET /packs lists them), as text"},
                       "effective_from": {**DAY, "description": "Default: in force at once, back-dated events "
                                          "included"}}},
    "CompanyUpdate": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                       "email": {"type": "string", "maxLength": 254, "format": "email"},
                       "timezone": {"type": "string", "minLength": 1, "maxLength": 64, "examples": ["America/Denver"]},
                       "quiet_hours": {"type": "string", "maxLength": 11, "examples": ["21:00-08:00"],
                                       "description": "No email or text between these (company time); \"\" for none"},
                       "webhook_url": {"type": "string", "minLength": 1, "maxLength": 500, "format": "uri",
                                       "description": "Where webhook-channel notifications go"},
                       "phone_region": {"type": "string", "minLength": 2, "maxLength": 2, "examples": ["US"]},
                       "future_hours": {"type": "integer", "minimum": 0, "maximum": 744},
                       "backdate_days": {"type": "integer", "minimum": 1, "maximum": 36_600},
                       "max_periods_per_event": {"type": "integer", "minimum": 1, "maximum": 1200},
                       "adjustment_limit": {**MONEY, "description": "The largest manual allowance adjustment"},
                       "adjustment_limit_points": {"type": "integer", "minimum": 1, "maximum": 10**12},
                       "receipt_shows_balance": {"type": "boolean", "description": "Whether the receipt lines a "
                                                 "POS prints for a member show the allowance left and the overdraft"},
                       "brand_color": {"type": "string", "maxLength": 7, "examples": ["#0b5cad"],
                                       "description": "The member portal's colour, dark enough for white text; \"\" "
                                       "for Keepwell's own"}}},
    "MigrateIn": {
        "type": "object", "required": ["plan", "to"], "additionalProperties": False,
        "properties": {"plan": {**ID, "description": "The Plan ruleset's id"},
                       "to": {**ID, "description": "The version to move to, as id@N (vip@3)"},
                       "apply": {"type": "boolean", "default": False,
                                 "description": "false: only what would move, and what stops any"}}},
    "ReplayIn": {
        "type": "object", "required": ["from", "to"], "additionalProperties": False,
        "properties": {"from": {**DAY, "description": "First day (company time) of the messages to send again"},
                       "to": {**DAY, "description": "Last day, included"}}},
    "ReportScheduleIn": {
        "type": "object", "required": ["report", "cadence", "recipients"], "additionalProperties": False,
        "properties": {
            "report": {"type": "string", "minLength": 1, "maxLength": 64, "title": "Report",
                       "description": "The report to send (GET /reports names them)", "examples": ["churn"]},
            "cadence": {"enum": list(CADENCES), "title": "Cadence",
                        "description": "weekly (on `weekday`) or monthly (on `day`)"},
            "weekday": {"enum": list(WEEKDAYS), "title": "Weekday", "description": "Weekly: the day it runs on"},
            "day": {"type": "integer", "minimum": 1, "maximum": 28, "title": "Day of month",
                    "x-messages": {"minimum": "must be a number from 1 to 28", "maximum": "must be a number from "
                                   "1 to 28", "type": "must be a number from 1 to 28"},
                    "description": "Monthly: the day of the month it runs on, 1 to 28"},
            "range": {"enum": list(RANGES), "title": "Range", "description": "What each run covers, relative to the "
                      "run's day: " + "; ".join(f"{k}: {v}" for k, v in RANGES.items())
                      + " (default: last-week weekly, last-month monthly)"},
            "format": {"enum": list(SCHEDULE_FORMATS), "default": "pdf", "title": "Format",
                       "description": "The file attached to the email"},
            "recipients": {"type": "array", "minItems": 1, "maxItems": 20, "title": "Recipients",
                           "items": {"type": "string", "maxLength": 254, "title": "Recipient"},
                           "description": "Email addresses; each gets one email per run"},
            "location": {"type": "string", "minLength": 1, "maxLength": 120,
                         "description": "Only this location's customers (id or name)"},
            "plan": {"type": "string", "minLength": 1, "maxLength": 120, "description": "Only this plan's memberships"},
            "tier": {"type": "string", "minLength": 1, "maxLength": 120,
                     "description": "Only this tier's memberships"}}},
    "EventsIn": {"oneOf": [{"$ref": "#/components/schemas/event"},
                           {"type": "object", "required": ["events"], "properties": {
                               "events": {"type": "array", "maxItems": 500,
                                          "description": "Events as #/components/schemas/event describes them; "
                                          "each is checked alone: one that is not valid is rejected in the "
                                          "answer with every problem, and the others apply",
                                          "items": {"type": "object"}}}}]},
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
             answers={200: "EventPage", 422: "Problem"}),
    Endpoint("get", "/events/{event_id}", "get_event", "One stored event: what was sent, its status and result",
             "read", answers={200: "Event", 404: "Problem"}),
    Endpoint("post", "/customers", "add_customer", "Add a customer", "customers:write", "CustomerIn",
             answers={201: "Customer", 409: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/customers", "list_customers", "Customers, a page at a time, found by email, phone or name",
             "read", query=PAGE + (("starting_after", {"type": "string", "maxLength": 200},
                                    "The last id of the previous page"),
                                   ("email", {"type": "string"}, "Exact email"),
                                   ("phone", {"type": "string"}, "Phone number, any format"),
                                   ("q", {"type": "string"}, "Part of the name"),
                                   ("external_id", {"type": "string"}, "The id another system knows them by"),
                                   ("offset", {"type": "integer", "minimum": 0, "maximum": 999_999_999},
                                    "Old-style paging")),
             answers={200: "CustomerPage", 422: "Problem"}),
    Endpoint("get", "/customers/{customer_id}", "get_customer", "One customer", "read",
             answers={200: "Customer", 404: "Problem"}),
    Endpoint("patch", "/customers/{customer_id}", "update_customer", "Change a customer's name, email or phone",
             "customers:write", "CustomerUpdate", answers={200: "Customer", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/customers/{customer_id}/payment_methods", "list_payment_methods", "A customer's cards "
             "(token, brand, last four digits, expiry: never a number)", "read",
             answers={200: "object", 404: "Problem"}),
    Endpoint("post", "/customers/{customer_id}/payment_methods", "add_payment_method", "Add a card: a sandbox test "
             "card, or a gateway's token", "customers:write", "PaymentMethodIn",
             answers={201: "object", 402: "Problem", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("post", "/payment_methods/{payment_method_id}/default", "default_payment_method", "Make a card its "
             "customer's default (unpaid invoices are charged to it at the next run)", "customers:write",
             answers={200: "object", 402: "Problem", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("delete", "/payment_methods/{payment_method_id}", "remove_payment_method", "Stop charging a card",
             "customers:write", answers={200: "object", 404: "Problem"}),
    Endpoint("get", "/locations", "list_locations", "The company's locations and their sales tax", "read"),
    Endpoint("post", "/locations", "add_location", "Add a location with its address, time zone and sales tax",
             "admin", "LocationIn", answers={201: "object", 409: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("patch", "/locations/{location_id}", "update_location", "Change a location's name, address, time "
             "zone or sales tax", "admin", "LocationUpdate",
             answers={200: "object", 404: "Problem", 409: "Problem", 422: "Problem"}),
    Endpoint("post", "/billing/run", "run_billing", "Invoice and collect what is due by a day (what the workers do "
             "as due work)", "admin", "BillingRunIn", answers={200: "object", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/customers/{customer_id}/memberships", "customer_memberships", "A customer's memberships",
             "read", answers={200: "MembershipList", 404: "Problem"}),
    Endpoint("get", "/customers/{customer_id}/points", "customer_points", "Points balance, pending and available "
             "points, lots with their status, loyalty tier", "read", query=(("on", DAY, "As of this day (today)"),),
             answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("post", "/customers/{customer_id}/points/adjustments", "adjust_points", "A manual points adjustment "
             "with its reason (the key's name is recorded as who made it)", "adjustments:write", "PointsAdjustmentIn",
             answers={201: "object", 200: "object", 402: "Problem", 404: "Problem", 422: "Problem"},
             idempotent=True),
    Endpoint("post", "/customers/{customer_id}/referral_code", "referral_code", "The customer's referral code "
             "(made on first ask)", "customers:write", answers={200: "object", 404: "Problem"}),
    Endpoint("get", "/customers/{customer_id}/referrals", "customer_referrals", "Who joined with the customer's "
             "code, and where each referral stands", "read", answers={200: "object", 404: "Problem"}),
    Endpoint("get", "/rewards", "list_rewards", "The reward catalog in force, with stock left", "read",
             query=(("on", DAY, "The catalog in force on this day (today)"),), answers={200: "object", 422: "Problem"}),
    Endpoint("post", "/rewards/redemptions", "redeem_reward", "Redeem a catalog reward for a customer",
             "rewards:write", "RedemptionIn", answers={201: "object", 200: "object", 402: "Problem",
                                                       404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/rewards/redemptions", "list_redemptions", "Redemptions, newest first (status open: the "
             "fulfilment queue)", "read",
             query=PAGE + (("status", {"enum": ["open", "pending", "ordered", "shipped", "delivered", "fulfilled",
                                                "cancelled"]}, "Status"),
                           ("customer", {"type": "string"}, "One customer's"),
                           ("offset", {"type": "integer", "minimum": 0, "maximum": 999_999_999}, "Rows to skip")),
             answers={200: "object", 422: "Problem"}),
    Endpoint("get", "/rewards/redemptions/{redemption_id}", "get_redemption", "One redemption", "read",
             answers={200: "object", 404: "Problem"}),
    Endpoint("post", "/rewards/redemptions/{redemption_id}/{action}", "change_redemption", "Fulfil (one step on), "
             "ship, deliver or cancel a redemption (cancel: points back to the same lots)", "rewards:write",
             "RedemptionChangeIn", answers={200: "object", 402: "Problem", 404: "Problem", 422: "Problem"},
             idempotent=True),
    Endpoint("get", "/points/liability", "points_liability", "Points outstanding and their liability; earned, "
             "redeemed and expired per month; breakage", "read",
             query=(("from", DAY, "First day (12 months back)"), ("to", DAY, "Last day (today)")),
             answers={200: "object", 422: "Problem"}),
    Endpoint("post", "/enrollments", "enroll", "Enrol a customer in a plan", "memberships:write", "EnrollmentIn",
             answers={201: "object", 200: "object", 402: "Problem", 404: "Problem", 409: "Problem", 422: "Problem"},
             idempotent=True),
    Endpoint("get", "/memberships", "list_memberships", "Memberships, a page at a time, by customer, plan and "
             "status", "read", query=PAGE + (("starting_after", {"type": "string", "maxLength": 200},
                                               "The last membership id of the previous page"),
                                              ("customer", {"type": "string"}, "One customer's"),
                                              ("plan", {"type": "string"}, "One plan's (any version)"),
                                              ("status", {"enum": ["active", "past_due", "suspended",
                                                                   "cancelled", "expired"]}, "Status")),
             answers={200: "MembershipPage", 422: "Problem"}),
    Endpoint("get", "/memberships/{membership_id}/cancel_preview", "cancel_preview", "What cancelling on a day "
             "would do and refund (nothing changes)", "read",
             query=(("on", DAY, "The last day (default: today)"),
                    ("at", {"enum": ["now", "period_end"]}, "now (default) or at the billing period's end")),
             answers={200: "object", 402: "Problem", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/memberships/{membership_id}/tier_preview", "tier_preview", "What changing tier would "
             "credit, charge and ask now (nothing changes)", "read",
             query=(("tier", ID, "The tier to move to"), ("on", DAY, "The day of the change (default: today)"),
                    ("at", {"enum": ["now", "period_end"]}, "now, or at the billing period's end")),
             answers={200: "object", 402: "Problem", 404: "Problem", 422: "Problem"}),
    Endpoint("post", "/memberships/migrate", "migrate_memberships", "Move a plan's active memberships to another "
             "version (preview, or apply)", "admin", "MigrateIn", answers={200: "object", 404: "Problem",
                                                                            422: "Problem"}, idempotent=True),
    Endpoint("get", "/invoices", "list_invoices", "A membership's or a customer's invoices", "read",
             query=(("membership", {"type": "string"}, "One membership's"), ("customer", {"type": "string"},
                                                                           "One customer's")),
             answers={200: "object", 422: "Problem"}),
    Endpoint("get", "/invoices/{number}", "get_invoice", "One invoice, with its lines", "read",
             answers={200: "object", 404: "Problem"}),
    Endpoint("get", "/memberships/{membership_id}", "membership", "A membership: plan, period, balances",
             "read", answers={200: "Membership", 404: "Problem"}),
    Endpoint("post", "/memberships/{membership_id}/cancel", "cancel_membership", "Cancel a membership on a day",
             "memberships:write", "CancelIn", answers={200: "object", 402: "Problem", 404: "Problem",
                                                        422: "Problem"}, idempotent=True),
    Endpoint("post", "/memberships/{membership_id}/tier", "change_tier", "Move a membership to another tier "
             "(it ends; one on the new tier starts, in one transaction)", "memberships:write", "TierChangeIn",
             answers={201: "object", 402: "Problem", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("post", "/memberships/{membership_id}/renewal", "set_renewal", "Turn automatic renewal off (the "
             "membership ends with its period) or on again (where the plan renews)", "memberships:write",
             "RenewalIn", answers={200: "object", 402: "Problem", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/memberships/{membership_id}/statement", "statement", "Statement lines of a date range",
             "read", query=(("from", DAY, "First day"), ("to", DAY, "Last day")),
             answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/memberships/{membership_id}/statement.pdf", "statement_pdf", "The membership statement of a "
             "date range as PDF (opening balance, every line, overdraft payments, closing balance)", "read",
             query=(("from", DAY, "First day"), ("to", DAY, "Last day")),
             answers={200: "pdf", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/reports", "list_reports", "The reports, what each shows and the filters it takes", "read"),
    Endpoint("get", "/reports/{report}", "run_report", "A report's figures (statement, membership-summary, churn, "
             "recurring-revenue, deferred-revenue, points, operations) as JSON, CSV, Excel or PDF", "read",
             query=(("from", DAY, "First day (default: twelve months to `to`)"),
                    ("to", DAY, "Last day (default: today, company time)"),
                    ("location", {"type": "string", "maxLength": 120}, "Only this location's customers (id or name)"),
                    ("plan", {"type": "string", "maxLength": 120}, "Only this plan's memberships"),
                    ("tier", {"type": "string", "maxLength": 120}, "Only this tier's memberships"),
                    ("membership", {"type": "string", "maxLength": 40}, "One membership (statement)"),
                    ("customer", {"type": "string", "maxLength": 40}, "One customer (statement)"),
                    ("format", {"enum": ["json", "csv", "xlsx", "pdf"], "default": "json"}, "What comes back")),
             answers={200: "report", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/report_schedules", "list_report_schedules", "The company's report schedules: what each sends, "
             "to whom, its next run and how the last went", "read", answers={200: "ReportScheduleList"}),
    Endpoint("post", "/report_schedules", "add_report_schedule", "Email a report weekly on a weekday or monthly on a "
             "day (1-28), for a range relative to each run; workers render and send it", "admin", "ReportScheduleIn",
             answers={201: "ReportSchedule", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("delete", "/report_schedules/{schedule_id}", "remove_report_schedule", "Stop a report schedule", "admin",
             answers={204: "empty", 404: "Problem"}),
    Endpoint("get", "/rulesets", "list_rulesets", "The company's rulesets", "read"),
    Endpoint("get", "/rulesets/{key}", "ruleset_versions", "A ruleset's versions, newest first", "read",
             answers={200: "object", 404: "Problem"}),
    Endpoint("get", "/rulesets/{key}/versions/{version}", "ruleset_version", "One version with its content",
             "read", answers={200: "object", 404: "Problem"}),
    Endpoint("get", "/rulesets/{key}/diff", "ruleset_diff", "What changed between two versions (a unified diff)",
             "read", query=(("from", {"type": "integer", "minimum": 1}, "A version"),
                            ("to", {"type": "integer", "minimum": 1}, "Another version")),
             answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("post", "/rulesets/validate", "validate_rulesets", "Every problem of these documents, each with its "
             "field (nothing is saved)", "read", "RulesetsValidateIn", answers={200: "object", 422: "Problem"},
             idempotent=True),
    Endpoint("post", "/rulesets", "save_ruleset", "Save a document as its ruleset's draft, or publish it",
             "admin", "RulesetIn", answers={200: "object", 201: "object", 409: "Problem", 422: "Problem"},
             idempotent=True),
    Endpoint("post", "/rulesets/{key}/rollback", "rollback_ruleset", "Publish an older version's content again as "
             "the next version", "admin", "RollbackIn", answers={201: "object", 404: "Problem", 422: "Problem"},
             idempotent=True),
    Endpoint("get", "/packs", "list_packs", "The industry template packs shipped, with their parameters", "read"),
    Endpoint("post", "/packs/{name}/install", "install_pack", "Publish every ruleset of a pack, all or none",
             "admin", "PackInstallIn", answers={201: "object", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/company", "company_settings", "The company's settings and limits", "read",
             answers={200: "Company"}),
    Endpoint("patch", "/company", "update_company", "Change the company's contact, time zone, quiet hours or "
             "limits", "admin", "CompanyUpdate", answers={200: "Company", 422: "Problem"}),
    Endpoint("get", "/api_keys", "list_api_keys", "The company's API keys (never their secrets)", "admin"),
    Endpoint("post", "/api_keys", "create_api_key", "A new API key; its secret is in this answer only", "admin",
             "ApiKeyIn", answers={201: "object", 409: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("delete", "/api_keys/{key_id}", "revoke_api_key", "Revoke a key: it stops working at once here, within "
             "the key cache's seconds elsewhere", "admin", answers={204: "empty", 404: "Problem"}),
    Endpoint("get", "/webhook_endpoints", "list_webhook_endpoints", "The company's webhook endpoints, and the event "
             "types they may subscribe to", "admin",
             answers={200: "WebhookEndpointList"}),
    Endpoint("post", "/webhook_endpoints", "add_webhook_endpoint", "Subscribe a URL to event types", "admin",
             "WebhookEndpointIn", answers={201: "WebhookEndpoint", 409: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/webhook_endpoints/{endpoint_id}", "get_webhook_endpoint", "One webhook endpoint", "admin",
             answers={200: "WebhookEndpoint", 404: "Problem"}),
    Endpoint("patch", "/webhook_endpoints/{endpoint_id}", "update_webhook_endpoint", "Change an endpoint's URL, "
             "types or description, or turn it back on", "admin", "WebhookEndpointUpdate",
             answers={200: "WebhookEndpoint", 404: "Problem", 422: "Problem"}),
    Endpoint("delete", "/webhook_endpoints/{endpoint_id}", "remove_webhook_endpoint", "Remove an endpoint", "admin",
             answers={204: "empty", 404: "Problem"}),
    Endpoint("post", "/webhook_endpoints/{endpoint_id}/replay", "replay_webhooks", "Send again what the endpoint "
             "missed (dead or skipped messages) between two days", "admin", "ReplayIn",
             answers={200: "object", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/webhook_endpoints/{endpoint_id}/deliveries", "webhook_deliveries", "The endpoint's delivery "
             "log: every message, newest first, with each attempt", "admin", query=PAGE,
             answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("post", "/simulations", "simulate", "What a draft ruleset would change (202: runs on a worker)",
             "read", "SimulationIn", answers={200: "object", 202: "object", 409: "Problem", 422: "Problem"},
             idempotent=True),
    Endpoint("get", "/simulations/{job_id}", "simulation_status", "A background simulation's progress and report",
             "read", answers={200: "object", 404: "Problem"}),
)


# Visits (#19): service durations, technicians, visits, calendar feeds (views in api_visits.py).
SERVICE_CODE = {"type": "string", "pattern": "^[A-Z0-9_]{1,40}$", "examples": ["AC_TUNE"]}
START = {"type": "string", "minLength": 10, "maxLength": 40, "examples": ["2026-10-30T09:00"],
         "description": "Start: company time, or with an offset"}
BODIES.update({
    "ServiceDurationIn": {
        "type": "object", "required": ["service_code", "minutes"], "additionalProperties": False,
        "properties": {"service_code": SERVICE_CODE,
                       "minutes": {"type": "integer", "minimum": 5, "maximum": 1440,
                                   "description": "How long a visit of this service takes"}}},
    "TechnicianIn": {
        "type": "object", "required": ["name", "hours"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                       "email": {"type": "string", "maxLength": 254, "format": "email"},
                       "hours": {"type": "object", "minProperties": 1, "maxProperties": 7,
                                 "additionalProperties": {"type": "string", "maxLength": 11,
                                                          "examples": ["08:00-17:00"]},
                                 "examples": [{"mon-fri": "08:00-17:00"}],
                                 "description": "Weekly hours per day (mon...sun, or a run like mon-fri), "
                                                "company time; days left out are off"},
                       "capacity": {"type": "integer", "minimum": 1, "maximum": 50, "default": 6,
                                    "description": "Most visits a day"},
                       "skills": {"type": "array", "maxItems": 100, "items": {
                           "type": "object", "required": ["service_code"], "additionalProperties": False,
                           "properties": {"service_code": SERVICE_CODE,
                                          "expires_on": {**DAY, "description": "When the certification ends"}}}},
                       "home_location": {"type": "string", "minLength": 1, "maxLength": 120,
                                         "description": "Where they start from (a location's id or name)"}}},
    "TimeOffIn": {
        "type": "object", "required": ["from"], "additionalProperties": False,
        "properties": {"from": {**DAY, "description": "First day off"},
                       "to": {**DAY, "description": "Last day off (default: the first)"},
                       "reason": {"type": "string", "maxLength": 200}}},
    "CalendarIn": {
        "type": "object", "additionalProperties": False,
        "properties": {"rotate": {"type": "boolean", "default": False,
                                  "description": "A new token: the old address stops working"}}},
    "VisitIn": {
        "type": "object", "required": ["customer", "service_code", "start"], "additionalProperties": False,
        "properties": {"customer": ID, "service_code": SERVICE_CODE, "start": START,
                       "technician": {**ID, "description": "Who (default: the least-loaded qualified one free)"},
                       "membership": {**ID, "description": "The membership whose included visit it is"},
                       "request": {**ID, "description": "The member's visit request it answers"}}},
    "RescheduleIn": {
        "type": "object", "required": ["start"], "additionalProperties": False,
        "properties": {"start": START, "technician": {**ID, "description": "Another technician"}}},
    "VisitCancelIn": {
        "type": "object", "required": ["by"], "additionalProperties": False,
        "properties": {"by": {"enum": ["member", "contractor", "technician"]},
                       "reason": {"type": "string", "maxLength": 300}}},
    "VisitCompleteIn": {
        "type": "object", "additionalProperties": False,
        "properties": {"amount": {**MONEY, "description": "What the work is charged when not covered"}}},
})
_VISIT_ANSWERS = {200: "object", 402: "Problem", 404: "Problem", 422: "Problem"}
ENDPOINTS += (
    Endpoint("get", "/service_durations", "list_service_durations", "How long a visit of each service takes",
             "read"),
    Endpoint("post", "/service_durations", "set_service_duration", "Set a service's visit duration (a visit of a "
             "service without one is refused)", "admin", "ServiceDurationIn",
             answers={200: "object", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/technicians", "list_technicians", "Technicians with their skills, hours and time off", "read"),
    Endpoint("post", "/technicians", "add_technician", "Add a technician: skills, weekly hours, capacity",
             "admin", "TechnicianIn", answers={201: "object", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/technicians/{technician_id}", "get_technician", "One technician", "read",
             answers={200: "object", 404: "Problem"}),
    Endpoint("post", "/technicians/{technician_id}/time_off", "add_time_off", "Days a technician is away",
             "admin", "TimeOffIn", answers={201: "object", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("post", "/technicians/{technician_id}/calendar", "technician_calendar", "The technician's private "
             "calendar feed (its token; rotate for a new one)", "admin", "CalendarIn",
             answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("post", "/customers/{customer_id}/calendar", "customer_calendar", "The customer's private calendar "
             "feed of their visits", "admin", "CalendarIn", answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("get", "/visits", "list_visits", "Visits by start, narrowed by technician, customer, days, status",
             "read", query=(("technician", {"type": "string", "maxLength": 40}, "One technician's"),
                            ("customer", {"type": "string", "maxLength": 40}, "One customer's"),
                            ("from", DAY, "From this day (company time)"), ("to", DAY, "To this day"),
                            ("status", {"enum": ["scheduled", "completed", "cancelled"]}, "Status")),
             answers={200: "object", 404: "Problem", 422: "Problem"}),
    Endpoint("post", "/visits", "schedule_visit", "Book a visit (402 with the reason: no skill, certification "
             "expired, outside hours, time off, capacity, overlap, no duration)", "visits:write", "VisitIn",
             answers={201: "object", 402: "Problem", 404: "Problem", 422: "Problem"}, idempotent=True),
    Endpoint("get", "/visits/{visit_id}", "get_visit", "One visit", "read", answers={200: "object", 404: "Problem"}),
    Endpoint("post", "/visits/{visit_id}/reschedule", "reschedule_visit", "Move a visit (checked as a new booking)",
             "visits:write", "RescheduleIn", answers=_VISIT_ANSWERS, idempotent=True),
    Endpoint("post", "/visits/{visit_id}/cancel", "cancel_visit", "Cancel a visit (the entitlement is untouched: "
             "it is drawn only when a visit is completed)", "visits:write", "VisitCancelIn",
             answers=_VISIT_ANSWERS, idempotent=True),
    Endpoint("post", "/visits/{visit_id}/complete", "complete_visit", "Complete a visit: its service_completed "
             "event draws the entitlement and earns points (once)", "visits:write", "VisitCompleteIn",
             answers=_VISIT_ANSWERS, idempotent=True),
)

# The query parameters each operation takes (the API refuses others).
QUERY_NAMES: dict[str, frozenset[str]] = {e.operation: frozenset(n for n, _s, _d in e.query) for e in ENDPOINTS}


def _validator(name: str) -> tuple[Draft202012Validator, Any]:
    from .openapi import document  # the components the bodies refer to

    doc = document()
    schema = {**BODIES[name], "components": doc["components"]}
    uri = f"urn:keepwell:body:{name}"
    resolver = Registry().with_resource(uri, Resource(schema, DRAFT202012)).resolver(base_uri=uri)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER), resolver


_validators: dict[str, tuple[Draft202012Validator, Any]] = {}


def validated(name: str, body: Any) -> Any:
    """The body when it matches its schema; else every problem in words, each with its path."""
    found = _validators.get(name)
    if found is None:
        found = _validators[name] = _validator(name)
    problems = schema_messages.problems(found[0], body, found[1], "(body)")
    if problems:
        raise InvalidDocument("request body rejected", problems)
    return body
