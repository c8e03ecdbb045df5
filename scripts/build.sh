#!/usr/bin/env bash
# Configures and builds one flavour into its own directory.
#   scripts/build.sh            -> build/        (the binary: build/geusemaker)
#   scripts/build.sh asan       -> build-asan/   (AddressSanitizer + UBSan)
#   scripts/build.sh coverage   -> build-cov/    (gcov instrumentation)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
  release)  dir=build;      flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)     dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DGM_SANITIZE=ON) ;;
  coverage) dir=build-cov;  flags=(-DCMAKE_BUILD_TYPE=Debug -DGM_COVERAGE=ON) ;;
  *) echo "usage: scripts/build.sh [release|asan|coverage]" >&2; exit 2 ;;
esac
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" "${gen[@]}" "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -j "$(nproc)"
