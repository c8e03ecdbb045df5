"""Helpers for deployment tests: running deploy/destroy fast against moto, and
finding everything a deployment left behind, independently with boto3."""
import json
import os

FAST = {"GEUSEMAKER_POLL_MS": "30", "GEUSEMAKER_RETRY_BASE_MS": "10"}
CIDR = "203.0.113.0/24"


def deploy(gm, name, *extra, env=None, timeout=180):
    e = dict(FAST)
    e.update(env or {})
    return gm.run("deploy", "--name", name, "--allow-cidr", CIDR, "--yes", *extra,
                  env=e, timeout=timeout)


def destroy(gm, name, *extra, env=None, timeout=180):
    e = dict(FAST)
    e.update(env or {})
    return gm.run("destroy", name, "--yes", *extra, env=e, timeout=timeout)


def _tag_filter(name):
    return [{"Name": "tag:geusemaker:deployment", "Values": [name]}]


def leftovers(boto, name):
    """Every resource of deployment `name` that still exists, by kind."""
    ec2 = boto("ec2")
    found = {}
    f = _tag_filter(name)
    found["vpcs"] = [v["VpcId"] for v in ec2.describe_vpcs(Filters=f)["Vpcs"]]
    found["subnets"] = [s["SubnetId"] for s in ec2.describe_subnets(Filters=f)["Subnets"]]
    found["igws"] = [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=f)["InternetGateways"]]
    found["route_tables"] = [r["RouteTableId"] for r in ec2.describe_route_tables(Filters=f)["RouteTables"]]
    found["security_groups"] = [g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]]
    found["instances"] = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=f)["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    efs = boto("efs")
    fss = [fs for fs in efs.describe_file_systems()["FileSystems"]
           if {"Key": "geusemaker:deployment", "Value": name} in fs.get("Tags", [])]
    found["file_systems"] = [fs["FileSystemId"] for fs in fss]
    found["mount_targets"] = [mt["MountTargetId"] for fs in fss
                              for mt in efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"]]
    iam = boto("iam")
    prefix = "geusemaker-%s-" % name
    found["roles"] = [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix)]
    found["instance_profiles"] = [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
                                  if p["InstanceProfileName"].startswith(prefix)]
    elb = boto("elbv2")
    found["load_balancers"] = [lb["LoadBalancerArn"] for lb in elb.describe_load_balancers()["LoadBalancers"]
                               if lb["LoadBalancerName"] == name + "-alb"]
    found["target_groups"] = [tg["TargetGroupArn"] for tg in elb.describe_target_groups()["TargetGroups"]
                              if tg["TargetGroupName"] == name + "-tg"]
    asg = boto("autoscaling")
    found["auto_scaling_groups"] = [g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups(
        Filters=[{"Name": "tag:geusemaker:deployment", "Values": [name]}])["AutoScalingGroups"]]
    found["launch_templates"] = [t["LaunchTemplateId"] for t in ec2.describe_launch_templates(
        Filters=f)["LaunchTemplates"]]
    found["addresses"] = [a["AllocationId"] for a in ec2.describe_addresses(Filters=f)["Addresses"]]
    ssm = boto("ssm")
    found["parameters"] = [p["Name"] for p in ssm.get_parameters_by_path(
        Path="/geusemaker/%s/" % name, Recursive=True)["Parameters"]]
    return {k: v for k, v in found.items() if v}


def state_path(gm_home, name):
    return os.path.join(str(gm_home), "deployments", name + ".json")


def load_state(gm_home, name):
    with open(state_path(gm_home, name)) as f:
        return json.load(f)


def node(state, name):
    for n in state["nodes"]:
        if n["name"] == name:
            return n
    return None


def recorded_instance(gm_home, name):
    """The instance the record names: the one its Auto Scaling group ran when
    last looked at."""
    return node(load_state(gm_home, name), "asg")["outputs"]["instance_id"]


def take_address(boto, gm_home, name):
    """What the instance's boot does on AWS (moto runs no UserData): it
    associates the deployment's Elastic IP with itself."""
    st = load_state(gm_home, name)
    boto("ec2").associate_address(AllocationId=node(st, "eip")["id"],
                                  InstanceId=instance_of(boto, st)["InstanceId"],
                                  AllowReassociation=True)


def group_of(boto, state):
    """The deployment's Auto Scaling group (boto3's view)."""
    groups = boto("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[node(state, "asg")["id"]])["AutoScalingGroups"]
    assert len(groups) == 1, groups
    return groups[0]


def instance_of(boto, state):
    """The group's one instance in service (boto3's EC2 view)."""
    live = [i["InstanceId"] for i in group_of(boto, state)["Instances"]
            if i["LifecycleState"] == "InService"]
    assert len(live) == 1, live
    return boto("ec2").describe_instances(InstanceIds=live)["Reservations"][0]["Instances"][0]


def template_data(boto, state):
    """The launch template's data (what AWS launches every instance of the group from)."""
    lt = node(state, "launch_template")["id"]
    return boto("ec2").describe_launch_template_versions(
        LaunchTemplateId=lt)["LaunchTemplateVersions"][0]["LaunchTemplateData"]


def template_userdata(boto, state):
    """The launch template's UserData script (bytes, gunzipped)."""
    import base64
    import gzip
    raw = base64.b64decode(template_data(boto, state)["UserData"])
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
