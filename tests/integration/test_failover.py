"""Launch failover through the Auto Scaling group: the group tries the spot
pools itself and reports each refusal as a failed scaling activity; when
every pool refuses spot (capacity, quota), deploy moves the group to
on-demand, or stops clearly with --spot-only. moto's groups always launch,
so the fault proxy rewrites DescribeScalingActivities to report AWS's
refusals and withholds the group's instance from DescribeAutoScalingGroups
until the group is asked for on-demand; boto3 confirms what the group is."""
import itertools
import json

from deployhelpers import FAST, deploy, destroy, group_of, leftovers, load_state, node

TYPES = ("t3.large", "m5.large")
ZONES = ("us-east-1a", "us-east-1b")
_ids = itertools.count(1)

# Until the group is asked for on-demand.
ON_DEMAND = {"action": "UpdateAutoScalingGroup",
             "match": {"MixedInstancesPolicy.InstancesDistribution."
                       "OnDemandPercentageAboveBaseCapacity": "100"}}


def capacity(itype, zone):
    """AWS's words when a spot pool has no capacity."""
    return ("Could not launch Spot Instances. InsufficientInstanceCapacity - We currently do not "
            "have sufficient %s capacity in the Availability Zone you requested (%s). Our system "
            "will be working on provisioning additional capacity. Launching EC2 instance failed."
            % (itype, zone))


QUOTA = ("Could not launch Spot Instances. MaxSpotInstanceCountExceeded - Max spot instance "
         "count exceeded. Launching EC2 instance failed.")
NO_SPOT = ("Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
           "capacity available that matches your request. Launching EC2 instance failed.")


def activities(*messages):
    """A DescribeScalingActivities member per message: failed launches, in
    the order given, listed newest first as AWS lists them."""
    out = []
    for m in messages:
        n = next(_ids)
        out.append("<member><ActivityId>00000000-0000-4000-8000-%012d</ActivityId>"
                   "<AutoScalingGroupName>g</AutoScalingGroupName>"
                   "<Description>Launching a new EC2 instance.  Status Reason: %s</Description>"
                   "<Cause>At 2026-11-30T12:00:00Z an instance was started in response to a "
                   "difference between desired and actual capacity, increasing the capacity "
                   "from 0 to 1.</Cause><StartTime>2026-11-30T12:00:%02dZ</StartTime>"
                   "<EndTime>2026-11-30T12:00:%02dZ</EndTime><StatusCode>Failed</StatusCode>"
                   "<StatusMessage>%s</StatusMessage><Progress>100</Progress></member>"
                   % (n, m, n % 60, n % 60, m))
    return "".join(reversed(out))


def refuse(proxy, *messages, until=ON_DEMAND, times=None):
    """The group reports these refusals and has no instance (until `until`,
    or for `times` looks)."""
    hold = {"until": until} if until else {"times": times}
    proxy.add_rule(dict(hold, action="DescribeScalingActivities", rewrite={
        "pattern": r"<Activities\s*/>|<Activities>\s*</Activities>",
        "replace": "<Activities>%s</Activities>" % activities(*messages)}))
    proxy.add_rule(dict(hold, action="DescribeAutoScalingGroups", rewrite={
        "pattern": r"(?s)<Instances>.*?</Instances>", "replace": "<Instances/>"}))


def attempts(gm_home, name):
    return json.loads(node(load_state(gm_home, name), "asg")["outputs"]["launch_attempts"])


def distribution(boto, gm_home, name):
    return group_of(boto, load_state(gm_home, name))["MixedInstancesPolicy"]["InstancesDistribution"]


def only_instance(boto, name):
    left = leftovers(boto, name)
    assert len(left.get("instances", [])) == 1 and len(left["auto_scaling_groups"]) == 1, left
    return left


def test_spot_refused_in_every_pool_moves_the_group_to_on_demand(gm, proxy, boto, gm_home):
    refuse(proxy, *[capacity(t, z) for t in TYPES for z in ZONES])
    r = deploy(gm, "fopools", "--instance-types", ",".join(TYPES))
    assert r.returncode == 0, r.stderr
    assert "refused in every pool" in r.stderr and "on-demand" in r.stderr
    assert "InsufficientInstanceCapacity" in r.stderr
    updates = proxy.find(action="UpdateAutoScalingGroup")
    assert len(updates) == 1
    assert updates[0]["params"]["MixedInstancesPolicy.InstancesDistribution."
                                "OnDemandPercentageAboveBaseCapacity"] == "100"
    dist = distribution(boto, gm_home, "fopools")
    assert dist["OnDemandPercentageAboveBaseCapacity"] == 100
    tried = attempts(gm_home, "fopools")
    assert [(a["type"], a["az"], a["result"]) for a in tried[:-1]] == \
        [(t, z, "InsufficientInstanceCapacity") for t in TYPES for z in ZONES]
    assert all(a["market"] == "spot" for a in tried[:-1])
    assert tried[-1]["result"] == "launched" and tried[-1]["market"] == "on-demand"
    out = node(load_state(gm_home, "fopools"), "asg")["outputs"]
    assert out["group_market"] == "on-demand" and out["chosen_market"] == "on-demand"
    assert out["market"] == "on-demand" and out["market_switch"]
    only_instance(boto, "fopools")
    r = gm.run("status", "fopools", env=FAST)
    assert "Instance:    %s (" % out["instance_id"] in r.stdout, r.stdout
    assert "Launches:    4 refused (last: InsufficientInstanceCapacity); spot refused in every " \
           "pool: on-demand" in r.stdout, r.stdout
    assert destroy(gm, "fopools").returncode == 0
    assert leftovers(boto, "fopools") == {}


def test_some_pools_refused_keeps_spot(gm, proxy, boto, gm_home):
    """One pool out of capacity: the group tries the others itself."""
    refuse(proxy, capacity("t3.large", "us-east-1a"), until=None, times=3)
    r = deploy(gm, "fosome", "--instance-types", ",".join(TYPES))
    assert r.returncode == 0, r.stderr
    assert proxy.count(action="UpdateAutoScalingGroup") == 0
    assert distribution(boto, gm_home, "fosome")["OnDemandPercentageAboveBaseCapacity"] == 0
    tried = attempts(gm_home, "fosome")
    assert [a["result"] for a in tried] == ["InsufficientInstanceCapacity", "launched"]
    assert tried[-1]["market"] == "spot"
    assert destroy(gm, "fosome").returncode == 0


def test_spot_quota_moves_to_on_demand_at_once(gm, proxy, boto, gm_home):
    """A quota is the account's: other pools won't help, one refusal is enough."""
    refuse(proxy, QUOTA)
    r = deploy(gm, "foquota", "--instance-type", "t3.large")
    assert r.returncode == 0, r.stderr
    assert proxy.count(action="UpdateAutoScalingGroup") == 1
    tried = attempts(gm_home, "foquota")
    assert [(a["market"], a["result"]) for a in tried] == \
        [("spot", "MaxSpotInstanceCountExceeded"), ("on-demand", "launched")]
    assert distribution(boto, gm_home, "foquota")["OnDemandPercentageAboveBaseCapacity"] == 100
    assert destroy(gm, "foquota").returncode == 0
    assert leftovers(boto, "foquota") == {}


def test_no_spot_capacity_anywhere_moves_to_on_demand(gm, proxy, boto, gm_home):
    """AWS's fleet answer that no pool of the request has spot capacity."""
    refuse(proxy, NO_SPOT)
    r = deploy(gm, "fonospot", "--instance-types", ",".join(TYPES))
    assert r.returncode == 0, r.stderr
    assert proxy.count(action="UpdateAutoScalingGroup") == 1
    assert attempts(gm_home, "fonospot")[-1]["market"] == "on-demand"
    assert destroy(gm, "fonospot").returncode == 0


def test_spot_only_stops_clearly_on_quota(gm, proxy, boto, gm_home):
    refuse(proxy, QUOTA)
    r = deploy(gm, "fospot", "--instance-type", "t3.large", "--spot-only")
    assert r.returncode == 1
    assert "MaxSpotInstanceCountExceeded" in r.stderr and "--spot-only" in r.stderr
    assert "refused in every pool" in r.stderr
    assert proxy.count(action="UpdateAutoScalingGroup") == 0
    assert proxy.count(action="CreateAutoScalingGroup") == 1
    assert leftovers(boto, "fospot") == {}  # rolled back: the group and its instance too


def test_spot_only_keeps_spot_records_the_attempts(gm, proxy, boto, gm_home):
    """--no-rollback keeps the record: every attempt and its reason are in it."""
    refuse(proxy, *[capacity("t3.large", z) for z in ZONES])
    r = deploy(gm, "fospot2", "--instance-type", "t3.large", "--spot-only", "--no-rollback")
    assert r.returncode == 1
    tried = attempts(gm_home, "fospot2")
    assert [(a["az"], a["result"]) for a in tried] == \
        [(z, "InsufficientInstanceCapacity") for z in ZONES]
    assert all("do not have sufficient t3.large capacity" in a["reason"] for a in tried)
    proxy.clear_rules()
    assert destroy(gm, "fospot2").returncode == 0
    assert leftovers(boto, "fospot2") == {}


def test_launch_timeout(gm, proxy, boto, gm_home):
    refuse(proxy, "Launching a new EC2 instance. Status Reason: The requested configuration "
                  "is currently not supported. Launching EC2 instance failed.",
           until=None, times=None)
    r = deploy(gm, "fotime", "--instance-type", "t3.large", "--on-demand",
               "--launch-timeout", "2")
    assert r.returncode == 1
    assert "in service after 2s" in r.stderr and "not supported" in r.stderr
    assert leftovers(boto, "fotime") == {}


def test_on_demand_makes_an_on_demand_group(gm, proxy, boto, gm_home):
    r = deploy(gm, "foond", "--instance-types", ",".join(TYPES), "--on-demand")
    assert r.returncode == 0, r.stderr
    group = group_of(boto, load_state(gm_home, "foond"))
    policy = group["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100
    assert policy["InstancesDistribution"]["OnDemandAllocationStrategy"] == "prioritized"
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == list(TYPES)
    out = node(load_state(gm_home, "foond"), "asg")["outputs"]
    assert out["chosen_market"] == "on-demand" and out["market"] == "on-demand"
    assert destroy(gm, "foond").returncode == 0


def test_max_spot_price_is_the_groups_spot_max_price(gm, proxy, boto, gm_home):
    r = deploy(gm, "foprice", "--instance-type", "t3.large", "--max-spot-price", "0.5")
    assert r.returncode == 0, r.stderr
    assert distribution(boto, gm_home, "foprice")["SpotMaxPrice"] == "0.5"
    assert destroy(gm, "foprice").returncode == 0


def test_default_is_spot_when_it_saves(gm, proxy, boto, gm_home):
    r = deploy(gm, "fospotok", "--instance-type", "t3.large", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    out = doc["resources"]["asg"]["outputs"]
    assert out["chosen_market"] == "spot" and out["group_market"] == "spot"
    dist = distribution(boto, gm_home, "fospotok")
    assert dist["OnDemandPercentageAboveBaseCapacity"] == 0 and dist["OnDemandBaseCapacity"] == 0
    assert dist["SpotAllocationStrategy"] == "capacity-optimized-prioritized"
    assert "SpotMaxPrice" not in dist
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


def test_instance_ec2_does_not_list_yet_is_waited_for(gm, proxy, boto, gm_home):
    """EC2 is eventually consistent: the group names its instance before
    DescribeInstances knows it. The wait looks again instead of failing."""
    proxy.add_rule({"action": "DescribeInstances", "error": "InvalidInstanceID.NotFound",
                    "status": 400, "times": 2,
                    "message": "The instance ID 'i-0123' does not exist"})
    r = deploy(gm, "foconsist", "--instance-type", "t3.large")
    assert r.returncode == 0, r.stderr
    out = node(load_state(gm_home, "foconsist"), "asg")["outputs"]
    assert out["instance_id"] and out["private_ip"]
    assert proxy.count(action="DescribeInstances") >= 3
    assert destroy(gm, "foconsist").returncode == 0
