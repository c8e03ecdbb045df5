#!/usr/bin/env python3
"""Deploy and destroy through the fault proxy, the same work at two added latencies.

Starts a moto server and two of the project's fault proxies in front of it on
127.0.0.1 (nothing else is contacted), one adding LOW ms and one HIGH ms to
every request, then runs `geusemaker deploy` and `geusemaker destroy` RUNS
times through each and reports, per phase and latency:
  - wall time (median and min over the runs), CPU time (user + system) and
    peak memory (maximum resident set) of the geusemaker process;
  - the requests sent;
  - the critical path in round trips, two ways:
      * from the wall times: (median wall at HIGH - median wall at LOW) /
        (HIGH - LOW). Each round trip on the critical path pays the added
        latency once; everything else (the emulator's own time, the local
        journal writes, poll sleeps) is the same at both latencies and
        cancels out;
      * from the requests: the longest chain of requests each starting after
        the previous one ended (an upper bound: requests that merely
        happened not to overlap count too).
  For deploy, the chain up to the instance known (the last DescribeInstances)
  is reported too.

usage: bench/deploy_bench.py [--bin build/geusemaker] [--low-ms 25] [--high-ms 125]
                             [--runs 3] [--json out.json]
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


def timed(binary, args, env):
    """wall, cpu, peak memory of one run (wait4 on the child itself)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([binary] + args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.monotonic() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s" % (" ".join(args), proc.returncode, err[-3000:]))
    return {"wall_s": dt, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mib": usage.ru_maxrss / 1024.0}


def bench_env(proxy_url, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GEUSEMAKER_"))}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=proxy_url, AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
               GEUSEMAKER_HOME=home, GEUSEMAKER_POLL_MS="200", NO_COLOR="1", NO_PROXY="127.0.0.1")
    return env


def one_latency(binary, proxy, runs, tag):
    home = tempfile.mkdtemp(prefix="gm-bench-")
    env = bench_env(proxy.url, home)
    rows = {"deploy": [], "destroy": []}
    for i in range(runs):
        name = "bench%s%d" % (tag, i)
        proxy.clear_records()
        m = timed(binary, ["deploy", "--name", name, "--allow-cidr", "203.0.113.0/24", "--yes",
                           "--output", "json"], env)
        recs = proxy.records
        known = [r for r in recs if r["action"] == "DescribeInstances"]
        m.update(requests=len(recs), chain=longest_chain(recs),
                 chain_to_running=longest_chain(recs, known[-1]["end"] if known else None))
        rows["deploy"].append(m)
        proxy.clear_records()
        m = timed(binary, ["destroy", name, "--yes"], env)
        recs = proxy.records
        m.update(requests=len(recs), chain=longest_chain(recs))
        rows["destroy"].append(m)
    return rows


def summarise(rows):
    med = lambda k: statistics.median(r[k] for r in rows)  # noqa: E731
    out = {"wall_s_median": round(med("wall_s"), 3),
           "wall_s_min": round(min(r["wall_s"] for r in rows), 3),
           "cpu_s_median": round(med("cpu_s"), 3),
           "peak_mib_max": round(max(r["peak_mib"] for r in rows), 1),
           "requests": rows[0]["requests"],
           "chain_min": min(r["chain"] for r in rows),
           "chain_median": med("chain")}
    if "chain_to_running" in rows[0]:
        out["chain_to_running_min"] = min(r["chain_to_running"] for r in rows)
    return out


def bench(binary, low_ms, high_ms, runs):
    moto, url = start_moto()
    proxies = [FaultProxy(url, latency_ms=low_ms), FaultProxy(url, latency_ms=high_ms)]
    for p in proxies:
        p.start()
    try:
        # one deploy and destroy first: moto's first answers of each kind are slow
        one_latency(binary, proxies[0], 1, "warm")
        low = one_latency(binary, proxies[0], runs, "l")
        high = one_latency(binary, proxies[1], runs, "h")
    finally:
        for p in proxies:
            p.stop()
        moto.terminate()
        moto.wait(timeout=10)
    result = {"low_ms": low_ms, "high_ms": high_ms, "runs": runs}
    for phase in ("deploy", "destroy"):
        lo, hi = summarise(low[phase]), summarise(high[phase])
        rtt = (hi["wall_s_median"] - lo["wall_s_median"]) / ((high_ms - low_ms) / 1000.0)
        result[phase] = {"low": lo, "high": hi, "round_trips_from_wall": round(rtt, 1)}
    return result


def print_table(r):
    lo, hi = "+%d ms" % r["low_ms"], "+%d ms" % r["high_ms"]
    print("%-34s %14s %14s %14s %14s" % ("", "deploy " + lo, "deploy " + hi, "destroy " + lo,
                                         "destroy " + hi))
    cells = [r["deploy"]["low"], r["deploy"]["high"], r["destroy"]["low"], r["destroy"]["high"]]
    for label, key, fmt in (("wall time, median (s)", "wall_s_median", "%.3f"),
                            ("CPU time, median (s)", "cpu_s_median", "%.3f"),
                            ("peak memory (MiB)", "peak_mib_max", "%.1f"),
                            ("requests", "requests", "%d"),
                            ("longest request chain (min)", "chain_min", "%d")):
        print("%-34s %14s %14s %14s %14s" % ((label,) + tuple(fmt % c[key] for c in cells)))
    print("%-34s %14s %14s" % ("chain to the instance known (min)",
                               r["deploy"]["low"]["chain_to_running_min"],
                               r["deploy"]["high"]["chain_to_running_min"]))
    print("%-34s %29s %29s" % ("critical path from the wall times",
                               "%.1f round trips" % r["deploy"]["round_trips_from_wall"],
                               "%.1f round trips" % r["destroy"]["round_trips_from_wall"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "geusemaker"))
    ap.add_argument("--low-ms", type=int, default=25)
    ap.add_argument("--high-ms", type=int, default=125)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    result = bench(a.bin, a.low_ms, a.high_ms, a.runs)
    print_table(result)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
