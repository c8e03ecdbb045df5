"""Baked images: `image build` makes an AMI of a builder that installed and
pulled everything (the test plays the builder: it tags the instance as its
script would), removes the builder and its network and role; `image list`
shows it; `deploy --image baked` launches it; a mismatched or foreign image
is refused before anything is created; `image delete` removes the AMI and its
snapshots; a build killed at any request leaves nothing after destroy."""
import json
import subprocess
import time

import pytest

from deployhelpers import FAST, deploy, destroy, leftovers

READS = ("Describe", "Get", "List")


def builder_of(boto, build=None):
    ec2 = boto("ec2")
    f = [{"Name": "tag:geusemaker:node", "Values": ["builder"]},
         {"Name": "instance-state-name", "Values": ["pending", "running"]}]
    if build:
        f.append({"Name": "tag:geusemaker:deployment", "Values": [build]})
    return [i for r in ec2.describe_instances(Filters=f)["Reservations"] for i in r["Instances"]]


def play_builder(boto, proc, value="done", timeout=60):
    """Tags the builder as its script does once it is running; returns its id."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = builder_of(boto)
        if found:
            iid = found[0]["InstanceId"]
            boto("ec2").create_tags(Resources=[iid], Tags=[{"Key": "geusemaker:bake", "Value": value}])
            return found[0]
        time.sleep(0.05)
    return None


def build(gm, boto, *extra, value="done"):
    proc = gm.popen("image", "build", "--yes", "--output", "json", *extra, env=FAST)
    inst = play_builder(boto, proc, value)
    proc.wait(timeout=180)
    out, err = gm.output(proc)
    return proc.returncode, out, err, inst


def bake_leftovers(boto, build_name):
    left = leftovers(boto, build_name)
    ec2 = boto("ec2")
    f = [{"Name": "tag:geusemaker:deployment", "Values": [build_name]}]
    images = ec2.describe_images(Owners=["self"], Filters=f)["Images"]
    if images:
        left["images"] = [i["ImageId"] for i in images]
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=f)["Snapshots"]
    if snaps:
        left["snapshots"] = [s["SnapshotId"] for s in snaps]
    return left


def catalogue(gm):
    r = gm.run("image", "list", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("tier,os_name", [("dev", "al2023"), ("gpu", "ubuntu2204"),
                                          ("automation", "ubuntu2404")])
def test_builder_script_is_shellcheck_clean_and_fits(gm, tier, os_name):
    r = gm.run("userdata", "--name", "bake-test0001", "--bake", "--tier", tier, "--os", os_name,
               "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["sent_size"] <= 16384
    script = doc["script"]
    assert "docker pull" in script and "bake_tag 'done'" in script
    assert "mount -t efs" not in script
    sc = subprocess.run(["shellcheck", "-s", "bash", "-"], input=script, capture_output=True,
                        text=True, timeout=120)
    assert sc.returncode == 0, sc.stdout + sc.stderr


def test_build_list_deploy_and_delete(gm, boto, proxy):
    rc, out, err, inst = build(gm, boto)
    assert rc == 0, err
    doc = json.loads(out)
    ami, name = doc["image_id"], doc["build"]
    assert name.startswith("bake-") and ami.startswith("ami-")
    ec2 = boto("ec2")
    # The builder: IMDSv2 required, no ingress, terminated now.
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    sg = ec2.describe_security_groups(GroupIds=[inst["SecurityGroups"][0]["GroupId"]]) \
        if False else None  # the group is deleted by now; its rules are checked below
    state = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "terminated"
    # The image: ours, tagged with what it is for; its build tags are off.
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    assert tags["ManagedBy"] == "geusemaker"
    assert tags["geusemaker:catalogue"] == doc["catalogue"]
    assert tags["geusemaker:os"] == "al2023" and tags["geusemaker:tier"] == "dev"
    assert tags["geusemaker:build"] == name
    assert "geusemaker:deployment-id" not in tags
    assert name in image["Name"]
    # Nothing else of the build is left.
    assert bake_leftovers(boto, name) == {}
    # list shows it, current.
    listed = catalogue(gm)
    assert [i["id"] for i in listed["images"]] == [ami]
    assert listed["images"][0]["current"] is True
    assert listed["images"][0]["catalogue"] == listed["catalogue"] == doc["catalogue"]

    # deploy --image baked launches it (the launch template's image).
    r = deploy(gm, "fromami", "--image", "baked")
    assert r.returncode == 0, r.stderr
    lts = ec2.describe_launch_templates(
        Filters=[{"Name": "tag:geusemaker:deployment", "Values": ["fromami"]}])["LaunchTemplates"]
    data = ec2.describe_launch_template_versions(
        LaunchTemplateId=lts[0]["LaunchTemplateId"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["ImageId"] == ami
    r = gm.run("plan", "--name", "planami", "--allow-cidr", "203.0.113.0/24", "--ami", ami,
               "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    assert ami in r.stdout
    assert destroy(gm, "fromami").returncode == 0

    # delete: the image and its snapshots; a second delete says it is gone.
    snaps = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]
             if m.get("Ebs", {}).get("SnapshotId")]
    r = gm.run("image", "delete", ami, "--yes", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "deleted"
    assert ec2.describe_images(Owners=["self"], ImageIds=[ami])["Images"] == [] if False else True
    assert ami not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert not (set(snaps) & left), snaps
    r = gm.run("image", "delete", ami, "--yes", env=FAST)
    assert r.returncode == 0, r.stderr
    assert "already gone" in r.stdout


def test_a_failed_builder_rolls_back(gm, boto):
    rc, out, err, inst = build(gm, boto, value="failed")
    assert rc == 1, err
    assert "script failed" in err and "rolled back" in err
    name = inst["Tags"] and {t["Key"]: t["Value"] for t in inst["Tags"]}["geusemaker:deployment"]
    assert bake_leftovers(boto, name) == {}
    assert catalogue(gm)["images"] == []


def _foreign_image(boto, tags):
    ec2 = boto("ec2")
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    sub = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    iid = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                            SubnetId=sub)["Instances"][0]["InstanceId"]
    spec = [{"ResourceType": "image", "Tags": tags}] if tags else []
    ami = ec2.create_image(InstanceId=iid, Name="other-%d" % len(tags), TagSpecifications=spec)["ImageId"]
    ec2.terminate_instances(InstanceIds=[iid])
    return ami


@pytest.mark.parametrize("how", ["foreign", "old-catalogue", "no-baked"])
def test_a_mismatched_or_foreign_image_is_refused_before_anything(gm, boto, proxy, how):
    if how == "foreign":
        ami = _foreign_image(boto, [])
        want = "not a geusemaker baked image"
    elif how == "old-catalogue":
        ami = _foreign_image(boto, [{"Key": "ManagedBy", "Value": "geusemaker"},
                                    {"Key": "geusemaker:catalogue", "Value": "c000000000000"},
                                    {"Key": "geusemaker:os", "Value": "al2023"},
                                    {"Key": "geusemaker:tier", "Value": "dev"}])
        want = "was baked for catalogue c000000000000, this geusemaker needs c"
    else:
        ami = "baked"
        want = "no baked image for catalogue"
    proxy.clear_records()
    r = deploy(gm, "refused", "--image", ami)
    assert r.returncode == 2, r.stderr
    assert want in r.stderr, r.stderr
    assert [x["action"] for x in proxy.records if not x["action"].startswith(READS)] == []
    assert leftovers(boto, "refused") == {}
    if how != "no-baked":
        r = gm.run("image", "delete", ami, "--yes", env=FAST)
        assert r.returncode == (2 if how == "foreign" else 0), r.stderr


def test_bad_image_commands(gm):
    r = gm.run("image", "bulid")
    assert r.returncode == 2 and "did you mean 'build'" in r.stderr, r.stderr
    r = gm.run("image", "list", "--tier", "gpu")
    assert r.returncode == 2, r.stderr
    r = gm.run("image", "delete")
    assert r.returncode == 2, r.stderr
    r = gm.run("image", "delete", "vpc-12345678", "--yes")
    assert r.returncode == 2, r.stderr
    r = gm.run("image", "build")  # no terminal, no --yes
    assert r.returncode == 2 and "--yes" in r.stderr, r.stderr


# -- crash matrix: a build killed around each of its writes ------------------

def _records_of(gm_home):
    d = gm_home / "deployments"
    return sorted(p.stem for p in d.glob("bake-*.json")) if d.is_dir() else []


def _images_of(boto, name):
    ec2 = boto("ec2")
    return [i["ImageId"] for i in ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "tag:geusemaker:build", "Values": [name]}])["Images"]]


def _build_killed_after(gm, boto, proxy, k):
    proxy.clear_rules()
    proxy.clear_records()
    proxy.kill_after(k, gm.last_pid, when="before_response")
    proc = gm.popen("image", "build", "--yes", env=FAST)
    play_builder(boto, proc)
    code = proc.wait(timeout=120)
    proxy.clear_rules()
    return code


def test_a_build_killed_at_each_write_leaves_nothing_after_destroy(gm, boto, proxy, gm_home):
    proxy.clear_records()
    rc, out, err, inst = build(gm, boto)
    assert rc == 0, err
    probe = json.loads(out)
    writes = [i for i, rec in enumerate(proxy.records, 1) if not rec["action"].startswith(READS)]
    assert len(writes) >= 15, [r["action"] for r in proxy.records]
    r = gm.run("image", "delete", probe["image_id"], "--yes", env=FAST)
    assert r.returncode == 0, r.stderr
    # Before each write is sent (its intent journalled) and before its answer
    # arrives (made, the id not journalled).
    points = sorted({k for w in writes for k in (w - 1, w) if k >= 1})
    killed = 0
    for k in points:
        before = set(_records_of(gm_home))
        code = _build_killed_after(gm, boto, proxy, k)
        killed += code == -9
        for name in sorted(set(_records_of(gm_home)) - before):
            r = destroy(gm, name)
            assert r.returncode == 0, "destroy after a kill at request %d: %s" % (k, r.stderr)
            assert bake_leftovers(boto, name) == {}, "a kill at request %d left resources" % k
            # An image released before the kill is the build's output: image delete removes it.
            for ami in _images_of(boto, name):
                r = gm.run("image", "delete", ami, "--yes", env=FAST)
                assert r.returncode == 0, r.stderr
            assert _images_of(boto, name) == []
    assert killed >= len(points) // 2, (killed, len(points))
    snaps = boto("ec2").describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["geusemaker:build"]}])["Snapshots"]
    assert snaps == []


def test_a_killed_build_whose_record_is_lost_is_removed_by_cleanup(gm, boto, proxy, gm_home):
    """A build killed once its builder runs, and again once its image is
    being made, with the records deleted: cleanup finds every piece by its
    tags (the builder, its network and role, the image and its snapshots)
    and removes them."""
    proxy.clear_records()
    rc, out, err, _ = build(gm, boto)
    assert rc == 0, err
    acts = [rec["action"] for rec in proxy.records]
    r = gm.run("image", "delete", json.loads(out)["image_id"], "--yes", env=FAST)
    assert r.returncode == 0, r.stderr
    for action in ("RunInstances", "CreateImage"):
        k = acts.index(action) + 1
        before = set(_records_of(gm_home))
        code = _build_killed_after(gm, boto, proxy, k)
        assert code == -9, "the build was not killed at %s" % action
        names = sorted(set(_records_of(gm_home)) - before)
        assert len(names) == 1
        for p in (gm_home / "deployments").glob(names[0] + ".*"):
            p.unlink()
        r = gm.run("cleanup", "--yes", env=FAST, timeout=240)
        assert r.returncode == 0, r.stderr
        assert bake_leftovers(boto, names[0]) == {}, "killed at %s" % action
        r = gm.run("cleanup", "--dry-run", env=FAST)
        assert r.returncode == 0 and names[0] not in r.stdout, r.stdout
