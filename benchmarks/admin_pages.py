"""Every admin page with 10,000 members: a company on a fresh database (two trade packs installed,
members on several plans, tiers and cadences, with purchases from the allowance and by card,
points earned and redeemed, a cancellation, non-members), signed in to the admin through Flask's
test client (the whole app: sign-in, CSRF, templates), each page asked for N times. Reports each
page's median and p95 in milliseconds beside two baselines of the same run — a `SELECT 1` round
trip on the same engine, and the sign-in page (the same stack, no query) — and names the pages
whose median is over the budget (300 ms).

Set-up is quick at any size: a dozen template members are made through the use cases (so their
rows are exactly what Keepwell writes), then each is copied as many times as needed by bulk
insert (COPY on PostgreSQL), every id renewed and every reference between the copied rows kept.

    python -m benchmarks [--quick] --only admin_pages_postgresql
    python -m benchmarks.admin_pages --database postgresql --members 10000 --requests 20
"""

from __future__ import annotations

import argparse
import json
import random
import re
import secrets
import statistics
import time
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from keepwell.infra.bulk import Writes
from keepwell.usecases import audit, companies, customers, events, memberships, packs, rewards, users, webhooks

from .common import COMPANY, fresh_app

BUDGET_MS = 300.0
PASSWORD = "benchmark password 1"
OWNER = "owner@bench.example"
PLANS = {"hvac-comfort-club": ("basic", "premium", "elite"), "pipeguard-club": ("essential", "plus", "total")}
FIRST = ("Olive", "Dana", "Eli", "Frank", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam", "Maya", "Noah",
         "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wes", "Xena", "Yara", "Zane")
LAST = ("Whitfield", "Navarro", "Osei", "Kowalski", "Nguyen", "Okafor", "Larsen", "Moreau", "Tanaka", "Silva",
        "Fischer", "Haddad", "Ivanova", "Mendez", "Brennan", "Dubois", "Eriksen", "Gallo")
# The tables one customer's rows live in, in the order they are copied; (column, what it refers to).
REFERENCES: dict[str, dict[str, str]] = {
    "customers": {}, "memberships": {}, "billing_schedules": {}, "events": {},
    "accounts": {}, "ledger_entries": {"event_id": "events", "account_id": "accounts"},
    "points_lots": {"account_id": "accounts", "entry_id": "ledger_entries"},
    "lot_draws": {"lot_id": "points_lots", "entry_id": "ledger_entries"},
    "reward_redemptions": {"event_id": "events"}, "loyalty_status": {},
}


def _templates(app, today: date) -> tuple[list[str], int]:
    """A dozen customers made through the use cases: members of each plan and tier, monthly and
    yearly, enrolled over the last year, with purchases, points, a redemption, a cancellation;
    and a non-member who buys by card."""
    for pack in ("hvac", "plumbing"):
        packs.install(app, COMPANY, packs.find(pack), author="bench", effective_from=date(2020, 1, 1))
    # Subscribed before the members come: their events are its deliveries.
    hook = webhooks.add(app, COMPANY, "https://hooks.example.com/keepwell",
                        ["membership.enrolled", "points.earned", "allowance.charged"])
    made: list[str] = []
    k = 0
    for plan, tiers in PLANS.items():
        for tier in tiers:
            for cadence in ("monthly", "yearly"):
                k += 1
                on = today - timedelta(days=27 * k)
                cid = customers.add_customer(app, COMPANY, f"Template {k}", f"t{k}@example.com", f"+1303555{k:04d}")
                memberships.enroll(app, COMPANY, cid, plan, on, tier=tier, cadence=cadence)
                day = on + timedelta(days=3)
                posts = [{"id": f"pos:{cid}:{j}", "type": "purchase", "customer": cid,
                          "occurred_at": f"{(day + timedelta(days=2 * j)).isoformat()}T15:00:00Z",
                          "data": {"amount": f"{40 + 20 * j + 5 * k}.00", "pay_with": "membership"} if j % 2 else
                          {"amount": f"{600 + 100 * j + 40 * k}.00", "pay_with": "card"}}
                         for j in range(k % 4 + 1)]
                events.post_events(app, COMPANY, posts)
                made.append(cid)
    cid = made[5]  # HVAC elite, yearly: points enough for the filter discount
    rewards.redeem(app, COMPANY, cid, "hvac-filter-discount", on=today - timedelta(days=2), key=f"redeem:{cid}")
    last = memberships.of_customer(app, COMPANY, made[-1])[0]["id"]
    memberships.cancel(app, COMPANY, last, today - timedelta(days=1))
    walk_in = customers.add_customer(app, COMPANY, "Template walk-in", "walkin@example.com")
    events.post_events(app, COMPANY, [{"id": f"pos:{walk_in}:0", "type": "purchase", "customer": walk_in,
                                       "occurred_at": f"{(today - timedelta(days=5)).isoformat()}T15:00:00Z",
                                       "data": {"amount": "320.00", "pay_with": "card"}}])
    made.append(walk_in)
    return made, hook["id"]


def _rows_of(conn, tables: dict[str, sa.Table], cid: str) -> dict[str, list[dict[str, Any]]]:
    def fetch(name: str, where) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(sa.select(tables[name]).where(where))]

    t = tables
    rows = {"customers": fetch("customers", t["customers"].c.id == cid),
            "memberships": fetch("memberships", t["memberships"].c.customer_id == cid),
            "billing_schedules": fetch("billing_schedules", t["billing_schedules"].c.customer_id == cid),
            "events": fetch("events", t["events"].c.customer_id == cid),
            "reward_redemptions": fetch("reward_redemptions", t["reward_redemptions"].c.customer_id == cid),
            "loyalty_status": fetch("loyalty_status", t["loyalty_status"].c.customer_id == cid)}
    owners = [cid] + [m["id"] for m in rows["memberships"]]
    rows["accounts"] = fetch("accounts", t["accounts"].c.owner.in_(owners))
    accounts = [a["id"] for a in rows["accounts"]]
    rows["ledger_entries"] = fetch("ledger_entries", t["ledger_entries"].c.account_id.in_(accounts))
    rows["points_lots"] = fetch("points_lots", t["points_lots"].c.account_id.in_(accounts))
    rows["lot_draws"] = fetch("lot_draws", t["lot_draws"].c.entry_id.in_([e["id"] for e in rows["ledger_entries"]]))
    return rows


def _renamed(value: Any, names: dict[str, str]) -> Any:
    """A value with every template id in it (text or inside JSON) replaced by the copy's."""
    if isinstance(value, str):
        for old, new in names.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict | list):
        text = json.dumps(value)
        renamed = _renamed(text, names)
        return json.loads(renamed) if renamed != text else value
    return value


def _copy(app, templates: list[str], n: int) -> int:
    """Copies of the template customers until there are n customers in all."""
    engine = app.database.engine
    meta = sa.MetaData()
    with engine.connect() as conn:
        tables = {name: sa.Table(name, meta, autoload_with=conn) for name in REFERENCES}
        samples = [_rows_of(conn, tables, cid) for cid in templates]
        # Each table's integer ids move on by a stride past every id it holds, once per copy.
        stride = {name: (conn.scalar(sa.select(sa.func.max(tables[name].c.id))) or 0) + 1
                  for name in REFERENCES if "id" in tables[name].c and isinstance(tables[name].c.id.type, sa.Integer)}
    copies = n - len(templates)
    made = 0
    batch: dict[str, list[dict[str, Any]]] = {name: [] for name in REFERENCES}
    rng = random.Random(16)

    def flush() -> None:
        with engine.begin() as conn:
            writes = Writes(conn)
            for name in REFERENCES:
                if batch[name]:
                    writes.insert(tables[name], batch[name])
                    batch[name] = []
            writes.finish()

    for c in range(1, copies // len(templates) + 2):
        for sample in samples:
            if made >= copies:
                break
            made += 1
            names: dict[str, str] = {}
            for row in sample["customers"] + sample["memberships"] + sample["reward_redemptions"]:
                prefix = row["id"].split("_", 1)[0]
                names[row["id"]] = f"{prefix}_{secrets.token_hex(8)}"
            first, last = rng.choice(FIRST), rng.choice(LAST)
            for name in REFERENCES:
                for row in sample[name]:
                    new = {k: _renamed(v, names) for k, v in row.items()}
                    if name in stride:
                        new["id"] = row["id"] + c * stride[name]
                    for col, target in REFERENCES[name].items():
                        new[col] = row[col] + c * stride[target]
                    if name == "customers":
                        new.update(name=f"{first} {last}", email=f"{first}.{last}.{made}@example.com".lower(),
                                   phone=f"+1720{made:07d}" if row["phone"] else None)
                    batch[name].append(new)
            if made % 2000 == 0:
                flush()
    flush()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for name in stride:
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
            conn.exec_driver_sql("ANALYZE")
    return made + len(templates)


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _pages(app, client, today: date, hook: int) -> dict[str, str]:
    """Each admin page's URL, its ids picked from the data."""
    with app.database.engine.connect() as conn:  # a premium member's copy, with purchases and points
        mid, cid = conn.execute(sa.text(
            "SELECT id, customer_id FROM memberships WHERE tier = 'premium' AND status = 'active' "
            "ORDER BY issued_on, id LIMIT 1")).one()
    m = {"id": mid}
    someone = customers.get_customer(app, COMPANY, cid)
    listed = client.get("/admin/events/").get_data(as_text=True)
    detail = re.search(r'href="(/admin/events/details/\?id=\d+)"', listed)
    surname = someone["name"].split()[-1]
    on = today.isoformat()
    pages = {
        "home": "/admin/",
        "customers": "/admin/customers/",
        "customers_search": f"/admin/customers/?q={surname}",
        "customer": f"/admin/customers/details/?id={cid}",
        "customer_lookup": f"/admin/customers/lookup?q={surname}",
        "customer_form": "/admin/customers/new/",
        "customer_edit": f"/admin/customers/edit/?id={cid}",
        "memberships": "/admin/memberships/",
        "memberships_search": f"/admin/memberships/?q={surname}",
        "membership": f"/admin/memberships/show/{m['id']}",
        "statement": f"/admin/memberships/statement/{m['id']}",
        "cancel_confirm": f"/admin/memberships/cancel/{m['id']}?on={on}",
        "tier_confirm": f"/admin/memberships/upgrade/{m['id']}?tier=elite&on={on}",
        "enroll": f"/admin/memberships/enroll?customer={cid}",
        "ledger": "/admin/ledger/",
        "ledger_search": f"/admin/ledger/?q={surname}",
        "ledger_member": f"/admin/ledger/?owner={m['id']}",
        "events": "/admin/events/",
        "events_search": f"/admin/events/?q={surname}",
        "event": detail.group(1) if detail else "/admin/events/?page=1",
        "rulesets": "/admin/rulesets/",
        "ruleset": "/admin/rulesets/r/hvac-comfort-club",
        "version": "/admin/rulesets/r/hvac-comfort-club/v/1",
        "diff": "/admin/rulesets/r/hvac-comfort-club/diff?a=1&b=1",
        "editor_plan": "/admin/rulesets/r/hvac-comfort-club/edit",
        "editor_earning_rules": "/admin/rulesets/r/hvac-comfort-rewards/edit",
        "simulate": "/admin/rulesets/r/hvac-comfort-club/simulate",
        "rewards_catalog": "/admin/rewards/catalog/",
        "redemptions": "/admin/rewards/redemptions/",
        "points_economy": "/admin/rewards/economy/",
        "users": "/admin/users/",
        "locations": "/admin/locations/",
        "webhooks": "/admin/webhooks/",
        "webhook_deliveries": f"/admin/webhooks/{hook}/deliveries",
        "packs": "/admin/packs/",
        "pack_install": "/admin/packs/hvac",
    }
    return pages


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def _time(get, requests: int) -> dict[str, float]:
    get()  # warm: templates compiled, rulesets compiled and cached
    ms = []
    for _ in range(requests):
        start = time.perf_counter()
        get()
        ms.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(_percentile(ms, 0.95), 2),
            "max_ms": round(max(ms), 2)}


def run(database: str, quick: bool = False, members: int | None = None, requests: int | None = None) -> dict:
    from keepwell.app import create_app  # the HTTP interface: only when the benchmark runs

    n = members or (300 if quick else 10000)
    requests = requests or (3 if quick else 20)
    with fresh_app(database) as app:
        today = companies.today(app, COMPANY)
        start = time.perf_counter()
        templates, hook = _templates(app, today)
        # the templates are 12 members and a customer who is not one: n members, and n / 12 more customers
        total = _copy(app, templates, n + n // (len(templates) - 1))
        seed_seconds = time.perf_counter() - start
        checked = audit.audit(app, COMPANY)  # the copies are as consistent as what they copy
        assert checked["ok"], checked
        users.add_user(app, COMPANY, OWNER, PASSWORD, "owner")
        web = create_app({"TESTING": True}, service=app)
        client = web.test_client()
        html = client.get("/admin/login").get_data(as_text=True)
        signed = client.post("/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf_token": _token(html)})
        assert signed.status_code == 302, signed.status_code
        with app.database.engine.connect() as conn:
            counts = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
                      for t in ("customers", "memberships", "events", "ledger_entries", "points_lots")}

            def select_1() -> None:
                conn.exec_driver_sql("SELECT 1").scalar()

            baseline_sql = _time(select_1, requests * 5)
        baseline_page = _time(lambda: client.get("/admin/login"), requests)
        pages: dict[str, dict[str, Any]] = {}
        for name, url in _pages(app, client, today, hook).items():
            def get(url: str = url) -> None:
                r = client.get(url)
                assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:500])
            figures = _time(get, requests)
            figures["ratio_vs_static_page"] = round(figures["median_ms"] / baseline_page["median_ms"], 1)
            pages[name] = {"url": url, **figures}
    slow = sorted((name for name, p in pages.items() if p["median_ms"] > BUDGET_MS),
                  key=lambda name: -pages[name]["median_ms"])
    slowest = max(pages, key=lambda name: pages[name]["median_ms"])
    return {"name": f"admin_pages_{database}", "members": counts["memberships"], "customers": total,
            "rows": counts, "requests_per_page": requests, "seed_seconds": round(seed_seconds, 1), "audit_ok": True,
            "budget_ms": BUDGET_MS, "baseline_select_1_ms": baseline_sql["median_ms"],
            "baseline_static_page_ms": baseline_page["median_ms"], "baseline_static_page_p95_ms": baseline_page["p95_ms"],
            "pages": pages, "slowest": slowest, "slowest_median_ms": pages[slowest]["median_ms"],
            "over_budget": slow, "all_under_budget": not slow}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.admin_pages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)
    res = run(args.database, members=args.members, requests=args.requests)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
