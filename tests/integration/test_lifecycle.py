"""geusemaker stop and start: the Auto Scaling group's capacity to 0 (the
instance terminated, the file system, the address and the load balancer
kept, what they still cost printed) and back to 1 (an instance in service
again). boto3 checks what the group and EC2 say."""
import json

from deployhelpers import (FAST, deploy, destroy, group_of, leftovers, load_state, node,
                           take_address)


def live_instances(boto, gm_home, name):
    """The deployment's instances that are not terminated (EC2's view)."""
    did = load_state(gm_home, name)["deployment_id"]
    res = boto("ec2").describe_instances(Filters=[
        {"Name": "tag:geusemaker:deployment-id", "Values": [did]},
        {"Name": "instance-state-name",
         "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]}])
    return [i for r in res["Reservations"] for i in r["Instances"]]


def test_stop_then_start(gm, proxy, boto, gm_home):
    assert deploy(gm, "pw").returncode == 0
    st = load_state(gm_home, "pw")
    first = node(st, "asg")["outputs"]["instance_id"]
    eip = node(st, "eip")["id"]
    efs = node(st, "efs")["id"]

    r = gm.run("stop", "pw", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "stopped" and doc["instance_id"] is None
    running_monthly = load_state(gm_home, "pw")["cost"]["monthly"]
    # The file system, the idle address: a few dollars, far less than running.
    assert 0 < doc["stopped_cost_monthly"] < running_monthly / 2
    group = group_of(boto, load_state(gm_home, "pw"))
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 1, 0)
    assert group["Instances"] == []
    assert live_instances(boto, gm_home, "pw") == []
    # What stays: the file system and the address.
    assert boto("efs").describe_file_systems(FileSystemId=efs)["FileSystems"]
    assert boto("ec2").describe_addresses(AllocationIds=[eip])["Addresses"]

    # status says so plainly and exits 0; list too.
    r = gm.run("status", "pw", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stdout
    doc = json.loads(r.stdout)
    assert doc["status"] == "stopped" and doc["health"] == "stopped"
    assert "geusemaker start pw" in doc["health_reason"]
    r = gm.run("list", "--output", "json", env=FAST)
    row = json.loads(r.stdout)[0]
    assert row["status"] == "stopped" and row["health"] == "stopped"
    # Stopping again is harmless; logs and connect say there is no instance.
    assert gm.run("stop", "pw", env=FAST).returncode == 0
    r = gm.run("logs", "pw", env=FAST)
    assert r.returncode == 1 and "no instance" in r.stderr

    r = gm.run("start", "pw", env=FAST)
    assert r.returncode == 0, r.stderr
    assert "Started 'pw'" in r.stdout
    st = load_state(gm_home, "pw")
    assert st["status"] == "running"
    group = group_of(boto, st)
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 1, 1)
    inservice = [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"]
    assert len(inservice) == 1 and inservice[0] != first
    assert node(st, "asg")["outputs"]["instance_id"] == inservice[0]
    assert [i["InstanceId"] for i in live_instances(boto, gm_home, "pw")] == inservice
    take_address(boto, gm_home, "pw")
    r = gm.run("status", "pw", "--output", "json", env=FAST)
    assert r.returncode == 0 and json.loads(r.stdout)["health"] == "healthy"

    # Stopped, then destroyed: nothing is left.
    assert gm.run("stop", "pw", env=FAST).returncode == 0
    assert destroy(gm, "pw").returncode == 0
    assert leftovers(boto, "pw") == {}


def test_stop_text_names_what_stays_and_its_cost(gm, proxy, boto, gm_home):
    assert deploy(gm, "pwt", "--tier", "automation").returncode == 0
    r = gm.run("stop", "pwt", env=FAST)
    assert r.returncode == 0, r.stderr
    assert "the file system and the load balancer stay" in r.stdout, r.stdout
    assert "still costs about $" in r.stdout and "geusemaker start pwt" in r.stdout
    # The target group stays attached: the next instance registers itself.
    st = load_state(gm_home, "pwt")
    tg = node(st, "target_group")["id"]
    assert group_of(boto, st)["TargetGroupARNs"] == [tg]
    assert gm.run("start", "pwt", env=FAST).returncode == 0
    new = node(load_state(gm_home, "pwt"), "asg")["outputs"]["instance_id"]
    health = boto("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    assert new in [h["Target"]["Id"] for h in health]


def test_stop_and_start_refuse_what_they_cannot_do(gm, proxy, gm_home):
    r = gm.run("stop", "nosuch", env=FAST)
    assert r.returncode == 2 and "nosuch" in r.stderr
    proxy.add_rule({"action": "CreateLaunchTemplate", "error": "InvalidAMIID.NotFound",
                    "status": 400})
    assert deploy(gm, "half", "--no-rollback").returncode == 1
    proxy.clear_rules()
    proxy.clear_records()
    for verb in ("stop", "start"):
        r = gm.run(verb, "half", env=FAST)
        assert r.returncode == 2, r.stderr
        assert "the record says failed" in r.stderr and "deploy --resume" in r.stderr
    assert [x for x in proxy.records if not x["action"].startswith("Describe")] == []


def test_stop_is_interrupted_cleanly_and_can_be_run_again(gm, proxy, gm_home):
    assert deploy(gm, "pwi").returncode == 0
    # The instance takes its time to terminate: SIGINT while stop waits.
    proxy.add_rule({"action": "DescribeInstances", "rewrite": {
        "pattern": "<name>terminated</name>", "replace": "<name>shutting-down</name>"}})
    p = gm.popen("stop", "pwi", env=FAST)
    proxy.wait_for(lambda recs: sum(x["action"] == "DescribeInstances" for x in recs) >= 2,
                   timeout=30)
    p.send_signal(2)
    p.wait(timeout=30)
    assert p.returncode == 130
    proxy.clear_rules()
    assert load_state(gm_home, "pwi")["status"] == "running"  # not stopped until it is
    r = gm.run("stop", "pwi", env=FAST)
    assert r.returncode == 0, r.stderr
    assert load_state(gm_home, "pwi")["status"] == "stopped"
