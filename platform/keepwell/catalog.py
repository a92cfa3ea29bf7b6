"""What events carry: the event types and the typed fields of their `data`.

The JSON Schema (schemas/event.schema.json) validates incoming events; this catalog gives the
compiler the field *types* it needs to turn "250.00" into cents and to name unknown fields.
tests/test_catalog.py keeps the two in step.
"""

from __future__ import annotations

MONEY, STRING, INTEGER = "money", "string", "integer"

# Events that customers' systems send (POS, field-service software) ...
EXTERNAL_EVENTS = ("purchase", "service_completed", "referral", "redemption", "adjustment")
# ... and the platform's own, raised by enrolment and due work.
PLATFORM_EVENTS = ("enrolled", "period_ended", "renewed", "expired", "cancelled", "points_expired", "migrated")
EVENT_TYPES = EXTERNAL_EVENTS + PLATFORM_EVENTS

_MEMBERSHIP_EVENT = {"membership": STRING, "reason": STRING}

DATA_FIELDS: dict[str, dict[str, str]] = {
    "purchase": {
        "amount": MONEY,
        "pay_with": STRING,
        "service_code": STRING,
        "description": STRING,
        "membership": STRING,
        "category": STRING,
    },
    "service_completed": {"service_code": STRING, "amount": MONEY, "technician": STRING, "membership": STRING},
    "referral": {"referred_name": STRING, "referred_email": STRING},
    "redemption": {"points": INTEGER, "reward": STRING},
    "adjustment": {"unit": STRING, "amount": STRING, "reason": STRING},
    "enrolled": {"plan": STRING, "tier": STRING, "membership": STRING},
    "period_ended": _MEMBERSHIP_EVENT,
    "renewed": _MEMBERSHIP_EVENT,
    "expired": _MEMBERSHIP_EVENT,
    "cancelled": _MEMBERSHIP_EVENT,
    "points_expired": {"through": STRING, "reason": STRING},
    "migrated": {"membership": STRING, "plan": STRING, "reason": STRING},
}

# What a condition may ask about the member, besides the event's own data.
MEMBER_FIELDS: dict[str, str] = {"tier": STRING, "plan": STRING, "status": STRING}


def field_type(event_types: list[str], field: str) -> str | None:
    """Type of `data.x` or `member.x` for the given event types; None when any of them lacks it."""
    scope, _, name = field.partition(".")
    if scope == "member":
        return MEMBER_FIELDS.get(name)
    if scope != "data":
        return None
    types = {DATA_FIELDS.get(t, {}).get(name) for t in event_types}
    if None in types or len(types) != 1:
        return None
    return types.pop()
