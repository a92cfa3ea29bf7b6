"""Event validation: the "is it valid?" check of ingest (jsonschema-rs, compiled once), against
the `jsonschema` validator that reports every problem with its path (what answers an invalid
event), on the same events: valid purchases, enrolments, referrals and some invalid ones."""

from __future__ import annotations

import time

import keepwell.usecases  # noqa: F401  (the areas' event types make the event schema)
from keepwell.rulesets.validation import is_valid_event, validate_event


def _events(n: int) -> list[dict]:
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            data = {"amount": f"{10 + i % 90}.{i % 100:02d}", "pay_with": "membership"}
            out.append({"id": f"pos-{i}", "type": "purchase", "customer": f"cus_{i:016x}",
                        "occurred_at": "2026-03-02T10:15:00-07:00", "data": data})
        elif kind == 1:
            out.append({"id": f"enr-{i}", "type": "enrolled", "customer": f"cus_{i:016x}",
                        "occurred_at": "2026-01-15T00:00:00+00:00", "data": {"plan": "hvac-comfort-club", "tier": "basic"}})
        elif kind == 2:
            out.append({"id": f"ref-{i}", "type": "referral", "customer": f"cus_{i:016x}",
                        "occurred_at": "2026-02-01T09:00:00Z", "data": {"referred_name": "A Neighbour"}})
        else:  # invalid: a float amount and no offset on the time
            out.append({"id": f"bad-{i}", "type": "purchase", "customer": f"cus_{i:016x}",
                        "occurred_at": "2026-03-02T10:15:00", "data": {"amount": 12.5}})
    return out


def _rate(check, events: list[dict]) -> float:
    start = time.perf_counter()
    for e in events:
        check(e)
    return len(events) / (time.perf_counter() - start)


def run(quick: bool = False) -> dict:
    events = _events(2000 if quick else 40000)
    for e in events[:200]:  # warm-up: schemas loaded, validators built
        assert is_valid_event(e) is (validate_event(e) == [])
    fast = _rate(is_valid_event, events)
    full = _rate(validate_event, events)
    # What ingest does: the fast check for every event, the full one for the invalid ones only.
    ingest = _rate(lambda e: is_valid_event(e) or validate_event(e), events)
    return {"name": "validation", "events": len(events), "fast_check_per_s": round(fast),
            "full_validator_per_s": round(full), "ingest_path_per_s": round(ingest),
            "speedup_vs_full_validator": round(fast / full, 1)}
