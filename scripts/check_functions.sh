#!/usr/bin/env bash
# No function in src/ is longer than 100 lines (flat tables are data, not
# functions, and are not counted). A function body is the lines from a "{"
# alone in the first column to the next "}" alone in the first column, as
# the project's clang-format style writes them.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-100}
status=0
for f in src/*/*.c; do
  awk -v limit="$limit" -v file="$f" '
    /^\{$/ { start = NR; name = prev; next }
    /^\}$/ && start { len = NR - start - 1
                      if (len > limit) { printf "error: %s:%d: %s is %d lines long (at most %d)\n", file, start, name, len, limit; bad = 1 }
                      start = 0 }
    { prev = $0 }
    END { exit bad }' "$f" >&2 || status=1
done
exit "$status"
