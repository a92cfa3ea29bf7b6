"""The benchmarks still run (quick sizes) and the engines they compare still agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmarks_run_and_agree(tmp_path):
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "rule_eval", "memory",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())["benchmarks"]
    rule_eval = data["rule_eval"]
    for size in rule_eval["sizes"].values():  # run() raises when the three disagree on points
        assert size["keepwell_per_s"] > 0 and size["durable_dsl_per_s"] > 0 and size["python_per_s"] > 0
        assert abs(size["ratio_vs_durable"] - size["durable_dsl_per_s"] / size["keepwell_per_s"]) < 0.01
    assert data["memory"]["facts_held"] == 0
    assert "ratio_vs_durable" in res.stdout


def test_quick_http_load_runs_clean(tmp_path):
    """Charges over HTTP against 4 gunicorn processes (SQLite, quick sizes): a rate and its
    baseline, and the after-run checks found no error, no lost and no doubled charge."""
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "http_load_sqlite", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())["benchmarks"]["http_load_sqlite"]
    assert data["processes"] == 4
    assert data["rps"] > 0 and data["baseline_rps"] > 0
    assert abs(data["ratio"] - data["rps"] / data["baseline_rps"]) < 0.01
    assert 0 < data["p50_ms"] <= data["p99_ms"]
    assert (data["errors"], data["lost"], data["doubled"]) == (0, 0, 0)
    assert data["checks"]["audit_ok"] and data["checks"]["balance_mismatches"] == 0
    assert data["approved"] > 0


def test_quick_admin_pages_answer(tmp_path):
    """Every admin page, signed in, on PostgreSQL with a few hundred members copied from template
    members (quick size): each answers 200 and has a median, a p95 and a ratio to the sign-in page."""
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "admin_pages_postgresql",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())["benchmarks"]["admin_pages_postgresql"]
    assert data["members"] == 300 and data["customers"] == 325
    assert data["rows"]["ledger_entries"] > data["members"] and data["rows"]["points_lots"] > 0
    assert data["baseline_select_1_ms"] > 0 and data["baseline_static_page_ms"] > 0
    assert {"home", "customers", "customer", "memberships", "membership", "statement", "ledger", "events",
            "rulesets", "editor_plan", "users", "webhooks", "packs", "simulate", "points_economy"} <= set(data["pages"])
    for name, page in data["pages"].items():
        assert 0 < page["median_ms"] <= page["p95_ms"], name
        assert abs(page["ratio_vs_static_page"] - page["median_ms"] / data["baseline_static_page_ms"]) < 0.1, name
    assert data["over_budget"] == [p for p in data["over_budget"] if data["pages"][p]["median_ms"] > data["budget_ms"]]
    assert "admin_pages_postgresql ledger" in res.stdout


def test_quick_portal_pages_answer(tmp_path):
    """Every member portal page, signed in with the emailed link, for a member with a year of
    history (quick size) on PostgreSQL: each answers 200 and has a median, a p95 and a ratio to
    the sign-in page; the budget names only pages (downloads are reported beside them)."""
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "portal_pages_postgresql",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())["benchmarks"]["portal_pages_postgresql"]
    assert data["years_of_history"] == 1 and data["member_ledger_entries"] > 24
    assert {"home", "history", "rewards", "referrals", "billing", "preferences", "tier", "cancel_preview",
            "statement_pdf", "my_data_json"} == set(data["pages"])
    for name, page in data["pages"].items():
        assert 0 < page["median_ms"] <= page["p95_ms"], name
    assert all(not data["pages"][p]["download"] for p in data["over_budget"])
    assert "portal_pages_postgresql history" in res.stdout


def test_quick_reports_run_against_their_counts(tmp_path):
    """Every report in the catalog (and the statement for one plan) over a bulk-built data set on
    PostgreSQL (quick size): each has its seconds, the seconds of a count(*) of the tables it read
    (memberships and ledger entries among them) and the ratio of the two; the data set has what
    the reports read — invoices with lines, payments, points lots, cancelled and expired members."""
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "reports_postgresql",
                          "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads(out.read_text())["benchmarks"]["reports_postgresql"]
    assert data["reports_memberships"] == 1500 and data["audit_ok"]
    assert 10_000 < data["reports_ledger_entries"] < 20_000  # about 15,000 asked for
    rows = data["rows"]
    assert rows["invoices"] == rows["invoice_lines"] and rows["payments"] > rows["invoices"]
    assert rows["points_lots"] > 0 and rows["lot_draws"] > 0 and rows["credit_notes"] > 0 and rows["customers"] > 1500
    from keepwell.reporting import catalog

    names = {s.name.replace("-", "_") for s in catalog.listing()} | {"statement_plan"}
    assert set(data["reports"]) == names
    for name in names:
        assert data[f"report_{name}_seconds"] > 0 and data[f"report_{name}_count_seconds"] > 0, name
        assert abs(data[f"report_{name}_vs_count"] - data[f"report_{name}_seconds"] /
                   data[f"report_{name}_count_seconds"]) < 0.2 * data[f"report_{name}_vs_count"] + 0.1, name
        assert {"memberships", "ledger_entries"} <= set(data["reports"][name]["tables"]), name
    assert data["slow"] == [n for n in data["reports"] if data["reports"][n]["seconds"] > data["slow_seconds"]]
    assert "reports_postgresql statement" in res.stdout
