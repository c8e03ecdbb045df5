#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs every test:
#   1. unit tests, SigV4 vectors and fuzz corpora (CTest) on the normal build;
#   2. the same on the ASan+UBSan build;
#   3. clang-format, the layering rules, function length, the clang static
#      analyser and shellcheck on the project's sources and scripts; every
#      libFuzzer target runs for a few seconds on its corpus (clang build);
#   4. integration tests (pytest: the real binary against a local moto server,
#      through the project's fault-injection proxy; every request geusemaker
#      sends is checked against botocore's AWS API models and a violation fails
#      the run; test_iam_enforced.py deploys on a moto of its own with SigV4
#      verification and IAM enforcement, as a user holding docs/iam-policy.json);
#   5. the whoami, credential, deploy, bad-input, IAM-enforced, list-index, update,
#      destroy-order and image integration tests again with the sanitizer binary;
#   6. line coverage of the orchestration (engine/, including the load balancer nodes) and
#      state (state/) code by the unit and deploy, crash, ALB, failover, logs, connect,
#      health, list-index, stop/start, update, destroy-order and image (but its crash
#      matrix) integration tests, on a gcov build (must be
#      at least 80 %).
# The pytest steps run on every core with pytest-xdist, a test file per worker
# at a time (--dist loadfile: a file's module fixtures start once); each worker
# has its own moto server, proxies, ports and temporary folders, and the API
# model check adds up the workers' findings (tests/integration/conftest.py).
# Network: everything talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)
xdist=(-n "$jobs" --dist loadfile)

[ "${GM_SKIP_SETUP:-}" = 1 ] || scripts/setup.sh

echo "== build (normal, asan)" >&2
scripts/build.sh release
scripts/build.sh asan
scripts/build.sh coverage

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== unit tests (normal build)" >&2
ctest --test-dir build --output-on-failure -j "$jobs"
echo "== unit tests (asan+ubsan build)" >&2
ctest --test-dir build-asan --output-on-failure -j "$jobs"

echo "== clang-format" >&2
git ls-files 'src/*.[ch]' 'tests/unit/*.[ch]' 'fuzz/*.c' 'bench/*.c' | xargs clang-format --dry-run --Werror

echo "== layering" >&2
scripts/check_layers.sh

echo "== function length" >&2
scripts/check_functions.sh

echo "== static analyser (clang --analyze)" >&2
scripts/analyze.sh build

echo "== fuzz targets (libFuzzer, ${GM_FUZZ_SECONDS:-5} s each)" >&2
scripts/fuzz.sh "${GM_FUZZ_SECONDS:-5}"

echo "== shellcheck" >&2
shellcheck scripts/*.sh .ci/run tests/integration/userdata_sandbox/stub

echo "== integration tests, sanitizer binary (whoami, credentials, deploy, bad input, adopt," \
  "cleanup, state folder, IAM enforced, list index, update, destroy order, images)" >&2
GEUSEMAKER_BIN="$root/build-asan/geusemaker" python3 -m pytest -q -p no:cacheprovider "${xdist[@]}" \
  tests/integration/test_whoami.py tests/integration/test_credentials.py \
  tests/integration/test_deploy.py tests/integration/test_bad_input.py \
  tests/integration/test_adopt_cleanup.py tests/integration/test_state_safety.py \
  tests/integration/test_iam_enforced.py tests/integration/test_list_index.py \
  tests/integration/test_update.py tests/integration/test_destroy_order.py \
  tests/integration/test_image.py

echo "== coverage of engine/ and state/ (gcov build)" >&2
find build-cov -name '*.gcda' -delete
ctest --test-dir build-cov -j "$jobs" -R 'test_state|fuzz_state|test_logs|fuzz_ssm' >/dev/null
GEUSEMAKER_BIN="$root/build-cov/geusemaker" python3 -m pytest -q -p no:cacheprovider "${xdist[@]}" \
  tests/integration/test_deploy.py tests/integration/test_crash.py tests/integration/test_alb.py \
  tests/integration/test_failover.py tests/integration/test_stack_deploy.py \
  tests/integration/test_adopt_cleanup.py tests/integration/test_logs.py \
  tests/integration/test_connect.py tests/integration/test_degraded.py \
  tests/integration/test_list_index.py tests/integration/test_lifecycle.py \
  tests/integration/test_update.py tests/integration/test_destroy_order.py \
  tests/integration/test_image.py -k "not killed_at_each_write"
gcovr --root . --object-directory build-cov --gcov-ignore-parse-errors \
  --filter 'src/engine/' --filter 'src/state/' \
  --print-summary --txt build-cov/coverage.txt --fail-under-line 80 >/dev/null
cat build-cov/coverage.txt

echo "== integration tests" >&2
GEUSEMAKER_BIN="$root/build/geusemaker" python3 -m pytest -q -p no:cacheprovider "${xdist[@]}" tests/integration
