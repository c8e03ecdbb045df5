"""destroy at the round-trip limit: what AWS requires gone first and nothing
more (the group's instances before the subnets, the security group and the
gateway; mount targets before the file system; the role out of the profile
before either goes), one sweep that checks the record's ids beside the tag
listing, a second look only when the record was cut short, and an instance
of the deployment outside the group terminated too. The proxy's request
records give the order; boto3 says what is left."""
import json

from deployhelpers import deploy, destroy, leftovers, load_state, node, state_path


def first(recs, action):
    seqs = [r["seq"] for r in recs if r["action"] == action]
    assert seqs, "no %s was sent" % action
    return min(seqs)


def last(recs, action):
    seqs = [r["seq"] for r in recs if r["action"] == action]
    assert seqs, "no %s was sent" % action
    return max(seqs)


def ended(recs, action):
    """When the last request of action was answered (its record's end)."""
    ends = [r["end"] for r in recs if r["action"] == action and r["end"] is not None]
    assert ends, "no %s was answered" % action
    return max(ends)


def started(recs, action):
    return min(r["start"] for r in recs if r["action"] == action)


def test_settled_destroy_deletes_in_aws_order_and_looks_once(gm, proxy, boto):
    assert deploy(gm, "order").returncode == 0
    proxy.clear_records()
    r = destroy(gm, "order")
    assert r.returncode == 0, r.stderr
    recs = proxy.records
    acts = [x["action"] for x in recs]
    # One sweep: the listing once; each recorded resource's owner asked once,
    # beside it (not again before its delete).
    assert acts.count("GetResources") == 1
    assert acts.count("DescribeVpcs") == 1
    assert acts.count("DescribeSecurityGroups") == 1
    assert acts.count("DescribeSubnets") == 2
    # What holds network interfaces goes first: the group's instances are
    # gone before the subnets, the group and the gateway's VPC are touched.
    for action in ("DeleteSubnet", "DeleteSecurityGroup", "DetachInternetGateway",
                   "ReleaseAddress"):
        assert started(recs, action) >= ended(recs, "DeleteAutoScalingGroup"), action
    # The mount targets do not wait for the instance; the file system waits
    # for them; the VPC goes last.
    assert started(recs, "DeleteMountTarget") < ended(recs, "DeleteAutoScalingGroup") + 0.05
    assert started(recs, "DeleteFileSystem") >= ended(recs, "DeleteMountTarget")
    for action in ("DeleteSubnet", "DeleteSecurityGroup", "DeleteInternetGateway",
                   "DeleteRouteTable"):
        assert started(recs, "DeleteVpc") >= ended(recs, action), action
    assert started(recs, "DeleteInstanceProfile") >= ended(recs, "RemoveRoleFromInstanceProfile")
    assert started(recs, "DeleteRole") >= ended(recs, "RemoveRoleFromInstanceProfile")
    assert started(recs, "DeleteRole") >= ended(recs, "DeleteRolePolicy")
    # The two associations of the route table are dropped at once.
    dis = [x for x in recs if x["action"] == "DisassociateRouteTable"]
    assert len(dis) == 2 and dis[1]["start"] < dis[0]["end"]
    assert leftovers(boto, "order") == {}


def _group_instance_tags(boto, state):
    iid = node(state, "asg")["outputs"]["instance_id"]
    inst = boto("ec2").describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return inst, [t for t in inst["Tags"] if not t["Key"].startswith("aws:")]


def test_an_instance_outside_the_group_is_terminated(gm, proxy, boto, gm_home):
    """An instance carrying the group's tags that the group does not hold
    (launched by hand, or let go of): the group's deletion terminates it and
    waits for it before the network goes."""
    assert deploy(gm, "stray").returncode == 0
    st = load_state(gm_home, "stray")
    inst, tags = _group_instance_tags(boto, st)
    ec2 = boto("ec2")
    stray = ec2.run_instances(ImageId=inst["ImageId"], InstanceType="t3.micro", MinCount=1,
                              MaxCount=1, SubnetId=node(st, "subnet_a")["id"],
                              TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    stray_id = stray["Instances"][0]["InstanceId"]
    proxy.clear_records()
    r = destroy(gm, "stray")
    assert r.returncode == 0, r.stderr
    state = ec2.describe_instances(InstanceIds=[stray_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "terminated"
    recs = proxy.records
    terminate = [x for x in recs if x["action"] == "TerminateInstances"]
    assert terminate, "the stray was not terminated by destroy"
    assert started(recs, "DeleteSubnet") >= ended(recs, "TerminateInstances")
    assert leftovers(boto, "stray") == {}


def test_a_record_cut_short_is_swept_again(gm, proxy, boto, gm_home):
    """A node the journal says was being created: a create may still land
    after the first look, so destroy looks again after its deletes."""
    assert deploy(gm, "cut").returncode == 0
    path = state_path(gm_home, "cut")
    st = load_state(gm_home, "cut")
    node(st, "sg_rules")["status"] = "creating"
    with open(path, "w") as f:
        json.dump(st, f)
    proxy.clear_records()
    r = destroy(gm, "cut")
    assert r.returncode == 0, r.stderr
    assert [x["action"] for x in proxy.records].count("GetResources") >= 2
    assert leftovers(boto, "cut") == {}
