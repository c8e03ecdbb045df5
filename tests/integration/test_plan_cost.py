"""plan and cost against moto through the fault proxy, checked with boto3.

moto's DescribeSpotPriceHistory answers every offered (type, zone) with the
same price (0.00001, "Linux/UNIX (Amazon VPC)", a 2006 timestamp) and it has no
Price List API (GetProducts answers HTTP 500), so on-demand prices come from
the shipped table: the tests read the same figures independently with boto3.
"""
import json
import os
import time

import pytest

from deployhelpers import CIDR, FAST, deploy, destroy, load_state, state_path

READ_ONLY = ("Describe", "Get", "List")
DEV_TYPES = ["t3.xlarge", "t3a.xlarge", "m6i.xlarge", "m5.xlarge", "m7i.xlarge"]
TABLE = {"t3.xlarge": 0.1664, "t3a.xlarge": 0.1504, "m6i.xlarge": 0.192, "m5.xlarge": 0.192,
         "m7i.xlarge": 0.2016}


def plan(gm, *args, env=None, name="planned"):
    e = dict(FAST)
    e.update(env or {})
    return gm.run("plan", "--name", name, *args, env=e, timeout=120)


def plan_json(gm, *args, **kw):
    r = plan(gm, "--output", "json", *args, **kw)
    return r, json.loads(r.stdout) if r.stdout.strip() else None


def offered_zones(boto, itype):
    offs = boto("ec2").describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": [itype]}])["InstanceTypeOfferings"]
    return sorted(o["Location"] for o in offs)


def spot_prices(boto, itype):
    hist = boto("ec2").describe_spot_price_history(
        InstanceTypes=[itype], ProductDescriptions=["Linux/UNIX"])["SpotPriceHistory"]
    return {h["AvailabilityZone"]: float(h["SpotPrice"]) for h in hist}


def assert_read_only(proxy):
    assert proxy.records, "plan made no AWS call"
    for rec in proxy.records:
        assert rec["action"].startswith(READ_ONLY), "mutating call %s:%s" % (
            rec["service"], rec["action"])


def assert_nothing_created(boto, gm_home, name="planned"):
    f = [{"Name": "tag:geusemaker:deployment", "Values": [name]}]
    ec2 = boto("ec2")
    assert ec2.describe_vpcs(Filters=f)["Vpcs"] == []
    assert ec2.describe_instances(Filters=f)["Reservations"] == []
    assert not os.path.exists(state_path(gm_home, name))


def test_plan_makes_no_change_and_prints_a_choice(gm, proxy, boto, gm_home):
    r = plan(gm, "--allow-cidr", CIDR)
    assert r.returncode == 0, r.stderr
    assert_read_only(proxy)
    actions = {a for _, a in proxy.actions()}
    assert {"DescribeInstanceTypeOfferings", "DescribeInstanceTypes",
            "DescribeSpotPriceHistory", "GetProducts"} <= actions
    assert ("pricing", "GetProducts") in proxy.actions()
    zones = offered_zones(boto, "t3.xlarge")
    out = r.stdout
    assert "nothing is created" in out
    assert "Resources, in dependency order:" in out
    assert "choice: t3.xlarge in %s, spot" % zones[0] in out
    assert "failover order" in out
    assert "Estimate (USD):" in out and "saving vs on-demand" in out
    assert "--assume-efs-gb" in out and "--assume-transfer-gb" in out
    assert "spot price history 20" in out            # the spot figure's source
    assert "shipped table 2025-06" in out            # on-demand and other items
    assert "price list api" in out                   # why the table was used
    assert "UserData (t3.xlarge):" in out and "EC2 limit 16384" in out
    assert "Ingress (80, 443): %s" % CIDR in out
    assert_nothing_created(boto, gm_home)


def test_plan_json_matches_what_aws_says(gm, proxy, boto):
    r, doc = plan_json(gm, "--allow-cidr", CIDR)
    assert r.returncode == 0, r.stderr
    assert_read_only(proxy)
    assert doc["name"] == "planned" and doc["tier"] == "dev" and doc["region"] == "us-east-1"
    nodes = [n["node"] for n in doc["resources"]]
    for before, after in (("vpc", "subnet_a"), ("subnet_a", "asg"), ("efs", "mount_target_a"),
                          ("sg", "launch_template"), ("launch_template", "asg"),
                          ("eip", "launch_template"), ("role", "profile_role")):
        assert nodes.index(before) < nodes.index(after)
    for n in doc["resources"]:  # dependency order: every dependency comes first
        for d in n["deps"]:
            assert nodes.index(d) < nodes.index(n["node"])

    inst = doc["instance"]
    zones = offered_zones(boto, "t3.xlarge")
    prices = spot_prices(boto, "t3.xlarge")
    choice = inst["choice"]
    assert (choice["type"], choice["az"], choice["market"]) == ("t3.xlarge", zones[0], "spot")
    assert choice["hourly"] == pytest.approx(prices[zones[0]])
    assert choice["on_demand_hourly"] == pytest.approx(TABLE["t3.xlarge"])
    assert choice["source"].startswith("spot price history ")
    assert choice["rank"] == 1 and "cheapest viable" in choice["reason"]
    assert [c["type"] for c in inst["candidates"]] == DEV_TYPES

    fo = inst["failover"]
    assert fo[0] == choice
    assert [c["rank"] for c in fo] == list(range(1, len(fo) + 1))
    assert [c["hourly"] for c in fo] == sorted(c["hourly"] for c in fo)
    got = {(c["type"], c["az"], c["market"]) for c in fo}
    for t in DEV_TYPES:  # every viable (type, zone, market) is in the failover list
        for z in offered_zones(boto, t):
            assert (t, z, "on-demand") in got
            if z in spot_prices(boto, t):
                assert (t, z, "spot") in got
    # Equal spot prices: candidate order, then zone name.
    spot = [(c["type"], c["az"]) for c in fo if c["market"] == "spot"]
    assert spot == sorted(spot, key=lambda p: (DEV_TYPES.index(p[0]), p[1]))
    # On-demand after spot, cheapest table price first.
    od = [c for c in fo if c["market"] == "on-demand"]
    assert od[0]["type"] == "t3a.xlarge" and od[0]["hourly"] == pytest.approx(0.1504)
    assert all(c["source"].startswith("shipped table 2025-06") for c in od)

    est = doc["estimate"]
    assert est["instance_type"] == "t3.xlarge" and est["market"] == "spot"
    assert set(est["breakdown"]) == {"ec2", "ebs_root", "ebs_data", "efs_storage", "public_ipv4",
                                     "data_transfer_out"}
    assert est["monthly"] == pytest.approx(sum(i["monthly"] for i in est["breakdown"].values()),
                                           abs=1e-3)
    assert est["hourly"] == pytest.approx(est["monthly"] / 730, rel=1e-4)
    assert est["daily"] == pytest.approx(est["hourly"] * 24, rel=1e-3)
    assert est["breakdown"]["ebs_root"]["monthly"] == pytest.approx(60 * 0.08)
    assert est["breakdown"]["ebs_data"]["monthly"] == pytest.approx(20 * 0.08)  # --data-volume-gb
    assert est["saving_vs_on_demand"]["monthly"] == pytest.approx(
        (TABLE["t3.xlarge"] - prices[zones[0]]) * 730, rel=1e-3)
    for item in est["breakdown"].values():
        assert item["source"]
    assert est["assumptions"]["efs_gb"] == 10 and est["assumptions"]["transfer_gb_per_month"] == 10
    assert doc["budget"] is None
    assert doc["userdata"]["sent_size"] <= doc["userdata"]["limit"] == 16384
    assert doc["ingress"]["cidrs"] == [CIDR]
    assert any("price list api" in n for n in doc["notes"])


def test_plan_on_demand_skips_spot(gm, proxy, boto):
    r, doc = plan_json(gm, "--on-demand")
    assert r.returncode == 0, r.stderr
    assert_read_only(proxy)
    assert proxy.count(action="DescribeSpotPriceHistory") == 0
    choice = doc["instance"]["choice"]
    assert choice["market"] == "on-demand" and choice["type"] == "t3a.xlarge"
    assert choice["az"] == offered_zones(boto, "t3a.xlarge")[0]
    assert all(c["market"] == "on-demand" for c in doc["instance"]["failover"])
    assert doc["estimate"]["saving_vs_on_demand"]["monthly"] == 0
    assert doc["ingress"]["cidrs"] == [] and "detected at deploy" in doc["ingress"]["note"]


def test_plan_spot_cap_falls_back_to_on_demand(gm, proxy):
    r, doc = plan_json(gm, "--max-spot-price", "0.000005")
    assert r.returncode == 0, r.stderr
    inst = doc["instance"]
    assert inst["choice"]["market"] == "on-demand"
    capped = [c for c in inst["rejected"] if c["market"] == "spot"]
    assert capped and all("above --max-spot-price $0.000005/h" in c["reason"] for c in capped)
    assert inst["strategy"]["max_spot_price"] == pytest.approx(0.000005)


def test_plan_spot_only_with_nothing_under_the_cap_fails(gm, proxy):
    r = plan(gm, "--spot-only", "--max-spot-price", "0.000005")
    assert r.returncode == 1
    assert "no instance type of the 5 candidate(s) is usable in us-east-1" in r.stderr
    assert "above --max-spot-price" in r.stderr
    assert "no usable candidate" in r.stdout  # the plan still shows why
    assert_read_only(proxy)


def test_plan_user_types_keep_their_order_on_ties(gm, proxy, boto):
    r, doc = plan_json(gm, "--instance-types", "m5.xlarge,t3.xlarge,t3.large")
    assert r.returncode == 0, r.stderr
    inst = doc["instance"]
    assert inst["choice"]["type"] == "m5.xlarge" and inst["choice"]["market"] == "spot"
    assert [c["type"] for c in inst["candidates"]] == ["m5.xlarge", "t3.xlarge", "t3.large"]
    # A named type below the tier's needs stays, with a warning.
    small = [c for c in inst["failover"] if c["type"] == "t3.large"]
    assert small and "below the tier's needs" in small[0]["warning"]
    assert inst["strategy"]["needs_are_warnings"] is True
    # Specs come from AWS, not only the table.
    assert {c["specs_source"] for c in inst["candidates"]} == {"describe instance types"}


def test_plan_gpu_tier(gm, proxy, boto):
    r, doc = plan_json(gm, "--tier", "gpu")
    assert r.returncode == 0, r.stderr
    types = [c["type"] for c in doc["instance"]["candidates"]]
    assert types == ["g5.xlarge", "g4dn.xlarge", "g6.xlarge"]
    assert all(c["nvidia_gpus"] >= 1 for c in doc["instance"]["candidates"])
    assert doc["instance"]["choice"]["type"] in types
    assert doc["instance"]["strategy"]["needs"]["nvidia_gpu"] is True


def test_plan_spot_history_refused_uses_on_demand(gm, proxy):
    proxy.add_rule({"service": "ec2", "action": "DescribeSpotPriceHistory",
                    "error": "UnauthorizedOperation", "status": 403,
                    "message": "not allowed to see spot prices"})
    r, doc = plan_json(gm)
    assert r.returncode == 0, r.stderr
    inst = doc["instance"]
    assert inst["choice"]["market"] == "on-demand"
    assert "not allowed to see spot prices" in inst["spot_error"]
    assert any(c["market"] == "spot" and "spot prices unavailable" in c["reason"]
               for c in inst["rejected"])


def test_plan_assumptions_change_the_estimate(gm, proxy):
    r, doc = plan_json(gm, "--assume-efs-gb", "100", "--assume-transfer-gb", "50")
    assert r.returncode == 0, r.stderr
    b = doc["estimate"]["breakdown"]
    assert b["efs_storage"]["monthly"] == pytest.approx(30.0)
    assert b["data_transfer_out"]["monthly"] == pytest.approx(4.5)
    assert "100 GB assumed (--assume-efs-gb)" in b["efs_storage"]["basis"]


def test_plan_budget(gm, proxy, boto, gm_home):
    r = plan(gm, "--budget", "5")
    assert r.returncode == 2
    assert "over the budget of $5.00/month" in r.stderr
    assert "--force" in r.stderr
    assert "Budget: $5.00/month: OVER" in r.stdout
    assert_read_only(proxy)
    assert_nothing_created(boto, gm_home)

    r, doc = plan_json(gm, "--budget", "1000")
    assert r.returncode == 0, r.stderr
    assert doc["budget"]["within"] is True and doc["budget"]["fallbacks_over_budget"] == 0

    # A budget between spot and on-demand: spot is kept, on-demand fallbacks are dropped.
    r, doc = plan_json(gm, "--budget", "50")
    assert r.returncode == 0, r.stderr
    assert doc["budget"]["fallbacks_over_budget"] > 0
    assert all(c["market"] == "spot" for c in doc["instance"]["failover"])
    assert any("over the budget" in c["reason"] for c in doc["instance"]["rejected"])


@pytest.mark.parametrize("args, message", [
    (["--name", "x", "--budget", "lots"], "invalid --budget 'lots'"),
    (["--name", "x", "--max-spot-price", "-1"], "invalid --max-spot-price"),
    (["--name", "x", "--spot-only", "--on-demand"], "exclude each other"),
    (["--name", "x", "--instance-type", "t3.xlarge", "--instance-types", "m5.xlarge"],
     "exclude each other"),
    (["--name", "x", "--tier", "gpu", "--instance-types", "g5.xlarge,t3.large"], "GPU"),
    (["--name", "x", "--min-saving", "150"], "invalid --min-saving"),
    (["--name", "Bad_Name"], "name"),
    (["--tier", "dev"], "missing --name"),
])
def test_plan_bad_input_makes_no_call(gm, proxy, args, message):
    r = gm.run("plan", *args, env=FAST)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert proxy.records == []


def test_cost_after_deploy(gm, proxy, boto, gm_home):
    r = deploy(gm, "costly")
    assert r.returncode == 0, r.stderr
    calls = len(proxy.records)
    r = gm.run("cost", "costly")
    assert r.returncode == 0, r.stderr
    assert len(proxy.records) == calls, "cost must not call AWS"
    out = r.stdout
    assert "Deployment:  costly (tier dev, region us-east-1, status running)" in out
    assert "Estimate:    $" in out and "/month (USD, estimate" in out
    assert "Running:     up since " in out and "until now" in out
    assert "Cost so far: $" in out

    r = gm.run("cost", "costly", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    st = load_state(gm_home, "costly")
    assert doc["estimate"] == st["cost"]
    assert doc["estimate"]["hourly"] > 0 and doc["estimate"]["monthly"] > 0
    u = doc["usage"]
    assert u["running"] is True and u["until"] == "now" and u["hours"] >= 0
    assert u["cost_so_far"] == pytest.approx(u["hours"] * doc["estimate"]["hourly"], abs=1e-3)

    # Two hours ago: the cost so far is two hours of the hourly estimate.
    st["created_at"] = int(time.time() * 1000) - 2 * 3600 * 1000
    path = state_path(gm_home, "costly")
    with open(path, "w") as f:
        json.dump(st, f)
    doc = json.loads(gm.run("cost", "costly", "--output", "json").stdout)
    assert doc["usage"]["hours"] == pytest.approx(2.0, abs=0.05)
    assert doc["usage"]["cost_so_far"] == pytest.approx(2.0 * doc["estimate"]["hourly"], rel=0.03)

    # After destroy the record is archived; cost still answers, with an end.
    assert destroy(gm, "costly").returncode == 0
    r = gm.run("cost", "costly", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["archived"] is True and doc["usage"]["running"] is False
    assert doc["usage"]["hours"] >= 2.0
    r = gm.run("cost", "costly")
    assert "Ended:" in r.stdout and "ran since" in r.stdout


def test_cost_unknown_deployment(gm, proxy):
    r = gm.run("cost", "nosuch")
    assert r.returncode == 2
    assert "no deployment named 'nosuch'" in r.stderr
    r = gm.run("cost")
    assert r.returncode == 2
