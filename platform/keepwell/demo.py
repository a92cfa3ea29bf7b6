"""A demo company to look around in: the HVAC pack installed, a few members with history."""

from __future__ import annotations

from datetime import date, timedelta

from . import packs

DEMO = "demo"
PEOPLE = [("Maria Garcia", "maria@example.com", "premium"),
          ("James Wilson", "james@example.com", "basic"),
          ("Priya Patel", "priya@example.com", "elite")]


def load(app, today: date | None = None) -> dict:
    """Create the demo company once; running it again changes nothing."""
    if app.company_exists(DEMO):
        return {"company": DEMO, "created": False}
    today = today or date.today()
    app.add_company(DEMO, "Demo Heating & Air", "America/Denver")
    refs = packs.install(app, packs.find("hvac"), DEMO, author="demo")
    start = today - timedelta(days=40)
    members = []
    for i, (name, email, tier) in enumerate(PEOPLE):
        cust = app.add_customer(name, email, company=DEMO)
        m = app.enroll(cust, "hvac-comfort-club", start + timedelta(days=i), tier=tier, company=DEMO)
        members.append({"customer": cust, "name": name, "membership": m["membership"]})
        app.post_event({"id": f"demo-pos-{i}", "type": "purchase", "customer": cust,
                        "occurred_at": f"{(start + timedelta(days=10 + i)).isoformat()}T10:00:00-07:00",
                        "data": {"amount": f"{120 + 35 * i}.00", "pay_with": "membership"}}, company=DEMO)
    return {"company": DEMO, "created": True, "rulesets": refs, "members": members}
