#!/usr/bin/env bash
# The main job on its embedded default: set up, start a local AWS emulator
# (moto on 127.0.0.1), deploy a stack against it, show its status and list,
# then destroy it and show that nothing remains. Nothing leaves this machine:
# every endpoint points at 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

[ "${GM_SKIP_SETUP:-}" = 1 ] || scripts/setup.sh
scripts/build.sh release >/dev/null

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOTO_IAM_LOAD_MANAGED_POLICIES=true python3 -m moto.server -H 127.0.0.1 -p "$port" \
  >"$work/moto.log" 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

# A hermetic environment: emulator endpoint, throwaway credentials, no IMDS.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE="$work/no-config" AWS_SHARED_CREDENTIALS_FILE="$work/no-credentials"
export GEUSEMAKER_HOME="$work/home" GEUSEMAKER_POLL_MS=200
gm="$root/build/geusemaker"

echo "== geusemaker whoami"
"$gm" whoami
echo
echo "== geusemaker deploy --name demo --allow-cidr 203.0.113.0/24"
"$gm" deploy --name demo --allow-cidr 203.0.113.0/24 --yes
echo
# On AWS the instance's boot takes the deployment's Elastic IP itself (the
# UserData's step "address", through its instance role); the emulator runs no
# UserData, so the demo does that one step in its place. Without it status
# rightly says degraded (the address is not on the group's instance).
echo "== (the instance's boot, which the emulator does not run) associate the Elastic IP"
python3 - <<'PY'
import os

import boto3

ec2 = boto3.client("ec2", region_name=os.environ["AWS_REGION"],
                   endpoint_url=os.environ["AWS_ENDPOINT_URL"])
tag = [{"Name": "tag:geusemaker:deployment", "Values": ["demo"]}]
alloc = ec2.describe_addresses(Filters=tag)["Addresses"][0]["AllocationId"]
running = [i["InstanceId"] for r in ec2.describe_instances(
    Filters=tag + [{"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    for i in r["Instances"]]
ec2.associate_address(AllocationId=alloc, InstanceId=running[0], AllowReassociation=True)
print("associated %s with %s" % (alloc, running[0]))
PY
echo
echo "== geusemaker status demo"
"$gm" status demo
echo
echo "== geusemaker list"
"$gm" list
echo
echo "== geusemaker destroy demo --yes"
"$gm" destroy demo --yes
echo
echo "== geusemaker list (after destroy)"
"$gm" list
