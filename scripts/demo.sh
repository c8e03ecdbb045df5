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
