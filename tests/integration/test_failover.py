"""Launch failover: capacity, quota and price errors injected at RunInstances
move the launch to the next zone, type or market; boto3 confirms where the
instance runs and that no extra instance exists."""
import json

from deployhelpers import FAST, deploy, destroy, leftovers, load_state, node


def only_instance(boto, name):
    left = leftovers(boto, name)
    assert len(left.get("instances", [])) == 1, left
    inst = boto("ec2").describe_instances(InstanceIds=left["instances"])["Reservations"][0]["Instances"][0]
    # No other instance of any state but terminated exists for the deployment.
    every = [i for r in boto("ec2").describe_instances(
        Filters=[{"Name": "tag:geusemaker:deployment", "Values": [name]}])["Reservations"]
        for i in r["Instances"]]
    assert len(every) == 1, every
    return inst


def attempts(gm_home, name):
    return json.loads(node(load_state(gm_home, name), "instance")["outputs"]["launch_attempts"])


def test_zone_capacity_moves_to_the_next_zone(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "RunInstances", "match": {"Placement.AvailabilityZone": "us-east-1a"},
                    "error": "InsufficientInstanceCapacity", "status": 500})
    r = deploy(gm, "fozone", "--instance-type", "t3.large", "--on-demand")
    assert r.returncode == 0, r.stderr
    assert "InsufficientInstanceCapacity" in r.stderr and "us-east-1b" in r.stderr
    inst = only_instance(boto, "fozone")
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert inst["InstanceType"] == "t3.large" and "InstanceLifecycle" not in inst
    assert [a["result"] for a in attempts(gm_home, "fozone")] == ["InsufficientInstanceCapacity", "launched"]
    out = node(load_state(gm_home, "fozone"), "instance")["outputs"]
    assert out["chosen_az"] == "us-east-1b" and out["chosen_market"] == "on-demand"
    assert out["choice_reason"]
    assert destroy(gm, "fozone").returncode == 0
    assert leftovers(boto, "fozone") == {}


def test_every_zone_of_the_first_type_moves_to_the_next_type(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "RunInstances", "match": {"InstanceType": "t3.large"},
                    "error": "InsufficientInstanceCapacity", "status": 500})
    r = deploy(gm, "fotype", "--instance-types", "t3.large,m5.large", "--on-demand")
    assert r.returncode == 0, r.stderr
    inst = only_instance(boto, "fotype")
    assert inst["InstanceType"] == "m5.large"
    tried = attempts(gm_home, "fotype")
    assert [a["type"] for a in tried] == ["t3.large", "t3.large", "m5.large"]
    assert destroy(gm, "fotype").returncode == 0


def test_spot_quota_falls_back_to_on_demand(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "RunInstances", "match": {"InstanceMarketOptions.MarketType": "spot"},
                    "error": "MaxSpotInstanceCountExceeded", "status": 400})
    r = deploy(gm, "foquota", "--instance-type", "t3.large")
    assert r.returncode == 0, r.stderr
    inst = only_instance(boto, "foquota")
    assert "InstanceLifecycle" not in inst  # on-demand
    tried = attempts(gm_home, "foquota")
    assert tried[0]["market"] == "spot" and tried[-1]["market"] == "on-demand"
    # Quota is account-wide: the other zone's spot was not tried.
    assert sum(1 for a in tried if a["market"] == "spot") == 1
    assert destroy(gm, "foquota").returncode == 0


def test_spot_only_stops_clearly_on_quota(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "RunInstances", "error": "MaxSpotInstanceCountExceeded", "status": 400})
    r = deploy(gm, "fospot", "--instance-type", "t3.large", "--spot-only")
    assert r.returncode == 1
    assert "MaxSpotInstanceCountExceeded" in r.stderr and "--spot-only" in r.stderr
    assert proxy.count(action="RunInstances") == 1
    assert leftovers(boto, "fospot") == {}  # rolled back


def test_spot_price_too_low_moves_to_the_next_candidate(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "RunInstances", "times": 1, "error": "SpotMaxPriceTooLow", "status": 400})
    r = deploy(gm, "foprice", "--instance-type", "t3.large")
    assert r.returncode == 0, r.stderr
    only_instance(boto, "foprice")
    tried = attempts(gm_home, "foprice")
    assert [a["result"] for a in tried] == ["SpotMaxPriceTooLow", "launched"]
    assert destroy(gm, "foprice").returncode == 0


def test_default_is_spot_when_it_saves(gm, proxy, boto, gm_home):
    r = deploy(gm, "fospotok", "--instance-type", "t3.large", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["resources"]["instance"]["outputs"]["chosen_market"] == "spot"
    assert only_instance(boto, "fospotok")["InstanceLifecycle"] == "spot"
    assert "saving_vs_on_demand_monthly" in json.dumps(doc["cost"]) or "saving" in json.dumps(doc["cost"])
    assert destroy(gm, "fospotok").returncode == 0


def test_budget_refuses_before_anything_is_created(gm, proxy, boto):
    r = deploy(gm, "pricey", "--instance-type", "m5.xlarge", "--on-demand", "--budget", "5")
    assert r.returncode == 2, r.stderr
    assert "budget" in r.stderr and "--force" in r.stderr
    assert not any(a.startswith(("Create", "Run", "Put")) for _, a in proxy.actions())
    r = deploy(gm, "pricey", "--instance-type", "m5.xlarge", "--on-demand", "--budget", "5", "--force")
    assert r.returncode == 0, r.stderr
    assert destroy(gm, "pricey").returncode == 0
