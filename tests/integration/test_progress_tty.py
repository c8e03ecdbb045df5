"""The TTY progress display on a real terminal emulator (tmux).

Runs `<build>/tests/test_progress --demo` (a short concurrent deploy-like demo
on the real stderr) inside a detached tmux pane of 100x30 and reads the screen
back with capture-pane: every finished step must be on screen exactly once, no
spinner frame may be left over, and the cursor must be hidden while the display
is live and visible again at the end.

Build dir: $GM_BUILD_DIR, else the directory of $GEUSEMAKER_BIN, else <repo>/build.
Skipped when tmux is not installed.
"""

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

DONE_LINES = [
    "✓ creating VPC  vpc-0abc1234  ",
    "✓ creating subnet in us-east-1a  subnet-0aaa  ",
    "✓ creating subnet in us-east-1b  subnet-0bbb  ",
    "✓ attaching internet gateway  igw-0123  ",
    "✓ creating security group  sg-0456  ",
    "✓ creating EFS file system  fs-0789  ",
    "✓ creating mount target (us-east-1a)  fsmt-0a  ",
    "✓ creating mount target (us-east-1b)  fsmt-0b  ",
    "✓ creating instance role  geusemaker-demo-role  ",
    "✓ creating instance profile  geusemaker-demo-profile  ",
    "✓ launching spot instance g4dn.xlarge (us-east-1b)  i-0fedcba987654321  ",
]


def _build_dir():
    if os.environ.get("GM_BUILD_DIR"):
        return Path(os.environ["GM_BUILD_DIR"])
    if os.environ.get("GEUSEMAKER_BIN"):
        return Path(os.environ["GEUSEMAKER_BIN"]).resolve().parent
    return REPO / "build"


@pytest.fixture
def demo_bin():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    b = _build_dir() / "tests" / "test_progress"
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail("progress demo not found: %s (build it, or set GM_BUILD_DIR)" % b)
    return b


class Tmux:
    def __init__(self, sock, env):
        self.sock = str(sock)
        self.env = env

    def __call__(self, *args, check=True):
        r = subprocess.run(["tmux", "-u", "-f", "/dev/null", "-S", self.sock] + list(args),
                           env=self.env, capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            pytest.fail("tmux %s failed: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def screen(self):
        return self("capture-pane", "-p", "-t", "demo").split("\n")

    def cursor_visible(self):
        return self("display-message", "-p", "-t", "demo", "#{cursor_flag}").strip() == "1"


@pytest.fixture
def tmux(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TMUX") and k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    t = Tmux(tmp_path / "tmux.sock", env)
    try:
        yield t
    finally:
        t("kill-server", check=False)


def test_demo_screen(demo_bin, tmux, tmp_path):
    rc_file = tmp_path / "rc"
    cmd = "%s --demo; echo $? > %s; exec sleep 60" % (shlex.quote(str(demo_bin)),
                                                     shlex.quote(str(rc_file)))
    tmux("new-session", "-d", "-s", "demo", "-x", "100", "-y", "30", cmd)

    saw_hidden = saw_spinner = False
    deadline = time.monotonic() + 30
    while not rc_file.exists() or not rc_file.read_text().strip():
        if time.monotonic() > deadline:
            pytest.fail("demo did not finish; screen:\n" + "\n".join(tmux.screen()))
        if any(ch in line for line in tmux.screen() for ch in SPINNER):
            saw_spinner = True
        if not tmux.cursor_visible():
            saw_hidden = True
        time.sleep(0.05)
    time.sleep(0.1)

    screen = tmux.screen()
    text = "\n".join(screen)
    assert rc_file.read_text().strip() == "0", text
    assert saw_spinner, "no spinner seen while the demo ran"
    assert saw_hidden, "cursor never hidden while the display was live"
    assert tmux.cursor_visible(), "cursor not restored"

    assert screen[0] == 'Deploying "demo" (tier dev)', text
    for want in DONE_LINES:
        hits = [line for line in screen if line.startswith(want)]
        assert len(hits) == 1, "%r on screen %d times:\n%s" % (want, len(hits), text)
        assert hits[0][len(want):].rstrip().endswith("s"), hits[0]
    assert sum(line.startswith("✓ ") for line in screen) == len(DONE_LINES), text
    failed = "✗ launching spot instance g4dn.xlarge  InsufficientInstanceCapacity in us-east-1a"
    assert sum(line.startswith(failed) for line in screen) == 1, text
    assert sum(line.startswith("- alb  tier dev has no load balancer") for line in screen) == 1
    assert sum(line.startswith("• attempt 2: InsufficientInstanceCapacity in us-east-1a, "
                               "trying us-east-1b") for line in screen) == 1
    assert any(line.startswith("11 done, 1 skipped  ") for line in screen), text
    for line in screen:
        assert not any(ch in line for ch in SPINNER), "spinner left on screen: %r" % line
        assert len(line) <= 100
