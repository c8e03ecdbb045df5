"""The cloud is the truth when the record is not: one name per region, adopt
rebuilds a lost record, cleanup finds and deletes what no record knows."""
import json
import os
import shutil

from conftest import REGION
from deployhelpers import CIDR, FAST, deploy, destroy, leftovers, load_state, node, state_path
from test_ownership import counts, expected_counts

RESOURCE_NODES = ["vpc", "igw", "subnet_a", "subnet_b", "route_table", "sg", "efs",
                  "mount_target_a", "mount_target_b", "role", "instance_profile", "secrets",
                  "instance"]
READS = ("Describe", "Get", "List")


def writes(records):
    """The requests that were not reads."""
    return [r["action"] for r in records if not r["action"].startswith(READS)]


def test_a_second_state_folder_cannot_take_a_used_name(gm, proxy, boto, tmp_path):
    assert deploy(gm, "shared").returncode == 0
    before = counts(boto, "shared")
    other = tmp_path / "other-home"
    other.mkdir(mode=0o700)
    proxy.clear_records()
    r = deploy(gm, "shared", env={"GEUSEMAKER_HOME": str(other)})
    assert r.returncode == 2, r.stderr
    assert "taken" in r.stderr and "geusemaker adopt shared --id" in r.stderr, r.stderr
    assert "cleanup --name shared" in r.stderr
    assert writes(proxy.records) == [], "the refused deploy changed something"
    assert not (other / "deployments" / "shared.json").exists()
    # The first deployment is untouched and still its folder's.
    assert counts(boto, "shared") == before == expected_counts("dev")
    r = gm.run("status", "shared", "--output", "json", env=FAST)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "running"
    assert destroy(gm, "shared").returncode == 0
    assert leftovers(boto, "shared") == {}


def test_adopt_rebuilds_a_lost_record_then_resume_and_destroy_work(gm, proxy, boto, gm_home):
    assert deploy(gm, "lostrec").returncode == 0
    original = load_state(gm_home, "lostrec")
    os.unlink(state_path(gm_home, "lostrec"))
    r = gm.run("status", "lostrec", env=FAST)
    assert r.returncode != 0

    proxy.clear_records()
    r = gm.run("adopt", "lostrec", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    assert writes(proxy.records) == [], "adopt must only read"
    doc = json.loads(r.stdout)
    assert doc["status"] == "running", doc
    assert doc["adopted"]["deployment_id"] == original["deployment_id"]
    assert doc["adopted"]["config_found"] is True
    adopted = load_state(gm_home, "lostrec")
    assert adopted["deployment_id"] == original["deployment_id"]
    assert adopted["config"] == original["config"]
    for n in RESOURCE_NODES:
        assert node(adopted, n)["id"] == node(original, n)["id"], n
    assert node(adopted, "instance")["outputs"]["public_ip"] == \
        node(original, "instance")["outputs"]["public_ip"]
    assert node(adopted, "subnet_a")["outputs"]["az"] == node(original, "subnet_a")["outputs"]["az"]

    # A record exists now: adopt refuses to overwrite it.
    r = gm.run("adopt", "lostrec", env=FAST)
    assert r.returncode == 2 and "exists" in r.stderr

    r = gm.run("status", "lostrec", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    live = json.loads(r.stdout)["live"]
    assert all(live[n]["exists"] for n in RESOURCE_NODES if n in live)

    r = gm.run("deploy", "--resume", "lostrec", env=FAST, timeout=180)
    assert r.returncode == 0, r.stderr
    assert counts(boto, "lostrec") == expected_counts("dev")

    assert destroy(gm, "lostrec").returncode == 0
    assert leftovers(boto, "lostrec") == {}


def test_adopt_a_load_balanced_deployment(gm, proxy, boto, gm_home):
    assert deploy(gm, "lostalb", "--tier", "automation").returncode == 0
    original = load_state(gm_home, "lostalb")
    os.unlink(state_path(gm_home, "lostalb"))
    r = gm.run("adopt", "lostalb", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["tier"] == "automation" and doc["status"] == "running", doc
    adopted = load_state(gm_home, "lostalb")
    assert node(adopted, "alb")["outputs"]["dns"] == node(original, "alb")["outputs"]["dns"]
    assert "load_balancer" in doc["endpoints"], doc["endpoints"]
    for n in ("alb", "target_group", "alb_sg"):
        assert node(adopted, n)["id"] == node(original, n)["id"], n
    # Listeners go with their load balancer: the node is found through it.
    assert node(adopted, "listener")["status"] == "created"
    assert destroy(gm, "lostalb").returncode == 0
    assert leftovers(boto, "lostalb") == {}


def test_adopt_refuses_what_does_not_exist_and_bad_ids(gm, proxy):
    proxy.clear_records()
    r = gm.run("adopt", "nosuchdeploy", env=FAST)
    assert r.returncode == 2 and "nothing to adopt" in r.stderr, r.stderr
    r = gm.run("adopt", "nosuchdeploy", "--id", "NOT-AN-ID", env=FAST)
    assert r.returncode == 2 and "not a deployment id" in r.stderr
    assert writes(proxy.records) == []


def test_cleanup_finds_a_killed_deploy_whose_folder_is_gone(gm, proxy, boto, gm_home):
    proxy.kill_after(1, gm.last_pid, action="RunInstances")
    p = gm.popen("deploy", "--name", "orphan", "--allow-cidr", CIDR, "--yes", env=FAST)
    assert p.wait(timeout=120) == -9
    proxy.clear_rules()
    made = leftovers(boto, "orphan")
    assert made.get("vpcs") and made.get("roles") and made.get("file_systems"), made
    shutil.rmtree(gm_home)
    os.mkdir(gm_home, 0o700)

    # Without a terminal, cleanup needs --yes or --dry-run, and asks nothing of AWS.
    proxy.clear_records()
    r = gm.run("cleanup", env=FAST)
    assert r.returncode == 2 and "--yes" in r.stderr
    assert proxy.records == []

    r = gm.run("cleanup", "--dry-run", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    assert writes(proxy.records) == [], "--dry-run must only read"
    doc = json.loads(r.stdout)
    found = [d for d in doc["deployments"] if d["name"] == "orphan"]
    assert len(found) == 1 and found[0]["region"] == REGION
    kinds = {res["kind"] for res in found[0]["resources"]}
    assert {"vpc", "efs", "iam_role", "instance_profile", "secrets"} <= kinds, kinds
    assert leftovers(boto, "orphan") == made, "--dry-run deleted something"

    r = gm.run("cleanup", "--dry-run", env=FAST)
    assert r.returncode == 0 and "orphan" in r.stdout and "/hour" in r.stdout

    r = gm.run("cleanup", "--yes", env=FAST, timeout=240)
    assert r.returncode == 0, r.stderr
    assert leftovers(boto, "orphan") == {}
    r = gm.run("cleanup", "--dry-run", env=FAST)
    assert r.returncode == 0 and "nothing to clean up" in r.stdout


def test_cleanup_keeps_recorded_deployments_and_what_is_not_ours(gm, proxy, boto):
    assert deploy(gm, "keepme").returncode == 0
    iam = boto("iam")
    # A role named like ours without our tags is someone else's.
    iam.create_role(RoleName="geusemaker-lookalike-abcdefghijkl-role", Path="/geusemaker/",
                    AssumeRolePolicyDocument="{}")
    # An IAM-only orphan (a deploy killed right after CreateRole).
    tags = [{"Key": "geusemaker:deployment", "Value": "iamonly"},
            {"Key": "geusemaker:deployment-id", "Value": "zyxwvutsrq98"},
            {"Key": "geusemaker:node", "Value": "role"},
            {"Key": "geusemaker:region", "Value": REGION}]
    iam.create_role(RoleName="geusemaker-iamonly-zyxwvutsrq98-role", Path="/geusemaker/",
                    AssumeRolePolicyDocument="{}", Tags=tags)
    r = gm.run("cleanup", "--yes", "--output", "json", env=FAST, timeout=240)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [d["name"] for d in doc["deployments"]] == ["iamonly"], doc
    assert doc["deployments"][0]["deleted"] is True
    roles = {x["RoleName"] for x in iam.list_roles()["Roles"]}
    assert "geusemaker-iamonly-zyxwvutsrq98-role" not in roles
    assert "geusemaker-lookalike-abcdefghijkl-role" in roles
    assert counts(boto, "keepme") == expected_counts("dev")
    assert destroy(gm, "keepme").returncode == 0
