"""The cloud is the truth: a create whose answer is lost is never made twice,
destroy deletes only what carries this deployment's id, and what the tags say
exists is found again (adopt, cleanup) when the record is gone."""
import json
import os
import random
import shutil

import pytest

from deployhelpers import CIDR, FAST, deploy, destroy, leftovers, load_state, node, state_path

DEV_CREATES = ["CreateVpc", "CreateInternetGateway", "CreateSubnet", "CreateRouteTable",
               "CreateSecurityGroup", "CreateFileSystem", "CreateMountTarget", "CreateRole",
               "CreateInstanceProfile", "PutParameter", "CreateLaunchTemplate",
               "CreateAutoScalingGroup", "AllocateAddress", "AttachInternetGateway",
               "AddRoleToInstanceProfile", "AuthorizeSecurityGroupIngress", "AssociateRouteTable"]
ALB_CREATES = ["CreateLoadBalancer", "CreateTargetGroup", "CreateListener",
               "AttachLoadBalancerTargetGroups"]


def counts(boto, name):
    """How many of each kind of resource deployment `name` has (live ones)."""
    return {k: len(v) for k, v in leftovers(boto, name).items()}


def expected_counts(tier):
    c = {"vpcs": 1, "subnets": 2, "igws": 1, "route_tables": 1, "security_groups": 1,
         "instances": 1, "file_systems": 1, "mount_targets": 2, "roles": 1,
         "instance_profiles": 1, "parameters": 6, "auto_scaling_groups": 1,
         "launch_templates": 1, "addresses": 1}
    if tier == "automation":
        # + the public URL the instance reads (the load balancer's name); the
        # load balancer is the address: no Elastic IP
        c.update({"security_groups": 2, "load_balancers": 1, "target_groups": 1,
                  "parameters": 7})
        del c["addresses"]
    return c


@pytest.mark.parametrize("tier, action", [("dev", a) for a in DEV_CREATES]
                         + [("automation", a) for a in ALB_CREATES])
def test_lost_answer_to_a_create_makes_exactly_one(gm, proxy, boto, tier, action):
    """The request reaches AWS, the client sees a reset: the deploy finds what it
    made, ends running with one of each resource, and destroy leaves nothing."""
    name = "lost-%s" % action.lower()[:20]
    proxy.add_rule({"action": action, "reset": True, "forward": True, "times": 1})
    r = deploy(gm, name, "--tier", tier)
    assert r.returncode == 0, r.stderr
    fired = [rec for rec in proxy.records if rec["action"] == action and rec["fault"]]
    assert fired and fired[0]["upstream_status"] in (200, 201), "the fault did not fire as meant"
    assert counts(boto, name) == expected_counts(tier)
    r = destroy(gm, name)
    assert r.returncode == 0, r.stderr
    assert leftovers(boto, name) == {}


def test_random_faults_make_no_duplicate_and_leave_nothing(gm, proxy, boto):
    """20 % of requests fail (500, 503, throttling, resets before and after
    AWS saw them, slow answers): ten deploys and destroys, no duplicate, and
    one destroy leaves nothing."""
    rnd = random.Random(20261130)
    faults = [{"status": 500}, {"status": 503, "error": "ServiceUnavailable"},
              {"status": 400, "error": "Throttling"}, {"reset": True},
              {"reset": True, "forward": True}, {"latency_ms": 300}]
    for i in range(10):
        name = "chaos%d" % i
        proxy.clear_rules()
        # Each rule fires on a random 20 % of the requests it sees.
        for f in faults:
            rule = dict(f)
            rule["probability"] = 0.2 / len(faults)
            rule["seed"] = rnd.randrange(1 << 30)
            proxy.add_rule(rule)
        r = deploy(gm, name, env={"AWS_MAX_ATTEMPTS": "5"}, timeout=300)
        proxy.clear_rules()
        if r.returncode == 0:
            assert counts(boto, name) == expected_counts("dev"), r.stderr
        r = destroy(gm, name, timeout=300)
        assert r.returncode == 0 or "no deployment named" in r.stderr, r.stderr
        assert leftovers(boto, name) == {}, "pair %d left resources" % i


def test_destroy_never_deletes_what_is_not_ours(gm, proxy, boto, gm_home):
    """A record edited to name a foreign Auto Scaling group, launch template,
    Elastic IP, security group and role: none of them is deleted, destroy
    exits 1, and the record is kept."""
    ec2 = boto("ec2")
    iam = boto("iam")
    asg = boto("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.0.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="precious", Description="p", VpcId=vpc)["GroupId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    lt = ec2.create_launch_template(LaunchTemplateName="precious-lt", LaunchTemplateData={
        "ImageId": ami, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(AutoScalingGroupName="precious-asg", MinSize=1, MaxSize=1,
                                  VPCZoneIdentifier=subnet,
                                  LaunchTemplate={"LaunchTemplateId": lt})
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    iam.create_role(RoleName="precious-role", AssumeRolePolicyDocument="{}")

    assert deploy(gm, "victim").returncode == 0
    path = state_path(gm_home, "victim")
    st = load_state(gm_home, "victim")
    real = {n: node(st, n)["id"] for n in ("asg", "launch_template", "eip", "sg", "role")}
    foreign = {"asg": "precious-asg", "launch_template": lt, "eip": eip, "sg": sg,
               "role": "precious-role"}
    for n, v in foreign.items():
        node(st, n)["id"] = v
    with open(path, "w") as f:
        json.dump(st, f)

    r = destroy(gm, "victim")
    assert r.returncode == 1, r.stderr
    assert "not this deployment's" in r.stderr
    assert os.path.exists(path), "the record must be kept"
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["precious-asg"])
    assert len(group["AutoScalingGroups"][0]["Instances"]) == 1
    assert ec2.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"]
    assert ec2.describe_addresses(AllocationIds=[eip])["Addresses"]
    assert ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert iam.get_role(RoleName="precious-role")["Role"]
    # What was the deployment's own is found by its tags and deleted anyway.
    left = leftovers(boto, "victim")
    assert real["asg"] not in left.get("auto_scaling_groups", [])
    assert real["launch_template"] not in left.get("launch_templates", [])
    assert real["eip"] not in left.get("addresses", [])
    assert left.get("instances", []) == []
    assert real["role"] not in left.get("roles", [])


@pytest.mark.parametrize("which, bad", [("sg", "sg-NOT-AN-ID"),
                                        ("launch_template", "lt-NOT-AN-ID"),
                                        ("eip", "eipalloc-NOT"),
                                        ("asg", "bad\u0001name")])
def test_malformed_id_in_the_record_is_an_error_not_gone(gm, proxy, boto, gm_home, which, bad):
    assert deploy(gm, "malformed").returncode == 0
    st = load_state(gm_home, "malformed")
    node(st, which)["id"] = bad
    with open(state_path(gm_home, "malformed"), "w") as f:
        json.dump(st, f)
    r = destroy(gm, "malformed")
    assert r.returncode == 1
    assert "malformed" in r.stderr
    assert os.path.exists(state_path(gm_home, "malformed"))
