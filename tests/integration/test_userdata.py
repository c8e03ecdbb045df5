"""The UserData and Compose generators, through `geusemaker userdata`.

- Every variant (dev, automation, gpu x Amazon Linux 2023, Ubuntu 22.04/24.04)
  is shellcheck-clean, fits the EC2 limit (sizes printed), and its Compose file
  validates against the Compose specification's JSON schema.
- The script runs end to end in a sandbox: every absolute path it writes is
  under GM_ROOT (a tmp dir) and the system commands it runs (package managers,
  docker, mount, systemctl, curl for IMDS, aws for SSM, openssl, nginx, ...)
  are stubs on PATH (userdata_sandbox/stub) that log their argv. The tests check
  the commands in order, the files and their modes, idempotence, the EFS retry,
  and that a failing step leaves the failure marker and a clear log line.

No AWS endpoint and no network is involved. Nothing runs as root against the
machine: the stubs refuse to run without GM_ROOT.
"""

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STUB = HERE / "userdata_sandbox" / "stub"
SCHEMA = REPO.parent / "shared" / "testdata" / "compose-spec.json"
STUBBED = ("dnf", "yum", "apt-get", "snap", "docker", "mount", "mountpoint", "systemctl",
           "curl", "aws", "openssl", "nginx", "chown", "sleep", "git", "dpkg", "gpg",
           "nvidia-smi", "nvidia-ctk", "systemd-run", "reboot", "shutdown", "umount")
EFS_ID = "fs-0123456789abcdef0"
LIMIT = 16384
TIERS = {"dev": "t3.xlarge", "automation": "m6i.xlarge", "gpu": "g5.xlarge"}
OSES = ("al2023", "ubuntu2204", "ubuntu2404")
VARIANTS = [(t, o) for t in TIERS for o in OSES]
SECRET_MARK = "SandboxSecret"  # every stub SSM value starts with it


def binary(config):
    opt = None
    try:
        opt = config.getoption("--geusemaker-bin")
    except ValueError:
        pass
    p = Path(opt or os.environ.get("GEUSEMAKER_BIN") or REPO / "build" / "geusemaker")
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail("geusemaker binary not found: %s (build it, or set GEUSEMAKER_BIN)" % p)
    return p


@pytest.fixture(scope="module")
def gmbin(request):
    return binary(request.config)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GEUSEMAKER_", "GM_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy")}
    env.update({"NO_COLOR": "1", "AWS_EC2_METADATA_DISABLED": "true"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def userdata(gmbin, *args, check=True):
    r = subprocess.run([str(gmbin), "userdata", *args], capture_output=True, text=True,
                       timeout=60, env=clean_env())
    if check and r.returncode != 0:
        pytest.fail("userdata %s exited %d:\n%s" % (" ".join(args), r.returncode, r.stderr))
    return r


def variant_args(tier, os_name, *more):
    return ["--name", "demo", "--tier", tier, "--instance-type", TIERS[tier], "--os", os_name,
            *more]


def render(gmbin, tier, os_name, *more):
    r = userdata(gmbin, *variant_args(tier, os_name, "--output", "json", *more))
    return json.loads(r.stdout)


def shellcheck(text, name):
    r = subprocess.run(["shellcheck", "-s", "bash", "-"], input=text, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, "shellcheck on %s:\n%s" % (name, r.stdout + r.stderr)


# -- every variant: shellcheck, size, Compose schema -----------------------

@pytest.mark.parametrize("tier,os_name", VARIANTS)
def test_variant_is_shellcheck_clean_and_fits(gmbin, tier, os_name, capsys):
    out = render(gmbin, tier, os_name)
    script = out["script"]
    assert script.startswith("#!/bin/bash\n")
    assert "\nset -euo pipefail\n" in script
    assert out["raw_size"] == len(script.encode())
    assert out["sent_size"] <= LIMIT, out
    assert out["gzipped"] == (out["raw_size"] > LIMIT)
    assert out["base64_size"] == 4 * ((out["sent_size"] + 2) // 3)
    shellcheck(script, "%s/%s" % (tier, os_name))
    with capsys.disabled():
        print("\n  userdata %-10s %-10s raw %6d  sent %6d%s  base64 %6d"
              % (tier, os_name, out["raw_size"], out["sent_size"],
                 " (gzip)" if out["gzipped"] else "       ", out["base64_size"]))


def test_text_output_reports_sizes(gmbin):
    r = userdata(gmbin, "--name", "demo")
    assert r.stdout.startswith("#!/bin/bash\n")
    m = re.search(r"userdata: (\d+) bytes raw; (\d+) bytes sent( gzip-compressed)? "
                  r"\(EC2 limit 16384\); (\d+) bytes base64", r.stderr)
    assert m, r.stderr
    assert int(m.group(1)) == len(r.stdout.encode())
    assert int(m.group(2)) <= LIMIT


def compose_schema():
    if not SCHEMA.is_file():
        pytest.skip("no Compose schema at %s" % SCHEMA)
    return json.loads(SCHEMA.read_text())


@pytest.mark.parametrize("tier,os_name", VARIANTS)
def test_compose_validates_against_the_spec(gmbin, tier, os_name):
    yaml = pytest.importorskip("yaml")
    jsonschema = pytest.importorskip("jsonschema")
    schema = compose_schema()
    r = userdata(gmbin, *variant_args(tier, os_name, "--compose"))
    doc = yaml.safe_load(r.stdout)
    validator = jsonschema.Draft7Validator(schema)  # the spec's $schema is draft-07
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, "\n".join(e.message for e in errors)
    # The validation is not vacuous: a misspelt key is caught.
    bad = json.loads(json.dumps(doc))
    bad["services"]["n8n"]["restart_policy"] = "always"
    assert not validator.is_valid(bad)
    services = doc["services"]
    assert list(services) == ["postgres", "n8n", "qdrant", "ollama", "crawl4ai"]
    for name, svc in services.items():
        assert ":" in svc["image"] and not svc["image"].endswith(":latest"), name
        assert svc["healthcheck"]["test"][0] == "CMD", name
        # nginx is the only public listener: containers publish on 127.0.0.1 only.
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        for vol in svc.get("volumes", []):
            assert vol["source"] == "/mnt/efs/" + name
    assert "ports" not in services["postgres"]
    gpu = services["ollama"].get("deploy", {}).get("resources", {}).get("reservations", {})
    assert bool(gpu) == (tier == "gpu")
    if gpu:
        assert gpu["devices"][0]["driver"] == "nvidia"
    # Secrets only as interpolations from the env file.
    env = services["n8n"]["environment"]
    assert env["N8N_ENCRYPTION_KEY"].startswith("${GM_N8N_ENCRYPTION_KEY:?")
    assert env["DB_POSTGRESDB_PASSWORD"].startswith("${GM_POSTGRES_PASSWORD:?")
    # The script writes exactly this Compose file.
    script = userdata(gmbin, *variant_args(tier, os_name)).stdout
    m = re.search(r"<<'GM_COMPOSE_EOF'\n(.*?)\nGM_COMPOSE_EOF\n", script, re.S)
    assert m and m.group(1) + "\n" == r.stdout


def test_gpu_tier_on_cpu_type_is_refused(gmbin):
    r = userdata(gmbin, "--name", "demo", "--tier", "gpu", "--instance-type", "t3.large",
                 check=False)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "tier 'gpu' needs a GPU instance type" in r.stderr
    assert "g4dn" in r.stderr and "g5" in r.stderr


@pytest.mark.parametrize("args,fragment", [
    (["--name", "Bad_Name"], "deployment name"),
    (["--name", "a" * 29], "at most 28"),
    (["--name", "demo", "--tier", "huge"], "unknown tier 'huge'"),
    (["--name", "demo", "--models", "llama3;reboot"], "invalid Ollama model"),
    (["--name", "demo", "--os", "debian"], "unknown --os"),
    (["--name", "demo", "--efs-id", "fs-'x"], "invalid EFS"),
    (["--tier", "dev"], "missing --name"),
])
def test_bad_input_is_refused(gmbin, args, fragment):
    r = userdata(gmbin, *args, check=False)
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr
    assert r.stdout == ""


def test_review_script_refuses_to_run_without_an_efs_id(gmbin, sandbox):
    script = userdata(gmbin, "--name", "demo").stdout
    r = sandbox.run(script)
    assert r.returncode != 0
    assert "rendered for review only" in sandbox.log()
    assert "step=efs" in sandbox.read("var/lib/geusemaker/userdata.failed")


# -- the sandbox --------------------------------------------------------------

class Sandbox:
    def __init__(self, base):
        self.base = base
        self.root = base / "root"
        self.bin = base / "bin"
        self.state = base / "stubstate"
        self.calls_path = base / "calls.log"
        for d in (self.root, self.bin, self.state):
            d.mkdir()
        for name in STUBBED:
            os.symlink(STUB, self.bin / name)
        (self.root / "etc").mkdir()
        (self.root / "etc" / "fstab").write_text("# sandbox fstab\n")
        (self.root / "etc" / "nginx").mkdir()
        (self.root / "etc" / "nginx" / "nginx.conf").write_text("# distribution default\n")

    def env(self, **extra):
        env = {
            "PATH": "%s:/usr/bin:/bin" % self.bin,
            "HOME": str(self.base),
            "LANG": "C",
            "GM_ROOT": str(self.root),
            "GM_STUB_LOG": str(self.calls_path),
            "GM_STUB_STATE": str(self.state),
        }
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run(self, script, **extra):
        path = self.base / "userdata.sh"
        path.write_text(script)
        return subprocess.run(["bash", str(path)], env=self.env(**extra), capture_output=True,
                              text=True, timeout=120)

    def run_file(self, rel, **extra):
        return subprocess.run(["bash", str(self.root / rel)], env=self.env(**extra),
                              capture_output=True, text=True, timeout=60)

    def calls(self):
        if not self.calls_path.exists():
            return []
        return self.calls_path.read_text().splitlines()

    def reset_calls(self):
        if self.calls_path.exists():
            self.calls_path.unlink()

    def read(self, rel):
        return (self.root / rel).read_text()

    def mode(self, rel):
        return stat.S_IMODE((self.root / rel).stat().st_mode)

    def log(self):
        p = self.root / "var/log/geusemaker/userdata.log"
        return p.read_text() if p.exists() else ""


@pytest.fixture
def sandbox(tmp_path):
    if shutil.which("flock") is None:
        pytest.skip("flock (util-linux) is needed by the script")
    return Sandbox(tmp_path)


def assert_in_order(calls, expected):
    """Each expected item (a tuple of substrings) matches a later call than the previous."""
    i = 0
    for want in expected:
        while i < len(calls) and not all(w in calls[i] for w in want):
            i += 1
        assert i < len(calls), "no call matching %r in order; calls:\n%s" % (
            want, "\n".join(calls))
        i += 1


def script_for(gmbin, tier="dev", os_name="al2023", *more):
    return userdata(gmbin, *variant_args(tier, os_name, "--efs-id", EFS_ID, *more)).stdout


COMMON_ORDER = [
    ("mountpoint -q",),
    ("mount -t efs -o tls %s:/ " % EFS_ID,),
    ("chown 1000:1000", "/mnt/efs/n8n"),
    ("systemctl daemon-reload",),
    ("systemctl enable --now docker",),
    ("curl", "-X PUT", "/latest/api/token"),
    ("curl", "X-aws-ec2-metadata-token: stub-imds-token", "meta-data/placement/region"),
    # the region comes from IMDS (the stub says eu-west-1; the script was rendered for us-east-1)
    ("aws ssm get-parameters --region eu-west-1 --with-decryption --names "
     "/geusemaker/demo/postgres_password /geusemaker/demo/n8n_encryption_key "
     "/geusemaker/demo/qdrant_api_key /geusemaker/demo/crawl4ai_token "
     "/geusemaker/demo/ollama_token",),
    ("systemctl daemon-reload",),
    ("docker compose -f", "docker-compose.yml --env-file", ".env pull postgres n8n qdrant"),
    ("docker compose -f", "up -d postgres n8n qdrant"),
    ("systemctl enable geusemaker-stack.service",),
    ("systemctl start --no-block geusemaker-late.service",),
    ("openssl req -x509", "-subj /CN=geusemaker-demo"),
    ("nginx -t",),
    ("systemctl enable nginx",),
    ("systemctl restart nginx",),
    ("systemctl enable --now geusemaker-health.timer geusemaker-spot-watch.service",),
    ("docker inspect", "geusemaker-postgres"),
    ("docker exec geusemaker-postgres pg_isready",),
]

FILES = {
    "opt/geusemaker/.env": 0o600,
    "etc/nginx/geusemaker/tokens.conf": 0o600,
    "etc/nginx/geusemaker/tls.key": 0o600,
    "etc/nginx/geusemaker/tls.crt": 0o644,
    "etc/nginx/nginx.conf": 0o644,
    "etc/nginx/nginx.conf.geusemaker-orig": 0o644,
    "opt/geusemaker/docker-compose.yml": 0o644,
    "opt/geusemaker/bin/gm-health": 0o755,
    "opt/geusemaker/bin/gm-late-start": 0o755,
    "opt/geusemaker/bin/gm-spot-watch": 0o755,
    "etc/systemd/system/geusemaker-stack.service": 0o644,
    "etc/systemd/system/geusemaker-health.service": 0o644,
    "etc/systemd/system/geusemaker-health.timer": 0o644,
    "etc/systemd/system/geusemaker-spot-watch.service": 0o644,
    "etc/systemd/system/geusemaker-late.service": 0o644,
    "etc/systemd/system/docker.service.d/geusemaker-efs.conf": 0o644,
    "etc/geusemaker/models": 0o644,
    "var/lib/geusemaker/www/geusemaker/health.json": 0o644,
    "var/lib/geusemaker/userdata.done": 0o644,
}


def check_success(sb, r):
    assert r.returncode == 0, "exit %d\n--- log\n%s\n--- stderr\n%s" % (
        r.returncode, sb.log(), r.stderr)
    for rel, mode in FILES.items():
        assert (sb.root / rel).is_file(), rel
        assert sb.mode(rel) == mode, "%s is %o, expected %o" % (rel, sb.mode(rel), mode)
    assert sb.mode("etc/geusemaker") == 0o700
    assert not (sb.root / "var/lib/geusemaker/userdata.failed").exists()
    fstab = sb.read("etc/fstab").splitlines()
    assert fstab.count("%s:/ /mnt/efs efs _netdev,noresvport,tls 0 0" % EFS_ID) == 1
    env = sb.read("opt/geusemaker/.env")
    for var, leaf in (("GM_POSTGRES_PASSWORD", "postgrespassword"),
                      ("GM_N8N_ENCRYPTION_KEY", "n8nencryptionkey"),
                      ("GM_QDRANT_API_KEY", "qdrantapikey"),
                      ("GM_CRAWL4AI_TOKEN", "crawl4aitoken"),
                      ("GM_OLLAMA_TOKEN", "ollamatoken")):
        assert "%s=%s%sValue\n" % (var, SECRET_MARK, leaf) in env
    tokens = sb.read("etc/nginx/geusemaker/tokens.conf")
    assert '"Bearer %sollamatokenValue" 1;' % SECRET_MARK in tokens
    assert "map $http_authorization $gm_ollama_ok" in tokens
    # The secrets live in the two 0600 files and nowhere else: not in the
    # log, the Compose file, the health document, or any command line.
    for p in sb.root.rglob("*"):
        if p.is_file() and p.name not in (".env", "tokens.conf"):
            assert SECRET_MARK not in p.read_text(errors="replace"), p
    assert SECRET_MARK not in "\n".join(sb.calls())
    health = json.loads(sb.read("var/lib/geusemaker/www/geusemaker/health.json"))
    assert set(health["services"]) == {"postgres", "n8n", "qdrant", "ollama", "crawl4ai"}
    assert health["overall"] == "starting"  # models still to pull (late start not run)
    assert health["services"]["n8n"] == {"state": "healthy", "detail": "healthcheck passing",
                                         "critical": True}
    assert "success:" in sb.log()


def test_sandbox_al2023_end_to_end(gmbin, sandbox):
    r = sandbox.run(script_for(gmbin, "dev", "al2023"), GM_STUB_NO_COMPOSE=1)
    check_success(sandbox, r)
    calls = sandbox.calls()
    assert_in_order(calls, [
        ("dnf install -y nginx openssl amazon-efs-utils",),
        ("docker compose version",),
        ("curl -fsSL -o", "docker-compose-linux-", "compose/releases/download/v"),
        ("curl -fsSL -o", ".sha256"),
    ] + COMMON_ORDER)
    assert not any(c.startswith("apt-get") for c in calls)
    assert not any("nvidia" in c for c in calls)
    plugin = sandbox.root / "usr/local/lib/docker/cli-plugins/docker-compose"
    assert stat.S_IMODE(plugin.stat().st_mode) == 0o755
    assert sandbox.read("etc/nginx/nginx.conf").startswith("user nginx;\n")
    assert sandbox.read("etc/geusemaker/models") == "llama3.2:1b\n"
    nginx = sandbox.read("etc/nginx/nginx.conf")
    assert "listen 443 ssl" in nginx and "listen 80 default_server" in nginx
    for port in ("5678", "6333", "11434", "11235"):
        assert "proxy_pass http://127.0.0.1:%s" % port in nginx
    assert "if ($gm_ollama_ok = 0) { return 401; }" in nginx
    log = sandbox.log()
    for step in ("packages", "efs", "docker", "secrets", "files", "stack", "nginx", "services",
                 "finish"):
        assert "] step %s:" % step in log


@pytest.mark.parametrize("os_name", ["ubuntu2204", "ubuntu2404"])
def test_sandbox_ubuntu_end_to_end(gmbin, sandbox, os_name):
    r = sandbox.run(script_for(gmbin, "automation", os_name, "--models", "llama3.2:3b,phi3"),
                    GM_STUB_NO_COMPOSE=1)
    check_success(sandbox, r)
    calls = sandbox.calls()
    assert_in_order(calls, [
        ("apt-get", "update"),
        ("apt-get", "install nginx openssl nfs-common stunnel4"),
        ("apt-get", "install docker-compose-v2"),
        ("git clone --depth 1 --branch v", "https://github.com/aws/efs-utils"),
        ("apt-get", "install", "amazon-efs-utils", ".deb"),
    ] + COMMON_ORDER)
    assert not any(c.startswith("dnf") for c in calls)
    assert sandbox.read("etc/nginx/nginx.conf").startswith("user www-data;\n")
    assert sandbox.read("etc/geusemaker/models") == "llama3.2:3b\nphi3\n"


@pytest.mark.parametrize("os_name", ["al2023", "ubuntu2204"])
def test_sandbox_gpu_configures_the_nvidia_runtime(gmbin, sandbox, os_name):
    r = sandbox.run(script_for(gmbin, "gpu", os_name))
    check_success(sandbox, r)
    assert_in_order(sandbox.calls(), [
        ("systemctl enable --now docker",),
        ("nvidia-smi",),
        ("nvidia-ctk runtime configure --runtime=docker", "/etc/docker/daemon.json"),
        ("systemctl restart docker",),
        ("aws ssm get-parameters",),
    ])
    assert 'driver: "nvidia"' in sandbox.read("opt/geusemaker/docker-compose.yml")


def test_sandbox_gpu_without_a_gpu_fails_clearly(gmbin, sandbox):
    r = sandbox.run(script_for(gmbin, "gpu", "al2023"), GM_STUB_FAIL="nvidia-smi")
    assert r.returncode != 0
    log = sandbox.log()
    assert "giving up after 30 attempts: nvidia-smi" in log
    assert "no NVIDIA GPU visible to nvidia-smi" in log
    assert "FAILED at step 'gpu'" in log
    assert "step=gpu" in sandbox.read("var/lib/geusemaker/userdata.failed")


def test_sandbox_runs_twice(gmbin, sandbox):
    script = script_for(gmbin)
    check_success(sandbox, sandbox.run(script))
    first = sandbox.calls()
    key = sandbox.read("etc/nginx/geusemaker/tls.key")
    sandbox.reset_calls()
    r = sandbox.run(script)
    check_success(sandbox, r)
    second = sandbox.calls()
    # Already mounted: no second mount; certificate kept; one fstab line (checked above).
    assert sum(c.startswith("mount ") for c in first) == 1
    assert not any(c.startswith("mount ") for c in second)
    assert not any(c.startswith("openssl") for c in second)
    assert sandbox.read("etc/nginx/geusemaker/tls.key") == key
    assert sandbox.read("etc/nginx/nginx.conf.geusemaker-orig") == "# distribution default\n"
    assert sandbox.log().count("success:") == 2


def test_sandbox_efs_mount_is_retried(gmbin, sandbox):
    r = sandbox.run(script_for(gmbin), GM_STUB_MOUNT_FAILS=3, GM_EFS_DELAY=7)
    check_success(sandbox, r)
    calls = sandbox.calls()
    assert sum(c.startswith("mount -t efs") for c in calls) == 4
    assert sum(c == "sleep 7" for c in calls) == 3
    log = sandbox.log()
    assert "attempt 1 of 60 failed: mount -t efs -o tls %s:/" % EFS_ID in log
    assert "attempt 3 of 60 failed" in log


def failure(sb, r, step, *fragments):
    assert r.returncode != 0
    log = sb.log()
    assert "FAILED at step '%s'" % step in log, log
    for f in fragments:
        assert f in log, log
    failed = sb.read("var/lib/geusemaker/userdata.failed")
    assert "step=%s\n" % step in failed and re.search(r"exit=[1-9]", failed)
    assert not (sb.root / "var/lib/geusemaker/userdata.done").exists()


def test_sandbox_efs_never_answers(gmbin, sandbox):
    r = sandbox.run(script_for(gmbin), GM_STUB_MOUNT_FAILS=100, GM_EFS_ATTEMPTS=3)
    failure(sandbox, r, "efs", "giving up after 3 attempts: mount -t efs")
    assert not any(c.startswith("aws") for c in sandbox.calls())


def test_sandbox_ssm_failure(gmbin, sandbox):
    r = sandbox.run(script_for(gmbin), GM_STUB_FAIL="aws")
    failure(sandbox, r, "secrets", "giving up after 10 attempts: fetch_secrets")
    assert sum(c.startswith("aws ssm") for c in sandbox.calls()) == 10
    assert not (sandbox.root / "opt/geusemaker/.env").exists()
    assert not any(" up -d" in c for c in sandbox.calls())


def test_sandbox_missing_secret(gmbin, sandbox):
    r = sandbox.run(script_for(gmbin), GM_STUB_SSM_MISSING="n8n_encryption_key")
    failure(sandbox, r, "secrets",
            "SSM parameter /geusemaker/demo/n8n_encryption_key is missing or empty")
    assert not (sandbox.root / "opt/geusemaker/.env").exists()


def test_sandbox_package_failure_then_recovery(gmbin, sandbox):
    script = script_for(gmbin)
    r = sandbox.run(script, GM_STUB_FAIL="dnf")
    failure(sandbox, r, "packages", "giving up after 5 attempts: dnf install -y nginx")
    r = sandbox.run(script)
    check_success(sandbox, r)


def test_sandbox_stack_start_failure(gmbin, sandbox):
    r = sandbox.run(script_for(gmbin), GM_STUB_FAIL="docker:up -d postgres")
    failure(sandbox, r, "stack", "giving up after 3 attempts: dc up -d postgres n8n qdrant")
    assert not any("geusemaker-late" in c for c in sandbox.calls())


# -- the helper scripts the UserData installs ---------------------------------

HELPERS = ("opt/geusemaker/bin/gm-health", "opt/geusemaker/bin/gm-late-start",
           "opt/geusemaker/bin/gm-spot-watch")


@pytest.fixture
def installed(gmbin, sandbox):
    check_success(sandbox, sandbox.run(script_for(gmbin)))
    sandbox.reset_calls()
    return sandbox


def test_helpers_are_shellcheck_clean(installed):
    for rel in HELPERS:
        shellcheck(installed.read(rel), rel)


def health_of(sb, **extra):
    r = sb.run_file("opt/geusemaker/bin/gm-health", **extra)
    assert r.returncode == 0, r.stderr
    return json.loads(sb.read("var/lib/geusemaker/www/geusemaker/health.json"))


def test_health_document_reflects_the_stack(installed):
    sb = installed
    ready = sb.root / "var/lib/geusemaker/www/geusemaker/ready"
    # Before the late start: the large services are still starting.
    doc = health_of(sb)
    assert doc["overall"] == "starting"
    assert doc["services"]["ollama"]["state"] == "starting"
    assert ready.exists()
    assert_in_order(sb.calls(), [("docker inspect", "geusemaker-postgres"),
                                 ("docker exec geusemaker-postgres pg_isready -q -U n8n -d n8n",)])
    # After it: healthy.
    r = sb.run_file("opt/geusemaker/bin/gm-late-start")
    assert r.returncode == 0, r.stderr
    assert_in_order(sb.calls(), [("docker compose", "pull ollama crawl4ai"),
                                 ("docker compose", "up -d ollama crawl4ai"),
                                 ("docker exec geusemaker-ollama ollama pull llama3.2:1b",)])
    doc = health_of(sb)
    assert doc["overall"] == "healthy"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["checked_at"])
    assert ready.exists()
    # pg_isready: 1 rejecting → starting; 2 no response → unhealthy (critical → unhealthy).
    doc = health_of(sb, GM_STUB_PG_RC=1)
    assert doc["services"]["postgres"]["state"] == "starting"
    assert doc["services"]["postgres"]["detail"] == "pg_isready: rejecting connections"
    assert not ready.exists()
    doc = health_of(sb, GM_STUB_PG_RC=2)
    assert doc["services"]["postgres"]["state"] == "unhealthy"
    assert doc["overall"] == "unhealthy"
    # Every container failing its healthcheck.
    doc = health_of(sb, GM_STUB_HEALTH="unhealthy")
    assert doc["overall"] == "unhealthy"
    assert all(s["state"] == "unhealthy" for s in doc["services"].values())
    # No containers at all after the late start finished.
    doc = health_of(sb, GM_STUB_HEALTH="missing")
    assert doc["services"]["crawl4ai"] == {"state": "unhealthy", "detail": "container missing",
                                           "critical": False}


def test_health_degraded_when_a_model_pull_fails(installed):
    sb = installed
    r = sb.run_file("opt/geusemaker/bin/gm-late-start", GM_STUB_FAIL="docker:ollama pull")
    assert r.returncode != 0
    doc = health_of(sb)
    assert doc["overall"] == "degraded"
    assert doc["services"]["ollama"]["state"] == "unhealthy"
    assert "model pull failed: llama3.2:1b" in doc["services"]["ollama"]["detail"]


def test_spot_watcher_stops_the_stack(installed):
    sb = installed
    r = sb.run_file("opt/geusemaker/bin/gm-spot-watch", GM_STUB_SPOT_CODE=200)
    assert r.returncode == 0
    assert_in_order(sb.calls(), [
        ("curl", "-X PUT", "/latest/api/token"),
        ("curl", "-w %{http_code}", "meta-data/spot/instance-action"),
        ("docker compose", "stop -t 45"),
    ])
    doc = json.loads(sb.read("var/lib/geusemaker/www/geusemaker/health.json"))
    assert doc["overall"] == "unhealthy"
    assert "spot interruption" in doc["services"]["n8n"]["detail"]
    assert not (sb.root / "var/lib/geusemaker/www/geusemaker/ready").exists()
    assert "spot interruption notice: stopping the stack" in sb.read(
        "var/log/geusemaker/spot-watch.log")


def test_spot_watcher_polls_every_interval(installed):
    sb = installed
    # No notice (404): the watcher keeps polling; stop it after a few rounds.
    env = sb.env(GM_SPOT_INTERVAL=0.05)
    env["PATH"] = env["PATH"].replace(str(sb.bin) + ":", "")  # real sleep for this one
    bin2 = sb.base / "bin2"
    bin2.mkdir()
    for name in ("curl", "docker"):
        os.symlink(STUB, bin2 / name)
    env["PATH"] = "%s:%s" % (bin2, env["PATH"])
    p = subprocess.Popen(["bash", str(sb.root / HELPERS[2])], env=env)
    try:
        import time
        time.sleep(1.0)
        assert p.poll() is None
    finally:
        p.kill()
        p.wait(timeout=10)
    polls = [c for c in sb.calls() if "spot/instance-action" in c]
    assert len(polls) >= 3
    assert not any("stop -t" in c for c in sb.calls())
