"""The stack side of a deploy: health waiting (with the loopback rule), the
health and secrets commands, and secrets never leaking."""
import http.server
import json
import os
import threading
import time

import pytest

from deployhelpers import (CIDR, FAST, deploy, destroy, group_of, instance_of, leftovers, node,
                           template_data, template_userdata)

HEALTHY = {"schema": 1, "deployment": "x", "tier": "dev", "overall": "healthy",
           "checked_at": "2026-01-01T00:00:00Z",
           "services": {s: {"state": "healthy", "detail": "ok", "critical": s in ("postgres", "n8n")}
                        for s in ("postgres", "n8n", "qdrant", "ollama", "crawl4ai")}}


BOOT = {"started": "2026-01-01T00:00:00Z", "ready": "2026-01-01T00:02:05Z",
        "finished": "2026-01-01T00:02:30Z", "models_ready": None, "baked": True,
        "steps": [{"name": "packages", "seconds": 0, "skipped": True},
                  {"name": "stack", "seconds": 97, "skipped": False}]}


class DocServer:
    """Serves a health document on 127.0.0.1; the document can change."""

    def __init__(self, doc):
        self.doc = doc
        self.hits = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                doc = dict(outer.doc)
                doc["checked_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/geusemaker/health.json" % self.srv.server_port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


@pytest.fixture
def docserver():
    s = DocServer(HEALTHY)
    yield s
    s.close()


def test_emulator_skips_health_with_a_notice(gm, proxy, boto):
    r = deploy(gm, "skiphealth")
    assert r.returncode == 0, r.stderr
    assert "health check skipped" in r.stderr
    r = gm.run("health", "skiphealth", env=FAST)
    assert r.returncode == 0 and "not probed" in r.stderr
    assert destroy(gm, "skiphealth").returncode == 0


def test_deploy_waits_for_health_endpoint(gm, proxy, boto, docserver):
    env = dict(FAST, GEUSEMAKER_HEALTH_ENDPOINT=docserver.url, GEUSEMAKER_HEALTH_POLL_MS="50")
    r = deploy(gm, "healthy", "--health-timeout", "30", env=env)
    assert r.returncode == 0, r.stderr
    assert docserver.hits >= 1
    r = gm.run("health", "healthy", "--output", "json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "healthy"
    r = gm.run("health", "healthy", env=env)
    assert "Verdict:     healthy" in r.stdout and "postgres" in r.stdout
    assert "Boot:" not in r.stdout  # a document without the boot object
    assert doc["boot"] is None
    # The instance's own boot budget, as gm-health publishes it.
    docserver.doc = dict(HEALTHY, boot=BOOT)
    r = gm.run("health", "healthy", "--output", "json", env=env)
    assert r.returncode == 0, r.stderr
    boot = json.loads(r.stdout)["boot"]
    assert boot["baked"] is True and boot["seconds"] == 150 and boot["ready_seconds"] == 125
    assert boot["models_ready"] is None
    assert [(s["name"], s["seconds"], s["skipped"]) for s in boot["steps"]] == [
        ("packages", 0, True), ("stack", 97, False)]
    r = gm.run("health", "healthy", env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Boot:        started 2026-01-01T00:00:00Z on a baked image" in out
    assert "PostgreSQL and n8n first healthy after 125 s" in out
    assert "UserData finished after 150 s" in out
    assert "  packages        0 s  skipped: already there" in out
    assert "  stack          97 s\n" in out
    # A malformed boot object is left out; the verdict stands.
    docserver.doc = dict(HEALTHY, boot={"started": "2026-01-01T00:00:00Z", "steps": "x"})
    r = gm.run("health", "healthy", env=env)
    assert r.returncode == 0, r.stderr
    assert "Boot:        not shown (the boot object: no 'steps' array)" in r.stdout
    assert destroy(gm, "healthy").returncode == 0


def test_unhealthy_stack_fails_the_deploy_naming_the_service(gm, proxy, boto, docserver):
    bad = json.loads(json.dumps(HEALTHY))
    bad["overall"] = "unhealthy"
    bad["services"]["n8n"] = {"state": "unhealthy", "detail": "readiness failing", "critical": True}
    docserver.doc = bad
    env = dict(FAST, GEUSEMAKER_HEALTH_ENDPOINT=docserver.url, GEUSEMAKER_HEALTH_POLL_MS="50")
    r = deploy(gm, "sick", "--health-timeout", "2", env=env)
    assert r.returncode == 1
    assert "n8n" in r.stderr
    assert "rolled back" in r.stderr
    assert leftovers(boto, "sick") == {}


def test_secrets_never_leak_and_are_removed(gm, proxy, boto, gm_home):
    r = deploy(gm, "leak")
    assert r.returncode == 0, r.stderr
    ssm = boto("ssm")
    params = ssm.get_parameters_by_path(Path="/geusemaker/leak/", WithDecryption=True)["Parameters"]
    assert {p["Name"].rsplit("/", 1)[1] for p in params} == {
        "postgres_password", "n8n_encryption_key", "qdrant_api_key", "crawl4ai_token", "ollama_token",
        "config"}
    # The config (what adopt rebuilds a lost record from) is plain and holds no secret.
    config = [p for p in params if p["Name"].endswith("/config")][0]
    assert config["Type"] == "String"
    summary = json.loads(config["Value"])
    assert summary["name"] == "leak" and summary["tier"] == "dev" and summary["deployment_id"]
    params = [p for p in params if p is not config]
    assert all(p["Type"] == "SecureString" for p in params)
    values = [p["Value"] for p in params]
    assert all(len(v) >= 16 for v in values)

    st = json.load(open(os.path.join(str(gm_home), "deployments", "leak.json")))
    raw = template_userdata(boto, st)
    haystacks = {
        "userdata": raw.decode("utf-8", "replace"),
        "state": open(os.path.join(str(gm_home), "deployments", "leak.json")).read(),
        "log": open(os.path.join(str(gm_home), "logs", "leak.log")).read(),
        "stdout+stderr": r.stdout + r.stderr,
        "config parameter": config["Value"],
        # What crossed the wire other than the PutParameter bodies that store them.
        "other requests": "\n".join(rec["request_body"] + json.dumps(rec["request_headers"])
                                    for rec in proxy.records if rec["action"] != "PutParameter"),
    }
    for v in values:
        for where, text in haystacks.items():
            assert v not in text, "a secret value appears in the %s" % where
    # They are only in PutParameter bodies, and each exactly once.
    puts = [rec for rec in proxy.records if rec["action"] == "PutParameter"]
    puts = [rec for rec in puts if rec["params"]["Type"] == "SecureString"]
    assert len(puts) == 5

    # The secrets command shows them after confirmation.
    r = gm.run("secrets", "leak", env=FAST)
    assert r.returncode == 2 and "--yes" in r.stderr
    r = gm.run("secrets", "leak", "--yes", "--output", "json", env=FAST)
    assert r.returncode == 0
    shown = json.loads(r.stdout)
    assert sorted(shown.values()) == sorted(values)

    # A redeploy after destroy keeps nothing; while deployed, resume keeps the values.
    r = gm.run("deploy", "--resume", "leak", env=FAST)
    assert r.returncode == 0
    again = {p["Name"]: p["Value"] for p in ssm.get_parameters_by_path(
        Path="/geusemaker/leak/", WithDecryption=True)["Parameters"] if p["Type"] == "SecureString"}
    assert sorted(again.values()) == sorted(values)

    assert destroy(gm, "leak").returncode == 0
    assert ssm.get_parameters_by_path(Path="/geusemaker/leak/")["Parameters"] == []


def test_gpu_tier_uses_gpu_userdata_and_its_ami(gm, proxy, boto, gm_home):
    ssm = boto("ssm")
    ami = ssm.get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    # The emulator has no Deep Learning AMI parameter: point the lookup at one of ours.
    ssm.put_parameter(Name="/test/deeplearning-ami", Value=ami, Type="String")
    r = deploy(gm, "gpu", "--tier", "gpu", "--instance-type", "g5.xlarge", "--on-demand",
               env={"GEUSEMAKER_AMI_PARAMETER": "/test/deeplearning-ami"})
    assert r.returncode == 0, r.stderr
    st = json.load(open(os.path.join(str(gm_home), "deployments", "gpu.json")))
    inst = instance_of(boto, st)
    assert inst["InstanceType"] == "g5.xlarge" and inst["ImageId"] == ami
    lt = template_data(boto, st)
    assert lt["InstanceType"] == "g5.xlarge" and lt["ImageId"] == ami
    group = group_of(boto, st)
    assert [o["InstanceType"] for o in
            group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"]] == ["g5.xlarge"]
    raw = template_userdata(boto, st)
    assert b"nvidia" in raw.lower()
    assert ("GM_EIP_ALLOCATION='%s'" % node(st, "eip")["id"]).encode() in raw
    assert destroy(gm, "gpu").returncode == 0
    assert leftovers(boto, "gpu") == {}
