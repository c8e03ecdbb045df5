#!/usr/bin/env bash
# Dependencies between layers point down only (docs/ARCHITECTURE.md). Every
# layer shares one include root, so this check keeps a wrong-way #include from
# slipping in: each layer may include only the layers listed for it.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A allowed=(
  [core]="core"
  [aws]="aws core"
  [ui]="ui core"
  [state]="state core"
  [stack]="stack core"
  [health]="health aws core"
  [cost]="cost aws core"
  [engine]="engine state stack health cost aws ui core"
  [cli]="cli engine state stack health cost aws ui core"
)
bad=0
for layer in "${!allowed[@]}"; do
  for f in src/"$layer"/*.[ch]; do
    [ -e "$f" ] || continue
    while IFS= read -r dep; do
      case " ${allowed[$layer]} " in
        *" $dep "*) ;;
        *) echo "error: $f includes layer '$dep', which '$layer' may not depend on" >&2; bad=1 ;;
      esac
    done < <(sed -n 's/^#include "\([a-z]*\)\/.*/\1/p' "$f" | sort -u)
  done
done
exit "$bad"
