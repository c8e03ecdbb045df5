"""geusemaker update: a new launch template version, the group pointed at it
and at the new types, the instance replaced through the group; a
replacement that does not serve in time is rolled back to the previous
version. boto3 checks the template's versions, the group and the instances."""
import json

import base64
import gzip

from deployhelpers import FAST, deploy, group_of, load_state, node

ROLLBACK_TO_V1 = {"action": "UpdateAutoScalingGroup",
                  "match": {"MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification."
                            "Version": "1"}}


def versions(boto, st):
    lt = node(st, "launch_template")["id"]
    answer = boto("ec2").describe_launch_template_versions(LaunchTemplateId=lt)
    return {v["VersionNumber"]: v["LaunchTemplateData"] for v in answer["LaunchTemplateVersions"]}


def userdata(data):
    raw = base64.b64decode(data["UserData"])
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def serving(boto, st):
    group = group_of(boto, st)
    ids = [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"]
    assert len(ids) == 1, group["Instances"]
    return boto("ec2").describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"][0]


def update(gm, name, *args, env=None):
    return gm.run("update", name, *args, env=dict(FAST, **(env or {})))


def test_dry_run_prints_the_difference_and_sends_nothing(gm, proxy, gm_home):
    assert deploy(gm, "upd").returncode == 0
    before = json.dumps(load_state(gm_home, "upd"), sort_keys=True)
    proxy.clear_records()
    r = update(gm, "upd", "--instance-types", "m5.xlarge", "--models", "qwen2.5:0.5b",
               "--dry-run", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["dry_run"] is True and doc["changed"] is True
    assert doc["changes"]["instance_types"]["to"] == ["m5.xlarge"]
    assert doc["changes"]["models"]["to"] == ["qwen2.5:0.5b"]
    assert proxy.records == []
    assert json.dumps(load_state(gm_home, "upd"), sort_keys=True) == before
    r = update(gm, "upd", "--instance-types", "m5.xlarge", "--dry-run")
    assert r.returncode == 0 and "instance types" in r.stdout and "-> m5.xlarge" in r.stdout
    assert "dry run" in r.stdout


def test_update_instance_types_replaces_the_instance(gm, proxy, boto, gm_home):
    assert deploy(gm, "upt").returncode == 0
    st = load_state(gm_home, "upt")
    first = serving(boto, st)["InstanceId"]
    r = update(gm, "upt", "--instance-types", "m5.xlarge", "--models", "qwen2.5:0.5b",
               "--image", "n8n=n8nio/n8n:2.42.0", "--yes", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["replaced"] is True and doc["rolled_back"] is False
    assert doc["template_version"] == {"from": "1", "to": "2"}
    st = load_state(gm_home, "upt")
    v = versions(boto, st)
    assert sorted(v) == [1, 2] and v[2]["InstanceType"] == "m5.xlarge"
    group = group_of(boto, st)
    spec = group["MixedInstancesPolicy"]["LaunchTemplate"]
    assert spec["LaunchTemplateSpecification"]["Version"] == "2"
    assert [o["InstanceType"] for o in spec["Overrides"]] == ["m5.xlarge"]
    inst = serving(boto, st)
    assert inst["InstanceId"] != first
    assert inst["InstanceType"] == "m5.xlarge"
    assert node(st, "asg")["outputs"]["instance_id"] == inst["InstanceId"]
    assert node(st, "asg")["outputs"]["template_version"] == "2"
    # The new UserData pulls the new model; the record keeps both versions
    # and the config the serving one came from.
    assert b"qwen2.5:0.5b" in userdata(v[2]) and b"qwen2.5:0.5b" not in userdata(v[1])
    assert b'"n8nio/n8n:2.42.0"' in userdata(v[2]) and b"n8nio/n8n:2.42.0" not in userdata(v[1])
    assert doc["changes"]["images"] == {"n8n": {"from": None, "to": "n8nio/n8n:2.42.0"}}
    kept = json.loads(node(st, "launch_template")["outputs"]["versions"])
    assert [(k["version"], k["result"]) for k in kept] == [("1", "deployed"), ("2", "serving")]
    assert st["config"]["market"]["instance_types"] == ["m5.xlarge"]
    assert st["config"]["models"] == ["qwen2.5:0.5b"]
    assert st["config"]["images"] == {"n8n": "n8nio/n8n:2.42.0"}
    # The config stored beside the secrets follows (adopt rebuilds from it).
    stored = boto("ssm").get_parameter(Name="/geusemaker/upt/config")["Parameter"]["Value"]
    assert json.loads(stored)["config"]["market"]["instance_types"] == ["m5.xlarge"]
    # The same update again changes nothing.
    proxy.clear_records()
    r = update(gm, "upt", "--instance-types", "m5.xlarge", "--yes")
    assert r.returncode == 0 and "Nothing to change" in r.stdout
    assert proxy.records == []


def test_an_update_that_does_not_serve_is_rolled_back(gm, proxy, boto, gm_home):
    assert deploy(gm, "upr").returncode == 0
    st = load_state(gm_home, "upr")
    first = serving(boto, st)["InstanceId"]
    before = [o["InstanceType"] for o in group_of(boto, st)["MixedInstancesPolicy"][
        "LaunchTemplate"]["Overrides"]]
    # The group shows no instance in service until it is pointed back at
    # version 1: version 2's replacement never serves.
    proxy.add_rule({"action": "DescribeAutoScalingGroups", "until": ROLLBACK_TO_V1, "rewrite": {
        "pattern": r"(?s)<Instances>.*?</Instances>", "replace": "<Instances/>"}})
    r = update(gm, "upr", "--instance-types", "m5.xlarge", "--yes", "--timeout", "2")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "version 2 did not serve and the deployment is back on version 1" in r.stderr
    st = load_state(gm_home, "upr")
    group = group_of(boto, st)
    spec = group["MixedInstancesPolicy"]["LaunchTemplate"]
    assert spec["LaunchTemplateSpecification"]["Version"] == "1"
    assert [o["InstanceType"] for o in spec["Overrides"]] == before
    inst = serving(boto, st)
    assert inst["InstanceId"] != first and inst["InstanceType"] != "m5.xlarge"
    assert node(st, "asg")["outputs"]["template_version"] == "1"
    kept = json.loads(node(st, "launch_template")["outputs"]["versions"])
    assert [(k["version"], k["result"]) for k in kept] == [("1", "deployed"), ("2", "rolled back")]
    assert st["config"]["market"]["instance_types"] != ["m5.xlarge"]
    assert st["status"] == "running"


def test_a_stopped_deployment_gets_the_version_without_a_replacement(gm, proxy, boto, gm_home):
    assert deploy(gm, "ups").returncode == 0
    assert gm.run("stop", "ups", env=FAST).returncode == 0
    r = update(gm, "ups", "--instance-types", "m5.xlarge")  # no --yes needed: nothing stops
    assert r.returncode == 0, r.stderr
    assert "runs at the next start" in r.stdout
    st = load_state(gm_home, "ups")
    assert group_of(boto, st)["Instances"] == []
    assert gm.run("start", "ups", env=FAST).returncode == 0
    assert serving(boto, load_state(gm_home, "ups"))["InstanceType"] == "m5.xlarge"


def test_bad_updates_are_refused_before_any_call(gm, proxy, gm_home):
    assert deploy(gm, "upb").returncode == 0
    proxy.clear_records()
    for args, words in (
            ((), "what should change"),
            (("--instance-types", "m6g.xlarge", "--yes"), "arm64"),
            (("--instance-types", "M5.XLARGE", "--yes"), "M5.XLARGE"),
            (("--image", "n8n", "--yes"), "SERVICE=REPO:TAG"),
            (("--image", "n8n=n8nio/n8n:latest", "--yes"), "latest"),
            (("--image", "nosuch=a/b:1", "--yes"), "nosuch"),
            (("--timeout", "0", "--instance-types", "m5.xlarge"), "--timeout"),
            (("--instance-types", "m5.xlarge"), "--yes")):
        r = update(gm, "upb", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert words in r.stderr, (args, r.stderr)
    r = update(gm, "nosuch", "--instance-types", "m5.xlarge", "--yes")
    assert r.returncode == 2
    assert proxy.records == []
