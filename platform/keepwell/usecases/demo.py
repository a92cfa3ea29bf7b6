"""A demo company to look around in: the HVAC pack installed, a few members with history."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

from . import companies, customers, events, memberships, packs, users
from .app import Keepwell

DEMO = "demo"
PEOPLE = [("Maria Garcia", "maria@example.com", "premium"),
          ("James Wilson", "james@example.com", "basic"),
          ("Priya Patel", "priya@example.com", "elite")]


def load(app: Keepwell, today: date | None = None) -> dict[str, Any]:
    """Create the demo company once; running it again changes nothing."""
    if companies.exists(app, DEMO):
        return {"company": DEMO, "created": False}
    companies.add_company(app, DEMO, "Demo Heating & Air", "America/Denver")
    today = today or companies.today(app, DEMO)
    refs = packs.install(app, DEMO, packs.find("hvac"), author="demo")
    start = today - timedelta(days=40)
    members = []
    for i, (name, email, tier) in enumerate(PEOPLE):
        cust = customers.add_customer(app, DEMO, name, email)
        m = memberships.enroll(app, DEMO, cust, "hvac-comfort-club", start + timedelta(days=i), tier=tier)
        members.append({"customer": cust, "name": name, "membership": m["membership"]})
        events.post_event(app, DEMO, {"id": f"demo-pos-{i}", "type": "purchase", "customer": cust,
                                      "occurred_at": f"{(start + timedelta(days=10 + i)).isoformat()}T10:00:00-07:00",
                                      "data": {"amount": f"{120 + 35 * i}.00", "pay_with": "membership"}})
    return {"company": DEMO, "created": True, "rulesets": refs, "members": members}


DEMO_OWNER = "owner@demo.example.com"


def login(app: Keepwell) -> tuple[str, str]:
    """The demo company's owner login. A fresh password each time: only a hash is stored, so the
    one printed by the last `serve --demo` is the one that works."""
    password = secrets.token_urlsafe(9)
    if users.exists(app, DEMO_OWNER):
        users.set_password(app, DEMO, DEMO_OWNER, password)
    else:
        users.add_user(app, DEMO, DEMO_OWNER, password, "owner")
    return DEMO_OWNER, password
