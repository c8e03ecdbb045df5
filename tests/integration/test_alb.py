"""Tier 2 (automation): the load balancer in front of the Tier 1 stack."""
import json

from deployhelpers import (CIDR, FAST, deploy, destroy, group_of, instance_of, leftovers,
                           load_state, node)
from test_crash import kill_deploy_after


def _userdata(boto, st):
    from deployhelpers import template_userdata
    return template_userdata(boto, st)


def tags_of(elb, arn):
    d = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    return {t["Key"]: t["Value"] for t in d}


def test_tier2_deploy_status_list_destroy(gm, proxy, boto, gm_home):
    r = deploy(gm, "web", "--tier", "automation", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    res = {k: v["id"] for k, v in doc["resources"].items()}
    elb, ec2 = boto("elbv2"), boto("ec2")
    lb = elb.describe_load_balancers(LoadBalancerArns=[res["alb"]])["LoadBalancers"][0]
    assert lb["LoadBalancerName"] == "web-alb" and lb["Scheme"] == "internet-facing"
    assert lb["VpcId"] == res["vpc"]
    assert sorted(z["SubnetId"] for z in lb["AvailabilityZones"]) == sorted([res["subnet_a"], res["subnet_b"]])
    assert lb["SecurityGroups"] == [res["alb_sg"]]
    assert tags_of(elb, res["alb"])["geusemaker:deployment"] == "web"
    assert doc["endpoints"]["n8n"] == "http://%s/" % lb["DNSName"]
    # The instance reads the stack's public URL (n8n's links) from SSM.
    url = boto("ssm").get_parameter(Name="/geusemaker/web/public_url")["Parameter"]
    assert url["Value"] == "http://%s" % lb["DNSName"] and url["Type"] == "String"
    # Without a certificate the deploy says loudly that it is plain HTTP.
    assert "PLAIN HTTP" in r.stderr

    alb_sg = ec2.describe_security_groups(GroupIds=[res["alb_sg"]])["SecurityGroups"][0]
    ports = {(p["FromPort"], tuple(r["CidrIp"] for r in p["IpRanges"])) for p in alb_sg["IpPermissions"]}
    assert ports == {(80, (CIDR,)), (443, (CIDR,))}
    inst_sg = ec2.describe_security_groups(GroupIds=[res["sg"]])["SecurityGroups"][0]
    from_alb = {p["FromPort"] for p in inst_sg["IpPermissions"]
                if any(g["GroupId"] == res["alb_sg"] for g in p["UserIdGroupPairs"])}
    assert from_alb == {80, 443}

    tg = elb.describe_target_groups(TargetGroupArns=[res["target_group"]])["TargetGroups"][0]
    assert tg["TargetGroupName"] == "web-tg" and tg["Port"] == 443 and tg["Protocol"] == "HTTPS"
    assert tg["HealthCheckPath"] == "/geusemaker/ready"
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthCheckTimeoutSeconds"],
            tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (30, 5, 2, 3)
    assert tags_of(elb, res["target_group"])["geusemaker:node"] == "target_group"
    listeners = elb.describe_listeners(LoadBalancerArn=res["alb"])["Listeners"]
    assert [(l["Protocol"], l["Port"]) for l in listeners] == [("HTTP", 80)]
    assert listeners[0]["DefaultActions"][0]["TargetGroupArn"] == res["target_group"]
    # The target group is attached to the Auto Scaling group, which registers
    # every instance it launches (replacements too): the tool registers none.
    st = load_state(gm_home, "web")
    group = group_of(boto, st)
    assert group["TargetGroupARNs"] == [res["target_group"]]
    assert res["targets"] == res["target_group"]
    inst = instance_of(boto, st)
    health = elb.describe_target_health(TargetGroupArn=res["target_group"])["TargetHealthDescriptions"]
    assert [h["Target"]["Id"] for h in health] == [inst["InstanceId"]]
    assert health[0]["TargetHealth"]["State"] == "healthy"
    assert proxy.count(action="RegisterTargets") == 0
    assert proxy.count(action="AttachLoadBalancerTargetGroups") == 1
    # No Elastic IP in this tier: the load balancer is the address.
    assert "eip" not in res and b"associate-address" not in _userdata(boto, st)
    # A replacement is the group's to register: the attachment outlives the
    # instance (moto replaces it at once but registers only at attachment
    # and capacity changes: STACK.md).
    boto("ec2").terminate_instances(InstanceIds=[inst["InstanceId"]])
    assert instance_of(boto, st)["InstanceId"] != inst["InstanceId"]
    assert group_of(boto, st)["TargetGroupARNs"] == [res["target_group"]]

    r = gm.run("status", "web", "--output", "json", env=FAST, check=True)
    st = json.loads(r.stdout)
    assert st["endpoints"]["load_balancer"] == lb["DNSName"]
    assert st["live"]["alb"]["state"] == "active"
    r = gm.run("list", "--output", "json", check=True)
    assert json.loads(r.stdout)[0]["tier"] == "automation"

    r = destroy(gm, "web")
    assert r.returncode == 0, r.stderr
    assert leftovers(boto, "web") == {}


def test_https_listener_with_certificate(gm, proxy, boto):
    cert = boto("acm").request_certificate(DomainName="stack.example.com")["CertificateArn"]
    r = deploy(gm, "tls", "--tier", "automation", "--certificate-arn", cert,
               "--health-check-interval", "10", "--health-check-timeout", "4",
               "--healthy-threshold", "3", "--unhealthy-threshold", "4", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    elb = boto("elbv2")
    ls = {l["Port"]: l for l in elb.describe_listeners(LoadBalancerArn=doc["resources"]["alb"]["id"])["Listeners"]}
    assert set(ls) == {80, 443}
    assert ls[443]["Protocol"] == "HTTPS" and ls[443]["Certificates"][0]["CertificateArn"] == cert
    assert ls[80]["DefaultActions"][0]["Type"] == "redirect"
    assert ls[80]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    tg = elb.describe_target_groups(TargetGroupArns=[doc["resources"]["target_group"]["id"]])["TargetGroups"][0]
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthCheckTimeoutSeconds"],
            tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (10, 4, 3, 4)
    assert doc["endpoints"]["n8n"].startswith("https://")
    assert destroy(gm, "tls").returncode == 0
    assert leftovers(boto, "tls") == {}


def check_partial_then_resume(gm, proxy, boto, gm_home, name, action):
    proxy.add_rule({"action": action, "error": "ValidationError", "status": 400,
                    "message": "injected failure"})
    r = deploy(gm, name, "--tier", "automation")
    assert r.returncode == 1
    assert "partially deployed" in r.stderr and "--resume %s" % name in r.stderr
    st = load_state(gm_home, name)
    assert st["status"] == "partial" and "injected failure" in st["status_reason"]
    left = leftovers(boto, name)
    assert "load_balancers" not in left and "target_groups" not in left
    assert len(left["vpcs"]) == 1 and len(left["instances"]) == 1 and len(left["file_systems"]) == 1
    assert len(left["auto_scaling_groups"]) == 1
    # The load balancer's security group went too; the instance's stays.
    assert node(st, "alb_sg")["status"] in ("deleted", "pending")
    assert node(st, "asg")["status"] == "created"
    assert group_of(boto, st)["TargetGroupARNs"] == []  # detached before the target group went
    sgs = boto("ec2").describe_security_groups(Filters=[{"Name": "tag:geusemaker:deployment", "Values": [name]}])
    assert [g["GroupId"] for g in sgs["SecurityGroups"]] == [node(st, "sg")["id"]]
    proxy.clear_rules()
    r = gm.run("deploy", "--resume", name, env=FAST)
    assert r.returncode == 0, r.stderr
    left = leftovers(boto, name)
    assert len(left["load_balancers"]) == 1 and len(left["target_groups"]) == 1
    assert len(left["instances"]) == 1 and len(left["vpcs"]) == 1
    assert load_state(gm_home, name)["status"] == "running"
    assert destroy(gm, name).returncode == 0
    assert leftovers(boto, name) == {}


def test_listener_failure_removes_only_the_alb(gm, proxy, boto, gm_home):
    check_partial_then_resume(gm, proxy, boto, gm_home, "lsnfail", "CreateListener")


def test_target_group_failure_removes_only_the_alb(gm, proxy, boto, gm_home):
    check_partial_then_resume(gm, proxy, boto, gm_home, "tgfail", "CreateTargetGroup")


def test_unhealthy_targets_time_out_to_partial(gm, proxy, boto, gm_home):
    proxy.add_rule({"action": "DescribeTargetHealth", "rewrite": [
        {"pattern": "<State>healthy</State>",
         "replace": "<State>unhealthy</State><Reason>Target.FailedHealthChecks</Reason>"
                    "<Description>Health checks failed</Description>"}]})
    r = deploy(gm, "sickalb", "--tier", "automation", "--alb-timeout", "2")
    assert r.returncode == 1
    assert "Target.FailedHealthChecks" in r.stderr
    st = load_state(gm_home, "sickalb")
    assert st["status"] == "partial" and "Target.FailedHealthChecks" in st["status_reason"]
    left = leftovers(boto, "sickalb")
    assert "load_balancers" not in left and len(left["instances"]) == 1
    proxy.clear_rules()
    assert destroy(gm, "sickalb").returncode == 0
    assert leftovers(boto, "sickalb") == {}


def test_alb_options_need_the_automation_tier(gm, proxy):
    r = gm.run("deploy", "--name", "x", "--allow-cidr", CIDR, "--alb-timeout", "10", env=FAST)
    assert r.returncode == 2 and "--tier automation" in r.stderr
    r = gm.run("deploy", "--name", "x", "--tier", "automation", "--allow-cidr", CIDR,
               "--certificate-arn", "not-an-arn", env=FAST)
    assert r.returncode == 2 and "certificate" in r.stderr
    r = gm.run("deploy", "--name", "x" * 29, "--tier", "automation", env=FAST)
    assert r.returncode == 2
    assert proxy.records == []


def test_kill_at_every_request_of_a_tier2_deploy(gm, proxy, boto):
    proxy.clear_records()
    assert deploy(gm, "probe2", "--tier", "automation").returncode == 0
    n = len(proxy.records)
    assert destroy(gm, "probe2").returncode == 0
    for k in range(1, n + 1):
        name = "t2crash%d" % k
        proxy.clear_rules()
        proxy.clear_records()
        proxy.kill_after(k, gm.last_pid, when="before_response")
        p = gm.popen("deploy", "--name", name, "--tier", "automation", "--allow-cidr", CIDR,
                     "--yes", env=FAST)
        p.wait(timeout=120)
        proxy.clear_rules()
        r = destroy(gm, name)
        assert r.returncode == 0 or "no deployment named" in r.stderr, (k, r.stderr)
        assert leftovers(boto, name) == {}, "kill at request %d left resources" % k


def test_kill_then_resume_a_tier2_deploy(gm, proxy, boto):
    """A tier-2 deploy killed at points spread over its requests resumes to
    running with exactly one of each resource."""
    from test_ownership import counts, expected_counts
    from test_crash import NAME_CHECK
    proxy.clear_records()
    assert deploy(gm, "probe2r", "--tier", "automation").returncode == 0
    n = len(proxy.records)
    first = next(i for i, rec in enumerate(proxy.records, 1) if rec["action"] not in NAME_CHECK)
    assert destroy(gm, "probe2r").returncode == 0
    for k in sorted({first, first + 4, first + 10, first + 13, n // 2, (3 * n) // 4, n - 3}):
        name = "t2resume%d" % k
        proxy.clear_rules()
        proxy.kill_after(k, gm.last_pid, when="before_response")
        p = gm.popen("deploy", "--name", name, "--tier", "automation", "--allow-cidr", CIDR,
                     "--yes", env=FAST)
        assert p.wait(timeout=120) == -9, "deploy was not killed at request %d" % k
        proxy.clear_rules()
        r = gm.run("deploy", "--resume", name, env=FAST, timeout=180)
        assert r.returncode == 0, "resume after kill at %d failed:\n%s" % (k, r.stderr)
        assert counts(boto, name) == expected_counts("automation"), k
        assert destroy(gm, name).returncode == 0
        assert leftovers(boto, name) == {}
