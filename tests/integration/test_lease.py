"""The stack's lease on EFS (gm-lease, geusemaker-lease.service): one instance
runs the stack at a time. The Auto Scaling group's capacity rebalancing starts
a replacement before it terminates the instance it replaces; the
replacement's stack waits for the lease until that instance is gone.

The script is the one the UserData installs (run in the sandbox), started
twice against one folder as two instances would share EFS; its lock is
flock(1)'s (on EFS a whole-file NFS lock, released when the holder's client
goes). The units' order is checked in the generated files."""
import os
import signal
import subprocess
import time

from test_generated_configs import installed_root
from test_userdata import gmbin  # noqa: F401

LEASE_DIR = "mnt/efs/.geusemaker"


def start(script, root, log):
    return subprocess.Popen(["bash", str(script)], env=dict(os.environ, GM_ROOT=str(root)),
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                            start_new_session=True)


def wait_for(predicate, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=10)


def test_a_second_instance_waits_until_the_first_is_gone(gmbin, tmp_path):  # noqa: F811
    sb = installed_root(gmbin, tmp_path, "dev", "al2023")
    script = sb.root / "opt/geusemaker/bin/gm-lease"
    efs = tmp_path / "efs-root"  # what both instances see as EFS
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start(script, efs, first_log)
    try:
        assert wait_for(lambda: "lease held" in first_log.read_text()), first_log.read_text()
        holder = (efs / LEASE_DIR / "holder").read_text()
        assert holder.startswith(os.uname().nodename + " since ")
        second = start(script, efs, second_log)
        try:
            assert wait_for(lambda: "waiting until it is gone" in second_log.read_text())
            assert "held by %s since" % os.uname().nodename in second_log.read_text()
            time.sleep(1.0)
            assert "lease held" not in second_log.read_text()
            assert second.poll() is None
            # The first instance goes (terminated): its lock goes with it.
            stop(first)
            assert wait_for(lambda: "lease held" in second_log.read_text()), \
                second_log.read_text()
            assert second.poll() is None  # it keeps the lease while it runs
        finally:
            stop(second)
    finally:
        stop(first)


def test_the_stack_runs_only_under_the_lease(gmbin, tmp_path):  # noqa: F811
    sb = installed_root(gmbin, tmp_path, "dev", "al2023")
    units = sb.root / "etc/systemd/system"
    lease = (units / "geusemaker-lease.service").read_text()
    assert "Type=notify" in lease and "ExecStart=/opt/geusemaker/bin/gm-lease" in lease
    assert "RequiresMountsFor=/mnt/efs" in lease
    for unit in ("geusemaker-stack.service", "geusemaker-late.service"):
        text = (units / unit).read_text()
        assert "BindsTo=geusemaker-lease.service" in text, unit
        after = [l for l in text.splitlines() if l.startswith("After=")]
        assert any("geusemaker-lease.service" in l for l in after), unit
    # The boot takes the lease before the first `compose up`.
    calls = sb.calls()
    take = next(i for i, c in enumerate(calls) if c == "systemctl start geusemaker-lease.service")
    up = next(i for i, c in enumerate(calls) if " up -d " in c)
    assert take < up
