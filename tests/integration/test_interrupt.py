"""SIGTERM and SIGINT in the middle of a deploy: the run stops at its next safe
point, saves the journal, and exits 143 (SIGTERM) or 130 (SIGINT); destroy
afterwards leaves nothing."""
import pytest

from deployhelpers import CIDR, FAST, destroy, leftovers, load_state, node


@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_signal_mid_deploy_saves_the_record(gm, proxy, boto, gm_home, sig, code):
    name = "sig%d" % code
    # The signal arrives while the first subnet is being created: the VPC
    # exists, much is still to do.
    proxy.kill_after(1, gm.last_pid, action="CreateSubnet", signal=sig)
    p = gm.popen("deploy", "--name", name, "--allow-cidr", CIDR, "--yes", env=FAST)
    rc = p.wait(timeout=120)
    out, err = gm.output(p)
    assert rc == code, "exit %d\n%s" % (rc, err)
    assert "interrupted" in err
    assert "deploy --resume %s" % name in err and "destroy %s" % name in err
    # Nothing was started after the signal beyond what was in flight.
    assert proxy.count(action="CreateAutoScalingGroup") == 0

    # The journal is on disk: the deployment is kept as failed, with the VPC's
    # id recorded, and what exists is what the record names.
    st = load_state(gm_home, name)
    assert st["status"] == "failed"
    assert node(st, "vpc")["id"]
    left = leftovers(boto, name)
    assert left.get("vpcs") == [node(st, "vpc")["id"]]

    r = destroy(gm, name)
    assert r.returncode == 0, r.stderr
    assert leftovers(boto, name) == {}
