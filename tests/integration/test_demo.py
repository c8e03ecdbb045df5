"""The README's first command: scripts/demo.sh deploys against its own moto
on 127.0.0.1, shows a healthy status and the list, destroys, and shows that
nothing remains; every command it runs must succeed (set -e)."""
import os
import subprocess

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def test_the_demo_runs_green():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GEUSEMAKER_"))}
    env.update(GM_SKIP_SETUP="1", NO_COLOR="1", NO_PROXY="127.0.0.1")
    r = subprocess.run(["bash", os.path.join(REPO, "scripts", "demo.sh")], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    out = r.stdout
    assert "Status:      healthy" in out
    assert "degraded" not in out
    assert "Destroyed 'demo'" in out
    tail = out.split("== geusemaker list (after destroy)")[1]
    assert "demo" not in tail
