"""geusemaker against moto with signature verification and IAM enforcement on.

A moto server of its own (the rest of the suite is unaffected) started with
INITIAL_NO_AUTH_ACTION_COUNT=3: the first three requests make an admin user
(CreateUser, PutUserPolicy, CreateAccessKey), every later one must carry a
valid SigV4 signature of a known access key, verified the SDK way (botocore's
SigV4Auth over the headers the request names as signed), and be allowed by
that user's policies. geusemaker runs as a user whose only policy is
docs/iam-policy.json, through the fault proxy (so the API model check sees
these requests too).

What moto can evaluate, found here (moto 5.x, moto/iam/access_control.py):
- Actions: yes, with wildcards, Allow and Deny. The action name is
  `<signing name>:<operation>`, so the Resource Groups Tagging API, which is
  signed as "tagging", is checked as `tagging:GetResources` where AWS checks
  `tag:GetResources`.
- Resources: no. Every request of EC2, EFS, ELBv2, SSM and the tagging API
  is evaluated against the resource "*" (only IAM role operations, STS and
  SQS name a resource), so a statement scoped to ARN patterns never matches
  and its actions are denied.
- Conditions: no. Without request context every condition holds
  (ec2:CreateAction, ec2:ResourceTag/ManagedBy, iam:PassedToService are
  never false), and actions AWS checks implicitly (ec2:CreateTags for
  TagSpecifications, iam:PassRole and ec2:RunInstances for the Auto Scaling
  group's launch template, iam:CreateServiceLinkedRole for its first group)
  are not checked at all.
- Signatures: yes, for every request, but a REST request without a body
  (EFS GET/DELETE) is rebuilt with its query or headers as the body and can
  never verify, not even boto3's: moto_iam_server.py fixes that one step.

So the test attaches docs/iam-policy.json as moto can read it (moto_policy):
every statement's Action list verbatim, its Resource widened to "*", and the
tagging alias added. That proves every call the tool makes is among the
policy's actions and that every request is signed the way AWS verifies, and
the negative controls prove a missing action fails clearly. It cannot prove
the ARN patterns and conditions narrow nothing the tool needs; the last two
tests pin down exactly what moto does with the verbatim policy.
"""
import copy
import json
import os
import sys
import urllib.error
import urllib.request

import pytest

import localserver
from apiaudit import API_AUDIT
from conftest import GM, REGION, _binary_path, _scrubbed
from deployhelpers import CIDR, FAST, deploy, destroy, state_path
from faultproxy import FaultProxy

HERE = os.path.dirname(os.path.abspath(__file__))
POLICY_PATH = os.path.join(HERE, "..", "..", "docs", "iam-policy.json")
ADMIN_POLICY = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def docs_policy():
    with open(POLICY_PATH) as f:
        return json.load(f)


def _actions(stmt):
    a = stmt.get("Action", [])
    return [a] if isinstance(a, str) else list(a)


def moto_policy(policy, drop=()):
    """docs/iam-policy.json as moto can evaluate it (module docstring):
    actions verbatim (less `drop`), Resource "*", `tagging:` beside `tag:`."""
    p = copy.deepcopy(policy)
    for stmt in p["Statement"]:
        acts = [a for a in _actions(stmt) if a not in drop]
        acts += ["tagging:" + a.split(":", 1)[1] for a in acts if a.startswith("tag:")]
        stmt["Action"] = acts
        stmt["Resource"] = "*"
    p["Statement"] = [s for s in p["Statement"] if s["Action"]]
    return p


class AuthMoto:
    """A moto server with IAM enforcement after 3 requests, and its admin."""

    def __init__(self, logdir, patched=True):
        env = dict(_scrubbed(os.environ), MOTO_IAM_LOAD_MANAGED_POLICIES="true",
                   INITIAL_NO_AUTH_ACTION_COUNT="3")

        def argv(port):
            cmd = [sys.executable, os.path.join(HERE, "moto_iam_server.py"),
                   "-H", "127.0.0.1", "-p", str(port)]
            return cmd if patched else cmd + ["--unpatched"]

        # On a free port, up once its own process listens there (localserver.py).
        self.proc, self.port, self.url, self.log = localserver.start(
            argv, lambda port: os.path.join(str(logdir), "moto-iam-%d.log" % port), env)
        # The three unauthenticated requests: the admin every later one is signed as.
        iam = self.client("iam", "bootstrap", "bootstrap")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all",
                            PolicyDocument=json.dumps(ADMIN_POLICY))
        k = iam.create_access_key(UserName="admin")["AccessKey"]
        self.admin = (k["AccessKeyId"], k["SecretAccessKey"])

    def client(self, service, key_id=None, secret=None):
        import boto3
        from botocore.config import Config
        key_id, secret = (key_id, secret) if key_id else self.admin
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key_id, aws_secret_access_key=secret,
                            config=Config(retries={"total_max_attempts": 2}))

    def user(self, name, policy):
        """A user whose only policy is `policy`; returns (key id, secret)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="geusemaker",
                            PolicyDocument=json.dumps(policy))
        k = iam.create_access_key(UserName=name)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]

    def stop(self):
        localserver.stop(self.proc)
        self.log.close()


@pytest.fixture(scope="module")
def auth_moto(tmp_path_factory):
    m = AuthMoto(tmp_path_factory.mktemp("moto-iam"))
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def auth_proxy(auth_moto, tmp_path):
    p = FaultProxy(auth_moto.url, log_path=tmp_path / "requests.jsonl",
                   observer=API_AUDIT.observe)
    p.start()
    try:
        yield p
    finally:
        p.stop()


_users = [0]


@pytest.fixture
def run_as(auth_moto, auth_proxy, tmp_path, request):
    """run_as(policy) -> a GM runner signed as a new user with that policy."""
    binary = _binary_path(request.config)
    runners = []

    def make(policy, keys=None):
        _users[0] += 1
        key_id, secret = keys or auth_moto.user("geusemaker-%d" % _users[0], policy)
        home = tmp_path / ("gmhome-%d" % _users[0])
        home.mkdir(mode=0o700)
        wd = tmp_path / ("gmwd-%d" % _users[0])
        wd.mkdir()
        env = {k: v for k, v in _scrubbed(os.environ).items() if not k.startswith("GEUSEMAKER_")}
        env.update({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
                    "AWS_REGION": REGION, "AWS_ENDPOINT_URL": auth_proxy.url,
                    "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
                    "GEUSEMAKER_HOME": str(home), "NO_COLOR": "1",
                    "NO_PROXY": "127.0.0.1,localhost"})
        g = GM(binary, env, wd)
        g.home = home
        runners.append(g)
        return g

    yield make
    for g in runners:
        g.cleanup()


def _denied(proxy):
    return [r for r in proxy.records if r["status"] == 403]


def _everything_gone(auth_moto, name):
    ec2 = auth_moto.client("ec2")
    f = [{"Name": "tag:geusemaker:deployment", "Values": [name]}]
    left = [v["VpcId"] for v in ec2.describe_vpcs(Filters=f)["Vpcs"]]
    left += [i["InstanceId"] for r in ec2.describe_instances(Filters=f)["Reservations"]
             for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]
    left += [fs["FileSystemId"] for fs in auth_moto.client("efs").describe_file_systems()[
        "FileSystems"] if {"Key": "geusemaker:deployment", "Value": name} in fs.get("Tags", [])]
    left += [r["RoleName"] for r in auth_moto.client("iam").list_roles()["Roles"]
             if r["RoleName"].startswith("geusemaker-%s-" % name)]
    left += [lb["LoadBalancerName"] for lb in auth_moto.client("elbv2").describe_load_balancers()[
        "LoadBalancers"] if lb["LoadBalancerName"] == name + "-alb"]
    left += [g["AutoScalingGroupName"] for g in auth_moto.client("autoscaling")
             .describe_auto_scaling_groups(Filters=f)["AutoScalingGroups"]]
    left += [t["LaunchTemplateId"] for t in ec2.describe_launch_templates(Filters=f)[
        "LaunchTemplates"]]
    left += [a["AllocationId"] for a in ec2.describe_addresses(Filters=f)["Addresses"]]
    return left


def test_signatures_are_verified(auth_moto, run_as, auth_proxy):
    """Enforcement is really on: a wrong secret and an unknown key are refused
    (exit 4), and so is a request that signs its User-Agent (the SDKs never
    do), while geusemaker's requests verify."""
    key_id, secret = auth_moto.user("sigcheck", moto_policy(docs_policy()))
    r = run_as(None, keys=(key_id, secret)).run("whoami")
    assert r.returncode == 0, r.stderr
    assert "user/sigcheck" in r.stdout
    r = run_as(None, keys=(key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"))).run("whoami")
    assert r.returncode == 4 and "SignatureDoesNotMatch" in r.stderr, r.stderr
    r = run_as(None, keys=("AKIAUNKNOWNKEY000000", secret)).run("whoami")
    assert r.returncode == 4 and "InvalidClientTokenId" in r.stderr, r.stderr

    # The same request, signed once as the SDKs sign and once with the
    # User-Agent among the signed headers (as geusemaker signed before).
    from botocore import auth as bauth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def send(sign_user_agent):
        req = AWSRequest("POST", auth_moto.url + "/",
                         data="Action=GetCallerIdentity&Version=2011-06-15",
                         headers={"Content-Type": "application/x-www-form-urlencoded; "
                                                  "charset=utf-8",
                                  "User-Agent": "geusemaker/0-test"})
        saved = list(bauth.SIGNED_HEADERS_BLACKLIST)
        if sign_user_agent:
            bauth.SIGNED_HEADERS_BLACKLIST.remove("user-agent")
        try:
            bauth.SigV4Auth(Credentials(key_id, secret), "sts", REGION).add_auth(req)
        finally:
            bauth.SIGNED_HEADERS_BLACKLIST[:] = saved
        assert ("user-agent" in req.headers["Authorization"]) == sign_user_agent
        prepared = req.prepare()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        hreq = urllib.request.Request(prepared.url, data=body, method="POST",
                                      headers=dict(prepared.headers.items()))
        try:
            with _opener.open(hreq, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    status, body = send(False)
    assert status == 200 and "user/sigcheck" in body, body
    status, body = send(True)
    assert status == 403 and "SignatureDoesNotMatch" in body, body


def test_deploy_status_destroy_adopt_cleanup_with_the_policy(auth_moto, run_as, auth_proxy):
    """docs/iam-policy.json (as moto reads it) is enough for everything:
    deploy (dev and automation), status, cleanup --dry-run and adopt of a
    lost record, destroy."""
    gm = run_as(moto_policy(docs_policy()))
    for tier, name in (("dev", "iamdev"), ("automation", "iamauto")):
        r = deploy(gm, name, "--tier", tier)
        assert r.returncode == 0, r.stderr
        r = gm.run("status", name, env=FAST)
        # dev: degraded (5) until the instance takes its address at boot (moto runs no UserData)
        assert r.returncode == (5 if tier == "dev" else 0), r.stdout
        for day2 in (("update", name, "--instance-types", "m5.xlarge", "--yes"),
                     ("stop", name), ("start", name)):
            r = gm.run(*day2, env=FAST)
            assert r.returncode == 0, (day2, r.stderr)
        os.unlink(state_path(gm.home, name))  # the record lost
        r = gm.run("cleanup", "--dry-run", env=FAST)
        assert r.returncode == 0, r.stderr
        assert name in r.stdout
        r = gm.run("adopt", name, env=FAST)
        assert r.returncode == 0, r.stderr
        r = gm.run("status", name, env=FAST)
        assert r.returncode == (5 if tier == "dev" else 0), r.stdout
        r = destroy(gm, name)
        assert r.returncode == 0, r.stderr
        assert _everything_gone(auth_moto, name) == []
    assert _denied(auth_proxy) == []
    services = {rec["service"] for rec in auth_proxy.records}
    assert {"ec2", "elasticfilesystem", "elasticloadbalancing", "iam", "ssm",
            "tagging", "autoscaling"} <= services, services
    ua = {rec["request_headers"].get("User-Agent", "")[:11] for rec in auth_proxy.records}
    assert ua == {"geusemaker/"}


# One action of each protocol and each stage: each one missing fails the
# deploy with an access-denied error naming it; the rest is rolled back.
MISSING = [
    ("ec2:CreateSecurityGroup", "ec2 CreateSecurityGroup", 4),
    ("iam:CreateRole", "iam CreateRole", 4),
    ("elasticfilesystem:CreateFileSystem", "elasticfilesystem CreateFileSystem", 4),
    ("ssm:PutParameter", "ssm PutParameter", 4),
    ("elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing CreateLoadBalancer", 4),
    ("tag:GetResources", "tagging GetResources", 4),
    ("autoscaling:CreateAutoScalingGroup", "autoscaling CreateAutoScalingGroup", 4),
    ("ec2:CreateLaunchTemplate", "ec2 CreateLaunchTemplate", 4),
]


@pytest.mark.parametrize("action,call,code", MISSING, ids=[m[0] for m in MISSING])
def test_a_missing_action_is_denied(auth_moto, run_as, auth_proxy, action, call, code):
    name = "neg%d" % (MISSING.index((action, call, code)) + 1)
    gm = run_as(moto_policy(docs_policy(), drop={action}))
    r = deploy(gm, name, "--tier", "automation")
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "%s failed: AccessDenied" % call in r.stderr, r.stderr
    assert "not authorized to perform: %s" % action.replace("tag:", "tagging:") in r.stderr
    assert "their IAM policy does not allow this call" in r.stderr
    denied = _denied(auth_proxy)
    assert denied and {(d["service"], d["action"]) for d in denied} == \
        {tuple(call.split(" "))}
    # Whatever the failed deploy left, the full policy removes.
    full = run_as(moto_policy(docs_policy()))
    if os.path.exists(state_path(gm.home, name)):
        os.makedirs(os.path.join(str(full.home), "deployments"), mode=0o700, exist_ok=True)
        os.rename(state_path(gm.home, name), state_path(full.home, name))
        r = destroy(full, name)
        assert r.returncode == 0, r.stderr
    assert _everything_gone(auth_moto, name) == []


def test_moto_checks_tagging_as_tagging(auth_moto, run_as, auth_proxy):
    """docs/iam-policy.json verbatim but for Resource "*": without the
    `tagging:` alias moto refuses GetResources, which AWS checks as
    tag:GetResources (the policy's name for it)."""
    pol = docs_policy()
    for stmt in pol["Statement"]:
        stmt["Resource"] = "*"
    gm = run_as(pol)
    r = deploy(gm, "tagq")
    assert r.returncode == 4, r.stderr
    assert "not authorized to perform: tagging:GetResources" in r.stderr


def test_moto_evaluates_arn_scoped_statements_against_star(auth_moto, run_as, auth_proxy):
    """docs/iam-policy.json verbatim (plus the tagging alias): moto denies
    the actions of every statement scoped to ARN patterns, since it checks
    EC2, EFS, ELBv2 and SSM requests against the resource "*"."""
    pol = docs_policy()
    scoped = set()
    for stmt in pol["Statement"]:
        if stmt["Resource"] != "*":
            scoped.update(_actions(stmt))
        if "tag:GetResources" in _actions(stmt):
            stmt["Action"] = _actions(stmt) + ["tagging:GetResources"]
    gm = run_as(pol)
    r = deploy(gm, "arnq")
    assert r.returncode == 4, r.stderr
    denied = {"%s:%s" % (d["service"], d["action"]) for d in _denied(auth_proxy)}
    assert denied and denied <= scoped, (denied, scoped)
    if os.path.exists(state_path(gm.home, "arnq")):
        full = run_as(moto_policy(docs_policy()))
        os.makedirs(os.path.join(str(full.home), "deployments"), mode=0o700, exist_ok=True)
        os.rename(state_path(gm.home, "arnq"), state_path(full.home, "arnq"))
        assert destroy(full, "arnq").returncode == 0


def test_unpatched_moto_refuses_bodyless_rest_requests(tmp_path):
    """Why moto_iam_server.py patches moto: unpatched, moto refuses boto3's
    own EFS GET (a REST request without a body) while it takes its POST."""
    from botocore.exceptions import ClientError
    m = AuthMoto(tmp_path, patched=False)
    try:
        efs = m.client("efs")
        fs = efs.create_file_system(CreationToken="t1")
        with pytest.raises(ClientError) as e:
            efs.describe_file_systems(FileSystemId=fs["FileSystemId"])
        assert "SignatureDoesNotMatch" in str(e.value)
    finally:
        m.stop()


def test_image_build_list_delete_with_the_policy(auth_moto, run_as, auth_proxy):
    """A baked image with the policy's actions: the build (its network, role,
    builder, image and snapshot tags at creation, the clean-up), list and
    delete; nothing is denied."""
    import time

    gm = run_as(moto_policy(docs_policy()))
    proc = gm.popen("image", "build", "--yes", "--output", "json", env=FAST)
    ec2 = auth_moto.client("ec2")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        found = [i for r in ec2.describe_instances(Filters=[
            {"Name": "tag:geusemaker:node", "Values": ["builder"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
            for i in r["Instances"]]
        if found:  # the builder's script would tag itself so once done
            ec2.create_tags(Resources=[found[0]["InstanceId"]],
                            Tags=[{"Key": "geusemaker:bake", "Value": "done"}])
            break
        time.sleep(0.05)
    proc.wait(timeout=180)
    out, err = gm.output(proc)
    assert proc.returncode == 0, err
    ami = json.loads(out)["image_id"]
    r = gm.run("image", "list", "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    assert ami in [i["id"] for i in json.loads(r.stdout)["images"]]
    r = gm.run("image", "delete", ami, "--yes", env=FAST)
    assert r.returncode == 0, r.stderr
    assert _denied(auth_proxy) == []
    assert ec2.describe_images(ImageIds=[ami])["Images"] == []
