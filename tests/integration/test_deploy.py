"""Tier 1 deploy, status, list and destroy against moto, checked with boto3."""
import base64
import gzip
import json
import os
import stat
import subprocess
import threading
import time

import pytest

from deployhelpers import CIDR, FAST, deploy, destroy, leftovers, load_state, node, state_path


def tags_of(obj):
    return {t["Key"]: t["Value"] for t in obj.get("Tags", [])}


def assert_standard_tags(tags, name, node_name):
    assert tags.get("geusemaker:deployment") == name
    assert tags.get("geusemaker:node") == node_name
    assert tags.get("ManagedBy") == "geusemaker"
    assert tags.get("Name") == "%s-%s" % (name, node_name)


def test_full_deploy_status_list_destroy(gm, proxy, boto, gm_home):
    r = deploy(gm, "demo")
    assert r.returncode == 0, r.stderr
    assert "Status:      running" in r.stdout
    st = load_state(gm_home, "demo")
    assert st["status"] == "running" and st["schema_version"] == 2
    ids = {n["name"]: n["id"] for n in st["nodes"]}
    assert stat.S_IMODE(os.stat(state_path(gm_home, "demo")).st_mode) == 0o600

    ec2 = boto("ec2")
    vpc = ec2.describe_vpcs(VpcIds=[ids["vpc"]])["Vpcs"][0]
    assert_standard_tags(tags_of(vpc), "demo", "vpc")
    for attr, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
        assert ec2.describe_vpc_attribute(VpcId=ids["vpc"], Attribute=attr)[key]["Value"] is True

    subnets = ec2.describe_subnets(SubnetIds=[ids["subnet_a"], ids["subnet_b"]])["Subnets"]
    assert {s["VpcId"] for s in subnets} == {ids["vpc"]}
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert all(s["MapPublicIpOnLaunch"] for s in subnets)
    for s in subnets:
        assert_standard_tags(tags_of(s), "demo", "subnet_a" if s["SubnetId"] == ids["subnet_a"] else "subnet_b")

    igw = ec2.describe_internet_gateways(InternetGatewayIds=[ids["igw"]])["InternetGateways"][0]
    assert igw["Attachments"][0]["VpcId"] == ids["vpc"]
    assert_standard_tags(tags_of(igw), "demo", "igw")
    rt = ec2.describe_route_tables(RouteTableIds=[ids["route_table"]])["RouteTables"][0]
    assert any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("GatewayId") == ids["igw"]
               for r in rt["Routes"])
    assert {a["SubnetId"] for a in rt["Associations"] if a.get("SubnetId")} == {ids["subnet_a"], ids["subnet_b"]}

    sg = ec2.describe_security_groups(GroupIds=[ids["sg"]])["SecurityGroups"][0]
    assert sg["VpcId"] == ids["vpc"]
    assert_standard_tags(tags_of(sg), "demo", "sg")
    perms = {(p.get("FromPort"), p.get("ToPort")): p for p in sg["IpPermissions"]}
    assert set(perms) == {(80, 80), (443, 443), (2049, 2049)}  # no SSH without a key pair
    for port in (80, 443):
        assert [r["CidrIp"] for r in perms[(port, port)]["IpRanges"]] == [CIDR]
    assert perms[(2049, 2049)]["IpRanges"] == []
    assert [g["GroupId"] for g in perms[(2049, 2049)]["UserIdGroupPairs"]] == [ids["sg"]]
    for p in sg["IpPermissions"]:
        assert all(r["CidrIp"] != "0.0.0.0/0" for r in p["IpRanges"])

    efs = boto("efs")
    fs = efs.describe_file_systems(FileSystemId=ids["efs"])["FileSystems"][0]
    assert fs["Encrypted"] is True
    assert_standard_tags(tags_of(fs), "demo", "efs")
    mts = efs.describe_mount_targets(FileSystemId=ids["efs"])["MountTargets"]
    assert {m["SubnetId"] for m in mts} == {ids["subnet_a"], ids["subnet_b"]}
    for m in mts:
        assert efs.describe_mount_target_security_groups(MountTargetId=m["MountTargetId"])["SecurityGroups"] == [ids["sg"]]

    iam = boto("iam")
    role = iam.get_role(RoleName=ids["role"])["Role"]
    assert "ec2.amazonaws.com" in json.dumps(role["AssumeRolePolicyDocument"])
    assert_standard_tags(tags_of(role), "demo", "role")
    attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=ids["role"])["AttachedPolicies"]]
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    inline = iam.get_role_policy(RoleName=ids["role"], PolicyName="geusemaker-stack")["PolicyDocument"]
    assert "/geusemaker/demo/*" in json.dumps(inline)
    prof = iam.get_instance_profile(InstanceProfileName=ids["instance_profile"])["InstanceProfile"]
    assert [r["RoleName"] for r in prof["Roles"]] == [ids["role"]]

    inst = ec2.describe_instances(InstanceIds=[ids["instance"]])["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "running"
    assert inst["SubnetId"] == ids["subnet_a"]
    eni_groups = {g["GroupId"] for eni in inst["NetworkInterfaces"] for g in eni["Groups"]}
    assert ids["sg"] in eni_groups
    assert inst["IamInstanceProfile"]["Arn"].endswith("/" + ids["instance_profile"])
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst.get("InstanceLifecycle") == "spot"
    assert_standard_tags(tags_of(inst), "demo", "instance")
    raw = _userdata_of(boto, ids["instance"])
    assert raw.startswith(b"#!/bin/bash")
    assert ids["efs"].encode() in raw

    ssm = boto("ssm")
    params = ssm.get_parameters_by_path(Path="/geusemaker/demo/", WithDecryption=False)["Parameters"]
    secure = [p for p in params if p["Type"] == "SecureString"]
    assert len(secure) == 5 and len(params) == 6

    # status: a live look at every resource, no drift.
    r = gm.run("status", "demo", "--output", "json", env=FAST, check=True)
    doc = json.loads(r.stdout)
    assert doc["status"] == "running"
    assert doc["endpoints"]["n8n"].startswith("https://")
    for nname in ("vpc", "subnet_a", "sg", "efs", "instance", "role"):
        assert doc["live"][nname]["exists"] is True, nname
        assert doc["live"][nname]["drift"] == [], nname
    assert doc["live"]["instance"]["state"] == "running"
    # drift: terminate the instance behind the tool's back: degraded, exit 5
    # (test_degraded.py has the rest).
    ec2.terminate_instances(InstanceIds=[ids["instance"]])
    r = gm.run("status", "demo", env=FAST)
    assert r.returncode == 5 and "DRIFT" in r.stdout and "degraded" in r.stdout

    r = gm.run("list", "--output", "json", check=True)
    rows = json.loads(r.stdout)
    assert [d["name"] for d in rows] == ["demo"]
    assert rows[0]["tier"] == "dev" and rows[0]["status"] == "running" and rows[0]["market"] == "spot"
    assert rows[0]["health"] == "degraded" and rows[0]["live_state"] == "terminated"
    assert rows[0]["cost_per_hour"] > 0
    r = gm.run("list", check=True)
    assert "demo" in r.stdout and "degraded" in r.stdout and "terminated" in r.stdout

    r = destroy(gm, "demo")
    assert r.returncode == 0, r.stderr
    assert leftovers(boto, "demo") == {}
    assert not os.path.exists(state_path(gm_home, "demo"))
    assert os.listdir(os.path.join(str(gm_home), "archive"))
    # A second destroy has nothing to work on and says so: bad input, exit 2.
    r = destroy(gm, "demo")
    assert r.returncode == 2 and "no deployment named 'demo'" in r.stderr


def test_json_output_is_one_object(gm, proxy, boto):
    r = deploy(gm, "jsonout", "--output", "json", "--on-demand", "--instance-type", "t3.large")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "running"
    assert doc["resources"]["instance"]["outputs"]["market"] == "on-demand"
    assert doc["resources"]["instance"]["outputs"]["instance_type"] == "t3.large"
    assert doc["cost"]["monthly"] > 0 and "source" in doc["cost"]
    assert doc["duration_s"] > 0
    assert r.stderr == ""  # nothing but the result with --output json
    assert destroy(gm, "jsonout").returncode == 0
    assert leftovers(boto, "jsonout") == {}


def test_failure_at_run_instances_rolls_back(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "RunInstances", "error": "InvalidAMIID.NotFound", "status": 400})
    r = deploy(gm, "rb")
    assert r.returncode == 1
    assert "InvalidAMIID.NotFound" in r.stderr
    assert "rolled back" in r.stderr
    assert leftovers(boto, "rb") == {}
    assert not os.path.exists(state_path(gm_home, "rb"))
    # The same name deploys cleanly afterwards.
    proxy.clear_rules()
    assert deploy(gm, "rb").returncode == 0
    assert destroy(gm, "rb").returncode == 0
    assert leftovers(boto, "rb") == {}


def test_no_rollback_keeps_and_records_everything(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "RunInstances", "error": "InvalidAMIID.NotFound", "status": 400})
    r = deploy(gm, "keep", "--no-rollback")
    assert r.returncode == 1
    st = load_state(gm_home, "keep")
    assert st["status"] == "failed" and "InvalidAMIID.NotFound" in st["status_reason"]
    left = leftovers(boto, "keep")
    for kind in ("vpcs", "subnets", "security_groups", "file_systems", "roles", "parameters"):
        assert kind in left, kind
    recorded = {n["id"] for n in st["nodes"] if n["id"]}
    assert set(left["vpcs"]) <= recorded and set(left["file_systems"]) <= recorded
    assert node(st, "instance")["status"] == "failed"
    # resume finishes the deployment without duplicates.
    proxy.clear_rules()
    r = gm.run("deploy", "--resume", "keep", env=FAST)
    assert r.returncode == 0, r.stderr
    left = leftovers(boto, "keep")
    assert len(left["vpcs"]) == 1 and len(left["instances"]) == 1 and len(left["file_systems"]) == 1
    assert destroy(gm, "keep").returncode == 0
    assert leftovers(boto, "keep") == {}


def test_same_name_deploy_is_locked(gm, proxy, boto, gm_home):
    proxy.add_rule({"latency_ms": 150})
    first = gm.popen("deploy", "--name", "locked", "--allow-cidr", CIDR, "--yes", env=FAST)
    lock = os.path.join(str(gm_home), "deployments", "locked.lock")
    deadline = time.time() + 30
    while not os.path.exists(lock) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    r = deploy(gm, "locked")
    assert r.returncode == 3, r.stderr
    assert "locked" in r.stderr and lock in r.stderr
    r = destroy(gm, "locked")
    assert r.returncode == 3
    assert first.wait(timeout=120) == 0, gm.output(first)
    proxy.clear_rules()
    assert destroy(gm, "locked").returncode == 0
    assert leftovers(boto, "locked") == {}


def test_ten_parallel_deploys(gm, proxy, boto):
    names = ["par%d" % i for i in range(10)]
    procs = [gm.popen("deploy", "--name", n, "--allow-cidr", CIDR, "--yes", env=FAST) for n in names]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0] * 10, [gm.output(p)[1][-500:] for p, c in zip(procs, codes) if c]
    vpcs = set()
    for n in names:
        left = leftovers(boto, n)
        assert len(left["vpcs"]) == 1 and len(left["instances"]) == 1
        vpcs.update(left["vpcs"])
    assert len(vpcs) == 10
    procs = [gm.popen("destroy", n, "--yes", env=FAST) for n in names]
    assert [p.wait(timeout=300) for p in procs] == [0] * 10
    for n in names:
        assert leftovers(boto, n) == {}


@pytest.mark.parametrize("args, message", [
    (["--name", "Bad_Name"], "deployment name"),
    (["--name", "x" * 40], "deployment name"),
    (["--name", "ok", "--allow-cidr", "10.0.0.1/33"], "invalid --allow-cidr"),
    (["--name", "ok", "--allow-cidr", "10.0.0.1/24"], "host bits"),
    (["--name", "ok", "--spot", "--on-demand"], "exclude each other"),
    (["--name", "ok", "--vpc-id", "vpc-12345678"], "go together"),
    (["--name", "ok", "--tier", "gpu", "--instance-type", "t3.large"], "GPU"),
    (["--name", "ok", "--tier", "nope"], "unknown --tier"),
    (["--name", "ok", "--instance-type", "NOT A TYPE"], "invalid --instance-type"),
    (["--resume", "ok", "--tier", "dev"], "saved configuration"),
])
def test_bad_input_fails_before_any_aws_call(gm, proxy, args, message):
    r = gm.run("deploy", *args, env=FAST)
    assert r.returncode == 2, r.stderr
    assert message.lower() in r.stderr.lower(), r.stderr
    assert proxy.records == []


def test_no_cidr_with_emulator_asks_for_allow_cidr(gm, proxy):
    r = gm.run("deploy", "--name", "nocidr", "--yes", env=FAST)
    assert r.returncode == 2
    assert "--allow-cidr" in r.stderr
    # No mutating call was made.
    assert all(not a.startswith(("Create", "Run", "Put")) for _, a in proxy.actions())


def test_cidr_detection_through_override(gm, proxy, boto, tmp_path):
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"198.51.100.23\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        env = dict(FAST, GEUSEMAKER_IP_ENDPOINT="http://127.0.0.1:%d/" % srv.server_port)
        r = gm.run("deploy", "--name", "detect", "--yes", env=env)
        assert r.returncode == 0, r.stderr
    finally:
        srv.shutdown()
    st = json.loads(gm.run("status", "detect", "--output", "json", env=FAST).stdout)
    sg_id = st["resources"]["sg"]["id"]
    sg = boto("ec2").describe_security_groups(GroupIds=[sg_id])["SecurityGroups"][0]
    cidrs = {r["CidrIp"] for p in sg["IpPermissions"] for r in p["IpRanges"]}
    assert cidrs == {"198.51.100.23/32"}
    assert destroy(gm, "detect").returncode == 0


def test_existing_name_is_refused(gm, proxy, boto):
    assert deploy(gm, "twice").returncode == 0
    r = deploy(gm, "twice")
    assert r.returncode == 1 and "already exists" in r.stderr and "--resume" in r.stderr
    assert destroy(gm, "twice").returncode == 0


def test_log_file_records_operations(gm, proxy, gm_home):
    assert deploy(gm, "logged").returncode == 0
    path = os.path.join(str(gm_home), "logs", "logged.log")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    events = [json.loads(l) for l in open(path)]
    kinds = {e["event"] for e in events}
    assert {"deploy_start", "step_start", "step_done", "api_call", "deploy_end"} <= kinds
    calls = [e for e in events if e["event"] == "api_call"]
    assert all({"service", "action", "attempt", "duration_ms", "result"} <= set(e) for e in calls)
    assert any(e["action"] == "RunInstances" and e.get("request_id") for e in calls)
    assert all(e["deployment"] == "logged" for e in events)
    assert destroy(gm, "logged").returncode == 0


IAM_PREFIX = {"ec2": "ec2", "sts": "sts", "iam": "iam", "ssm": "ssm", "pricing": "pricing",
              "elasticfilesystem": "elasticfilesystem", "elasticloadbalancing": "elasticloadbalancing",
              "tagging": "tag"}


def test_iam_policy_covers_every_call(gm, proxy, boto, gm_home):
    """docs/iam-policy.json allows every API call a deploy, status and destroy make."""
    import fnmatch
    here = os.path.dirname(os.path.abspath(__file__))
    policy = json.load(open(os.path.join(here, "..", "..", "docs", "iam-policy.json")))
    allowed = set()
    for stmt in policy["Statement"]:
        assert stmt["Effect"] == "Allow"
        acts = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        allowed.update(acts)
    for tier in ("dev", "automation"):
        assert deploy(gm, "policy", "--tier", tier).returncode == 0
        assert gm.run("status", "policy", env=FAST).returncode == 0
        # The record lost: adopt rebuilds it, cleanup lists what no record knows.
        os.unlink(state_path(gm_home, "policy"))
        assert gm.run("cleanup", "--dry-run", env=FAST).returncode == 0
        assert gm.run("adopt", "policy", env=FAST).returncode == 0
        assert destroy(gm, "policy").returncode == 0
    used = {(r["service"], r["action"]) for r in proxy.records}
    missing = ["%s:%s" % (IAM_PREFIX[s], a) for s, a in sorted(used)
               if not any(fnmatch.fnmatchcase("%s:%s" % (IAM_PREFIX[s], a), p) for p in allowed)]
    assert missing == []


# Actions AWS checks on the caller without the tool naming them: tags given
# at creation, the role handed to EC2, the network interfaces EFS makes.
IMPLIED = {"ec2:CreateTags", "iam:TagRole", "iam:TagInstanceProfile", "iam:PassRole",
           "elasticfilesystem:TagResource", "elasticloadbalancing:AddTags",
           "ssm:AddTagsToResource", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
           "ec2:DescribeNetworkInterfaces", "ec2:DescribeNetworkInterfaceAttribute"}


def test_iam_policy_allows_nothing_the_tool_never_calls():
    """Every action docs/iam-policy.json allows is one the sources call (as a
    quoted action name) or one AWS checks implicitly: least privilege."""
    import glob
    import re
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "..")
    policy = json.load(open(os.path.join(root, "docs", "iam-policy.json")))
    text = "".join(open(f).read() for f in glob.glob(os.path.join(root, "src", "*", "*.c")))
    called = set(re.findall(r'"([A-Z][A-Za-z]+)"', text))
    unused = []
    for stmt in policy["Statement"]:
        acts = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
        for a in acts:
            if a not in IMPLIED and a.split(":", 1)[1] not in called:
                unused.append(a)
    assert unused == []


def test_reused_resources_are_checked_and_never_deleted(gm, proxy, boto):
    ec2 = boto("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/20", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.16.0/20", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    same_az = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.32.0/20", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="mine", Description="mine", VpcId=vpc)["GroupId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    other_sg = ec2.create_security_group(GroupName="other", Description="o", VpcId=other_vpc)["GroupId"]
    fs = boto("efs").create_file_system(CreationToken="mine", Encrypted=True)["FileSystemId"]

    # Checked before anything is created.
    r = deploy(gm, "reuse", "--vpc-id", vpc, "--subnet-ids", "%s,%s" % (a, same_az))
    assert r.returncode == 2 and "different" in r.stderr
    r = deploy(gm, "reuse", "--vpc-id", other_vpc, "--subnet-ids", "%s,%s" % (a, b))
    assert r.returncode == 2 and "not in --vpc-id" in r.stderr
    r = deploy(gm, "reuse", "--vpc-id", vpc, "--subnet-ids", "%s,%s" % (a, b),
               "--security-group-id", other_sg)
    assert r.returncode == 2 and "is not in --vpc-id" in r.stderr
    assert not any(act.startswith(("Create", "Run", "Put")) for _, act in proxy.actions())

    r = deploy(gm, "reuse", "--vpc-id", vpc, "--subnet-ids", "%s,%s" % (a, b),
               "--security-group-id", sg, "--efs-id", fs, "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["resources"]["vpc"]["provenance"] == "reused"
    assert doc["resources"]["efs"]["id"] == fs
    inst = ec2.describe_instances(InstanceIds=[doc["resources"]["instance"]["id"]])["Reservations"][0]["Instances"][0]
    assert inst["SubnetId"] == a
    left = leftovers(boto, "reuse")
    assert "vpcs" not in left and "security_groups" not in left and "igws" not in left

    assert destroy(gm, "reuse").returncode == 0
    assert leftovers(boto, "reuse") == {}
    # Everything that was given is still there.
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]
    assert len(ec2.describe_subnets(SubnetIds=[a, b])["Subnets"]) == 2
    assert ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert boto("efs").describe_file_systems(FileSystemId=fs)["FileSystems"]


def test_keep_efs(gm, proxy, boto, gm_home):
    assert deploy(gm, "keepfs").returncode == 0
    fs = load_state(gm_home, "keepfs")
    fs_id = node(fs, "efs")["id"]
    r = destroy(gm, "keepfs", "--keep-efs")
    assert r.returncode == 0, r.stderr
    left = leftovers(boto, "keepfs")
    assert left.get("file_systems") == [fs_id] and len(left.get("mount_targets", [])) == 2
    assert set(left) <= {"file_systems", "mount_targets"}
    # The record stays, so a later destroy removes the file system too.
    assert destroy(gm, "keepfs").returncode == 0
    assert leftovers(boto, "keepfs") == {}


def test_key_pair_is_used_and_opens_ssh_to_allowed_ranges_only(gm, proxy, boto, gm_home):
    ec2 = boto("ec2")
    ec2.create_key_pair(KeyName="ops")
    r = deploy(gm, "withkey", "--key-name", "ops", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    inst = ec2.describe_instances(InstanceIds=[doc["resources"]["instance"]["id"]])["Reservations"][0]["Instances"][0]
    assert inst["KeyName"] == "ops"
    sg = ec2.describe_security_groups(GroupIds=[doc["resources"]["sg"]["id"]])["SecurityGroups"][0]
    ssh = [p for p in sg["IpPermissions"] if p.get("FromPort") == 22]
    assert len(ssh) == 1 and [r["CidrIp"] for r in ssh[0]["IpRanges"]] == [CIDR]
    assert destroy(gm, "withkey").returncode == 0


def _userdata_of(boto, instance_id):
    ec2 = boto("ec2")
    ud = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    raw = base64.b64decode(ud)
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def test_models_option_reaches_the_instance_and_the_record(gm, proxy, boto, gm_home):
    """deploy takes --models as plan and userdata do: the UserData pulls exactly
    those models, the record keeps them, '' pulls none."""
    r = deploy(gm, "models", "--models", "qwen2.5:0.5b, tinyllama")
    assert r.returncode == 0, r.stderr
    st = load_state(gm_home, "models")
    assert st["config"]["models"] == ["qwen2.5:0.5b", "tinyllama"]
    raw = _userdata_of(boto, node(st, "instance")["id"])
    assert b"qwen2.5:0.5b" in raw and b"tinyllama" in raw
    assert b"llama3.2" not in raw and b"nomic-embed-text" not in raw
    plan = gm.run("plan", "--name", "m2", "--models", "", "--allow-cidr", CIDR, "--output", "json")
    assert plan.returncode == 0, plan.stderr
    r = deploy(gm, "none", "--models", "")
    assert r.returncode == 0, r.stderr
    st = load_state(gm_home, "none")
    assert st["config"]["models"] == []
    assert b"qwen2.5" not in _userdata_of(boto, node(st, "instance")["id"])
    before = len(proxy.records)
    bad = gm.run("deploy", "--name", "m3", "--models", "bad name", "--allow-cidr", CIDR, "--yes")
    assert bad.returncode == 2 and "invalid Ollama model name 'bad name'" in bad.stderr
    assert len(proxy.records) == before
