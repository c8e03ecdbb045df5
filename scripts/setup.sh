#!/usr/bin/env bash
# Installs what GeuseMaker needs to build and test on a fresh Debian machine:
# the -dev packages it links against, the compilers and checkers the tests use,
# and the Python packages of the integration tests. Safe to run again: it only
# installs what is missing.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libcurl4-openssl-dev libssl-dev libxml2-dev libjansson-dev libyaml-dev zlib1g-dev
  clang libclang-rt-14-dev clang-format shellcheck gcovr git tmux python3 python3-pip
  nginx openssl jq systemd util-linux iptables iproute2 curl
  dpkg-dev man-db groff-base zsh fish
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import moto, boto3, pytest, xdist, jsonschema, flask, yaml' >/dev/null 2>&1; then
  echo "setup: installing python test packages" >&2
  "$PY" -m pip install -q -r "$(dirname "$0")/../tests/requirements.txt" ||
    "$PY" -m pip install -q --break-system-packages -r "$(dirname "$0")/../tests/requirements.txt"
fi
echo "setup: ok" >&2
