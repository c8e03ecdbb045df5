"""Tests of the test harness itself: the fault proxy and the fake IMDS."""

import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, \
    HTTPClientError

from botocore.parsers import ResponseParserError

from conftest import read_jsonl
from faultproxy import identify

HERE = Path(__file__).resolve().parent


def client(url, service, attempts=1, mode="standard"):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": attempts, "mode": mode},
                                      connect_timeout=5, read_timeout=30))


@pytest.fixture
def via(proxy):
    return lambda service, **kw: client(proxy.url, service, **kw)


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_forwards_and_records(proxy, via, tmp_path):
    ident = via("sts").get_caller_identity()
    assert ident["Account"] == "123456789012"
    [rec] = proxy.records
    assert (rec["service"], rec["action"], rec["status"]) == ("sts", "GetCallerIdentity", 200)
    assert rec["fault"] is None and rec["params"]["Action"] == "GetCallerIdentity"
    assert "GetCallerIdentityResult" in rec["response_body"]
    assert rec["end"] >= rec["start"]
    [logged] = read_jsonl(tmp_path / "requests.jsonl")
    assert logged["action"] == "GetCallerIdentity" and "response_body" not in logged
    assert proxy.actions() == [("sts", "GetCallerIdentity")]
    assert proxy.count(action="GetCallerIdentity", service="sts") == 1


def test_keepalive_connection_reused(proxy, via):
    ec2 = via("ec2")
    for _ in range(5):
        ec2.describe_vpcs()
    assert proxy.count(action="DescribeVpcs") == 5
    assert all(r["status"] == 200 for r in proxy.records)


def test_ec2_error_n_times_then_passes(proxy, via):
    rule = proxy.add_rule({"service": "ec2", "action": "RunInstances", "times": 2,
                           "error": "InsufficientInstanceCapacity", "status": 500,
                           "message": "no capacity in us-east-1a"})
    ec2 = via("ec2")
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
        assert code_of(e) == "InsufficientInstanceCapacity"
        assert e.value.response["Error"]["Message"] == "no capacity in us-east-1a"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    assert rule.fired == 2 and rule.exhausted
    assert [r["status"] for r in proxy.find(action="RunInstances")] == [500, 500, 200]
    assert proxy.find(action="RunInstances")[0]["fault"].startswith("error:Insufficient")


def test_skip_then_fire(proxy, via):
    proxy.add_rule({"action": "DescribeVpcs", "skip": 1, "times": 1,
                    "error": "RequestLimitExceeded", "status": 503})
    ec2 = via("ec2")
    ec2.describe_vpcs()
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs()
    assert code_of(e) == "RequestLimitExceeded"
    ec2.describe_vpcs()


@pytest.mark.parametrize("service,call,code,status", [
    ("iam", lambda c: c.get_role(RoleName="x"), "EntityAlreadyExists", 409),
    ("sts", lambda c: c.get_caller_identity(), "ExpiredToken", 400),
    ("elbv2", lambda c: c.describe_load_balancers(), "LoadBalancerNotFound", 400),
    ("ssm", lambda c: c.get_parameter(Name="/geusemaker/x/pw"), "ParameterNotFound", 400),
    ("efs", lambda c: c.create_file_system(CreationToken="tok"), "FileSystemAlreadyExists", 409),
    ("efs", lambda c: c.describe_file_systems(), "InternalServerError", 500),
])
def test_error_formats_parsed_by_botocore(proxy, via, service, call, code, status):
    proxy.add_rule({"error": code, "status": status, "message": "injected %s" % code})
    with pytest.raises(ClientError) as e:
        call(via(service))
    assert code_of(e) == code
    assert e.value.response["Error"]["Message"] == "injected %s" % code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    [rec] = proxy.records
    assert rec["status"] == status


def test_identify():
    info = identify("POST", "/", {"X-Amz-Target": "AmazonSSM.GetParameter",
                                  "Content-Type": "application/x-amz-json-1.1"}, b'{"Name":"/a"}')
    assert (info["service"], info["action"], info["params"]) == ("ssm", "GetParameter",
                                                                 {"Name": "/a"})
    auth = ("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/elasticfilesystem/"
            "aws4_request, SignedHeaders=host, Signature=00")
    cases = {
        ("POST", "/2015-02-01/file-systems"): "CreateFileSystem",
        ("GET", "/2015-02-01/file-systems?MaxItems=10"): "DescribeFileSystems",
        ("DELETE", "/2015-02-01/file-systems/fs-1"): "DeleteFileSystem",
        ("POST", "/2015-02-01/mount-targets"): "CreateMountTarget",
        ("GET", "/2015-02-01/mount-targets?FileSystemId=fs-1"): "DescribeMountTargets",
        ("DELETE", "/2015-02-01/mount-targets/fsmt-1"): "DeleteMountTarget",
        ("PUT", "/2015-02-01/file-systems/fs-1/lifecycle-configuration"):
            "PutLifecycleConfiguration",
        ("GET", "/2015-02-01/mount-targets/fsmt-1/security-groups"):
            "DescribeMountTargetSecurityGroups",
        ("PUT", "/2015-02-01/mount-targets/fsmt-1/security-groups"):
            "ModifyMountTargetSecurityGroups",
        ("POST", "/2015-02-01/resource-tags/fs-1"): "TagResource",
        ("GET", "/2015-02-01/resource-tags/fs-1"): "ListTagsForResource",
        ("PUT", "/2015-02-01/file-systems/fs-1/backup-policy"): "PutBackupPolicy",
        ("PATCH", "/2015-02-01/weird"): "PATCH /2015-02-01/weird",
    }
    for (m, p), action in cases.items():
        got = identify(m, p, {"Authorization": auth}, b"")
        assert (got["service"], got["action"]) == ("elasticfilesystem", action), (m, p)
    got = identify("GET", "/2015-02-01/mount-targets?FileSystemId=fs-9", {"Authorization": auth},
                   b"")
    assert got["params"]["FileSystemId"] == "fs-9"
    ec2 = identify("POST", "/", {"Authorization": auth.replace("elasticfilesystem", "ec2"),
                                 "Content-Type": "application/x-www-form-urlencoded"},
                   b"Action=RunInstances&InstanceType=t3.micro&Version=2016-11-15")
    assert ec2["action"] == "RunInstances" and ec2["params"]["InstanceType"] == "t3.micro"
    assert identify("GET", "/?Action=DescribeVpcs", {}, b"")["action"] == "DescribeVpcs"


def test_503_then_success_with_retries(proxy, via):
    proxy.add_rule({"action": "GetCallerIdentity", "status": 503, "times": 1})
    via("sts", attempts=3).get_caller_identity()
    recs = proxy.find(action="GetCallerIdentity")
    assert [r["status"] for r in recs] == [503, 200]
    assert "ServiceUnavailable" in recs[0]["response_body"]


def test_bare_status_bodies(proxy):
    proxy.add_rule({"action": "DescribeVpcs", "status": 503, "times": 1})
    proxy.add_rule({"action": "DescribeVpcs", "status": 502, "times": 1})
    proxy.add_rule({"action": "DescribeVpcs", "status": 503, "body": "text", "times": 1})
    proxy.add_rule({"action": "DescribeVpcs", "status": 200, "body": "<garbage", "times": 1})
    ec2 = client(proxy.url, "ec2")
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs()
    assert code_of(e) == "Unavailable"
    for _ in range(3):
        try:
            ec2.describe_vpcs()
        except Exception:
            pass
    bodies = [r["response_body"] for r in proxy.find(action="DescribeVpcs")]
    assert "<Code>Unavailable</Code>" in bodies[0]
    assert bodies[1] == "Bad Gateway\n" and bodies[2] == "Service Unavailable\n"
    assert bodies[3] == "<garbage"


def test_reset_gives_connection_error(proxy, via):
    rule = proxy.add_rule({"service": "sts", "reset": True, "times": 1})
    with pytest.raises((HTTPClientError, BotoConnectionError)):
        via("sts").get_caller_identity()
    assert rule.fired == 1
    rec = proxy.records[0]
    assert rec["status"] is None and rec["fault"] == "reset"
    # a raw client sees a TCP reset, not an orderly close
    proxy.add_rule({"service": "unknown", "reset": True})
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("POST", "/", body=b"Action=X")
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        conn.getresponse().read()
    conn.close()
    # the proxy is still serving
    via("sts").get_caller_identity()


def test_latency(proxy, via):
    proxy.add_rule({"action": "GetCallerIdentity", "latency_ms": 300})
    proxy.add_rule({"action": "GetCallerIdentity", "latency_ms": 100, "times": 1})
    sts = via("sts")
    t = time.monotonic()
    sts.get_caller_identity()
    assert time.monotonic() - t >= 0.4
    t = time.monotonic()
    sts.get_caller_identity()
    assert 0.3 <= time.monotonic() - t
    assert [r["latency_ms"] for r in proxy.records] == [400, 300]


def test_latency_then_error_both_apply(proxy, via):
    proxy.add_rule({"action": "GetCallerIdentity", "latency_ms": 200})
    proxy.add_rule({"action": "GetCallerIdentity", "error": "Throttling", "times": 1})
    t = time.monotonic()
    with pytest.raises(ClientError) as e:
        via("sts").get_caller_identity()
    assert code_of(e) == "Throttling" and time.monotonic() - t >= 0.2


def test_rewrite(proxy, via, boto):
    boto("ec2").create_vpc(CidrBlock="10.9.0.0/16")
    proxy.add_rule({"action": "DescribeVpcs",
                    "rewrite": {"pattern": r"<state>available</state>",
                                "replace": "<state>pending</state>"}})
    vpcs = via("ec2").describe_vpcs()["Vpcs"]
    assert vpcs and all(v["State"] == "pending" for v in vpcs)
    assert boto("ec2").describe_vpcs()["Vpcs"][0]["State"] == "available"


def test_rewrite_until(proxy, via, boto):
    """A rule with `until` fires until a request matching the filter has
    passed, then never again: the scaling activities report failures and the
    group's instance is withheld until the group is asked to go on-demand."""
    ec2 = boto("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    lt = ec2.create_launch_template(LaunchTemplateName="until-lt", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.large"})["LaunchTemplate"]["LaunchTemplateId"]
    policy = lambda pct: {  # noqa: E731
        "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": lt},
                           "Overrides": [{"InstanceType": "t3.large"}]},
        "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": pct}}
    boto("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="g", MinSize=1, MaxSize=1, VPCZoneIdentifier=subnet,
        MixedInstancesPolicy=policy(0))
    until = {"action": "UpdateAutoScalingGroup",
             "match": {"MixedInstancesPolicy.InstancesDistribution."
                       "OnDemandPercentageAboveBaseCapacity": "100"}}
    hide = proxy.add_rule({"action": "DescribeAutoScalingGroups", "until": until,
                           "rewrite": {"pattern": r"(?s)<Instances>.*?</Instances>",
                                       "replace": "<Instances/>"}})
    asg = via("autoscaling")
    for _ in range(2):
        assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"] == []
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MixedInstancesPolicy=policy(0))
    assert not hide.ended  # another update does not end it
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MixedInstancesPolicy=policy(100))
    assert hide.ended and hide.fired == 2 and hide.remaining is None
    assert len(asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]) == 1
    assert proxy.rules_info()[0]["ended"] is True
    with pytest.raises(TypeError):
        proxy.add_rule({"action": "X", "status": 500, "until": "UpdateAutoScalingGroup"})


def test_match_on_param(proxy, via):
    rule = proxy.add_rule({"action": "RunInstances", "match": {"InstanceType": "t3.micro"},
                           "error": "InsufficientInstanceCapacity", "status": 500})
    ec2 = via("ec2")
    ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.small")
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                          InstanceType="t3.micro")
    assert code_of(e) == "InsufficientInstanceCapacity"
    ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="m5.large")
    assert rule.fired == 1 and rule.seen == 1
    # a substring match against the raw body (JSON protocol)
    proxy.add_rule({"service": "ssm", "match": "/geusemaker/demo/", "error": "AccessDeniedException"})
    ssm = via("ssm")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/geusemaker/demo/postgres-password")
    assert code_of(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/other")
    assert code_of(e) == "ParameterNotFound"


KILL_CLIENT = r"""
import sys, boto3
from botocore.config import Config
c = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="a", aws_secret_access_key="b",
                 config=Config(retries={"total_max_attempts": 1}))
open(sys.argv[2], "w").close()
for i in range(1, 40):
    c.create_vpc(CidrBlock="10.%d.0.0/16" % i)
    print(i, flush=True)
"""


def _start_client(proxy_url, tmp_path):
    ready = tmp_path / "ready"
    out = open(tmp_path / "client.out", "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen([sys.executable, "-c", KILL_CLIENT, proxy_url, str(ready)],
                            stdout=out, stderr=subprocess.DEVNULL, env=env)
    out.close()
    return proc


def _vpc_cidrs(boto):
    return {v["CidrBlock"] for v in boto("ec2").describe_vpcs()["Vpcs"]}


@pytest.mark.parametrize("when", ["before_response", "after_response"])
def test_kill_after_n(proxy, boto, tmp_path, when):
    holder = {}
    rule = proxy.kill_after(3, lambda: holder["p"].pid if "p" in holder else None, when=when,
                            action="CreateVpc")
    proc = holder["p"] = _start_client(proxy.url, tmp_path)
    try:
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rule.fired == 1
    recs = proxy.find(action="CreateVpc")
    third = recs[2]
    assert third["fault"] == "kill:" + when and third["kill"] == proc.pid
    assert third["upstream_status"] == 200
    cidrs = _vpc_cidrs(boto)
    assert {"10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"} <= cidrs  # side effect happened
    printed = (tmp_path / "client.out").read_text().split()
    if when == "before_response":
        assert third["status"] is None
        assert printed == ["1", "2"] and len(recs) == 3
        assert "10.4.0.0/16" not in cidrs
    else:
        assert third["status"] == 200
        assert printed[:2] == ["1", "2"] and len(recs) <= 4


def test_kill_pid_from_file(proxy, boto, tmp_path):
    pid_file = tmp_path / "client.pid"
    proxy.add_rule({"kill_pid": "from_file", "pid_file": str(pid_file), "after": 2})
    proc = _start_client(proxy.url, tmp_path)
    pid_file.write_text(str(proc.pid))
    try:
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(proxy.records) == 2 and proxy.records[1]["kill"] == proc.pid


def _readline(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no output within %ss" % timeout
    return stream.readline()


def test_cli_mode(moto_server, tmp_path):
    log = tmp_path / "cli.jsonl"
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"action": "DescribeVpcs", "error": "UnauthorizedOperation",
                                  "times": 1}]))
    proc = subprocess.Popen([sys.executable, str(HERE / "faultproxy.py"), "--upstream",
                             moto_server, "--port", "0", "--log", str(log), "--rules", str(rules),
                             "--latency-ms", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _readline(proc.stdout, 15).strip()
        assert url.startswith("http://127.0.0.1:")
        ec2 = client(url, "ec2")
        with pytest.raises(ClientError) as e:
            ec2.describe_vpcs()
        assert code_of(e) == "UnauthorizedOperation"
        ec2.describe_vpcs()
        # control endpoint: replace rules, read records
        req = urllib.request.Request(url + "/__proxy/rules", method="POST", data=json.dumps(
            [{"service": "sts", "error": "ExpiredToken"}]).encode())
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["rules"][0]["name"] == "error:ExpiredToken/400"
        with pytest.raises(ClientError) as e:
            client(url, "sts").get_caller_identity()
        assert code_of(e) == "ExpiredToken"
        req = urllib.request.Request(url + "/__proxy/rules", method="DELETE")
        urllib.request.urlopen(req, timeout=5).close()
        client(url, "sts").get_caller_identity()
        with urllib.request.urlopen(url + "/__proxy/records", timeout=5) as r:
            recs = json.load(r)["records"]
        assert [x["status"] for x in recs] == [400, 200, 400, 200]
        assert all("request_body" not in x for x in recs)
    finally:
        proc.terminate()
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    logged = read_jsonl(log)
    assert [x["action"] for x in logged] == ["DescribeVpcs", "DescribeVpcs",
                                             "GetCallerIdentity", "GetCallerIdentity"]
    assert logged[1]["latency_ms"] == 10


def test_upstream_down_gives_502(tmp_path):
    from faultproxy import FaultProxy
    from localserver import refused_port
    with refused_port() as dead, \
            FaultProxy("http://127.0.0.1:%d" % dead, upstream_timeout=3) as p:
        with pytest.raises((ClientError, ResponseParserError)):  # plain-text 502
            client(p.url, "sts").get_caller_identity()
        assert p.records[0]["status"] == 502 and "upstream_error" in p.records[0]["fault"]


def test_secrets_searchable(proxy, via):
    via("ssm").put_parameter(Name="/geusemaker/demo/pw", Value="s3cr3t-value",
                             Type="SecureString")
    rec = proxy.find(action="PutParameter")[0]
    assert "s3cr3t-value" in rec["request_body"]
    assert rec["params"]["Name"] == "/geusemaker/demo/pw"


def test_concurrent_requests(proxy, via):
    import concurrent.futures
    proxy.add_rule({"action": "DescribeVpcs", "latency_ms": 200})
    clients = [via("ec2") for _ in range(8)]  # client creation is slow: not timed
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda c: c.describe_vpcs(), clients))
    # In parallel, not one after another: the proxy's own intervals overlap
    # (a wall-clock bound would be flaky on a loaded 2-core machine).
    spans = [(r["start"], r["end"]) for r in proxy.records]
    overlap = max(sum(1 for s2, e2 in spans if s2 <= s1 < e2) for s1, _ in spans)
    assert overlap >= 3
    assert proxy.count(action="DescribeVpcs", status=200) == 8
    assert sorted(r["seq"] for r in proxy.records) == list(range(1, 9))


# ---------------------------------------------------------------- fake IMDS

def _imds_get(url, path, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=5)
    headers = {"X-aws-ec2-metadata-token": token} if token else {}
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    return r.status, body


def test_fake_imds(imds):
    port = int(imds.url.rsplit(":", 1)[1])
    assert _imds_get(imds.url, "/latest/meta-data/placement/region")[0] == 401
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("PUT", "/latest/api/token")
    r = conn.getresponse()
    r.read()
    assert r.status == 400
    conn.request("PUT", "/latest/api/token",
                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
    r = conn.getresponse()
    token = r.read().decode()
    assert r.status == 200 and token
    conn.close()
    st, role = _imds_get(imds.url, "/latest/meta-data/iam/security-credentials/", token)
    assert (st, role) == (200, imds.role)
    st, body = _imds_get(imds.url, "/latest/meta-data/iam/security-credentials/" + role, token)
    creds = json.loads(body)
    assert creds["Code"] == "Success" and creds["AccessKeyId"] == imds.access_key_id
    assert creds["Expiration"].endswith("Z")
    assert _imds_get(imds.url, "/latest/meta-data/placement/region", token) == (200, "us-east-1")
    st, doc = _imds_get(imds.url, "/latest/dynamic/instance-identity/document", token)
    assert json.loads(doc)["region"] == "us-east-1"
    assert _imds_get(imds.url, "/latest/meta-data/spot/instance-action", token)[0] == 404
    imds.set_spot_action("terminate")
    assert json.loads(_imds_get(imds.url, "/latest/meta-data/spot/instance-action",
                                token)[1])["action"] == "terminate"
    assert _imds_get(imds.url, "/latest/meta-data/instance-id", "bogus")[0] == 401
    recs = imds.records
    assert recs[0] == {**recs[0], "method": "GET", "had_token": False, "status": 401}
    assert any(r["method"] == "PUT" and r["status"] == 200 for r in recs)


def test_botocore_reads_fake_imds(imds, monkeypatch):
    import botocore.session
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url + "/")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    s = botocore.session.get_session()
    creds = s.get_credentials()
    assert creds is not None and creds.access_key == imds.access_key_id
    assert creds.secret_key == imds.secret_access_key and creds.token == imds.token
    assert all(r["had_token"] for r in imds.records if r["method"] == "GET")


def test_kill_without_pid_relays_normally(proxy, via):
    proxy.kill_after(1, lambda: None, pid_wait=0.2)
    via("sts").get_caller_identity()
    rec = proxy.records[0]
    assert rec["status"] == 200 and rec["kill"] == "no-pid"


def test_observer_sees_every_request(moto_server):
    """observer= gets each request (forwarded, faulted, reset) with its raw
    path, headers and body before it is answered; what it raises is recorded,
    never sent to the client."""
    from faultproxy import FaultProxy
    seen = []

    def observer(method, raw_path, headers, body):
        seen.append((method, raw_path, dict(headers), body))
        if b"Explode" in body:
            raise RuntimeError("observer broke")

    with FaultProxy(moto_server, observer=observer) as p:
        c = client(p.url, "ec2")
        c.describe_vpcs()
        p.add_rule({"action": "DescribeSubnets", "error": "Throttling", "status": 400})
        with pytest.raises(ClientError):
            c.describe_subnets()
        p.add_rule({"action": "DescribeRouteTables", "reset": True})
        with pytest.raises((BotoConnectionError, HTTPClientError)):
            c.describe_route_tables()
        c.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "Explode", "Value": "x"}]}])
        assert [s[0] for s in seen] == ["POST"] * 4
        assert [s[3].split(b"&")[0] for s in seen] == [
            b"Action=DescribeVpcs", b"Action=DescribeSubnets", b"Action=DescribeRouteTables",
            b"Action=CreateVpc"]
        assert all(s[1] == "/" and "Authorization" in s[2] for s in seen)
        recs = p.records
        assert recs[-1]["status"] == 200 and "observer broke" in recs[-1]["observer_error"]
        assert not any("observer_error" in r for r in recs[:-1])


def test_match_string_form_encoded(proxy, via):
    """A str match finds its value however the body encodes a space."""
    proxy.add_rule({"service": "ec2", "match": "geusemaker role x", "error": "Nope"})
    ec2 = via("ec2")
    with pytest.raises(ClientError) as e:  # botocore encodes the space as '+'
        ec2.create_security_group(GroupName="g", Description="geusemaker role x")
    assert code_of(e) == "Nope"


def test_respond_replaces_the_answer_from_the_request(proxy, via):
    """respond: a callable computes the answer from the request and the
    upstream's answer (here an SSM invocation's output made from the command
    that SendCommand carried)."""
    sent = {}

    def agent(info, status, headers, body):
        doc = json.loads(body)
        if info["action"] == "SendCommand":
            sent[doc["Command"]["CommandId"]] = info["params"]["Parameters"]["commands"]
            return None  # the upstream's answer as it is
        doc["StandardOutputContent"] = "ran: " + " ".join(sent[info["params"]["CommandId"]])
        return status, headers, json.dumps(doc).encode()

    rule = proxy.add_rule({"service": "ssm", "action": ["SendCommand", "GetCommandInvocation"],
                           "respond": agent})
    ssm = via("ssm")
    cid = ssm.send_command(InstanceIds=["i-0123456789abcdef0"], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": ["echo", "hi"]})["Command"]["CommandId"]
    inv = ssm.get_command_invocation(CommandId=cid, InstanceId="i-0123456789abcdef0")
    assert inv["StandardOutputContent"] == "ran: echo hi" and inv["Status"] == "Success"
    assert rule.fired == 2 and rule.name == "respond"
    assert proxy.find(action="GetCommandInvocation")[0]["fault"] == "respond"

    def broken(info, status, headers, body):
        raise RuntimeError("bug in the test's responder")

    proxy.clear_rules()
    proxy.add_rule({"action": "GetCallerIdentity", "respond": broken})
    with pytest.raises(ClientError):
        via("sts").get_caller_identity()
    rec = proxy.find(action="GetCallerIdentity")[-1]
    assert rec["status"] == 500 and "bug in the test" in rec["respond_error"]
    with pytest.raises(ValueError):
        proxy.add_rule({"action": "GetCallerIdentity", "respond": "not callable"})
