"""The configuration files the UserData installs, checked by the tools that will
read them on the instance, not by our own code:

- nginx.conf (every tier and OS) passes a real `nginx -t` (Debian's nginx): the
  file the sandboxed UserData wrote, with its token maps, next to a real
  certificate and Debian's mime.types, in a temporary prefix. Only the absolute
  locations of the instance (/etc/nginx, /var/lib/geusemaker, /var/log/nginx,
  /run) are moved into the prefix; no server is started.
- Every systemd unit and the docker.service drop-in pass `systemd-analyze verify`
  on their exact text, in a root holding the units systemd ships, a stub
  docker.service and stub executables where the units point.

Both checks are shown not to be vacuous: a broken copy fails.
"""

import os
import pwd
import re
import shutil
import subprocess
import pytest

from test_userdata import TIERS, OSES, Sandbox, check_success, gmbin, script_for  # noqa: F401

VARIANTS = [(t, o) for t in TIERS for o in OSES]
ALB_URL = "http://demo-alb-1234567890.eu-west-1.elb.amazonaws.com"
INSTANCE_DIRS = ("/etc/nginx/", "/var/lib/geusemaker/", "/var/log/nginx/")


def installed_root(gmbin, tmp_path, tier, os_name):
    """Runs the UserData in the sandbox; returns the sandbox (its root holds what
    the instance would have)."""
    if shutil.which("flock") is None:
        pytest.skip("flock (util-linux) is needed by the script")
    base = tmp_path / "sandbox"
    base.mkdir()
    sb = Sandbox(base)
    env = {"GM_STUB_PUBLIC_URL": ALB_URL} if tier == "automation" else {}
    check_success(sb, sb.run(script_for(gmbin, tier, os_name), **env))
    return sb


def nginx_binary():
    for p in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if p and os.access(p, os.X_OK):
            return p
    pytest.fail("nginx is not installed (scripts/setup.sh installs Debian's nginx)")


def real_certificate(directory):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "1", "-subj", "/CN=203.0.113.10",
                    "-addext", "subjectAltName=IP:203.0.113.10",
                    "-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.crt")],
                   check=True, capture_output=True, timeout=60)


def nginx_prefix(sb, prefix):
    """The instance's nginx files moved under prefix; returns the config's path."""
    conf = sb.read("etc/nginx/nginx.conf")
    gm = prefix / "etc/nginx/geusemaker"
    gm.mkdir(parents=True)
    shutil.copy(sb.root / "etc/nginx/geusemaker/tokens.conf", gm / "tokens.conf")
    shutil.copy("/etc/nginx/mime.types", prefix / "etc/nginx/mime.types")
    real_certificate(gm)
    for d in ("var/lib/geusemaker/www/geusemaker", "var/log/nginx", "run"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
    for d in INSTANCE_DIRS:
        conf = conf.replace(d, "%s%s" % (prefix, d))
    conf = conf.replace("/run/nginx.pid", "%s/run/nginx.pid" % prefix)
    # The worker user of the OS (nginx on Amazon Linux, www-data on Ubuntu) may not
    # exist here; nginx -t as root looks it up.
    m = re.match(r"user (\S+);\n", conf)
    assert m, conf[:200]
    try:
        pwd.getpwnam(m.group(1))
    except KeyError:
        here = "www-data"  # Debian's nginx user
        try:
            pwd.getpwnam(here)
        except KeyError:
            here = pwd.getpwuid(os.geteuid()).pw_name
        conf = conf.replace(m.group(0), "user %s;\n" % here, 1)
    leftover = [d for d in INSTANCE_DIRS + ("/run/",) if re.search(r"[ \t]%s" % d, conf)]
    assert not leftover, leftover
    path = prefix / "etc/nginx/nginx.conf"
    path.write_text(conf)
    return path


def nginx_t(conf, prefix):
    return subprocess.run([nginx_binary(), "-t", "-p", str(prefix) + "/", "-e",
                           str(prefix / "var/log/nginx/error.log"), "-c", str(conf)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("tier,os_name", VARIANTS)
def test_nginx_conf_passes_nginx_t(gmbin, tmp_path, tier, os_name):
    sb = installed_root(gmbin, tmp_path, tier, os_name)
    prefix = tmp_path / "nginx"
    conf = nginx_prefix(sb, prefix)
    r = nginx_t(conf, prefix)
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr and "test is successful" in r.stderr
    # Not vacuous: a broken directive fails.
    text = conf.read_text()
    conf.write_text(text.replace("try_files $gm_ready =503;", "try_files $gm_ready =503", 1))
    assert nginx_t(conf, prefix).returncode != 0


def systemd_analyze():
    p = shutil.which("systemd-analyze")
    if not p:
        pytest.fail("systemd-analyze is not installed (scripts/setup.sh installs systemd)")
    return p


def units_root(sb, root):
    """A root for systemd-analyze --root: the units systemd ships, a stub
    docker.service, our units and drop-in as written, stub executables."""
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/lib/systemd/system/docker.service").write_text(
        "[Unit]\nDescription=stub Docker\n[Service]\nExecStart=/usr/bin/dockerd\n")
    etc = root / "etc/systemd/system"
    shutil.copytree(sb.root / "etc/systemd/system", etc)
    for exe in ["usr/bin/dockerd", "usr/bin/docker", "bin/rm"] + [
            "opt/geusemaker/bin/" + p.name for p in (sb.root / "opt/geusemaker/bin").iterdir()]:
        path = root / exe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    return etc


def verify(root, units):
    return subprocess.run([systemd_analyze(), "verify", "--man=no", "--root=%s" % root, *units],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))


@pytest.mark.parametrize("tier,os_name", [("dev", "al2023"), ("automation", "ubuntu2404"),
                                          ("gpu", "ubuntu2204")])
def test_systemd_units_pass_systemd_analyze_verify(gmbin, tmp_path, tier, os_name):
    sb = installed_root(gmbin, tmp_path, tier, os_name)
    root = tmp_path / "units"
    etc = units_root(sb, root)
    units = sorted(p.name for p in etc.glob("geusemaker-*"))
    assert units == ["geusemaker-health.service", "geusemaker-health.timer",
                     "geusemaker-late.service", "geusemaker-lease.service",
                     "geusemaker-qdrant-backup.service",
                     "geusemaker-qdrant-backup.timer", "geusemaker-spot-watch.service",
                     "geusemaker-stack.service"]
    assert (etc / "docker.service.d/geusemaker.conf").is_file()
    r = verify(root, units + ["docker.service"])
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and out == "", out
    # Not vacuous: a misspelt key and a missing executable are reported.
    unit = etc / "geusemaker-qdrant-backup.service"
    unit.write_text(unit.read_text().replace("ExecStart=", "ExecStrat="))
    r = verify(root, ["geusemaker-qdrant-backup.service"])
    assert "Unknown key" in r.stdout + r.stderr
    (root / "opt/geusemaker/bin/gm-health").unlink()
    r = verify(root, ["geusemaker-health.service"])
    assert r.returncode != 0 and "gm-health" in r.stdout + r.stderr


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ready_answer_expires_in_a_real_nginx(gmbin, tmp_path):
    """The rendered nginx.conf, served on 127.0.0.1: /geusemaker/ready is 200 only while
    a ready file for the current minute exists (gm-health writes them ahead)."""
    import time
    import urllib.error
    import urllib.request
    sb = installed_root(gmbin, tmp_path, "dev", "ubuntu2404")
    prefix = tmp_path / "nginx"
    conf = nginx_prefix(sb, prefix)
    http, https = free_port(), free_port()
    text = conf.read_text()
    text = text.replace("listen 80 default_server;", "listen 127.0.0.1:%d default_server;" % http)
    text = text.replace("listen 443 ssl default_server;",
                        "listen 127.0.0.1:%d ssl default_server;" % https)
    text = re.sub(r"\n *listen \[::\]:\d+[^\n]*", "", text)
    conf.write_text(text)
    www = prefix / "var/lib/geusemaker/www/geusemaker"
    (www / "health.json").write_text('{"schema":1}\n')
    proc = subprocess.Popen([nginx_binary(), "-p", str(prefix) + "/", "-e",
                             str(prefix / "var/log/nginx/error.log"), "-c", str(conf),
                             "-g", "daemon off; master_process off;"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)

    import ssl
    insecure = ssl.create_default_context()  # the test's own self-signed certificate
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect(),
                                         urllib.request.HTTPSHandler(context=insecure))

    def get(path, tls=False):
        url = "%s://127.0.0.1:%d%s" % ("https" if tls else "http", https if tls else http, path)
        last = None
        for _ in range(50):
            try:
                with direct.open(url, timeout=2) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(errors="replace")
            except OSError as e:
                last = e
                time.sleep(0.1)
        pytest.fail("nginx did not answer %s: %r" % (url, last))

    try:
        assert get("/geusemaker/health.json") == (200, '{"schema":1}\n')
        assert get("/geusemaker/ready")[0] == 503  # nothing written yet
        now = time.time()
        for minute in (now - 60, now, now + 60):  # what gm-health writes, around a boundary
            (www / time.strftime("ready-%Y-%m-%dT%H:%M", time.localtime(minute))).write_text(
                "ok\n")
        assert get("/geusemaker/ready") == (200, "ok\n")
        assert get("/geusemaker/ready", tls=True) == (200, "ok\n")
        for f in www.glob("ready-*"):
            f.unlink()
        stale = time.localtime(time.time() - 600)  # the health timer stopped 10 min ago
        (www / time.strftime("ready-%Y-%m-%dT%H:%M", stale)).write_text("ok\n")
        assert get("/geusemaker/ready")[0] == 503
        assert get("/geusemaker/ready", tls=True)[0] == 503
        assert get("/n8n/editor")[0] == 301  # plain HTTP goes to HTTPS
        code, body = get("/qdrant/dashboard/", tls=True)
        assert code == 404 and "docs/services.md" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)
