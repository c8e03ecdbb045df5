"""whoami against the moto emulator, through the fault-injection proxy."""
import json

REQUEST_ID_ENV = {"GEUSEMAKER_RETRY_BASE_MS": "20"}


def test_whoami_text_and_json(gm, proxy):
    r0 = r = gm.run("whoami", check=True)
    assert "Account:            123456789012" in r.stdout
    assert "Credential source:  environment" in r.stdout
    r = gm.run("whoami", "--output", "json", check=True)
    doc = json.loads(r.stdout)
    assert doc["account"] == "123456789012"
    assert doc["arn"].startswith("arn:aws:sts::123456789012:")
    assert doc["region"] == "us-east-1"
    assert doc["credential_source"] == "environment"
    # The keys came from the environment: no profile was used.
    assert doc["profile"] is None
    calls = proxy.find(action="GetCallerIdentity")
    assert len(calls) == 2
    assert all(c["service"] == "sts" and c["status"] == 200 for c in calls)
    # The request was signed for sts with our access key.
    auth = calls[0]["request_headers"].get("Authorization") or calls[0]["request_headers"].get("authorization")
    assert "Credential=testing-akid/" in auth and "/us-east-1/sts/aws4_request" in auth
    assert "Profile:            (none: the keys come from the environment" in r0.stdout


def test_whoami_region_flag_wins(gm, proxy):
    r = gm.run("whoami", "--region", "eu-west-1", "--output", "json", check=True,
               env={"AWS_REGION": "us-west-2"})
    assert json.loads(r.stdout)["region"] == "eu-west-1"
    r = gm.run("whoami", "--output", "json", check=True,
               env={"AWS_REGION": None, "AWS_DEFAULT_REGION": "ap-south-1"})
    assert json.loads(r.stdout)["region"] == "ap-south-1"


def test_no_region_is_a_clear_usage_error(gm, proxy):
    r = gm.run("whoami", env={"AWS_REGION": None})
    assert r.returncode == 2
    assert "no aws region configured" in r.stderr
    assert proxy.records == []


def test_service_endpoint_override(gm, proxy, moto_server):
    # AWS_ENDPOINT_URL_STS beats AWS_ENDPOINT_URL: point the generic one at a
    # closed port, the service one at the proxy.
    r = gm.run("whoami", check=True, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                                          "AWS_ENDPOINT_URL_STS": proxy.url})
    assert "123456789012" in r.stdout


def test_throttling_and_503_are_retried(gm, proxy):
    proxy.add_rule({"action": "GetCallerIdentity", "error": "Throttling", "status": 400, "times": 1})
    proxy.add_rule({"action": "GetCallerIdentity", "status": 503, "times": 1})
    r = gm.run("whoami", "--output", "json", check=True, env=REQUEST_ID_ENV)
    assert json.loads(r.stdout)["account"] == "123456789012"
    statuses = [c["status"] for c in proxy.find(action="GetCallerIdentity")]
    assert statuses == [400, 503, 200]


def test_connection_reset_is_retried(gm, proxy):
    proxy.add_rule({"action": "GetCallerIdentity", "reset": True, "times": 1})
    r = gm.run("whoami", check=True, env=REQUEST_ID_ENV)
    assert "123456789012" in r.stdout
    assert [c["status"] for c in proxy.find(action="GetCallerIdentity")] == [None, 200]


def test_retries_stop_after_three_attempts(gm, proxy):
    proxy.add_rule({"action": "GetCallerIdentity", "status": 503})
    r = gm.run("whoami", env=REQUEST_ID_ENV)
    assert r.returncode == 1
    assert "sts GetCallerIdentity failed after retries" in r.stderr
    assert "attempts: 3" in r.stderr
    assert len(proxy.find(action="GetCallerIdentity")) == 3


def test_auth_failure_fails_at_once(gm, proxy):
    proxy.add_rule({"action": "GetCallerIdentity", "error": "InvalidClientTokenId", "status": 403,
                    "message": "The security token included in the request is invalid."})
    r = gm.run("whoami", env=REQUEST_ID_ENV)
    assert r.returncode == 4
    assert "error: sts GetCallerIdentity failed: InvalidClientTokenId" in r.stderr
    assert "request id:" in r.stderr
    assert len(proxy.find(action="GetCallerIdentity")) == 1
    assert "testing-secret" not in r.stderr + r.stdout


def test_ec2_style_auth_failure(gm, proxy):
    # The same classification for an EC2-shaped error body on an STS call.
    proxy.add_rule({"action": "GetCallerIdentity", "error": "AuthFailure", "status": 401})
    r = gm.run("whoami")
    assert r.returncode == 4
    assert "AuthFailure" in r.stderr
    assert len(proxy.find(action="GetCallerIdentity")) == 1


def test_malformed_response_fails_cleanly(gm, proxy):
    proxy.add_rule({"action": "GetCallerIdentity", "status": 200, "body": "<GetCallerIdentityResponse><oops"})
    r = gm.run("whoami")
    assert r.returncode == 1
    assert "malformed response from sts GetCallerIdentity" in r.stderr
    proxy.clear_rules()
    proxy.add_rule({"action": "GetCallerIdentity", "status": 200, "body": "{\"not\": \"xml\"}"})
    r = gm.run("whoami")
    assert r.returncode == 1
    assert "malformed" in r.stderr


def test_oversize_response_fails_cleanly(gm, proxy):
    big = "<GetCallerIdentityResponse>" + "x" * (9 * 1024 * 1024) + "</GetCallerIdentityResponse>"
    proxy.add_rule({"action": "GetCallerIdentity", "status": 200, "body": big})
    r = gm.run("whoami")
    assert r.returncode == 1
    assert "exceeds" in r.stderr
    # A response over the limit is not retried.
    assert len(proxy.find(action="GetCallerIdentity")) == 1


def test_latency_is_tolerated(gm, proxy):
    proxy.add_rule({"latency_ms": 300})
    r = gm.run("whoami", check=True)
    assert "123456789012" in r.stdout


def test_version_and_help(gm):
    r = gm.run("--version", check=True)
    assert r.stdout.startswith("geusemaker ")
    r = gm.run("--help", check=True)
    for word in ("deploy", "destroy", "list", "status", "whoami", "exit codes"):
        assert word in r.stdout
    r = gm.run("whoami", "--help", check=True)
    assert "usage: geusemaker whoami" in r.stdout
    r = gm.run("frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = gm.run("whoami", "--bogus")
    assert r.returncode == 2 and "--bogus" in r.stderr
