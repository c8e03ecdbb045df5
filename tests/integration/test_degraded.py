"""status and list tell the truth: a deployment whose instance is not running
(terminated, stopped or gone behind the tool's back) is `degraded`, status
exits 5 for it, and list shows it from one DescribeInstances per region (or
says the live state is unknown when AWS cannot be asked; --offline asks
nothing)."""
import json
import re
import time

from deployhelpers import FAST, deploy, load_state, node, recorded_instance, take_address, state_path

EXIT_DEGRADED = 5


def instance_of(gm_home, name):
    return recorded_instance(gm_home, name)


def status_json(gm, name):
    r = gm.run("status", name, "--output", "json", env=FAST)
    return r.returncode, json.loads(r.stdout)


def list_rows(gm, *args, env=None):
    r = gm.run("list", "--output", "json", *args, env=dict(FAST, **(env or {})))
    assert r.returncode == 0, r.stderr
    return {row["name"]: row for row in json.loads(r.stdout)}, r


def describes(proxy):
    return [r for r in proxy.records if r["action"] == "DescribeInstances"]


def region_of(record):
    """The region a request was signed for (its credential scope)."""
    auth = record["request_headers"].get("Authorization", "")
    return re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/", auth).group(1)


def no_instance_in_service(proxy):
    """The group reports no instance (as while it replaces a reclaimed one)."""
    proxy.add_rule({"action": "DescribeAutoScalingGroups", "rewrite": {
        "pattern": r"(?s)<Instances>.*?</Instances>", "replace": "<Instances/>"}})


def test_a_terminated_instance_makes_the_deployment_degraded(gm, proxy, boto, gm_home):
    assert deploy(gm, "deg").returncode == 0
    assert deploy(gm, "fine").returncode == 0
    take_address(boto, gm_home, "deg")
    take_address(boto, gm_home, "fine")
    # Healthy: status exits 0 and says so.
    code, doc = status_json(gm, "deg")
    assert code == 0 and doc["health"] == "healthy" and doc["health_reason"] is None
    r = gm.run("status", "deg", env=FAST)
    assert r.returncode == 0 and "Status:      healthy (running" in r.stdout

    # The instance reclaimed: while the group has none in service, degraded.
    iid = instance_of(gm_home, "deg")
    group = node(load_state(gm_home, "deg"), "asg")["id"]
    boto("ec2").terminate_instances(InstanceIds=[iid])
    no_instance_in_service(proxy)
    cause = ("At 2026-11-30T12:00:05Z an instance was taken out of service in response to an "
             "EC2 instance rebalance recommendation.")
    proxy.add_rule({"action": "DescribeScalingActivities", "rewrite": {
        "pattern": r"<Activities\s*/>|<Activities>\s*</Activities>",
        "replace": "<Activities><member><ActivityId>00000000-0000-4000-8000-000000000001"
                   "</ActivityId><AutoScalingGroupName>%s</AutoScalingGroupName>"
                   "<Description>Terminating EC2 instance: %s</Description><Cause>%s</Cause>"
                   "<StartTime>2026-11-30T12:00:05Z</StartTime><StatusCode>InProgress"
                   "</StatusCode><Progress>50</Progress></member></Activities>"
                   % (group, iid, cause)}})
    code, doc = status_json(gm, "deg")
    assert code == EXIT_DEGRADED
    assert doc["health"] == "degraded" and doc["status"] == "running"
    assert doc["health_reason"].startswith(
        "Auto Scaling group %s has no instance in service" % group), doc["health_reason"]
    assert doc["live"]["asg"]["state"] == "no instance in service"
    assert doc["live"]["asg"]["activities"][0] == {
        "start": "2026-11-30T12:00:05Z", "status": "InProgress", "cause": cause,
        "description": "Terminating EC2 instance: %s" % iid, "message": None}
    r = gm.run("status", "deg", env=FAST)
    assert r.returncode == EXIT_DEGRADED
    assert ("Status:      degraded: Auto Scaling group %s has no instance in service" % group
            in r.stdout), r.stdout
    assert "Terminating EC2 instance: %s" % iid in r.stdout and "cause: " + cause in r.stdout
    proxy.clear_rules()

    # The group's replacement runs, but without the address until its boot
    # takes it: still degraded, and status names the new instance.
    code, doc = status_json(gm, "deg")
    new = doc["live"]["asg"]["instance_id"]
    assert code == EXIT_DEGRADED and new != iid
    assert doc["health_reason"] == ("drift: eip not associated with the group's instance %s"
                                    % new)
    take_address(boto, gm_home, "deg")
    code, doc = status_json(gm, "deg")
    assert code == 0 and doc["health"] == "healthy"
    assert doc["live"]["asg"]["since"].startswith("20")
    r = gm.run("status", "deg", env=FAST)
    assert "Instance:    %s" % new in r.stdout and ", since 20" in r.stdout, r.stdout
    # The other deployment is untouched and healthy.
    assert status_json(gm, "fine")[0] == 0

    # list follows each group's instance by its deployment-id tag: one
    # DescribeInstances for the region.
    proxy.clear_records()
    rows, _ = list_rows(gm)
    assert len(describes(proxy)) == 1, "one DescribeInstances for the region"
    assert rows["deg"]["health"] == "healthy" and rows["deg"]["instance_id"] == new
    assert rows["fine"]["health"] == "healthy" and rows["fine"]["live_state"] == "running"
    assert r.stderr == ""


def test_stopped_or_missing_instances_are_degraded_too(gm, proxy, boto, gm_home):
    assert deploy(gm, "stop").returncode == 0
    take_address(boto, gm_home, "stop")
    iid = instance_of(gm_home, "stop")
    boto("ec2").stop_instances(InstanceIds=[iid])
    code, doc = status_json(gm, "stop")
    assert code == EXIT_DEGRADED and doc["health"] == "degraded"
    assert doc["health_reason"] == "instance %s is stopped" % iid
    assert doc["live"]["asg"]["instance_state"] == "stopped"
    rows, r = list_rows(gm)
    assert rows["stop"]["health"] == "degraded" and rows["stop"]["live_state"] == "stopped"
    r = gm.run("list", env=FAST)
    line = [l for l in r.stdout.splitlines() if l.startswith("stop ")][0]
    assert "degraded" in line and "stopped" in line, r.stdout

    # A group with no instance at all (every one terminated, none launched).
    boto("ec2").terminate_instances(InstanceIds=[iid])
    no_instance_in_service(proxy)
    proxy.add_rule({"action": "DescribeInstances", "rewrite": {
        "pattern": r"(?s)<reservationSet>.*</reservationSet>", "replace": "<reservationSet/>"}})
    rows, _ = list_rows(gm)
    assert rows["stop"]["health"] == "degraded" and rows["stop"]["live_state"] == "none"
    assert rows["stop"]["health_reason"].startswith("Auto Scaling group ")

    # The group itself deleted behind the tool's back.
    proxy.clear_rules()
    boto("autoscaling").delete_auto_scaling_group(
        AutoScalingGroupName=node(load_state(gm_home, "stop"), "asg")["id"], ForceDelete=True)
    code, doc = status_json(gm, "stop")
    assert code == EXIT_DEGRADED and doc["health"] == "degraded"
    assert doc["health_reason"].endswith("no longer exists"), doc["health_reason"]


def test_list_offline_asks_aws_nothing(gm, proxy, gm_home):
    assert deploy(gm, "off").returncode == 0
    proxy.clear_records()
    rows, r = list_rows(gm, "--offline")
    assert proxy.records == []
    assert rows["off"]["status"] == "running" and rows["off"]["health"] == "unknown"
    assert rows["off"]["live_state"] is None
    assert r.stderr == ""
    r = gm.run("list", "--offline", env=FAST)
    assert r.returncode == 0 and "off" in r.stdout and "running" in r.stdout
    assert proxy.records == []
    # --offline works whatever the AWS environment says.
    r = gm.run("list", "--offline", env=dict(FAST, AWS_MAX_ATTEMPTS="zero"))
    assert r.returncode == 0 and proxy.records == []
    r = gm.run("list", env=dict(FAST, AWS_MAX_ATTEMPTS="zero"))
    assert r.returncode == 2 and "AWS_MAX_ATTEMPTS" in r.stderr


def test_list_without_aws_says_the_live_state_is_unknown(gm, proxy, gm_home):
    assert deploy(gm, "dark").returncode == 0
    closed = "http://127.0.0.1:9"  # discard: nothing listens
    for env, why in (({"AWS_ENDPOINT_URL": closed}, "connect"),
                     ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
                      "credentials")):
        t0 = time.monotonic()
        rows, r = list_rows(gm, env=env)
        assert time.monotonic() - t0 < 10
        row = rows["dark"]
        assert row["health"] == "unknown" and row["status"] == "running"
        assert row["live_state"] is None and why in row["health_reason"], row
        assert r.stderr.startswith("note: us-east-1: live state unknown"), r.stderr
        r = gm.run("list", env=dict(FAST, **env))
        assert r.returncode == 0 and "unknown" in r.stdout and "running" in r.stdout


def test_one_look_per_region(gm, proxy, gm_home):
    assert deploy(gm, "east").returncode == 0
    assert deploy(gm, "west", "--region", "us-west-2").returncode == 0
    proxy.clear_records()
    rows, _ = list_rows(gm)
    assert rows["east"]["health"] == rows["west"]["health"] == "healthy"
    assert sorted(region_of(r) for r in describes(proxy)) == ["us-east-1", "us-west-2"]
    proxy.clear_records()
    rows, _ = list_rows(gm, "--region", "us-west-2")
    assert list(rows) == ["west"]
    assert [region_of(r) for r in describes(proxy)] == ["us-west-2"]


def test_failed_records_are_judged_without_a_call(gm, proxy, gm_home):
    proxy.add_rule({"action": "CreateLaunchTemplate", "error": "InvalidAMIID.NotFound",
                    "status": 400})
    assert deploy(gm, "broke", "--no-rollback").returncode == 1
    proxy.clear_rules()
    proxy.clear_records()
    rows, _ = list_rows(gm)
    assert rows["broke"]["health"] == "failed" and "InvalidAMIID" in rows["broke"]["health_reason"]
    assert describes(proxy) == []  # no instance to look at
    code, doc = status_json(gm, "broke")
    assert code == EXIT_DEGRADED and doc["health"] == "failed"


def test_reading_commands_create_nothing(gm, proxy, tmp_path):
    home = tmp_path / "no-home-yet"
    r = gm.run("list", env=dict(FAST, GEUSEMAKER_HOME=str(home)))
    assert r.returncode == 0 and "no deployments" in r.stdout
    assert not home.exists()
    assert proxy.records == []


def test_exit_code_5_is_documented(gm):
    r = gm.run("--help")
    assert "5    status: the deployment is not healthy" in r.stdout
    r = gm.run("status", "--help")
    assert "5 not healthy" in r.stdout and "degraded" in r.stdout
    assert "5 (status) the deployment is not healthy" in gm.run("manpage").stdout
