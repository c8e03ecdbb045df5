#!/usr/bin/env python3
"""Deploy and destroy benchmark through the fault proxy with added latency.

Starts a moto server and the project's fault proxy on 127.0.0.1 (nothing else
is contacted), adds LATENCY ms to every request, then runs `geusemaker deploy`
and `geusemaker destroy` RUNS times and reports, for each phase:
  - wall time (median and min over the runs),
  - request count,
  - the longest chain of dependent requests: requests that could not overlap
    (each starts after the previous one ended), i.e. the round trips on the
    critical path; and for deploy, the chain up to the instance running,
    against the ideal of 6 (CreateVpc -> CreateSecurityGroup ->
    CreateLaunchTemplate -> CreateAutoScalingGroup -> DescribeAutoScalingGroups
    -> DescribeInstances: the group needs the template, which names the
    security group).

usage: bench/deploy_bench.py [--bin build/geusemaker] [--latency-ms 50] [--runs 3] [--json out.json]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from faultproxy import FaultProxy  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start")


def longest_chain(records, until=None):
    """Longest sequence of requests each starting after the previous ended."""
    recs = sorted((r for r in records if r["end"] is not None), key=lambda r: r["start"])
    if until is not None:
        recs = [r for r in recs if r["end"] <= until]
    best = []
    for i, r in enumerate(recs):
        prev = [best[j] for j in range(i) if recs[j]["end"] <= r["start"]]
        best.append(1 + max(prev, default=0))
    return max(best, default=0)


def run(binary, args, env):
    t0 = time.monotonic()
    r = subprocess.run([binary] + args, env=env, capture_output=True, text=True, timeout=600)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s" % (" ".join(args), r.returncode, r.stderr[-3000:]))
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "geusemaker"))
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    moto, url = start_moto()
    proxy = FaultProxy(url, latency_ms=a.latency_ms)
    proxy.start()
    home = tempfile.mkdtemp(prefix="gm-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GEUSEMAKER_"))}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=proxy.url, AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               GEUSEMAKER_HOME=home, GEUSEMAKER_POLL_MS="200", NO_COLOR="1", NO_PROXY="127.0.0.1")
    phases = {"deploy": [], "destroy": []}
    try:
        for i in range(a.runs):
            name = "bench%d" % i
            proxy.clear_records()
            dt = run(a.bin, ["deploy", "--name", name, "--allow-cidr", "203.0.113.0/24", "--yes",
                             "--output", "json"], env)
            recs = proxy.records
            running = [r for r in recs if r["action"] == "DescribeInstances"]
            until = running[-1]["end"] if running else None
            phases["deploy"].append({"wall_s": dt, "requests": len(recs),
                                     "chain": longest_chain(recs),
                                     "chain_to_running": longest_chain(recs, until)})
            proxy.clear_records()
            dt = run(a.bin, ["destroy", name, "--yes"], env)
            recs = proxy.records
            phases["destroy"].append({"wall_s": dt, "requests": len(recs), "chain": longest_chain(recs)})
    finally:
        proxy.stop()
        moto.terminate()
        moto.wait(timeout=10)
    result = {"latency_ms": a.latency_ms, "runs": a.runs, "ideal_chain_to_running": 6}
    for phase, rows in phases.items():
        walls = [r["wall_s"] for r in rows]
        summary = {"wall_s_median": round(statistics.median(walls), 3), "wall_s_min": round(min(walls), 3),
                   "requests": rows[0]["requests"], "longest_chain": rows[0]["chain"]}
        if phase == "deploy":
            summary["chain_to_running"] = rows[0]["chain_to_running"]
        result[phase] = summary
    print(json.dumps(result, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
