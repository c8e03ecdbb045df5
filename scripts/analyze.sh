#!/usr/bin/env bash
# The clang static analyser over every file in src/, with the flags of the
# given build (default build/, which scripts/build.sh configures with
# compile_commands.json). Any finding fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -f "$build/compile_commands.json" ] || { echo "analyze: no $build/compile_commands.json" >&2; exit 2; }
python3 - "$build/compile_commands.json" "$(nproc)" <<'PY'
import json, os, shlex, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
root = os.getcwd()
entries = [e for e in json.load(open(sys.argv[1]))
           if os.path.relpath(e["file"], root).startswith("src/")]
def flags(e):
    args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
    keep, skip = [], False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-c"):
            skip = a != "-c"
            continue
        if a.startswith(("-I", "-D", "-isystem", "-std=")) or a in ("-isystem",):
            keep.append(a)
            if a == "-isystem":
                skip = False
        elif keep and keep[-1] == "-isystem":
            keep.append(a)
    return keep
def run(e):
    cmd = ["clang", "--analyze", "-Xclang", "-analyzer-output=text",
           "-Xclang", "-analyzer-opt-analyze-headers"] + flags(e) + [e["file"], "-o", "/dev/null"]
    p = subprocess.run(cmd, cwd=e["directory"], capture_output=True, text=True)
    return e["file"], p.returncode, p.stdout + p.stderr
bad = 0
seen = set()
with ThreadPoolExecutor(int(sys.argv[2])) as pool:
    for f, rc, out in pool.map(run, entries):
        if f in seen:
            continue
        seen.add(f)
        if rc != 0 or "warning:" in out:
            bad += 1
            sys.stderr.write(out)
print("analyze: %d file(s), %d with findings" % (len(seen), bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
