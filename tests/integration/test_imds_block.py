"""gm-imds-block, the rule the UserData installs so containers cannot reach the
instance metadata service, run for real with iptables in network namespaces of
the test's own (nothing outside them is touched, no packet leaves them):

    container ns --veth-- host ns --veth-- "vpc" ns (169.254.169.254, 10.0.0.2)
    172.31.99.2           forwards          HTTP servers

The container's packets to 169.254.169.254 cross the host's FORWARD chain, as
Docker's bridge traffic does; the host's own calls leave through OUTPUT. After
the rule: the container's request to the metadata address times out, its
request to another address still works, and the host's own request to the
metadata address still works. Needs root (network namespaces, iptables).
"""

import os
import re
import shutil
import subprocess

import pytest

from test_userdata import gmbin, userdata  # noqa: F401

DRIVER = r'''
set -euo pipefail
# Refuse to run anywhere but a fresh network namespace (only lo).
[ "$(ip -o link show | wc -l)" = 1 ] || { echo "not a fresh network namespace" >&2; exit 99; }
ip link set lo up
unshare --net sleep 120 & CTR=$!
unshare --net sleep 120 & VPC=$!
trap 'kill $CTR $VPC 2>/dev/null || true' EXIT
sleep 0.3
in_ctr() { nsenter -t "$CTR" -n "$@"; }
in_vpc() { nsenter -t "$VPC" -n "$@"; }
ip link add vh type veth peer name vc
ip link set vc netns "$CTR"
ip addr add 172.31.99.1/24 dev vh
ip link set vh up
in_ctr ip link set lo up
in_ctr ip addr add 172.31.99.2/24 dev vc
in_ctr ip link set vc up
in_ctr ip route add default via 172.31.99.1
ip link add vo type veth peer name vi
ip link set vi netns "$VPC"
ip addr add 10.0.0.1/24 dev vo
ip link set vo up
ip route add 169.254.169.254/32 via 10.0.0.2
in_vpc ip link set lo up
in_vpc ip addr add 10.0.0.2/24 dev vi
in_vpc ip addr add 169.254.169.254/32 dev lo
in_vpc ip link set vi up
in_vpc ip route add default via 10.0.0.1
sysctl -q -w net.ipv4.ip_forward=1
in_vpc python3 -m http.server --bind 0.0.0.0 80 >/dev/null 2>&1 &
WEB=$!
trap 'kill $CTR $VPC $WEB 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  if curl -fsS --max-time 1 -o /dev/null http://10.0.0.2/; then break; fi
  sleep 0.1
done
get() { if "$@" curl -fsS --max-time 3 -o /dev/null "$URL"; then echo ok; else echo blocked; fi; }
# As Docker sets it up: FORWARD jumps to DOCKER-USER first.
iptables -N DOCKER-USER
iptables -A DOCKER-USER -j RETURN
iptables -I FORWARD 1 -j DOCKER-USER
URL=http://169.254.169.254/ ; echo "before container-imds $(get in_ctr)"
bash "$SCRIPT"
bash "$SCRIPT"
URL=http://169.254.169.254/ ; echo "after container-imds $(get in_ctr)"
URL=http://10.0.0.2/ ; echo "after container-other $(get in_ctr)"
URL=http://169.254.169.254/ ; echo "after host-imds $(get)"
echo "rules $(iptables -S DOCKER-USER | grep -c -- '-d 169.254.169.254/32 -j DROP')"
'''


def imds_block_script(gmbin):
    text = userdata(gmbin, "--name", "demo", "--efs-id", "fs-0123456789abcdef0").stdout
    m = re.search(r"cat >\"\$APP/bin/gm-imds-block\"\.tmp <<'GM_SCRIPT_EOF'\n(.*?)\n"
                  r"GM_SCRIPT_EOF\n", text, re.S)
    assert m, "no gm-imds-block in the UserData"
    return m.group(1) + "\n"


def test_containers_cannot_reach_imds_but_the_host_can(gmbin, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("network namespaces and iptables need root")
    for tool in ("unshare", "nsenter", "ip", "iptables", "curl", "python3"):
        if not shutil.which(tool):
            pytest.fail("%s is not installed (scripts/setup.sh installs it)" % tool)
    script = tmp_path / "gm-imds-block"
    script.write_text(imds_block_script(gmbin))
    driver = tmp_path / "driver.sh"
    driver.write_text(DRIVER)
    r = subprocess.run(["unshare", "--net", "bash", str(driver)], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, SCRIPT=str(script)))
    if r.returncode != 0 and "Operation not permitted" in r.stderr:
        pytest.skip("no network namespaces here: %s" % r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "before container-imds ok",  # the set-up forwards: the check is not vacuous
        "after container-imds blocked",
        "after container-other ok",  # only the metadata address is dropped
        "after host-imds ok",  # the host's own calls (OUTPUT) still work
        "rules 1",  # run twice, one rule
    ], r.stdout + r.stderr
