"""What real AWS refuses or enforces that the emulator does not (issue 11),
checked on the exact requests geusemaker sends (the fault proxy's records)
and on what moto stored (boto3):

- the root volume is sized from the image's block-device mapping
  (DescribeImages) on the image's own root device: a 75 GiB Deep Learning AMI
  snapshot gets a 75+ GiB volume, never the 60 GiB EC2 refuses;
- the image follows the instance type's architecture (arm64 Deep Learning AMI
  for g5g) and only GPU families its driver supports pass, before any call;
- --os picks Canonical's image and the matching UserData, end to end;
- a second encrypted gp3 volume (/dev/sdf) for the databases;
- IMDSv2 with a hop limit of 1; the group's SpotMaxPrice from --max-spot-price;
- the file system policy: TLS only, mounting only by the deployment's role,
  put after the role exists and retried while EFS does not see it yet.

moto serves the public Amazon Linux parameters only: the Canonical and Deep
Learning AMI parameters are answered by the fault proxy with an image that
exists in moto (AWS's names, an emulator's image), and a rewrite of the
DescribeImages answer gives an image the Deep Learning AMI's 75 GiB snapshot.
"""
import json

import pytest

from deployhelpers import (CIDR, FAST, deploy, destroy, leftovers, load_state, node,
                           template_data, template_userdata)

LT = "LaunchTemplateData."

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-%s"
DLAMI = "/aws/service/deeplearning/ami/%s/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
UBUNTU = "/aws/service/canonical/ubuntu/server/%s/stable/current/amd64/hvm/ebs-gp3/ami-id"
UBUNTU_AMI_NAME = "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-20170721"


def ssm_value(boto, name):
    return boto("ssm").get_parameter(Name=name)["Parameter"]["Value"]


def public_parameter(proxy, name, ami):
    """Answer GetParameter for an AWS public parameter moto does not serve."""
    body = {"Parameter": {"Name": name, "Type": "String", "Value": ami, "Version": 1,
                          "DataType": "text",
                          "ARN": "arn:aws:ssm:us-east-1::parameter" + name}}
    proxy.add_rule({"service": "ssm", "action": "GetParameter", "match": {"Name": name},
                    "status": 200, "body": json.dumps(body),
                    "content_type": "application/x-amz-json-1.1", "name": "public-parameter"})


def root_snapshot_of(proxy, gib):
    """The image's root snapshot as AWS would describe a larger image."""
    proxy.add_rule({"action": "DescribeImages", "name": "snapshot-size",
                    "rewrite": {"pattern": r"<volumeSize>\d+</volumeSize>",
                                "replace": "<volumeSize>%d</volumeSize>" % gib}})


def refuse_small_root(proxy, smallest):
    """What EC2 does with a root volume smaller than its snapshot (moto takes
    it; AWS refuses the group's launches): here the template itself is
    refused, so the size sent is what is checked."""
    for size in range(1, smallest):
        proxy.add_rule({"action": "CreateLaunchTemplate",
                        "match": {LT + "BlockDeviceMapping.1.Ebs.VolumeSize": str(size)},
                        "error": "InvalidBlockDeviceMapping", "status": 400,
                        "message": "Volume of size %dGB is smaller than snapshot, expect size >= %dGB"
                                   % (size, smallest)})


def launched(proxy):
    """What every instance is launched with: the launch template's data as
    sent (CreateLaunchTemplate, the LaunchTemplateData. prefix dropped)."""
    made = [r for r in proxy.find(action="CreateLaunchTemplate") if r["status"] == 200]
    assert len(made) == 1, [r["status"] for r in proxy.find(action="CreateLaunchTemplate")]
    return {k[len(LT):]: v for k, v in made[0]["params"].items() if k.startswith(LT)}


def group_request(proxy):
    """The CreateAutoScalingGroup request: the types and the market."""
    made = [r for r in proxy.find(action="CreateAutoScalingGroup") if r["status"] == 200]
    assert len(made) == 1
    return made[0]["params"]


DIST = "MixedInstancesPolicy.InstancesDistribution."
OVERRIDE = "MixedInstancesPolicy.LaunchTemplate.Overrides.member.%d.InstanceType"


def got_parameters(proxy):
    return [r["params"].get("Name") for r in proxy.find(action="GetParameter")]


def outputs(gm_home, name, n):
    return node(load_state(gm_home, name), n)["outputs"]


def test_launch_parameters_are_what_real_aws_needs(gm, proxy, boto, gm_home):
    ami = ssm_value(boto, AL2023 % "x86_64")
    r = deploy(gm, "rules", "--instance-type", "t3.large", "--max-spot-price", "0.5",
               "--output", "json")
    assert r.returncode == 0, r.stderr
    p = launched(proxy)
    assert p["ImageId"] == ami
    # The market is the group's: a template with spot options is refused with a
    # mixed instances policy.
    assert not any(k.startswith("InstanceMarketOptions") for k in p)
    g = group_request(proxy)
    assert g[DIST + "OnDemandPercentageAboveBaseCapacity"] == "0"
    assert g[OVERRIDE % 1] == "t3.large"
    # The spot price is capped at AWS, not only among the candidates.
    assert g[DIST + "SpotMaxPrice"] == "0.5"
    # IMDSv2 only, one hop: containers behind Docker's bridge get no credentials.
    assert p["MetadataOptions.HttpTokens"] == "required"
    assert p["MetadataOptions.HttpPutResponseHopLimit"] == "1"
    # The root volume on the image's root device, sized max(snapshot, need).
    root = {k.split(".", 2)[2]: v for k, v in p.items() if k.startswith("BlockDeviceMapping.1.")}
    data = {k.split(".", 2)[2]: v for k, v in p.items() if k.startswith("BlockDeviceMapping.2.")}
    assert root == {"DeviceName": "/dev/xvda", "Ebs.VolumeSize": "60", "Ebs.VolumeType": "gp3",
                    "Ebs.Encrypted": "true", "Ebs.DeleteOnTermination": "true"}
    assert data == {"DeviceName": "/dev/sdf", "Ebs.VolumeSize": "20", "Ebs.VolumeType": "gp3",
                    "Ebs.Encrypted": "true", "Ebs.DeleteOnTermination": "true"}
    assert not any(k.startswith("BlockDeviceMapping.3.") for k in p)
    # The image was read before the launch, by its id.
    images = proxy.find(action="DescribeImages")
    assert [i["params"].get("ImageId.1") for i in images] == [ami]
    assert images[0]["seq"] < proxy.find(action="CreateLaunchTemplate")[0]["seq"]

    doc = json.loads(r.stdout)
    img = doc["resources"]["ami"]["outputs"]
    assert img["architecture"] == "x86_64" and img["root_device"] == "/dev/xvda"
    assert img["parameter"] == AL2023 % "x86_64" and img["os"] == "al2023"
    out = doc["resources"]["launch_template"]["outputs"]
    assert out["root_volume_gb"] == "60" and out["data_volume_gb"] == "20"
    state = load_state(gm_home, "rules")
    assert state["config"]["os"] == "al2023" and state["config"]["data_volume_gb"] == 20
    # The data volume is in the estimate.
    assert state["cost"]["breakdown"]["ebs_data"]["monthly"] == pytest.approx(20 * 0.08)

    lt = template_data(boto, state)  # what AWS holds (moto's group reads only part of it)
    assert lt["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert lt["MetadataOptions"]["HttpTokens"] == "required"
    assert "/dev/sdf" in {b["DeviceName"] for b in lt["BlockDeviceMappings"]}
    assert destroy(gm, "rules").returncode == 0
    assert leftovers(boto, "rules") == {}


def test_root_volume_follows_a_larger_image_snapshot(gm, proxy, boto, gm_home):
    root_snapshot_of(proxy, 75)
    refuse_small_root(proxy, 75)
    r = deploy(gm, "bigroot", "--instance-type", "t3.large", "--on-demand",
               "--data-volume-gb", "50")
    assert r.returncode == 0, r.stderr
    p = launched(proxy)
    assert p["BlockDeviceMapping.1.Ebs.VolumeSize"] == "75"
    assert p["BlockDeviceMapping.2.Ebs.VolumeSize"] == "50"
    assert group_request(proxy)[DIST + "OnDemandPercentageAboveBaseCapacity"] == "100"
    assert "root volume 75 GiB" in r.stderr
    assert outputs(gm_home, "bigroot", "ami")["root_snapshot_gb"] == "75"
    state = load_state(gm_home, "bigroot")
    assert state["cost"]["breakdown"]["ebs_root"]["monthly"] == pytest.approx(75 * 0.08)
    assert state["cost"]["breakdown"]["ebs_data"]["monthly"] == pytest.approx(50 * 0.08)
    assert destroy(gm, "bigroot").returncode == 0


def test_gpu_tier_gets_the_deep_learning_ami_and_room_on_its_root(gm, proxy, boto, gm_home):
    public_parameter(proxy, DLAMI % "x86_64", ssm_value(boto, AL2023 % "x86_64"))
    root_snapshot_of(proxy, 75)
    refuse_small_root(proxy, 75)
    r = deploy(gm, "gpuroot", "--tier", "gpu", "--instance-type", "g5.xlarge", "--on-demand")
    assert r.returncode == 0, r.stderr
    assert DLAMI % "x86_64" in got_parameters(proxy)
    p = launched(proxy)
    assert p["InstanceType"] == "g5.xlarge" and group_request(proxy)[OVERRIDE % 1] == "g5.xlarge"
    assert p["BlockDeviceMapping.1.Ebs.VolumeSize"] == "100"  # the tier's need is over 75
    assert b"nvidia" in template_userdata(boto, load_state(gm_home, "gpuroot")).lower()
    assert destroy(gm, "gpuroot").returncode == 0
    assert leftovers(boto, "gpuroot") == {}


def test_arm64_gpu_type_gets_the_arm64_deep_learning_ami(gm, proxy, boto, gm_home):
    arm_ami = ssm_value(boto, AL2023 % "arm64")
    public_parameter(proxy, DLAMI % "arm64", arm_ami)
    r = deploy(gm, "armgpu", "--tier", "gpu", "--instance-type", "g5g.xlarge", "--on-demand")
    assert r.returncode == 0, r.stderr
    assert got_parameters(proxy) == [DLAMI % "arm64"]
    p = launched(proxy)
    assert p["ImageId"] == arm_ami and p["InstanceType"] == "g5g.xlarge"
    assert outputs(gm_home, "armgpu", "ami")["architecture"] == "arm64"
    assert destroy(gm, "armgpu").returncode == 0


def test_graviton_cpu_type_gets_the_arm64_image(gm, proxy, boto, gm_home):
    r = deploy(gm, "graviton", "--instance-type", "t4g.xlarge", "--on-demand")
    assert r.returncode == 0, r.stderr
    assert got_parameters(proxy) == [AL2023 % "arm64"]
    assert launched(proxy)["ImageId"] == ssm_value(boto, AL2023 % "arm64")
    assert destroy(gm, "graviton").returncode == 0


def test_an_image_of_another_architecture_is_refused_before_launch(gm, proxy, boto, gm_home):
    boto("ssm").put_parameter(Name="/test/arm-image", Type="String",
                              Value=ssm_value(boto, AL2023 % "arm64"))
    r = deploy(gm, "wrongarch", "--instance-type", "t3.large", "--on-demand",
               env={"GEUSEMAKER_AMI_PARAMETER": "/test/arm-image"})
    assert r.returncode == 2  # a setting that cannot work; what was made is rolled back
    assert "is for arm64" in r.stderr and "x86_64" in r.stderr
    assert proxy.count(action="CreateLaunchTemplate") == 0
    assert leftovers(boto, "wrongarch") == {}  # rolled back


def test_an_image_aws_does_not_show_is_refused_before_launch(gm, proxy, boto, gm_home):
    """A parameter naming an image that is deregistered or not shared with the
    account: DescribeImages answers with no image."""
    proxy.add_rule({"action": "DescribeImages", "name": "no-image",
                    "rewrite": {"pattern": r"(?s)<imagesSet>.*</imagesSet>",
                                "replace": "<imagesSet/>"}})
    r = deploy(gm, "noimage", "--instance-type", "t3.large", "--on-demand")
    assert r.returncode == 1
    assert "is not visible to this account" in r.stderr
    assert proxy.count(action="CreateLaunchTemplate") == 0
    assert leftovers(boto, "noimage") == {}


@pytest.mark.parametrize("release", ["22.04", "24.04"])
def test_os_ubuntu_end_to_end(gm, proxy, boto, gm_home, release):
    images = boto("ec2").describe_images(Filters=[{"Name": "name", "Values": [UBUNTU_AMI_NAME]}])
    ubuntu = images["Images"][0]
    assert ubuntu["RootDeviceName"] == "/dev/sda1"  # not Amazon Linux's /dev/xvda
    public_parameter(proxy, UBUNTU % release, ubuntu["ImageId"])
    name = "ubuntu" + release.replace(".", "")
    r = deploy(gm, name, "--os", "ubuntu-" + release, "--instance-type", "t3.large")
    assert r.returncode == 0, r.stderr
    assert got_parameters(proxy) == [UBUNTU % release]
    p = launched(proxy)
    assert p["ImageId"] == ubuntu["ImageId"]
    assert p["BlockDeviceMapping.1.DeviceName"] == "/dev/sda1"
    assert DIST + "SpotMaxPrice" not in group_request(proxy)  # no --max-spot-price
    state = load_state(gm_home, name)
    assert state["config"]["os"] == "ubuntu-" + release
    script = template_userdata(boto, state)
    assert ("Ubuntu %s" % release).encode() in script.split(b"\n", 2)[1]
    # The saved config carries the system: a resume keeps it.
    assert gm.run("deploy", "--resume", name, env=FAST).returncode == 0
    assert load_state(gm_home, name)["config"]["os"] == "ubuntu-" + release
    assert destroy(gm, name).returncode == 0
    assert leftovers(boto, name) == {}


def test_plan_names_the_image_of_the_os(gm, proxy):
    r = gm.run("plan", "--name", "planos", "--os", "ubuntu-22.04", "--allow-cidr", CIDR,
               "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    img = doc["machine_image"]
    assert img["os"] == "ubuntu-22.04" and img["architecture"] == "x86_64"
    assert img["ssm_parameter"] == UBUNTU % "22.04"
    assert img["data_volume_gb"] == 20 and img["root_volume_gb_min"] == 60
    assert doc["estimate"]["breakdown"]["ebs_data"]["monthly"] == pytest.approx(1.6)
    r = gm.run("plan", "--name", "planos", "--tier", "gpu", "--os", "ubuntu-24.04",
               "--allow-cidr", CIDR, env=FAST)
    assert r.returncode == 0, r.stderr
    assert "base-oss-nvidia-driver-gpu-ubuntu-24.04" in r.stdout


def test_file_system_policy_requires_tls_and_the_role(gm, proxy, boto, gm_home):
    r = deploy(gm, "fspolicy", "--instance-type", "t3.large", "--output", "json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["resources"]
    fs, role = res["efs"]["id"], res["role"]["id"]
    role_arn = boto("iam").get_role(RoleName=role)["Role"]["Arn"]
    policy = json.loads(boto("efs").describe_file_system_policy(FileSystemId=fs)["Policy"])
    deny, allow = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"].endswith(":file-system/" + fs)
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"AWS": role_arn}
    assert sorted(allow["Action"]) == ["elasticfilesystem:ClientMount",
                                       "elasticfilesystem:ClientRootAccess",
                                       "elasticfilesystem:ClientWrite"]
    assert allow["Condition"] == {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}
    # Put once the role exists, read back from IAM first.
    seq = {a: [x["seq"] for x in proxy.find(action=a)] for a in ("CreateRole", "GetRole",
                                                                 "PutFileSystemPolicy")}
    assert len(seq["PutFileSystemPolicy"]) == 1
    assert seq["CreateRole"][0] < seq["GetRole"][0] < seq["PutFileSystemPolicy"][0]
    # The role's own policy: this file system, root access included.
    inline = json.dumps(boto("iam").get_role_policy(RoleName=role,
                                                    PolicyName="geusemaker-stack")["PolicyDocument"])
    assert ":file-system/" + fs in inline and "elasticfilesystem:ClientRootAccess" in inline
    assert outputs(gm_home, "fspolicy", "efs_policy")["principal"] == role_arn
    assert destroy(gm, "fspolicy").returncode == 0
    assert leftovers(boto, "fspolicy") == {}


def test_file_system_policy_waits_for_iam_to_show_the_role(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "PutFileSystemPolicy", "times": 2, "status": 400,
                    "error": "InvalidPolicyException",
                    "message": "Policy contains invalid Principal block"})
    r = deploy(gm, "fswait", "--instance-type", "t3.large", env={"GEUSEMAKER_POLL_MS": "30"})
    assert r.returncode == 0, r.stderr
    assert proxy.count(action="PutFileSystemPolicy") == 3
    assert "EFS does not see the new instance role yet" in r.stderr
    assert destroy(gm, "fswait").returncode == 0


def test_a_file_system_geusemaker_did_not_make_keeps_its_policy(gm, proxy, boto, gm_home):
    efs = boto("efs")
    fs = efs.create_file_system(CreationToken="theirs", Encrypted=True)["FileSystemId"]
    r = deploy(gm, "theirfs", "--instance-type", "t3.large", "--efs-id", fs)
    assert r.returncode == 0, r.stderr
    assert proxy.count(action="PutFileSystemPolicy") == 0
    assert "its policy is left as it is" in r.stderr
    with pytest.raises(efs.exceptions.PolicyNotFound):
        efs.describe_file_system_policy(FileSystemId=fs)
    assert destroy(gm, "theirfs").returncode == 0
    assert efs.describe_file_systems(FileSystemId=fs)["FileSystems"]


def test_a_file_system_geusemaker_made_gets_the_new_deployments_role(gm, proxy, boto, gm_home):
    """One kept by destroy --keep-efs: its policy names a role that is gone, so the
    deployment that reuses it puts its own."""
    efs = boto("efs")
    fs = efs.create_file_system(CreationToken="kept", Encrypted=True, Tags=[
        {"Key": "geusemaker:deployment", "Value": "gone"}, {"Key": "ManagedBy", "Value": "geusemaker"},
        {"Key": "geusemaker:node", "Value": "efs"}])["FileSystemId"]
    efs.put_file_system_policy(FileSystemId=fs, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "elasticfilesystem:ClientMount",
                                                 "Principal": {"AWS": "arn:aws:iam::123456789012:role/gone"}}]}))
    r = deploy(gm, "keeptwo", "--instance-type", "t3.large", "--efs-id", fs, "--output", "json")
    assert r.returncode == 0, r.stderr
    role = json.loads(r.stdout)["resources"]["role"]["id"]
    policy = json.loads(efs.describe_file_system_policy(FileSystemId=fs)["Policy"])
    assert policy["Statement"][1]["Principal"]["AWS"] == boto("iam").get_role(RoleName=role)["Role"]["Arn"]
    assert destroy(gm, "keeptwo").returncode == 0
    assert efs.describe_file_systems(FileSystemId=fs)["FileSystems"]  # reused: kept
    efs.delete_file_system(FileSystemId=fs)


BAD = [
    (["--tier", "gpu", "--instance-type", "p3.2xlarge"], "older than the NVIDIA driver"),
    (["--tier", "gpu", "--instance-type", "g3s.xlarge"], "g4dn, g5"),
    (["--tier", "gpu", "--instance-types", "g5.xlarge,p3dn.24xlarge"], "p3dn"),
    (["--tier", "gpu", "--instance-type", "p6e-gb200.36xlarge"], "Capacity Blocks"),
    (["--instance-types", "t4g.xlarge,t3.xlarge"], "mix architectures"),
    (["--instance-type", "a1.large"], "does not support A1"),
    (["--os", "windows"], "unknown --os 'windows'"),
    (["--os", "ubuntu-20.04"], "expected al2023, ubuntu-22.04 or ubuntu-24.04"),
    (["--data-volume-gb", "0"], "invalid --data-volume-gb '0'"),
    (["--data-volume-gb", "020"], "leading zero"),
    (["--data-volume-gb", "16385"], "1 to 16384"),
    (["--data-volume-gb", "1.5"], "whole number"),
    (["--data-volume-gb", ""], "--data-volume-gb"),
]


@pytest.mark.parametrize("command", ["deploy", "plan"])
@pytest.mark.parametrize("args, message", BAD)
def test_refused_before_any_request(gm, proxy, command, args, message):
    extra = ["--yes"] if command == "deploy" else []
    r = gm.run(command, "--name", "refused", "--allow-cidr", CIDR, *extra, *args, env=FAST)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert proxy.records == []
