"""Fixtures for GeuseMaker integration tests.

moto_server (session) -> URL of a moto server subprocess; reset before every test using it
proxy                 -> FaultProxy in front of moto_server (log: tmp_path/requests.jsonl);
                         every geusemaker request through it is checked against the AWS API
                         models (apiaudit.py, apimodels.py): a violation fails the session
imds                  -> FakeIMDS (IMDSv2, token required)
gm_home               -> tmp dir used as GEUSEMAKER_HOME
gm_env                -> hermetic environment dict for the binary (talks to proxy.url)
gm                    -> runner: gm.run(*args, env=None, timeout=120, check=False, input=None),
                         gm.popen(*args, env=None), gm.last_pid(), gm.output(proc)
boto                  -> boto(service) -> boto3 client straight to moto_server

Under pytest-xdist (-n N) each worker process has its own moto server, proxies, ports
and tmp dirs (session fixtures are per worker); the workers' API model check findings
are merged on the controller, which reports them and fails the run on a violation.

Binary: $GEUSEMAKER_BIN or --geusemaker-bin, default <repo>/build/geusemaker.
Network: everything binds and connects to 127.0.0.1 only.
"""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import localserver  # noqa: E402
from apiaudit import API_AUDIT  # noqa: E402
from fakeimds import FakeIMDS  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

REGION = "us-east-1"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")


def pytest_addoption(parser):
    try:
        parser.addoption("--geusemaker-bin", action="store", default=None,
                         help="path of the geusemaker binary (default $GEUSEMAKER_BIN "
                              "or build/geusemaker)")
    except ValueError:  # already registered by another conftest
        pass


def _scrubbed(environ):
    env = {}
    for k, v in environ.items():
        if k.startswith("AWS_") or k.lower() in PROXY_VARS:
            continue
        env[k] = v
    return env


_no_urllib_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(method, url, timeout=5.0):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with _no_urllib_proxy.open(req, timeout=timeout) as r:
        return r.status, r.read()


@pytest.fixture(scope="session", autouse=True)
def _hermetic_aws_env(tmp_path_factory):
    """Keep boto3 in the test process away from real credentials, config and proxies."""
    saved = dict(os.environ)
    d = tmp_path_factory.mktemp("awscfg")
    for k in list(os.environ):
        if k.startswith("AWS_") or k.lower() in PROXY_VARS:
            del os.environ[k]
    os.environ.update({
        "AWS_CONFIG_FILE": str(d / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(d / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": REGION,
        "NO_PROXY": "127.0.0.1,localhost",
    })
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """Each process has its own (an xdist worker too), on a port of its own."""
    logdir = tmp_path_factory.mktemp("moto")
    try:
        proc, _port, url, log = localserver.start(
            lambda port: [sys.executable, os.path.join(HERE, "moto_server.py"), "-H", "127.0.0.1",
                          "-p", str(port)],
            lambda port: logdir / ("moto-%d.log" % port),
            env=dict(_scrubbed(os.environ), MOTO_IAM_LOAD_MANAGED_POLICIES="true"))
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield url
    finally:
        localserver.stop(proc)
        log.close()


@pytest.fixture(autouse=True)
def _moto_reset(request):
    """Reset moto's state before each test that (transitively) uses moto_server."""
    if "moto_server" in request.fixturenames:
        url = request.getfixturevalue("moto_server")
        status, _ = _http("POST", url + "/moto-api/reset", timeout=30)
        assert status == 200, "moto reset failed"
    yield


@pytest.fixture(autouse=True)
def _api_audit_test(request):
    """Names the running test in the API model check's findings."""
    API_AUDIT.current_test = request.node.nodeid
    yield


AUDIT_KEY = "gm_api_audit"


def _xdist_worker(config):
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node):
    """On the xdist controller: a worker's API model check findings (it checked the
    requests of its own tests, through its own proxies) join the run's. A worker
    that ended without them (it crashed) leaves the check incomplete: that fails
    the run too."""
    data = getattr(node, "workeroutput", {}).get(AUDIT_KEY)
    if data is not None:
        API_AUDIT.merge(data)
    else:
        API_AUDIT.lost.append(node.gateway.id)


def pytest_sessionfinish(session, exitstatus):
    """A request of geusemaker's that the AWS API models refuse fails the run.
    Under pytest-xdist a worker hands its findings to the controller
    (workeroutput, pytest_testnodedown), which reports, writes and judges them
    for the whole run."""
    if _xdist_worker(session.config):
        session.config.workeroutput[AUDIT_KEY] = API_AUDIT.export()
        return
    path = os.environ.get("GM_API_REPORT")
    if path:
        API_AUDIT.write_json(path)
    if (API_AUDIT.violations or API_AUDIT.lost) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _xdist_worker(config):
        return
    if not API_AUDIT.checked and not API_AUDIT.violations and not API_AUDIT.lost:
        return
    bad = bool(API_AUDIT.violations or API_AUDIT.lost)
    terminalreporter.section("AWS API model check" + (": FAILED" if bad else ""),
                             sep="=", red=bad, green=not bad)
    for line in API_AUDIT.summary_lines():
        terminalreporter.write_line(line, red=bad and line.startswith(" "))


@pytest.fixture
def proxy(moto_server, tmp_path):
    """The fault proxy; every request it sees goes through the API model check."""
    p = FaultProxy(moto_server, log_path=tmp_path / "requests.jsonl",
                   observer=API_AUDIT.observe)
    p.start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def imds():
    s = FakeIMDS()
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def gm_home(tmp_path):
    d = tmp_path / "gmhome"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def gm_env(proxy, gm_home, tmp_path):
    env = _scrubbed(os.environ)
    for k in list(env):
        if k.startswith("GEUSEMAKER_"):
            del env[k]
    env.update({
        "AWS_ACCESS_KEY_ID": "testing-akid",
        "AWS_SECRET_ACCESS_KEY": "testing-secret",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": proxy.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "nonexistent-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "nonexistent-aws-credentials"),
        "GEUSEMAKER_HOME": str(gm_home),
        "NO_COLOR": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    })
    return env


def _binary_path(config):
    opt = None
    try:
        opt = config.getoption("--geusemaker-bin")
    except ValueError:
        pass
    p = opt or os.environ.get("GEUSEMAKER_BIN") or str(REPO / "build" / "geusemaker")
    return Path(p)


class GM:
    """Runs the geusemaker binary with the test environment."""

    def __init__(self, binary, env, workdir):
        self.bin = binary
        self.env = env
        self.workdir = workdir
        self.procs = []
        self._n = 0

    def _env(self, env):
        merged = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = str(v)
        return merged

    def run(self, *args, env=None, timeout=120, check=False, input=None):
        cmd = [str(self.bin)] + [str(a) for a in args]
        r = subprocess.run(cmd, env=self._env(env), timeout=timeout, input=input,
                           capture_output=True, text=True, cwd=self.workdir)
        if check and r.returncode != 0:
            pytest.fail("%s exited %d\n--- stdout\n%s\n--- stderr\n%s"
                        % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r

    def popen(self, *args, env=None):
        """Start the binary; stdout/stderr go to files (proc.stdout_path/stderr_path)
        so a chatty process can never block on a full pipe. Killed at teardown."""
        self._n += 1
        out = self.workdir / ("popen-%d.out" % self._n)
        err = self.workdir / ("popen-%d.err" % self._n)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen([str(self.bin)] + [str(a) for a in args],
                                    env=self._env(env), stdout=fo, stderr=fe,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir)
        proc.stdout_path, proc.stderr_path = out, err
        self.procs.append(proc)
        return proc

    def last_pid(self):
        """PID of the latest popen() (None before): pass as `gm.last_pid` to
        proxy.kill_after() *before* popen so the rule can never miss the process."""
        return self.procs[-1].pid if self.procs else None

    @staticmethod
    def output(proc):
        return (Path(proc.stdout_path).read_text(errors="replace"),
                Path(proc.stderr_path).read_text(errors="replace"))

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def gm(gm_env, tmp_path, request):
    binary = _binary_path(request.config)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail("geusemaker binary not found or not executable: %s "
                    "(build it, or set GEUSEMAKER_BIN)" % binary)
    wd = tmp_path / "gmwd"
    wd.mkdir()
    g = GM(binary, gm_env, wd)
    try:
        yield g
    finally:
        g.cleanup()


@pytest.fixture
def boto(moto_server):
    import boto3
    from botocore.config import Config

    def make(service, **kwargs):
        kw = dict(endpoint_url=moto_server, region_name=REGION,
                  aws_access_key_id="testing", aws_secret_access_key="testing",
                  config=Config(retries={"total_max_attempts": 3, "mode": "standard"},
                                connect_timeout=5, read_timeout=60))
        kw.update(kwargs)
        return boto3.client(service, **kw)

    return make


def read_jsonl(path):
    """Helper for tests: parse a JSONL request log."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
