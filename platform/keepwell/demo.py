"""A demo company to look around in: the HVAC pack installed, a few members with history."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from . import packs
from .models import User

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


DEMO_OWNER = "owner@demo.example.com"


def login(app) -> tuple[str, str]:
    """The demo company's owner login. A fresh password each time: only a hash is stored, so the
    one printed by the last `serve --demo` is the one that works."""
    import secrets

    from . import users

    password = secrets.token_urlsafe(9)

    def work(c):
        if c.session.scalar(sa.select(User.id).where(User.email == DEMO_OWNER)) is None:
            users.add_user(c.session, c.company, DEMO_OWNER, password, "owner")
        else:
            users.set_password(c.session, c.company, DEMO_OWNER, password)

    app.run(DEMO, work)
    return DEMO_OWNER, password
