#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/: every library
# instrumented, ASan+UBSan) and runs each for SECONDS (default 30) from its
# checked-in corpus, in a scratch corpus directory so the repository's stays
# as it is. Any crash, leak or sanitizer finding fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  cmake -S . -B build-fuzz "${gen[@]}" -DCMAKE_C_COMPILER=clang -DGM_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build-fuzz -j "$(nproc)" >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# One target per core at a time: each is a single process and still gets its
# SECONDS of a whole core.
jobs=$(nproc)
run() {
  local name=$1 rc=0
  mkdir -p "$scratch/$name"
  "build-fuzz/fuzz/$name" -max_total_time="$seconds" -print_final_stats=1 -close_fd_mask=1 \
    -artifact_prefix="$scratch/$name-" "$scratch/$name" "fuzz/corpus/$name" \
    >"$scratch/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$scratch/$name.rc"
}
names=()
for source in fuzz/fuzz_*.c; do
  names+=("$(basename "$source" .c)")
done
running=0
for name in "${names[@]}"; do
  if ((running >= jobs)); then
    wait -n
    running=$((running - 1))
  fi
  run "$name" &
  running=$((running + 1))
done
wait
status=0
for name in "${names[@]}"; do
  if [ "$(cat "$scratch/$name.rc")" != 0 ]; then
    echo "error: $name failed:" >&2
    tail -40 "$scratch/$name.log" >&2
    status=1
    continue
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$name.log")
  echo "fuzz: $name ${runs:-?} runs in ${seconds}s, clean" >&2
done
exit "$status"
