"""python -m benchmarks [--quick] [--json OUT] [--only NAME ...]: run the benchmarks, print a
table of figures and ratios against their baselines, and write them to JSON."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

from . import admin_pages, billing, due_work, http_load, ingest, memory, portal_pages, reports, rule_eval, validation

BENCHMARKS = {
    "rule_eval": lambda quick: rule_eval.run(quick),
    "validation": lambda quick: validation.run(quick),
    "ingest_sqlite": lambda quick: ingest.run("sqlite", quick),
    "ingest_postgresql": lambda quick: ingest.run("postgresql", quick),
    "memory": lambda quick: memory.run(quick),
    "due_work_sqlite": lambda quick: due_work.run("sqlite", quick),
    "due_work_postgresql": lambda quick: due_work.run("postgresql", quick),
    "billing_sqlite": lambda quick: billing.run("sqlite", quick),
    "billing_postgresql": lambda quick: billing.run("postgresql", quick),
    "http_load_postgresql": lambda quick: http_load.run("postgresql", quick),
    "http_load_sqlite": lambda quick: http_load.run("sqlite", quick),
    "admin_pages_postgresql": lambda quick: admin_pages.run("postgresql", quick),
    "admin_pages_sqlite": lambda quick: admin_pages.run("sqlite", quick),
    "portal_pages_postgresql": lambda quick: portal_pages.run("postgresql", quick),
    "reports_postgresql": lambda quick: reports.run("postgresql", quick),
}


def _flat(prefix: str, value, out: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out.append((prefix, value))


def summary(name: str, res: dict) -> list[tuple[str, str, str, str]]:
    """Rows of the closing table: (benchmark, Keepwell, baseline, ratio)."""
    if name == "rule_eval":
        return [(f"rule_eval {k.replace('rules_', '')} rules", f"{v['keepwell_per_s']:,} ev/s",
                 f"durable_rules C {v['durable_c_per_s']:,}/s, DSL {v['durable_dsl_per_s']:,}/s, "
                 f"Python {v['python_per_s']:,}/s", f"{v['ratio_vs_durable_c']}x of the C path")
                for k, v in res["sizes"].items()]
    if name.startswith("ingest"):
        base = f"INSERT of ledger rows {res['plain_insert_events_equiv_per_s']:,} ev/s"
        return [(f"{name} one at a time", f"{res['single_per_s']:,} ev/s", base, f"{res['ratio_single_vs_plain_insert']}x slower"),
                (f"{name} batches of {res['batch_size']}", f"{res['batch_per_s']:,} ev/s", base, f"{res['ratio_vs_plain_insert']}x slower")] + [
                (f"{name} import, {k[-1]} worker(s)", f"{res[k]['per_s']:,} ev/s", base, f"{res[k]['ratio_vs_plain_insert']}x slower")
                for k in ("workers_1", "workers_2") if k in res]
    if name.startswith("due_work"):
        return [(f"{name} {n} memberships", f"{v['seconds']} s ({v['per_s']:,}/s)", f"one UPDATE {v['update_seconds']} s",
                 f"{v['ratio_vs_update']}x slower") for n, v in res["sizes"].items()] + [
                (f"{name} linearity", "cost per membership, large / small", "1.0 = linear", str(res["linearity"]))]
    if name.startswith("billing"):
        return [(f"{name} {res['memberships']} invoiced and charged", f"{res['run_seconds']} s ({res['per_s']:,}/s)",
                 f"INSERT of the rows {res['insert_seconds']} s", f"{res['ratio_vs_insert']}x slower "
                 f"(lost {res['lost']}, doubled {res['doubled']})")]
    if name == "validation":
        return [("event validation (is it valid?)", f"{res['fast_check_per_s']:,} ev/s (jsonschema-rs)",
                 f"jsonschema {res['full_validator_per_s']:,} ev/s", f"{res['speedup_vs_full_validator']}x faster")]
    if name == "memory":
        return [("memory", f"{res['events']:,} events", f"RSS {min(res['rss_mb'].values())} MiB", f"+{res['growth_mb']} MiB")]
    if name.startswith("http_load"):
        return [(name, f"{res['rps']} req/s, p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms",
                 f"{res['baseline_rps']} req/s", f"{res['ratio']}x (errors {res['errors']}, lost {res['lost']}, "
                 f"doubled {res['doubled']})")]
    if name.startswith("admin_pages"):
        base = f"SELECT 1 {res['baseline_select_1_ms']} ms; sign-in page {res['baseline_static_page_ms']} ms"
        return [(f"{name} {page}" + (" OVER BUDGET" if v["median_ms"] > res["budget_ms"] else ""),
                 f"median {v['median_ms']} ms, p95 {v['p95_ms']} ms ({res['members']:,} members)", base,
                 f"{v['ratio_vs_static_page']}x the sign-in page") for page, v in res["pages"].items()]
    if name.startswith("portal_pages"):
        base = f"sign-in page {res['baseline_sign_in_page_ms']} ms"
        return [(f"{name} {page}" + (" (download)" if v["download"] else " OVER BUDGET" if v["median_ms"] >
                                     res["budget_ms"] else ""),
                 f"median {v['median_ms']} ms, p95 {v['p95_ms']} ms ({res['years_of_history']} years, "
                 f"{res['member_ledger_entries']:,} entries)", base, f"{v['ratio_vs_sign_in_page']}x")
                for page, v in res["pages"].items()]
    if name.startswith("reports"):
        size = f"{res['reports_memberships']:,} memberships, {res['reports_ledger_entries']:,} entries"
        return [(f"{name} {report}" + (" SLOW" if v["seconds"] > res["slow_seconds"] else ""), f"{v['seconds']} s ({size})",
                 f"count(*) of {', '.join(v['tables'])} {v['count_seconds']} s", f"{v['vs_count']}x the count")
                for report, v in res["reports"].items()]
    return []


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    head = ("benchmark", "Keepwell", "baseline", "ratio")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test that they still work")
    parser.add_argument("--json", dest="json_out", help="write the results to this file")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)
    results = {"machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                           "cpus": __import__("os").cpu_count()}, "quick": args.quick, "benchmarks": {}}
    for name in args.only or BENCHMARKS:
        start = time.perf_counter()
        res = BENCHMARKS[name](args.quick)
        res["seconds"] = round(time.perf_counter() - start, 1)
        results["benchmarks"][name] = res
        rows: list = []
        _flat("", res, rows)
        print(f"\n== {name}")
        for key, value in rows:
            if key != "name":
                print(f"  {key:<44} {value}")
        sys.stdout.flush()
    print("\n== summary")
    print_table([row for name, res in results["benchmarks"].items() for row in summary(name, res)])
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
