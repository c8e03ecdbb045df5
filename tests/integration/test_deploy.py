"""Tier 1 deploy, status, list and destroy against moto, checked with boto3."""
import json
import os
import stat
import subprocess
import threading
import time

import pytest

from deployhelpers import (CIDR, FAST, deploy, destroy, group_of, instance_of, leftovers,
                           load_state, node, state_path, template_data, template_userdata)


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

    # The instance is an Auto Scaling group's: min = max = desired = 1 across
    # both subnets, from the launch template, the ranking as a mixed instances
    # policy (spot: no on-demand above a base of 0), capacity rebalancing.
    group = group_of(boto, st)
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 1, 1)
    assert set(group["VPCZoneIdentifier"].split(",")) == {ids["subnet_a"], ids["subnet_b"]}
    assert group["CapacityRebalance"] is True
    policy = group["MixedInstancesPolicy"]
    spec = policy["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert spec["LaunchTemplateId"] == ids["launch_template"]
    overrides = [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]]
    assert overrides and len(set(overrides)) == len(overrides)
    assert set(overrides) <= {"t3.xlarge", "t3a.xlarge", "m6i.xlarge", "m5.xlarge", "m7i.xlarge"}
    dist = policy["InstancesDistribution"]
    assert dist["OnDemandBaseCapacity"] == 0 and dist["OnDemandPercentageAboveBaseCapacity"] == 0
    assert dist["SpotAllocationStrategy"] == "capacity-optimized-prioritized"
    gtags = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]}
    assert gtags["geusemaker:deployment"] == ("demo", True)
    assert gtags["geusemaker:deployment-id"] == (st["deployment_id"], True)
    assert gtags["geusemaker:node"] == ("asg", True)
    inst = instance_of(boto, st)
    assert inst["State"]["Name"] == "running"
    assert inst["SubnetId"] in (ids["subnet_a"], ids["subnet_b"])
    assert_standard_tags(tags_of(inst), "demo", "asg")
    assert tags_of(inst)["geusemaker:deployment-id"] == st["deployment_id"]
    out = node(st, "asg")["outputs"]
    assert out["instance_id"] == inst["InstanceId"] and out["group_market"] == "spot"
    assert out["overrides"].split(",") == overrides

    # The launch template: what AWS makes every instance from (moto's groups
    # read only part of it: its data is checked here).
    lt = template_data(boto, st)
    assert lt["ImageId"] == ids["ami"]
    assert lt["IamInstanceProfile"]["Name"] == ids["instance_profile"]
    assert lt["MetadataOptions"]["HttpTokens"] == "required"
    assert lt["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert "InstanceMarketOptions" not in lt  # the group's policy decides the market
    nic = lt["NetworkInterfaces"][0]
    assert nic["Groups"] == [ids["sg"]] and nic["AssociatePublicIpAddress"] is True
    volumes = {b["DeviceName"]: b["Ebs"] for b in lt["BlockDeviceMappings"]}
    root = node(st, "launch_template")["outputs"]["root_device"]
    assert volumes[root]["VolumeSize"] == 60 and volumes["/dev/sdf"]["VolumeSize"] == 20
    assert all(v["Encrypted"] and v["VolumeType"] == "gp3" for v in volumes.values())
    spec_tags = {t["ResourceType"]: {x["Key"]: x["Value"] for x in t["Tags"]}
                 for t in lt["TagSpecifications"]}
    assert spec_tags["instance"]["geusemaker:node"] == "asg"
    assert spec_tags["volume"]["geusemaker:deployment-id"] == st["deployment_id"]
    assert spec_tags["network-interface"]["geusemaker:deployment-id"] == st["deployment_id"]
    tmpl = ec2.describe_launch_templates(LaunchTemplateIds=[ids["launch_template"]])["LaunchTemplates"][0]
    assert_standard_tags(tags_of(tmpl), "demo", "launch_template")
    raw = template_userdata(boto, st)
    assert raw.startswith(b"#!/bin/bash")
    assert ids["efs"].encode() in raw

    # The Elastic IP keeps the address: tagged, named in the UserData (the
    # instance associates it at boot) and in the role's policy (that address
    # only, this deployment's instances only).
    addr = ec2.describe_addresses(AllocationIds=[ids["eip"]])["Addresses"][0]
    assert_standard_tags(tags_of(addr), "demo", "eip")
    assert ("GM_EIP_ALLOCATION='%s'" % ids["eip"]).encode() in raw
    assert b"associate-address" in raw and b"--allow-reassociation" in raw
    stmt = [s for s in inline["Statement"] if s.get("Sid") == "AssociateOwnAddress"][0]
    assert stmt["Action"] == "ec2:AssociateAddress"
    assert stmt["Resource"][0].endswith(":elastic-ip/" + ids["eip"])
    assert [r.split(":")[-1] for r in stmt["Resource"][1:]] == ["instance/*", "network-interface/*"]
    assert stmt["Condition"] == {"StringEquals": {
        "aws:ResourceTag/geusemaker:deployment-id": st["deployment_id"]}}
    assert node(st, "eip")["outputs"]["public_ip"] == addr["PublicIp"]

    ssm = boto("ssm")
    params = ssm.get_parameters_by_path(Path="/geusemaker/demo/", WithDecryption=False)["Parameters"]
    secure = [p for p in params if p["Type"] == "SecureString"]
    assert len(secure) == 5 and len(params) == 6

    # status: a live look at every resource, no drift. moto runs no UserData:
    # the instance's own association at boot is done here as it would do it.
    # Until then the deployment is degraded (exit 5): its address is not on it.
    r = gm.run("status", "demo", "--output", "json", env=FAST)
    assert r.returncode == 5, r.stderr
    doc = json.loads(r.stdout)
    assert doc["health"] == "degraded" and "eip not associated" in doc["health_reason"]
    assert doc["live"]["eip"]["drift"] == ["not associated with the group's instance %s"
                                           % inst["InstanceId"]]
    ec2.associate_address(AllocationId=ids["eip"], InstanceId=inst["InstanceId"],
                          AllowReassociation=True)
    r = gm.run("status", "demo", "--output", "json", env=FAST, check=True)
    doc = json.loads(r.stdout)
    assert doc["status"] == "running"
    assert doc["endpoints"]["n8n"] == "https://%s/" % addr["PublicIp"]
    for nname in ("vpc", "subnet_a", "sg", "efs", "launch_template", "asg", "eip", "role"):
        assert doc["live"][nname]["exists"] is True, nname
        assert doc["live"][nname]["drift"] == [], nname
    assert doc["live"]["asg"]["state"] == "in service"
    assert doc["live"]["asg"]["instance_id"] == inst["InstanceId"]
    assert doc["live"]["eip"]["state"] == "associated with %s" % inst["InstanceId"]
    # The group replaces an instance terminated behind the tool's back (moto:
    # on the next describe); status names the new one, and the address is
    # not on it until its boot takes it.
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    # Until then it is degraded (exit 5), and says why.
    r = gm.run("status", "demo", "--output", "json", env=FAST)
    assert r.returncode == 5, r.stderr
    doc = json.loads(r.stdout)
    new_id = doc["live"]["asg"]["instance_id"]
    assert new_id != inst["InstanceId"]
    assert doc["resources"]["asg"]["outputs"]["instance_id"] == new_id
    assert doc["live"]["eip"]["drift"]
    assert doc["health"] == "degraded" and "eip" in doc["health_reason"]
    r = gm.run("status", "demo", env=FAST)
    assert r.returncode == 5 and "DRIFT" in r.stdout and new_id in r.stdout

    r = gm.run("list", "--output", "json", check=True)
    rows = json.loads(r.stdout)
    assert [d["name"] for d in rows] == ["demo"]
    assert rows[0]["tier"] == "dev" and rows[0]["status"] == "running" and rows[0]["market"] == "spot"
    # list's quick look follows the group to its new instance (by the
    # deployment-id tag): running, so healthy there.
    assert rows[0]["health"] == "healthy" and rows[0]["live_state"] == "running"
    assert rows[0]["instance_id"] == new_id
    assert rows[0]["cost_per_hour"] > 0
    r = gm.run("list", check=True)
    assert "demo" in r.stdout and "running  running" in r.stdout

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
    assert doc["resources"]["asg"]["outputs"]["market"] == "on-demand"
    assert doc["resources"]["asg"]["outputs"]["instance_type"] == "t3.large"
    assert doc["resources"]["asg"]["outputs"]["group_market"] == "on-demand"
    assert doc["cost"]["monthly"] > 0 and "source" in doc["cost"]
    assert doc["duration_s"] > 0
    assert r.stderr == ""  # nothing but the result with --output json
    assert destroy(gm, "jsonout").returncode == 0
    assert leftovers(boto, "jsonout") == {}


# What AWS answers when the launch template names an image that is gone.
BAD_TEMPLATE = {"action": "CreateAutoScalingGroup", "error": "ValidationError", "status": 400,
                "message": "You must use a valid fully-formed launch template. The image id "
                           "'[ami-0123456789abcdef0]' does not exist"}


def test_failure_at_the_group_rolls_back(gm, proxy, boto, gm_home):
    proxy.add_rule(BAD_TEMPLATE)
    r = deploy(gm, "rb")
    assert r.returncode == 1
    assert "ValidationError" in r.stderr and "does not exist" in r.stderr
    assert "rolled back" in r.stderr
    assert leftovers(boto, "rb") == {}
    assert not os.path.exists(state_path(gm_home, "rb"))
    # The same name deploys cleanly afterwards.
    proxy.clear_rules()
    assert deploy(gm, "rb").returncode == 0
    assert destroy(gm, "rb").returncode == 0
    assert leftovers(boto, "rb") == {}


def test_no_rollback_keeps_and_records_everything(gm, proxy, boto, gm_home):
    proxy.add_rule(BAD_TEMPLATE)
    r = deploy(gm, "keep", "--no-rollback")
    assert r.returncode == 1
    st = load_state(gm_home, "keep")
    assert st["status"] == "failed" and "does not exist" in st["status_reason"]
    left = leftovers(boto, "keep")
    for kind in ("vpcs", "subnets", "security_groups", "file_systems", "roles", "parameters",
                 "launch_templates", "addresses"):
        assert kind in left, kind
    assert "auto_scaling_groups" not in left
    recorded = {n["id"] for n in st["nodes"] if n["id"]}
    assert set(left["vpcs"]) <= recorded and set(left["file_systems"]) <= recorded
    assert set(left["launch_templates"]) <= recorded and set(left["addresses"]) <= recorded
    assert node(st, "asg")["status"] == "failed"
    # resume finishes the deployment without duplicates.
    proxy.clear_rules()
    r = gm.run("deploy", "--resume", "keep", env=FAST)
    assert r.returncode == 0, r.stderr
    left = leftovers(boto, "keep")
    assert len(left["vpcs"]) == 1 and len(left["instances"]) == 1 and len(left["file_systems"]) == 1
    assert len(left["auto_scaling_groups"]) == 1 and len(left["launch_templates"]) == 1
    assert len(left["addresses"]) == 1
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
    assert any(e["action"] == "CreateAutoScalingGroup" and e.get("request_id") for e in calls)
    assert all(e["deployment"] == "logged" for e in events)
    assert destroy(gm, "logged").returncode == 0


IAM_PREFIX = {"ec2": "ec2", "sts": "sts", "iam": "iam", "ssm": "ssm", "pricing": "pricing",
              "elasticfilesystem": "elasticfilesystem", "elasticloadbalancing": "elasticloadbalancing",
              "tagging": "tag", "autoscaling": "autoscaling"}


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
        # dev: degraded (5) until the instance takes its address at boot (moto runs no UserData)
        assert gm.run("status", "policy", env=FAST).returncode == (5 if tier == "dev" else 0)
        # The day-2 commands: update (a new version, a replacement), stop, start.
        r = gm.run("update", "policy", "--instance-types", "m5.xlarge", "--yes", env=FAST)
        assert r.returncode == 0, r.stderr
        assert gm.run("stop", "policy", env=FAST).returncode == 0
        assert gm.run("start", "policy", env=FAST).returncode == 0
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
# at creation, the role handed to EC2, the network interfaces EFS makes; for
# the Auto Scaling group: launching from the template in the caller's name
# (ec2:RunInstances), its tags, and the service-linked role a fresh account
# gets with its first group.
IMPLIED = {"ec2:CreateTags", "iam:TagRole", "iam:TagInstanceProfile", "iam:PassRole",
           "elasticfilesystem:TagResource", "elasticloadbalancing:AddTags",
           "ssm:AddTagsToResource", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
           "ec2:DescribeNetworkInterfaces", "ec2:DescribeNetworkInterfaceAttribute",
           "ec2:RunInstances", "autoscaling:CreateOrUpdateTags", "iam:CreateServiceLinkedRole"}


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


def test_reused_resources_are_checked_and_never_deleted(gm, proxy, boto, gm_home):
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
    st = load_state(gm_home, "reuse")
    assert set(group_of(boto, st)["VPCZoneIdentifier"].split(",")) == {a, b}
    assert instance_of(boto, st)["SubnetId"] in (a, b)
    # A reused subnet may not map public addresses: the template asks for one.
    assert template_data(boto, st)["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is True
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
    assert template_data(boto, load_state(gm_home, "withkey"))["KeyName"] == "ops"
    sg = ec2.describe_security_groups(GroupIds=[doc["resources"]["sg"]["id"]])["SecurityGroups"][0]
    ssh = [p for p in sg["IpPermissions"] if p.get("FromPort") == 22]
    assert len(ssh) == 1 and [r["CidrIp"] for r in ssh[0]["IpRanges"]] == [CIDR]
    assert destroy(gm, "withkey").returncode == 0


def test_models_option_reaches_the_instance_and_the_record(gm, proxy, boto, gm_home):
    """deploy takes --models as plan and userdata do: the UserData pulls exactly
    those models, the record keeps them, '' pulls none."""
    r = deploy(gm, "models", "--models", "qwen2.5:0.5b, tinyllama")
    assert r.returncode == 0, r.stderr
    st = load_state(gm_home, "models")
    assert st["config"]["models"] == ["qwen2.5:0.5b", "tinyllama"]
    raw = template_userdata(boto, st)
    assert b"qwen2.5:0.5b" in raw and b"tinyllama" in raw
    assert b"llama3.2" not in raw and b"nomic-embed-text" not in raw
    plan = gm.run("plan", "--name", "m2", "--models", "", "--allow-cidr", CIDR, "--output", "json")
    assert plan.returncode == 0, plan.stderr
    r = deploy(gm, "none", "--models", "")
    assert r.returncode == 0, r.stderr
    st = load_state(gm_home, "none")
    assert st["config"]["models"] == []
    assert b"qwen2.5" not in template_userdata(boto, st)
    before = len(proxy.records)
    bad = gm.run("deploy", "--name", "m3", "--models", "bad name", "--allow-cidr", CIDR, "--yes")
    assert bad.returncode == 2 and "invalid Ollama model name 'bad name'" in bad.stderr
    assert len(proxy.records) == before


def test_destroy_waits_out_a_scaling_activity(gm, proxy, boto):
    """AWS refuses to delete a group while a scaling activity runs: destroy
    waits and deletes it (then the template and the address)."""
    assert deploy(gm, "busy").returncode == 0
    proxy.add_rule({"action": "DeleteAutoScalingGroup", "error": "ScalingActivityInProgress",
                    "status": 400, "times": 2,
                    "message": "You cannot delete an AutoScalingGroup while there are scaling "
                               "activities in progress for that group."})
    r = destroy(gm, "busy")
    assert r.returncode == 0, r.stderr
    assert proxy.count(action="DeleteAutoScalingGroup") >= 3
    assert leftovers(boto, "busy") == {}
