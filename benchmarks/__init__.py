"""Benchmarks: each measures Keepwell and a baseline in the same run and reports the ratio.
Run them all with `python -m benchmarks [--quick] [--json OUT]`."""
