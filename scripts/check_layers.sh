#!/usr/bin/env bash
# Dependencies between layers point down only (docs/ARCHITECTURE.md). Every
# layer shares one include root, so this check keeps a wrong-way #include from
# slipping in: each layer may include only the layers listed for it. It also
# enforces three narrower rules:
#   - the engine reports through its observer and never draws the UI;
#   - node kinds (engine/nodes_*.c) use the node API only, never the
#     executor's private state (engine/run.h);
#   - cli/ knows no AWS wire format: no protocol calls, no request parameters,
#     no response readers, no SSM/EFS/EC2 bodies or target headers.
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
  [engine]="engine state stack health cost aws core"
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

# Node kinds see the node API, not the executor.
for f in src/engine/nodes*.[ch]; do
  if grep -n '#include "engine/run.h"' "$f" >/dev/null; then
    echo "error: $f includes engine/run.h: node kinds use the node API (engine/node.h) only" >&2
    bad=1
  fi
done

# The wire formats live below cli/: a command parses, calls and prints.
wire='gm_aws_query|gm_aws_json|gm_aws_rest_json|gm_params_|gm_read_xml|gm_svc_[a-z0-9]+|X-Amz-Target|aws/read\.h|aws/xml\.h|libxml/|gm_xml_'
if grep -nE "$wire" src/cli/*.[ch] >&2; then
  echo "error: cli/ uses an AWS wire format (above); move it to the layer that owns it" >&2
  bad=1
fi
# Node names are the engine's: cli/ never looks a node up.
nodes='azs|ami|vpc|vpc_dns|igw|subnet_[ab]|route_table|sg|sg_rules|efs|mount_target_[ab]|role'
nodes+='|role_policy|instance_profile|profile_role|secrets|placement|instance|health|alb_sg'
nodes+='|alb_ingress|alb|target_group|listener|targets|alb_healthy'
if grep -nE "gm_deployment_node\(|node_output|str(n)?cmp\([^)]*\"($nodes)\"" src/cli/*.[ch] >&2; then
  echo "error: cli/ names graph nodes (above); ask the engine (gm_engine_summary_of, ...)" >&2
  bad=1
fi
exit "$bad"
