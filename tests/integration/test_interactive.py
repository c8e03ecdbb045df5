"""deploy on a real terminal (tmux): the plan and its cost before the
question, 'n' creates nothing, 'y' deploys; without --name the interactive
setup asks, offers to save its answers and deploys. Without a terminal and
without --yes, deploy refuses before any AWS call."""
import os
import re
import shlex
import shutil
import subprocess
import time

import pytest

from deployhelpers import CIDR, FAST, destroy, leftovers

WRITES = ("Create", "Run", "Put", "Attach", "Authorize", "Associate", "Add", "Register")


def test_no_terminal_no_yes_is_refused_before_any_call(gm, proxy):
    r = gm.run("deploy", "--name", "notty", "--allow-cidr", CIDR, env=FAST)
    assert r.returncode == 2 and "--yes" in r.stderr and "no terminal" in r.stderr
    assert proxy.records == []


class Term:
    """One command in a detached tmux pane, read back with capture-pane."""

    def __init__(self, tmp_path, gm, argv, env=None):
        self.sock = str(tmp_path / "tmux.sock")
        merged = dict(gm.env)
        merged.update(FAST)
        merged.update(env or {})
        merged["TERM"] = "xterm-256color"
        script = tmp_path / "run.sh"
        lines = ["cd %s" % shlex.quote(str(gm.workdir))]
        lines += ["export %s=%s" % (k, shlex.quote(v)) for k, v in merged.items()]
        lines += ["%s %s" % (shlex.quote(str(gm.bin)), " ".join(shlex.quote(a) for a in argv)),
                  "echo EXIT=$?", "sleep 600"]
        script.write_text("\n".join(lines) + "\n")
        self.tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "60", "bash %s" % script)

    def tmux(self, *args):
        r = subprocess.run(["tmux", "-u", "-f", "/dev/null", "-S", self.sock] + list(args),
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", "t")

    def wait_for(self, pattern, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.screen()
            if re.search(pattern, text):
                return text
            time.sleep(0.2)
        pytest.fail("%r never appeared on the terminal:\n%s" % (pattern, self.screen()))

    def send(self, text):
        self.tmux("send-keys", "-t", "t", "-l", text)
        self.tmux("send-keys", "-t", "t", "Enter")

    def close(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True)


@pytest.fixture
def term(tmp_path, gm):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    made = []

    def make(argv, env=None):
        t = Term(tmp_path, gm, argv, env)
        made.append(t)
        return t
    yield make
    for t in made:
        t.close()


def test_answering_no_creates_nothing(gm, proxy, term):
    t = term(["deploy", "--name", "ttyno", "--allow-cidr", CIDR])
    text = t.wait_for(r"Create these resources\?")
    # The plan and its cost come before the question.
    question = text.index("Create these resources?")
    for what in ("Deploy \"ttyno\" in us-east-1", "creating the VPC", "instance:", "cost:",
                 "/hour", "/month", CIDR):
        assert what in text[:question], what
    t.send("n")
    text = t.wait_for(r"EXIT=\d+")
    assert "EXIT=2" in text and "not confirmed: nothing was created" in text
    assert not [r for r in proxy.records if r["action"].startswith(WRITES)]
    assert not os.path.exists(os.path.join(gm.env["GEUSEMAKER_HOME"], "deployments",
                                           "ttyno.json"))


def test_answering_yes_deploys(gm, proxy, boto, term):
    t = term(["deploy", "--name", "ttyyes", "--allow-cidr", CIDR])
    t.wait_for(r"Create these resources\?")
    assert not [r for r in proxy.records if r["action"].startswith(WRITES)]
    t.send("y")
    text = t.wait_for(r"EXIT=\d+", timeout=240)
    assert "EXIT=0" in text, text
    assert "Next steps:" in text and "geusemaker secrets ttyyes --yes" in text
    assert leftovers(boto, "ttyyes")
    assert destroy(gm, "ttyyes").returncode == 0
    assert leftovers(boto, "ttyyes") == {}


def test_interactive_setup_end_to_end(gm, proxy, boto, term):
    t = term(["deploy"])
    t.wait_for(r"Name \(lowercase letters, digits, '-'\) \[demo\]: ")
    t.send("Bad_Name")
    t.wait_for(r"invalid deployment name 'Bad_Name'")
    t.send("wizard")
    t.wait_for(r"Region \[us-east-1\]: ")
    t.send("")
    t.wait_for(r"Tier: 1\) dev")
    t.send("1")
    text = t.wait_for(r"Instance type: a number above or a type name \[1\]: ", timeout=120)
    assert re.search(r"1\) \S+ +(spot|on-demand) +us-east-1\w +\$\d+\.\d{4}/hour", text), text
    t.send("")
    t.wait_for(r"Allow access from \(an IPv4 range\)")
    t.send("010.0.0.0/8")
    t.wait_for(r"leading zero")
    t.send(CIDR)
    t.wait_for(r"Save these answers as ./geusemaker.yaml\? \[y/N\]: ")
    t.send("y")
    t.wait_for(r"Create these resources\?")
    t.send("y")
    text = t.wait_for(r"EXIT=\d+", timeout=240)
    assert "EXIT=0" in text, text
    saved = open(os.path.join(str(gm.workdir), "geusemaker.yaml")).read()
    assert "name: wizard" in saved and "region: us-east-1" in saved and "tier: dev" in saved
    assert "allow-cidr: [%s]" % CIDR in saved
    assert destroy(gm, "wizard").returncode == 0
    assert leftovers(boto, "wizard") == {}


def test_destroy_says_what_goes_before_it_asks(gm, proxy, boto, term):
    from deployhelpers import deploy, load_state, node
    assert deploy(gm, "ttydel").returncode == 0
    st = load_state(gm.env["GEUSEMAKER_HOME"], "ttydel")
    t = term(["destroy", "ttydel"])
    text = t.wait_for(r"Type the deployment's name to confirm: ")
    for n in ("vpc", "asg", "launch_template", "eip", "efs", "role"):
        assert node(st, n)["id"] in text, n
    assert "WITH ALL ITS DATA" in text
    t.send("ttydel")
    text = t.wait_for(r"EXIT=\d+", timeout=240)
    assert "EXIT=0" in text, text
    assert leftovers(boto, "ttydel") == {}
