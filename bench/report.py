#!/usr/bin/env python3
"""The speed report, in one run: deploy and destroy at two added latencies
(bench/deploy_bench.py) beside `list` over generated records
(bench/list_bench.py). Everything runs on 127.0.0.1 or offline.

usage: bench/report.py [--bin build/geusemaker] [--runs 3] [--count 1000] [--json out.json]
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deploy_bench  # noqa: E402
import list_bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(HERE), "build", "geusemaker"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--low-ms", type=int, default=25)
    ap.add_argument("--high-ms", type=int, default=125)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--json")
    a = ap.parse_args()
    dep = deploy_bench.bench(a.bin, a.low_ms, a.high_ms, a.runs)
    print("== deploy and destroy (dev tier, moto behind the fault proxy, %d runs each)" % a.runs)
    deploy_bench.print_table(dep)
    print()
    print("== list --offline over %d generated records (median of 7 runs)" % a.count)
    lst = list_bench.bench(a.bin, a.count, 7)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"deploy_destroy": dep, "list": lst}, f, indent=2)


if __name__ == "__main__":
    main()
