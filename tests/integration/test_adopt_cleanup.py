"""The cloud is the truth when the record is not: one name per region, adopt
rebuilds a lost record, cleanup finds and deletes what no record knows."""
import json
import os
import shutil

from conftest import REGION
from deployhelpers import (CIDR, FAST, deploy, destroy, leftovers, load_state, node, state_path,
                           take_address)
from test_ownership import counts, expected_counts

RESOURCE_NODES = ["vpc", "igw", "subnet_a", "subnet_b", "route_table", "sg", "efs",
                  "mount_target_a", "mount_target_b", "role", "instance_profile", "secrets",
                  "eip", "launch_template", "asg"]
READS = ("Describe", "Get", "List")


def writes(records):
    """The requests that were not reads."""
    return [r["action"] for r in records if not r["action"].startswith(READS)]


def test_a_second_state_folder_cannot_take_a_used_name(gm, proxy, boto, tmp_path, gm_home):
    assert deploy(gm, "shared").returncode == 0
    before = counts(boto, "shared")
    other = tmp_path / "other-home"
    other.mkdir(mode=0o700)
    proxy.clear_records()
    r = deploy(gm, "shared", env={"GEUSEMAKER_HOME": str(other)})
    assert r.returncode == 2, r.stderr
    assert "taken" in r.stderr and "geusemaker adopt shared --id" in r.stderr, r.stderr
    assert "cleanup --name shared" in r.stderr
    assert writes(proxy.records) == [], "the refused deploy changed something"
    assert not (other / "deployments" / "shared.json").exists()
    # The first deployment is untouched and still its folder's.
    assert counts(boto, "shared") == before == expected_counts("dev")
    take_address(boto, gm_home, "shared")  # as the instance's boot does
    r = gm.run("status", "shared", "--output", "json", env=FAST)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "running"
    assert destroy(gm, "shared").returncode == 0
    assert leftovers(boto, "shared") == {}


def test_adopt_rebuilds_a_lost_record_then_resume_and_destroy_work(gm, proxy, boto, gm_home):
    assert deploy(gm, "lostrec").returncode == 0
    original = load_state(gm_home, "lostrec")
    os.unlink(state_path(gm_home, "lostrec"))
    r = gm.run("status", "lostrec", env=FAST)
    assert r.returncode != 0

    proxy.clear_records()
    r = gm.run("adopt", "lostrec", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    assert writes(proxy.records) == [], "adopt must only read"
    doc = json.loads(r.stdout)
    assert doc["status"] == "running", doc
    assert doc["adopted"]["deployment_id"] == original["deployment_id"]
    assert doc["adopted"]["config_found"] is True
    adopted = load_state(gm_home, "lostrec")
    assert adopted["deployment_id"] == original["deployment_id"]
    assert adopted["config"] == original["config"]
    for n in RESOURCE_NODES:
        assert node(adopted, n)["id"] == node(original, n)["id"], n
    for n, key in (("asg", "instance_id"), ("asg", "public_ip"), ("eip", "public_ip")):
        assert node(adopted, n)["outputs"][key] == node(original, n)["outputs"][key], (n, key)
    assert node(adopted, "subnet_a")["outputs"]["az"] == node(original, "subnet_a")["outputs"]["az"]

    # A record exists now: adopt refuses to overwrite it.
    r = gm.run("adopt", "lostrec", env=FAST)
    assert r.returncode == 2 and "exists" in r.stderr

    take_address(boto, gm_home, "lostrec")  # as the instance's boot does
    r = gm.run("status", "lostrec", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    live = json.loads(r.stdout)["live"]
    assert all(live[n]["exists"] for n in RESOURCE_NODES if n in live)

    r = gm.run("deploy", "--resume", "lostrec", env=FAST, timeout=180)
    assert r.returncode == 0, r.stderr
    assert counts(boto, "lostrec") == expected_counts("dev")

    assert destroy(gm, "lostrec").returncode == 0
    assert leftovers(boto, "lostrec") == {}


def test_adopt_a_load_balanced_deployment(gm, proxy, boto, gm_home):
    assert deploy(gm, "lostalb", "--tier", "automation").returncode == 0
    original = load_state(gm_home, "lostalb")
    os.unlink(state_path(gm_home, "lostalb"))
    r = gm.run("adopt", "lostalb", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["tier"] == "automation" and doc["status"] == "running", doc
    adopted = load_state(gm_home, "lostalb")
    assert node(adopted, "alb")["outputs"]["dns"] == node(original, "alb")["outputs"]["dns"]
    assert "load_balancer" in doc["endpoints"], doc["endpoints"]
    for n in ("alb", "target_group", "alb_sg"):
        assert node(adopted, n)["id"] == node(original, n)["id"], n
    # Listeners go with their load balancer: the node is found through it.
    assert node(adopted, "listener")["status"] == "created"
    assert destroy(gm, "lostalb").returncode == 0
    assert leftovers(boto, "lostalb") == {}


def test_adopt_refuses_what_does_not_exist_and_bad_ids(gm, proxy):
    proxy.clear_records()
    r = gm.run("adopt", "nosuchdeploy", env=FAST)
    assert r.returncode == 2 and "nothing to adopt" in r.stderr, r.stderr
    r = gm.run("adopt", "nosuchdeploy", "--id", "NOT-AN-ID", env=FAST)
    assert r.returncode == 2 and "not a deployment id" in r.stderr
    assert writes(proxy.records) == []


def test_cleanup_finds_a_killed_deploy_whose_folder_is_gone(gm, proxy, boto, gm_home):
    proxy.kill_after(1, gm.last_pid, action="CreateAutoScalingGroup")
    p = gm.popen("deploy", "--name", "orphan", "--allow-cidr", CIDR, "--yes", env=FAST)
    assert p.wait(timeout=120) == -9
    proxy.clear_rules()
    made = leftovers(boto, "orphan")
    assert made.get("vpcs") and made.get("roles") and made.get("file_systems"), made
    assert made.get("auto_scaling_groups") and made.get("launch_templates"), made
    assert made.get("addresses"), made
    shutil.rmtree(gm_home)
    os.mkdir(gm_home, 0o700)

    # Without a terminal, cleanup needs --yes or --dry-run, and asks nothing of AWS.
    proxy.clear_records()
    r = gm.run("cleanup", env=FAST)
    assert r.returncode == 2 and "--yes" in r.stderr
    assert proxy.records == []

    r = gm.run("cleanup", "--dry-run", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    assert writes(proxy.records) == [], "--dry-run must only read"
    doc = json.loads(r.stdout)
    found = [d for d in doc["deployments"] if d["name"] == "orphan"]
    assert len(found) == 1 and found[0]["region"] == REGION
    kinds = {res["kind"] for res in found[0]["resources"]}
    assert {"vpc", "efs", "iam_role", "instance_profile", "secrets", "asg", "launch_template",
            "eip"} <= kinds, kinds
    assert leftovers(boto, "orphan") == made, "--dry-run deleted something"

    r = gm.run("cleanup", "--dry-run", env=FAST)
    assert r.returncode == 0 and "orphan" in r.stdout and "/hour" in r.stdout

    r = gm.run("cleanup", "--yes", env=FAST, timeout=240)
    assert r.returncode == 0, r.stderr
    assert leftovers(boto, "orphan") == {}
    r = gm.run("cleanup", "--dry-run", env=FAST)
    assert r.returncode == 0 and "nothing to clean up" in r.stdout


def test_cleanup_keeps_recorded_deployments_and_what_is_not_ours(gm, proxy, boto):
    assert deploy(gm, "keepme").returncode == 0
    iam = boto("iam")
    # A role named like ours without our tags is someone else's.
    iam.create_role(RoleName="geusemaker-lookalike-abcdefghijkl-role", Path="/geusemaker/",
                    AssumeRolePolicyDocument="{}")
    # An IAM-only orphan (a deploy killed right after CreateRole).
    tags = [{"Key": "geusemaker:deployment", "Value": "iamonly"},
            {"Key": "geusemaker:deployment-id", "Value": "zyxwvutsrq98"},
            {"Key": "geusemaker:node", "Value": "role"},
            {"Key": "geusemaker:region", "Value": REGION}]
    iam.create_role(RoleName="geusemaker-iamonly-zyxwvutsrq98-role", Path="/geusemaker/",
                    AssumeRolePolicyDocument="{}", Tags=tags)
    r = gm.run("cleanup", "--yes", "--output", "json", env=FAST, timeout=240)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [d["name"] for d in doc["deployments"]] == ["iamonly"], doc
    assert doc["deployments"][0]["deleted"] is True
    roles = {x["RoleName"] for x in iam.list_roles()["Roles"]}
    assert "geusemaker-iamonly-zyxwvutsrq98-role" not in roles
    assert "geusemaker-lookalike-abcdefghijkl-role" in roles
    assert counts(boto, "keepme") == expected_counts("dev")
    assert destroy(gm, "keepme").returncode == 0


def test_cleanup_finds_what_the_tagging_api_does_not_list(gm, proxy, boto):
    """moto's tagging API lists no Auto Scaling group, launch template or
    Elastic IP (AWS's may): cleanup describes them by their tags, so a
    deployment of which only those are left is found and deleted."""
    ec2, asg = boto("ec2"), boto("autoscaling")
    ident = "abcdefghijkl"

    def tags(node, kind=None):
        t = [{"Key": "geusemaker:deployment", "Value": "onlyasg"},
             {"Key": "geusemaker:deployment-id", "Value": ident},
             {"Key": "geusemaker:node", "Value": node}, {"Key": "ManagedBy", "Value": "geusemaker"}]
        return [{"ResourceType": kind, "Tags": t}] if kind else t

    vpc = ec2.create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.6.0.0/24")["Subnet"]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    lt = ec2.create_launch_template(
        LaunchTemplateName="geusemaker-onlyasg-%s-lt" % ident,
        LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.large",
                            "TagSpecifications": tags("asg", "instance")},
        TagSpecifications=tags("launch_template", "launch-template"))["LaunchTemplate"]
    group = "geusemaker-onlyasg-%s-asg" % ident
    asg.create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=1, MaxSize=1, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"]},
        Tags=[dict(t, PropagateAtLaunch=True, ResourceId=group,
                   ResourceType="auto-scaling-group") for t in tags("asg")])
    ec2.allocate_address(Domain="vpc", TagSpecifications=tags("eip", "elastic-ip"))
    assert set(leftovers(boto, "onlyasg")) == {"auto_scaling_groups", "launch_templates",
                                               "addresses", "instances"}

    r = gm.run("cleanup", "--dry-run", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    found = [d for d in json.loads(r.stdout)["deployments"] if d["name"] == "onlyasg"]
    assert len(found) == 1 and found[0]["deployment_id"] == ident, found
    kinds = sorted(res["kind"] for res in found[0]["resources"])
    assert {"asg", "launch_template", "eip"} <= set(kinds), kinds
    assert found[0]["hourly_usd"] > 0  # the group's instance runs
    r = gm.run("cleanup", "--yes", "--name", "onlyasg", env=FAST, timeout=240)
    assert r.returncode == 0, r.stderr
    assert leftovers(boto, "onlyasg") == {}
