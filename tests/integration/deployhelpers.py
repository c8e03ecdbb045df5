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
