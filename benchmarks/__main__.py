"""python -m benchmarks [--quick] [--json OUT] [--only NAME ...]: run the benchmarks, print a
table of figures and ratios against their baselines, and write them to JSON."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

from . import http_load, ingest, memory, rule_eval
from . import due_work

BENCHMARKS = {
    "rule_eval": lambda quick: rule_eval.run(quick),
    "ingest_sqlite": lambda quick: ingest.run("sqlite", quick),
    "ingest_postgresql": lambda quick: ingest.run("postgresql", quick),
    "memory": lambda quick: memory.run(quick),
    "due_work_sqlite": lambda quick: due_work.run("sqlite", quick),
    "due_work_postgresql": lambda quick: due_work.run("postgresql", quick),
    "http_load_postgresql": lambda quick: http_load.run("postgresql", quick),
    "http_load_sqlite": lambda quick: http_load.run("sqlite", quick),
}


def _flat(prefix: str, value, out: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out.append((prefix, value))


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
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
