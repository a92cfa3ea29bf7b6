"""Every member portal page for a member with five years of history: a company on a fresh
database (the HVAC pack), one member enrolled five years ago on a monthly-billed tier, with
purchases from the allowance and by card every month, points earned and redeemed, an invoice a
month — posted through the use cases in date order, so each period renewed as it would have —
and a few hundred other members beside them. The member signs in with their emailed link
through Flask's test client (the whole app: session, CSRF, templates), and each page is asked
for N times. Reports each page's median and p95 in milliseconds beside the sign-in page of the
same run (the same stack, no member data) and names the pages whose median is over the budget
(200 ms). The statement PDF and the data export are reported too, outside the budget: they are
downloads, not pages.

    python -m benchmarks [--quick] --only portal_pages_postgresql
"""

from __future__ import annotations

import json
import re
import time
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from keepwell.usecases import billing, companies, customers, due, events, memberships, packs, rewards

from .admin_pages import _time
from .common import COMPANY, fresh_app

BUDGET_MS = 200.0
PLAN, TIER = "hvac-comfort-club", "premium"
DOWNLOADS = ("statement_pdf", "my_data_json")


def _history(app: Any, today: date, years: int) -> tuple[str, str]:
    """The member and their five (or `years`) years: returns (customer, membership)."""
    packs.install(app, COMPANY, packs.find("hvac"), author="bench", effective_from=date(2015, 1, 1))
    start = today - timedelta(days=365 * years)
    member = customers.add_customer(app, COMPANY, "Olive Longtime", "olive@bench.example", "303-555-0142")
    billing.add_test_card(app, COMPANY, member, "success", True)
    membership = memberships.enroll(app, COMPANY, member, PLAN, start, tier=TIER, cadence="monthly")["membership"]
    batch: list[dict[str, Any]] = []
    day, n = start + timedelta(days=1), 0
    while day < today:
        for k, (amount, pay) in enumerate((("42.00", "membership"), ("18.50", "membership"), ("129.00", "card"),
                                           ("12.00", "membership"))):
            n += 1
            batch.append({"id": f"till-{n}", "type": "purchase", "customer": member,
                          "occurred_at": f"{day + timedelta(days=k * 6)}T15:00:00+00:00",
                          "data": {"amount": amount, "pay_with": pay, "description": f"Part {n}"}})
        day += timedelta(days=30)
    batch = [e for e in batch if e["occurred_at"][:10] < today.isoformat()]
    for part in range(0, len(batch), 200):
        events.post_events(app, COMPANY, batch[part:part + 200])
    due.run(app, COMPANY, today)
    billing.run(app, COMPANY, today)
    return member, membership


def _neighbours(app: Any, today: date, n: int) -> None:
    """Other members of the same company: the portal must find the member's rows among theirs."""
    for i in range(n):
        cid = customers.add_customer(app, COMPANY, f"Neighbour {i}", f"n{i}@bench.example")
        memberships.enroll(app, COMPANY, cid, PLAN, today - timedelta(days=30 + i % 300), tier="basic")


def _sign_in(app: Any, client: Any) -> None:
    page = client.get(f"/portal/{COMPANY}/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    client.post(f"/portal/{COMPANY}/sign-in", data={"email": "olive@bench.example", "csrf_token": token})
    with app.database.engine.connect() as conn:
        payload = conn.execute(sa.text("SELECT payload FROM outbox WHERE template = 'member_sign_in' "
                                       "ORDER BY id DESC LIMIT 1")).scalar()
    link = (payload if isinstance(payload, dict) else json.loads(payload))["data"]["link"]
    r = client.get(link.split("localhost", 1)[1])
    assert r.status_code == 302, r.status_code


def run(database: str, quick: bool = False, requests: int | None = None) -> dict:
    from keepwell.app import create_app  # the HTTP interface: only when the benchmark runs

    years = 1 if quick else 5
    requests = requests or (3 if quick else 20)
    with fresh_app(database) as app:
        today = companies.today(app, COMPANY)
        started = time.perf_counter()
        member, membership = _history(app, today, years)
        _neighbours(app, today, 20 if quick else 300)
        rewards.adjust_points(app, COMPANY, member, 500, "bench", "bench")
        seed_seconds = time.perf_counter() - started
        web = create_app({"TESTING": True}, service=app)
        client = web.test_client()
        _sign_in(app, client)
        with app.database.engine.connect() as conn:
            rows = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
                    for t in ("events", "ledger_entries", "invoices", "memberships")}
            mine = conn.scalar(sa.text("SELECT count(*) FROM ledger_entries e JOIN accounts a ON a.id = e.account_id "
                                       "WHERE a.owner IN (:m, :c)"), {"m": membership, "c": member})
        base = f"/portal/{COMPANY}"
        frm, to = (today - timedelta(days=365)).isoformat(), today.isoformat()
        urls = {"home": f"{base}/", "history": f"{base}/history", "rewards": f"{base}/rewards",
                "referrals": f"{base}/referrals", "billing": f"{base}/billing", "preferences": f"{base}/preferences",
                "tier": f"{base}/membership/{membership}/tier", "cancel_preview": f"{base}/membership/{membership}/cancel",
                "statement_pdf": f"{base}/statement/{membership}.pdf?from={frm}&to={to}",
                "my_data_json": f"{base}/my-data.json"}
        baseline = _time(lambda: client.get(f"{base}/sign-in"), requests)
        pages: dict[str, dict[str, Any]] = {}
        for name, url in urls.items():
            def get(url: str = url) -> None:
                r = client.get(url)
                assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:300])
            figures = _time(get, requests if name not in DOWNLOADS else max(2, requests // 4))
            figures["ratio_vs_sign_in_page"] = round(figures["median_ms"] / baseline["median_ms"], 1)
            pages[name] = {"url": url, "download": name in DOWNLOADS, **figures}
    over = sorted((n for n, p in pages.items() if not p["download"] and p["median_ms"] > BUDGET_MS),
                  key=lambda n: -pages[n]["median_ms"])
    return {"name": f"portal_pages_{database}", "years_of_history": years, "member_ledger_entries": mine,
            "rows": rows, "requests_per_page": requests, "seed_seconds": round(seed_seconds, 1),
            "budget_ms": BUDGET_MS, "baseline_sign_in_page_ms": baseline["median_ms"], "pages": pages,
            "over_budget": over, "all_under_budget": not over}
