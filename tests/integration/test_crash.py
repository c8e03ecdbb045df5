"""Crash safety: SIGKILL the deploy after its k-th request, for every k.

After each kill, destroy must leave nothing of the deployment; for a sample of
k, deploy --resume must finish the deployment with no duplicate resources."""
import os

from deployhelpers import CIDR, FAST, deploy, destroy, leftovers


# The one-name-per-region look-up, before the record exists: the tagging API,
# then what it may not list (groups, launch templates, addresses) by their tags.
NAME_CHECK = ("GetResources", "DescribeAutoScalingGroups", "DescribeLaunchTemplates",
              "DescribeAddresses")


def count_deploy_requests(gm, proxy, boto, with_first=False):
    """How many requests a deploy makes (and, with_first, the 1-based number of
    the first one after the name check: the record is saved before it)."""
    proxy.clear_records()
    r = deploy(gm, "probe")
    assert r.returncode == 0, r.stderr
    n = len(proxy.records)
    first = next(i for i, rec in enumerate(proxy.records, 1) if rec["action"] not in NAME_CHECK)
    assert destroy(gm, "probe").returncode == 0
    assert leftovers(boto, "probe") == {}
    proxy.clear_records()
    return (n, first) if with_first else n


def kill_deploy_after(gm, proxy, name, k, when="before_response"):
    proxy.clear_rules()
    proxy.clear_records()
    proxy.kill_after(k, gm.last_pid, when=when)
    p = gm.popen("deploy", "--name", name, "--allow-cidr", CIDR, "--yes", env=FAST)
    code = p.wait(timeout=120)
    proxy.clear_rules()
    return code


def assert_single_complete(boto, name):
    left = leftovers(boto, name)
    for kind in ("vpcs", "instances", "file_systems", "security_groups", "igws", "route_tables",
                 "auto_scaling_groups", "launch_templates", "addresses"):
        assert len(left.get(kind, [])) == 1, (kind, left)
    assert len(left["subnets"]) == 2 and len(left["mount_targets"]) == 2, left
    assert len(left["parameters"]) == 6, left  # five secrets and the config
    assert len(left["roles"]) == 1 and len(left["instance_profiles"]) == 1, left


def test_kill_at_every_request_then_destroy_leaves_nothing(gm, proxy, boto, gm_home):
    n = count_deploy_requests(gm, proxy, boto)
    assert n >= 20
    killed = 0
    for k in range(1, n + 1):
        name = "crash%d" % k
        code = kill_deploy_after(gm, proxy, name, k)
        if code == -9:
            killed += 1
        r = destroy(gm, name)
        if r.returncode != 0 and "no deployment named" not in r.stderr:
            raise AssertionError("destroy after kill at request %d failed:\n%s" % (k, r.stderr))
        assert leftovers(boto, name) == {}, "kill at request %d left resources" % k
    # Every k below the total count really interrupted the deploy.
    assert killed >= n - 1


def test_kill_then_resume_completes_without_duplicates(gm, proxy, boto):
    n, first = count_deploy_requests(gm, proxy, boto, with_first=True)
    # The name check's look-ups come before the record exists.
    sample = sorted({first, first + 1, n // 4, n // 2, (3 * n) // 4, n - 2})
    for k in sample:
        name = "resume%d" % k
        code = kill_deploy_after(gm, proxy, name, k)
        assert code == -9, "deploy was not killed at request %d" % k
        r = gm.run("deploy", "--resume", name, env=FAST, timeout=120)
        assert r.returncode == 0, "resume after kill at %d failed:\n%s" % (k, r.stderr)
        assert_single_complete(boto, name)
        assert destroy(gm, name).returncode == 0
        assert leftovers(boto, name) == {}


def test_kill_after_response_then_resume(gm, proxy, boto):
    n = count_deploy_requests(gm, proxy, boto)
    k = n // 2
    code = kill_deploy_after(gm, proxy, "afterresp", k, when="after_response")
    assert code == -9
    r = gm.run("deploy", "--resume", "afterresp", env=FAST, timeout=120)
    assert r.returncode == 0, r.stderr
    assert_single_complete(boto, "afterresp")
    assert destroy(gm, "afterresp").returncode == 0
    assert leftovers(boto, "afterresp") == {}
