"""Starting a server subprocess (moto) on a free 127.0.0.1 port, safely while
other processes pick ports too: pytest-xdist's workers, other test runs.

A free port is asked of the kernel and let go; the server binds it a moment
later, and another process may have taken it in between. The loser of that
race exits, but until it does a request to the port is answered by the
winner, which could be another worker's moto or proxy. So a server counts as
up only once its own process holds the socket listening on the port
(owns_listener) and it answers; one that dies is started again on another
port. A port meant to refuse connections is held for the test's length
(refused_port) for the same reason.
"""
import contextlib
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def refused_port():
    """A 127.0.0.1 port that refuses connections while the block runs: bound
    here and never listening, so no other process can start serving on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def _listening_inodes(port):
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if (len(fields) > 9 and fields[3] == "0A"  # LISTEN
                            and int(fields[1].rsplit(":", 1)[1], 16) == port):
                        inodes.add(fields[9])
        except OSError:
            continue
    return inodes


def owns_listener(pid, port):
    """Whether process `pid` holds the socket listening on `port` (True where
    /proc cannot tell, as off Linux)."""
    if not os.path.exists("/proc/net/tcp"):
        return True
    want = {"socket:[%s]" % i for i in _listening_inodes(port)}
    if not want:
        return False
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in want:
                return True
        except OSError:
            pass
    return False


def _answers(url):
    try:
        with _no_proxy.open(url, timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start(argv, log_path, env, probe="/moto-api/", attempts=3, timeout=30):
    """Runs argv(port) on a free port until its process listens there and
    GET probe answers 200; returns (proc, port, url, log file). argv and
    log_path are functions of the port. Raises RuntimeError with the end of
    the last log when no attempt comes up."""
    last, cmd = "", []
    for _ in range(attempts):
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        path = log_path(port)
        log = open(path, "wb")
        cmd = argv(port)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if owns_listener(proc.pid, port) and _answers(url + probe):
                return proc, port, url, log
            time.sleep(0.1)
        stop(proc)
        log.close()
        with open(path, "rb") as f:
            last = f.read().decode(errors="replace")[-2000:]
    raise RuntimeError("%s did not start (%d tries):\n%s" % (" ".join(cmd), attempts, last))
