#!/usr/bin/env python3
"""`geusemaker list` over many generated records, with and without its index.

Writes COUNT records (schema-2 records with NODES nodes and EVENTS events each,
so their size is realistic) into a temporary state home, then times
`geusemaker list --offline --output json` (no AWS call):
  - cold: the index removed before each run (every record parsed, the index
    written),
  - warm: the index in place (what every later list does),
  - one record changed before each run (one record parsed again),
and the same warm listing with records ten times larger, to show the warm
listing does not grow with record size. Reports the median and min wall time
of RUNS runs of each. Nothing is contacted.

usage: bench/list_bench.py [--bin build/geusemaker] [--count 1000] [--runs 7] [--json out.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def record(name, i, nodes, events):
    node_list = []
    for k in range(nodes):
        node_list.append({"name": "instance" if k == 0 else "node%d" % k, "kind": "x",
                          "provenance": "created", "status": "created",
                          "id": "i-%08x%04x" % (i, k), "token": "t%d" % k, "created_at": 1,
                          "updated_at": 2,
                          "outputs": {"instance_type": "t3.medium", "market": "spot",
                                      "public_ip": "198.51.100.%d" % (k % 250)}})
    return {"schema_version": 1, "name": name, "tier": "dev", "region": "us-east-1",
            "status": "running", "created_at": 1700000000000 + i, "updated_at": 1700000000001 + i,
            "config": {"instance_type": "t3.medium", "spot": True,
                       "allow_cidrs": ["203.0.113.0/24"]},
            "cost": {"hourly": 0.0416, "breakdown": {"ec2": 0.03, "efs": 0.01}},
            "nodes": node_list,
            "events": [{"ts": 1700000000000 + e, "type": "step_done", "node": "instance",
                        "message": "created in %d ms" % e} for e in range(events)]}


def write_records(home, count, nodes, events):
    d = os.path.join(home, "deployments")
    os.makedirs(d, mode=0o700, exist_ok=True)
    size = 0
    for i in range(count):
        name = "bench-%05d" % i
        text = json.dumps(record(name, i, nodes, events))
        size += len(text)
        fd = os.open(os.path.join(d, name + ".json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    return size // max(count, 1)


def run_list(binary, home):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GEUSEMAKER_HOME": home,
           "HOME": home, "NO_COLOR": "1"}
    t0 = time.perf_counter()
    r = subprocess.run([binary, "list", "--offline", "--output", "json"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit("list failed: %s" % r.stderr.decode())
    return dt, len(json.loads(r.stdout))


def measure(binary, home, runs, before=None):
    times = []
    for _ in range(runs):
        if before:
            before()
        dt, n = run_list(binary, home)
        times.append(dt)
    return {"median_ms": round(statistics.median(times) * 1000, 1),
            "min_ms": round(min(times) * 1000, 1), "rows": n}


def bench(binary, count, runs, quiet=False):
    """Every measurement above; returns them as a dict."""
    a = argparse.Namespace(bin=binary, count=count, runs=runs)
    out = {"count": a.count}
    for label, nodes, events in (("records", 12, 40), ("large_records", 120, 400)):
        with tempfile.TemporaryDirectory() as home:
            os.chmod(home, 0o700)
            avg = write_records(home, a.count, nodes, events)
            index = os.path.join(home, "deployments", ".index.json")

            def drop_index():
                if os.path.exists(index):
                    os.unlink(index)

            state = {"i": 0}

            def change_one():
                state["i"] += 1
                name = "bench-%05d" % (state["i"] % a.count)
                p = os.path.join(home, "deployments", name + ".json")
                rec = record(name, state["i"], nodes, events)
                rec["status"] = "partial"
                tmp = p + ".w"
                with open(tmp, "w") as f:
                    json.dump(rec, f)
                os.chmod(tmp, 0o600)
                os.rename(tmp, p)

            res = {"record_bytes": avg,
                   "cold": measure(a.bin, home, a.runs, drop_index),
                   "warm": measure(a.bin, home, a.runs),
                   "one_changed": measure(a.bin, home, a.runs, change_one)}
            out[label] = res
            if not quiet:
                    print("%-14s %5d records of %6d bytes: cold %7.1f ms, warm %6.1f ms, "
                      "one changed %6.1f ms (median of %d)"
                      % (label, a.count, avg, res["cold"]["median_ms"], res["warm"]["median_ms"],
                         res["one_changed"]["median_ms"], a.runs))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "geusemaker"))
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json")
    a = ap.parse_args()
    out = bench(a.bin, a.count, a.runs)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
