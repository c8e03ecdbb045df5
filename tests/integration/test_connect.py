"""geusemaker connect: a port forward or a shell through SSM Session Manager.

The AWS CLI and its session-manager-plugin are fakes written here into a
folder put first on PATH: the fake `aws` records its arguments (NUL-separated)
and exits 7, so the exit code proves connect ran it in its place. Nothing
connects anywhere: the instance is moto's, and its address is never used."""
import json
import re

import pytest

from deployhelpers import FAST, deploy, load_state, node, recorded_instance, take_address

SYSTEM_PATH = "/usr/bin:/bin"
FAKE_EXIT = 7


def make_tools(folder, aws=True, plugin=True):
    folder.mkdir(exist_ok=True)
    argv_file = folder / "aws.argv"
    if aws:
        script = folder / "aws"
        script.write_text('#!/bin/sh\nfor a in "$@"; do printf \'%%s\\0\' "$a"; done > "%s"\n'
                          'exit %d\n' % (argv_file, FAKE_EXIT))
        script.chmod(0o755)
    if plugin:
        script = folder / "session-manager-plugin"
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
    return argv_file


@pytest.fixture
def tools(tmp_path):
    folder = tmp_path / "tools"
    argv_file = make_tools(folder)
    return {"PATH": "%s:%s" % (folder, SYSTEM_PATH)}, argv_file


def recorded(argv_file):
    data = argv_file.read_bytes()
    assert data.endswith(b"\0")
    return data[:-1].decode().split("\0")


def instance_of(gm_home, name):
    return recorded_instance(gm_home, name)


def published_ports(gm):
    """What the stack's Compose file publishes on the instance, by service."""
    yaml = pytest.importorskip("yaml")
    r = gm.run("userdata", "--name", "portcheck", "--compose")
    assert r.returncode == 0, r.stderr
    ports = {}
    for name, svc in yaml.safe_load(r.stdout)["services"].items():
        for p in svc.get("ports", []):
            host, host_port, container_port = p.split(":")
            assert host == "127.0.0.1" and host_port == container_port, p
            ports[name] = int(host_port)
    return ports


def forward(iid, port, local, proxy):
    return ["ssm", "start-session", "--target", iid, "--document-name",
            "AWS-StartPortForwardingSession", "--parameters",
            "portNumber=%d,localPortNumber=%d" % (port, local), "--region", "us-east-1",
            "--endpoint-url", proxy.url]


def writes(records):
    return [r["action"] for r in records
            if not r["action"].startswith(("Describe", "Get", "List"))]


def test_connect_runs_the_aws_cli_for_every_service_and_the_shell(gm, proxy, boto, gm_home,
                                                                  tools):
    env, argv_file = tools
    env.update(FAST)
    assert deploy(gm, "conn").returncode == 0
    iid = instance_of(gm_home, "conn")
    ports = published_ports(gm)
    assert set(ports) == {"n8n", "qdrant", "ollama", "crawl4ai"}, ports
    assert "postgres" not in ports  # internal only: nothing to forward
    proxy.clear_records()
    for service, port in sorted(ports.items()):
        argv_file.unlink(missing_ok=True)
        r = gm.run("connect", "conn", "--service", service, env=env)
        assert r.returncode == FAKE_EXIT, r.stderr
        assert recorded(argv_file) == forward(iid, port, port, proxy), service
        assert "localhost:%d" % port in r.stderr
    # The default is n8n; --local-port changes this side only.
    r = gm.run("connect", "conn", env=env)
    assert r.returncode == FAKE_EXIT, r.stderr
    assert recorded(argv_file) == forward(iid, ports["n8n"], ports["n8n"], proxy)
    r = gm.run("connect", "conn", "--service", "qdrant", "--local-port", "16333", env=env)
    assert r.returncode == FAKE_EXIT, r.stderr
    assert recorded(argv_file) == forward(iid, ports["qdrant"], 16333, proxy)
    assert "http://localhost:16333/dashboard" in r.stderr
    r = gm.run("connect", "conn", "--shell", env=env)
    assert r.returncode == FAKE_EXIT, r.stderr
    assert recorded(argv_file) == ["ssm", "start-session", "--target", iid, "--region",
                                   "us-east-1", "--endpoint-url", proxy.url]
    # A service endpoint of its own is the one passed on.
    ssm_url = proxy.url + "/"
    r = gm.run("connect", "conn", "--shell", env=dict(env, AWS_ENDPOINT_URL_SSM=ssm_url))
    assert r.returncode == FAKE_EXIT, r.stderr
    assert recorded(argv_file)[-2:] == ["--endpoint-url", proxy.url]
    # Only reads: the instance's state, once a run.
    assert writes(proxy.records) == []
    assert {r["action"] for r in proxy.records} == {"DescribeInstances"}

    # status points to connect instead of an incomplete aws command.
    take_address(boto, gm_home, "conn")
    r = gm.run("status", "conn", env=FAST)
    assert r.returncode == 0, r.stderr
    assert "geusemaker connect conn --service" in r.stdout
    assert "AWS-StartPortForwardingSession" not in r.stdout


def test_connect_passes_the_profile(gm, proxy, gm_home, tools, tmp_path):
    env, argv_file = tools
    env.update(FAST)
    assert deploy(gm, "prof").returncode == 0
    iid = instance_of(gm_home, "prof")
    creds = tmp_path / "credentials"
    creds.write_text("[gmprof]\naws_access_key_id = testing-akid\n"
                     "aws_secret_access_key = testing-secret\n")
    env.update({"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_ACCESS_KEY_ID": None,
                "AWS_SECRET_ACCESS_KEY": None})
    r = gm.run("connect", "prof", "--service", "ollama", "--profile", "gmprof", env=env)
    assert r.returncode == FAKE_EXIT, r.stderr
    assert recorded(argv_file) == ["ssm", "start-session", "--target", iid, "--document-name",
                                   "AWS-StartPortForwardingSession", "--parameters",
                                   "portNumber=11434,localPortNumber=11434", "--region",
                                   "us-east-1", "--profile", "gmprof", "--endpoint-url",
                                   proxy.url]
    # AWS_PROFILE is a profile in use too: the printed command must work elsewhere.
    r = gm.run("connect", "prof", "--shell", env=dict(env, AWS_PROFILE="gmprof"))
    assert r.returncode == FAKE_EXIT, r.stderr
    assert recorded(argv_file)[4:8] == ["--region", "us-east-1", "--profile", "gmprof"]


def test_without_the_plugin_it_prints_the_command_and_how_to_install(gm, proxy, gm_home,
                                                                    tmp_path):
    assert deploy(gm, "noplug").returncode == 0
    iid = instance_of(gm_home, "noplug")
    only_aws = tmp_path / "only-aws"
    argv_file = make_tools(only_aws, plugin=False)
    env = dict(FAST, PATH="%s:%s" % (only_aws, SYSTEM_PATH))
    r = gm.run("connect", "noplug", "--service", "crawl4ai", env=env)
    assert r.returncode == 1, r.stderr
    assert not argv_file.exists(), "aws ran without its plugin"
    assert r.stdout.strip() == " ".join(["aws"] + forward(iid, 11235, 11235, proxy))
    assert "session-manager-plugin" in r.stderr and "not on PATH" in r.stderr
    assert "session-manager-working-with-install-plugin" in r.stderr
    # Neither tool: both named, both install pages.
    empty = tmp_path / "empty"
    empty.mkdir()
    r = gm.run("connect", "noplug", "--shell", env=dict(FAST, PATH=str(empty)))
    assert r.returncode == 1, r.stderr
    assert r.stdout.strip() == "aws ssm start-session --target %s --region us-east-1 " \
                               "--endpoint-url %s" % (iid, proxy.url)
    assert "aws and session-manager-plugin are not on PATH" in r.stderr
    assert "getting-started-install" in r.stderr


def test_json_prints_the_plan_and_runs_nothing(gm, proxy, gm_home, tools):
    env, argv_file = tools
    env.update(FAST)
    assert deploy(gm, "plan1").returncode == 0
    iid = instance_of(gm_home, "plan1")
    r = gm.run("connect", "plan1", "--service", "n8n", "--local-port", "8080", "--output",
               "json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["target"] == iid and doc["ran"] is False
    assert doc["argv"] == ["aws"] + forward(iid, 5678, 8080, proxy)
    assert doc["remote_port"] == 5678 and doc["local_port"] == 8080
    assert doc["instance_state"] == "running"
    assert doc["tools"]["aws"].endswith("/aws") and doc["tools"]["session-manager-plugin"]
    assert "ssm:StartSession" in doc["ssm_actions"]
    assert not argv_file.exists()
    # Missing tools are said, not fatal: nothing runs anyway.
    r = gm.run("connect", "plan1", "--shell", "--output", "json",
               env=dict(FAST, PATH=SYSTEM_PATH))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["service"] is None and "remote_port" not in doc
    assert doc["tools"]["session-manager-plugin"] is None


def test_an_instance_that_is_not_running_is_refused(gm, proxy, gm_home, boto, tools):
    env, argv_file = tools
    env.update(FAST)
    assert deploy(gm, "gone").returncode == 0
    iid = instance_of(gm_home, "gone")
    # Behind the tool's back: the group emptied, its instance terminated.
    boto("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=node(load_state(gm_home, "gone"), "asg")["id"], MinSize=0,
        DesiredCapacity=0)
    boto("ec2").terminate_instances(InstanceIds=[iid])
    r = gm.run("connect", "gone", env=env)
    assert r.returncode == 1
    assert "instance %s of 'gone' is terminated" % iid in r.stderr
    assert not argv_file.exists()


def test_a_record_without_instance_is_refused(gm, proxy, gm_home, tools):
    env, argv_file = tools
    env.update(FAST)
    proxy.add_rule({"action": "CreateLaunchTemplate", "error": "InvalidAMIID.NotFound",
                    "status": 400})
    assert deploy(gm, "noinst", "--no-rollback").returncode == 1
    proxy.clear_rules()
    proxy.clear_records()
    r = gm.run("connect", "noinst", "--shell", env=env)
    assert r.returncode == 1
    assert "deployment 'noinst' has no instance" in r.stderr
    assert proxy.records == [] and not argv_file.exists()


@pytest.mark.parametrize("args, message", [
    (["--service", "n8n", "--shell"], "--service and --shell are exclusive"),
    (["--shell", "--local-port", "8080"], "--local-port applies to a port forward"),
    (["--local-port", "0"], "invalid --local-port '0'"),
    (["--local-port", "65536"], "invalid --local-port '65536'"),
    (["--local-port", "80x"], "invalid --local-port '80x'"),
    (["--local-port", "-1"], "invalid --local-port '-1'"),
    (["--service", "mysql"], "unknown service 'mysql'"),
    (["--service", "postgres"], "sudo docker exec -it geusemaker-postgres psql"),
    (["--servce", "n8n"], "--service"),
])
def test_bad_input_is_exit_2_before_any_request(gm, proxy, tools, args, message):
    env, argv_file = tools
    # The options are checked first: the name has no record, and that is not what is said.
    r = gm.run("connect", "nosuch", *args, env=env)
    assert r.returncode == 2, (args, r.stderr)
    assert message in r.stderr, r.stderr
    r = gm.run("connect", "nosuch", "--output", "json", *args, env=env)
    assert r.returncode == 2 and json.loads(r.stdout)["exit_code"] == 2
    assert proxy.records == [] and not argv_file.exists()


@pytest.mark.parametrize("args, message", [
    (["nosuch"], "no deployment named 'nosuch'"),
    (["BAD!"], "invalid deployment name 'BAD!'"),
    ([], "connect takes exactly one deployment name"),
])
def test_bad_names_are_exit_2_before_any_request(gm, proxy, tools, args, message):
    env, argv_file = tools
    r = gm.run("connect", *args, env=env)
    assert r.returncode == 2, r.stderr
    assert re.search(re.escape(message), r.stderr), r.stderr
    assert proxy.records == [] and not argv_file.exists()


def test_help_names_the_services_and_the_exit_codes(gm):
    r = gm.run("connect", "--help")
    assert r.returncode == 0
    for word in ("--service", "--local-port", "--shell", "session-manager-plugin",
                 "5 not healthy"):
        assert word in r.stdout, word


def test_a_replacement_no_command_has_seen_is_the_target(gm, proxy, gm_home, boto, tools):
    """The group replaced the instance behind the tool's back (a spot reclaim,
    a failed health check): connect asks EC2 for the group's instance now
    instead of trusting the record."""
    env, argv_file = tools
    env.update(FAST)
    assert deploy(gm, "moved").returncode == 0
    old = instance_of(gm_home, "moved")
    boto("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=old, ShouldDecrementDesiredCapacity=False)
    group = node(load_state(gm_home, "moved"), "asg")["id"]
    now = [i["InstanceId"] for i in boto("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]]
    assert now and old not in now
    assert instance_of(gm_home, "moved") == old  # the record has not seen it
    r = gm.run("connect", "moved", "--shell", "--output", "json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["target"] == now[0] and doc["instance_state"] == "running"
    assert not argv_file.exists()
