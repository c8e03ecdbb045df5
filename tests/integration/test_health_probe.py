"""The health probe against local HTTP servers (127.0.0.1 only).

The servers serve a healthy, a degraded, a starting-then-healthy and a broken
document, HTTP errors, a stale document, the document the UserData's own
health script writes in the sandbox, and one server accepts connections but
never answers. The probe is the real gm_health_fetch / gm_health_wait over the
libcurl transport, driven by the unit-test binary's probe mode:

    build/tests/test_health --probe URL [--timeout-ms N]
    build/tests/test_health --wait URL --deadline-ms N [--interval-ms N]

which prints one JSON object: status, error, http_status, elapsed_ms,
attempts, doc (verdict, reason, services, ...).
"""

import json
import os
import socket
import subprocess
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import localserver

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PATH = "/geusemaker/health.json"


def service(state, critical=False, detail="healthcheck passing"):
    return {"state": state, "detail": detail, "critical": critical}


def document(overall="healthy", checked_at=None, **states):
    # Python's server sends a Date header, so the probe judges staleness: now by default.
    services = {
        "postgres": service("healthy", True),
        "n8n": service("healthy", True),
        "qdrant": service("healthy"),
        "ollama": service("healthy"),
        "crawl4ai": service("healthy"),
    }
    for name, st in states.items():
        services[name] = st
    return {"schema": 1, "deployment": "demo", "tier": "dev", "overall": overall,
            "checked_at": checked_at or now_iso(), "services": services}


def now_iso(offset=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


@pytest.fixture(scope="module")
def probe_bin(request):
    explicit = os.environ.get("GM_TEST_HEALTH_BIN")
    candidates = [Path(explicit)] if explicit else []
    gm = None
    try:
        gm = request.config.getoption("--geusemaker-bin")
    except ValueError:
        pass
    gm = gm or os.environ.get("GEUSEMAKER_BIN")
    if gm:
        candidates.append(Path(gm).parent / "tests" / "test_health")
    candidates.append(REPO / "build" / "tests" / "test_health")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    pytest.fail("test_health binary not found (tried %s); build the unit tests or set "
                "GM_TEST_HEALTH_BIN" % ", ".join(map(str, candidates)))


def probe(probe_bin, url, *args, timeout=30):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    r = subprocess.run([str(probe_bin), *args, url], capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def fetch(probe_bin, url, timeout_ms=2000):
    return probe(probe_bin, url, "--timeout-ms", str(timeout_ms), "--probe")


def wait(probe_bin, url, deadline_ms, interval_ms=50):
    return probe(probe_bin, url, "--deadline-ms", str(deadline_ms), "--interval-ms",
                 str(interval_ms), "--wait")


class Server:
    """An HTTP server on 127.0.0.1; `responder(n)` gives (status, body, headers) for the
    n-th request (0-based)."""

    def __init__(self, responder):
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                n = outer.requests
                outer.requests += 1
                status, body, headers = responder(n)
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], PATH)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Silent:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.conns = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d%s" % (self.sock.getsockname()[1], PATH)

    def _run(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def serve():
    servers = []

    def make(responder):
        s = Server(responder) if callable(responder) else Server(lambda n: responder)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def silent():
    s = Silent()
    yield s
    s.close()


def ok(doc, headers=None):
    return (200, json.dumps(doc), headers)


def test_healthy(probe_bin, serve):
    s = serve(ok(document()))
    r = fetch(probe_bin, s.url)
    assert r["status"] == "ok", r
    assert r["doc"]["verdict"] == "healthy"
    assert r["doc"]["ready"] is True
    assert r["doc"]["reason"] == ""
    assert r["doc"]["stale"] is False
    assert set(r["doc"]["services"]) == {"postgres", "n8n", "qdrant", "ollama", "crawl4ai"}


def test_degraded(probe_bin, serve):
    s = serve(ok(document("degraded", qdrant=service("unhealthy", detail="healthcheck failing"))))
    r = fetch(probe_bin, s.url)
    assert r["status"] == "ok"
    assert r["doc"]["verdict"] == "degraded"
    assert r["doc"]["reason"] == "qdrant is unhealthy (healthcheck failing)"
    assert r["doc"]["ready"] is True  # n8n and PostgreSQL are fine


def test_document_cannot_hide_an_unhealthy_critical_service(probe_bin, serve):
    s = serve(ok(document("healthy", n8n=service("unhealthy", True, "healthcheck failing"))))
    r = fetch(probe_bin, s.url)
    assert r["doc"]["overall"] == "healthy"
    assert r["doc"]["verdict"] == "unhealthy"
    assert r["doc"]["reason"].startswith("n8n is unhealthy")
    assert r["doc"]["ready"] is False


@pytest.mark.parametrize("body", [
    '{"overall": "healthy", "servi',
    "<html><body>502 Bad Gateway</body></html>",
    '{"overall": "splendid", "checked_at": "2025-06-01T12:00:00Z", "services": {}}',
    '{"overall": "healthy", "checked_at": "2025-06-01T12:00:00Z", "services": {"n8n": {}}}',
])
def test_broken_documents(probe_bin, serve, body):
    s = serve((200, body, None))
    r = fetch(probe_bin, s.url)
    assert r["status"] == "parse error", r
    assert "malformed health document from '%s'" % s.url in r["error"]
    assert "doc" not in r


@pytest.mark.parametrize("status,kind,fragment", [
    (404, "not found", "HTTP 404"),
    (500, "network error", "answered HTTP 500"),
    (503, "network error", "answered HTTP 503"),
])
def test_http_errors(probe_bin, serve, status, kind, fragment):
    s = serve((status, "nope", None))
    r = fetch(probe_bin, s.url)
    assert r["status"] == kind
    assert fragment in r["error"] and s.url in r["error"]
    assert r["http_status"] == status


def test_connection_refused(probe_bin):
    with localserver.refused_port() as port:
        url = "http://127.0.0.1:%d%s" % (port, PATH)
        r = fetch(probe_bin, url)
    assert r["status"] == "network error"
    assert "cannot reach health endpoint '%s'" % url in r["error"]


def test_never_answers_times_out(probe_bin, silent):
    r = fetch(probe_bin, silent.url, timeout_ms=500)
    assert r["status"] == "timed out", r
    assert "did not answer within 500 ms" in r["error"]
    assert 450 <= r["elapsed_ms"] < 2500


def test_stale_document(probe_bin, serve):
    # The server's own clock (Date header) says the document is 10 minutes old.
    s = serve(ok(document(checked_at=now_iso(-600)), {"Date": formatdate(usegmt=True)}))
    r = fetch(probe_bin, s.url)
    assert r["status"] == "ok"
    assert r["doc"]["stale"] is True
    assert r["doc"]["verdict"] == "unhealthy"
    assert "stale" in r["doc"]["reason"]
    fresh = serve(ok(document(checked_at=now_iso(-20)), {"Date": formatdate(usegmt=True)}))
    r = fetch(probe_bin, fresh.url)
    assert r["doc"]["stale"] is False and r["doc"]["verdict"] == "healthy"
    assert 15 <= r["doc"]["age_s"] <= 40


def test_wait_until_healthy(probe_bin, serve):
    starting = document("starting", ollama=service("starting", detail="pulling model llama3.2:1b"))

    def responder(n):
        if n == 0:
            return (404, "not yet", None)
        if n < 3:
            return ok(starting)
        return ok(document())

    s = serve(responder)
    r = wait(probe_bin, s.url, deadline_ms=10000)
    assert r["status"] == "ok", r
    assert r["doc"]["verdict"] == "healthy"
    assert r["attempts"] == 4
    assert s.requests == 4


def test_wait_reports_what_is_not_healthy(probe_bin, serve):
    s = serve(ok(document("starting",
                          ollama=service("starting", detail="pulling model llama3.1:8b"),
                          crawl4ai=service("unhealthy", detail="container exited"))))
    r = wait(probe_bin, s.url, deadline_ms=800, interval_ms=100)
    assert r["status"] == "timed out"
    assert "not healthy after" in r["error"]
    assert "crawl4ai is unhealthy (container exited)" in r["error"]
    assert "ollama is starting (pulling model llama3.1:8b)" in r["error"]
    assert 750 <= r["elapsed_ms"] < 2500
    assert r["doc"]["verdict"] == "degraded"


def test_wait_deadline_holds_while_the_server_never_answers(probe_bin, silent):
    # The deadline is enforced during the request, not only between polls.
    r = wait(probe_bin, silent.url, deadline_ms=700, interval_ms=100)
    assert r["status"] == "timed out"
    assert "did not answer" in r["error"]
    assert 650 <= r["elapsed_ms"] < 2000, r


def test_the_stacks_own_document_parses(probe_bin, serve, tmp_path, request):
    """The document written by the UserData's health script (run in the sandbox with
    stub commands) is what the probe reads."""
    import shutil
    from test_userdata import EFS_ID, STUBBED, STUB, binary, clean_env

    gmbin = binary(request.config)
    script = subprocess.run([str(gmbin), "userdata", "--name", "demo", "--efs-id", EFS_ID],
                            capture_output=True, text=True, timeout=60, env=clean_env()).stdout
    root, bindir, state = tmp_path / "root", tmp_path / "bin", tmp_path / "state"
    for d in (root, bindir, state):
        d.mkdir()
    for name in STUBBED:
        os.symlink(STUB, bindir / name)
    (root / "dev").mkdir()
    for disk in ("nvme0n1", "nvme1n1"):  # the root disk and the data volume (the stub's nvme)
        (root / "dev" / disk).write_text("")
    (tmp_path / "ud.sh").write_text(script)
    if shutil.which("flock") is None:
        pytest.skip("flock is needed by the script")
    env = {"PATH": "%s:/usr/bin:/bin" % bindir, "HOME": str(tmp_path), "GM_ROOT": str(root),
           "GM_STUB_LOG": str(tmp_path / "calls.log"), "GM_STUB_STATE": str(state)}
    r = subprocess.run(["bash", str(tmp_path / "ud.sh")], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    body = (root / "var/lib/geusemaker/www/geusemaker/health.json").read_text()
    s = serve((200, body, {"Date": formatdate(usegmt=True)}))
    res = fetch(probe_bin, s.url)
    assert res["status"] == "ok", res
    assert res["doc"]["verdict"] == "starting"
    assert res["doc"]["ready"] is True
    assert res["doc"]["stale"] is False
    assert res["doc"]["reason"].startswith("ollama is starting")
    # The boot object: every step the UserData ran, timed; a stock image.
    boot = res["doc"]["boot"]
    assert boot["baked"] is False and boot["finished"] and boot["ready"], boot
    assert [st["name"] for st in boot["steps"]] == [
        "packages", "data", "efs", "docker", "secrets", "files", "url", "images", "stack",
        "nginx", "services", "finish"]
    assert boot["seconds"] >= 0 and boot["ready_seconds"] >= 0
