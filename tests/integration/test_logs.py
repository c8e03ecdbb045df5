"""geusemaker logs: SSM Run Command against moto, through the fault proxy.

moto accepts SendCommand for any instance id and answers every
GetCommandInvocation with Success and an empty output (STACK.md). A fake
agent (FakeAgent, a `respond` rule of the proxy) stands in for the instance's
SSM agent: it runs each script that SendCommand carries with /bin/sh (dash
here, as on Ubuntu) in a sandbox, with the script's /tmp/ and /var/log/ moved
under a folder of the test and stubs for docker and journalctl, and puts the
script's output, exit code and status into moto's GetCommandInvocation
answers, cut at the API's 24,000 characters of output. So the scripts the
tool generates really run: paging, gzip, base64, the clean-up of the
temporary folder, the follow windows.

What the agent cannot show (real AWS only): the agent's registration
(simulated with InvalidInstanceId from the proxy, as AWS answers it),
delivery delays, and the real docker/journald/stat on an instance.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deployhelpers import FAST, deploy, load_state, node, recorded_instance

OUTPUT_MAX = 24000  # GetCommandInvocation's StandardOutputContent
ERROR_MAX = 8000

DOCKER_STUB = r'''#!%(python)s
import os, sys
args = sys.argv[1:]
root = os.environ["GM_FAKE"]
with open(os.path.join(root, "docker.args"), "a") as f:
    f.write(" ".join(args) + "\n")
if not args or args[0] != "logs":
    sys.exit(2)
opts, i = {}, 1
while i < len(args) - 1:
    opts[args[i]] = args[i + 1]
    i += 2
name = args[-1]
path = os.path.join(root, "docker", name + ".log")
if not os.path.exists(path):
    sys.stderr.write("Error response from daemon: No such container: %%s\n" %% name)
    sys.exit(1)
lines = []
with open(path, "rb") as f:
    for line in f:
        ts, _, text = line.partition(b" ")
        if "--since" in opts and float(ts) < float(opts["--since"]):
            continue
        if "--until" in opts and float(ts) > float(opts["--until"]):
            continue
        lines.append(text)
tail = opts.get("--tail", "all")
if tail != "all":
    lines = lines[len(lines) - int(tail):] if int(tail) else []
sys.stdout.buffer.write(b"".join(lines))
'''

JOURNAL_STUB = r'''#!%(python)s
import os, sys
root = os.environ["GM_FAKE"]
with open(os.path.join(root, "journalctl.args"), "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
units = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "-u"]
sys.stdout.write("2026-11-30T12:00:00+0000 host systemd[1]: Started %%s.\n" %% ", ".join(units))
'''


class FakeAgent:
    """The instance's SSM agent, for the proxy's `respond` hook (module docstring)."""

    def __init__(self, root):
        self.root = Path(root)
        for sub in ("tmp", "bin", "docker", "var/log/nginx", "var/log/geusemaker"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for name, text in (("docker", DOCKER_STUB), ("journalctl", JOURNAL_STUB)):
            p = self.root / "bin" / name
            p.write_text(text % {"python": sys.executable})
            p.chmod(0o755)
        self.lock = threading.Lock()
        self.runs = {}  # command id -> {"commands", "rc", "out", "err", "polls"}
        self.scripts = []  # every script run, in order
        self.in_progress = 1  # answer InProgress this many times before the result

    def container_log(self, name, lines, at=None):
        """Appends lines to container geusemaker-NAME's log (timestamp: at or now)."""
        ts = "%.6f" % (time.time() if at is None else at)
        with open(self.root / "docker" / ("geusemaker-" + name + ".log"), "a") as f:
            for line in lines:
                f.write("%s %s\n" % (ts, line))

    def args(self, tool):
        p = self.root / (tool + ".args")
        return p.read_text().splitlines() if p.exists() else []

    def normal(self, text):
        """The instance's paths in text as they are there (the sandbox's prefix gone)."""
        return text.replace(str(self.root), "")

    def leftovers(self):
        return sorted(p.name for p in (self.root / "tmp").iterdir())

    def run(self, commands):
        script = "\n".join(commands)
        script = script.replace("/tmp/", "%s/tmp/" % self.root)
        script = script.replace("/var/log/", "%s/var/log/" % self.root)
        env = {"PATH": "%s/bin:/usr/bin:/bin" % self.root, "GM_FAKE": str(self.root),
               "HOME": str(self.root)}
        r = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, timeout=60)
        out = r.stdout.decode("utf-8", "replace").replace("%s/tmp/" % self.root, "/tmp/")
        return r.returncode, out[:OUTPUT_MAX], r.stderr.decode("utf-8", "replace")[:ERROR_MAX]

    def respond(self, info, status, headers, body):
        if status != 200:
            return None
        doc = json.loads(body)
        params = info["params"]
        if info["action"] == "SendCommand":
            commands = params["Parameters"]["commands"]
            rc, out, err = self.run(commands)
            with self.lock:
                self.scripts.append("\n".join(commands))
                self.runs[doc["Command"]["CommandId"]] = {
                    "commands": commands, "rc": rc, "out": out, "err": err, "polls": 0}
            return None
        with self.lock:
            run = self.runs.get(params.get("CommandId"))
            if run is None:
                return None
            run["polls"] += 1
            if run["polls"] <= self.in_progress:
                doc.update({"Status": "InProgress", "StatusDetails": "InProgress",
                            "ResponseCode": -1, "StandardOutputContent": "",
                            "StandardErrorContent": ""})
            else:
                ok = run["rc"] == 0
                doc.update({"Status": "Success" if ok else "Failed",
                            "StatusDetails": "Success" if ok else "Failed",
                            "ResponseCode": run["rc"], "StandardOutputContent": run["out"],
                            "StandardErrorContent": run["err"]})
        return status, headers, json.dumps(doc).encode()


@pytest.fixture
def agent(proxy, tmp_path):
    a = FakeAgent(tmp_path / "instance")
    proxy.add_rule({"service": "ssm", "action": ["SendCommand", "GetCommandInvocation"],
                    "respond": a.respond})
    return a


@pytest.fixture
def deployed(gm, proxy, gm_home):
    """A deployment "lg" against moto: its instance id."""
    r = deploy(gm, "lg")
    assert r.returncode == 0, r.stderr
    proxy.clear_records()
    return recorded_instance(gm_home, "lg")


def logs(gm, *args, env=None, timeout=120):
    e = dict(FAST)
    e.update(env or {})
    return gm.run("logs", "lg", *args, env=e, timeout=timeout)


def wait_output(proc, text, timeout=30):
    """Waits until the process has printed text on stdout (a fetch interrupted
    half-way is dropped, so Ctrl-C waits for what the test looks for)."""
    deadline = time.monotonic() + timeout
    while text not in Path(proc.stdout_path).read_text(errors="replace"):
        assert proc.poll() is None, "exited %s" % proc.returncode
        assert time.monotonic() < deadline, "no %r on stdout" % text
        time.sleep(0.05)


def sent(proxy):
    return [r["params"] for r in proxy.find(action="SendCommand")]


def test_reads_a_container_log_through_run_command(gm, proxy, agent, deployed):
    agent.container_log("n8n", ["n8n ready on 5678", "Editor is now accessible"])
    r = logs(gm, "--service", "n8n", "--tail", "50")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "n8n ready on 5678\nEditor is now accessible\n"
    [p] = sent(proxy)
    assert p["DocumentName"] == "AWS-RunShellScript"
    assert p["InstanceIds"] == [deployed]
    assert p["Parameters"]["executionTimeout"] == ["120"]
    assert 30 <= p["TimeoutSeconds"] <= 2592000
    assert p["Comment"] == "geusemaker logs lg --service n8n"
    cmds = p["Parameters"]["commands"]
    assert all(isinstance(c, str) and c for c in cmds)
    assert any("docker logs --tail 50 geusemaker-n8n" in c for c in cmds)
    assert agent.args("docker") == ["logs --tail 50 geusemaker-n8n"]
    # One send, its invocation polled until it is over (InProgress first).
    invs = [r["params"] for r in proxy.find(action="GetCommandInvocation")]
    assert len(invs) == 2 and all(i["InstanceId"] == deployed for i in invs)
    assert agent.leftovers() == []
    # Only SSM and nothing that changes the instance.
    # The group's instance as EC2 sees it now, then the command.
    assert {(r["service"], r["action"]) for r in proxy.records} == {
        ("ec2", "DescribeInstances"), ("ssm", "SendCommand"), ("ssm", "GetCommandInvocation")}


def test_since_and_the_host_services(gm, proxy, agent, deployed):
    old = time.time() - 3600
    agent.container_log("postgres", ["an hour ago"], at=old)
    agent.container_log("postgres", ["just now"])
    r = logs(gm, "--service", "postgres", "--since", "10m", "--tail", "all")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "just now\n"
    [args] = agent.args("docker")
    since = int(args.split("--since ")[1].split()[0])
    assert abs(since - (time.time() - 600)) < 30 and "--tail" not in args

    nginx = agent.root / "var/log/nginx"
    (nginx / "error.log").write_text(
        "2020/01/01 00:00:00 [error] 1#1: long ago\n"
        + time.strftime("%Y/%m/%d %H:%M:%S", time.localtime()) + " [error] 1#1: recent\n")
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.localtime())
    (nginx / "access.log").write_text(
        '1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET /old HTTP/1.1" 200 1\n'
        '1.2.3.4 - - [%s] "GET /new HTTP/1.1" 200 1\n' % stamp)
    r = logs(gm, "--service", "nginx", "--since", "1h")
    assert r.returncode == 0, r.stderr
    out = agent.normal(r.stdout)
    assert "==> journal: nginx.service <==" in out and "Started nginx.service" in out
    assert "==> /var/log/nginx/error.log <==" in out and "recent" in out and "long ago" not in out
    assert "==> /var/log/nginx/access.log <==" in out and "/new" in out and "/old" not in out
    assert "-u nginx.service" in agent.args("journalctl")[-1]

    gd = agent.root / "var/log/geusemaker"
    (gd / "userdata.log").write_text("2026-11-30T12:00:00Z [userdata] step packages\n")
    r = logs(gm)  # the default: the boot
    assert r.returncode == 0, r.stderr
    out = agent.normal(r.stdout)
    assert "==> /var/log/cloud-init-output.log <==\n(no such file)\n" in out
    assert "==> /var/log/geusemaker/userdata.log <==\n2026-11-30T12:00:00Z [userdata] step " \
           "packages\n" in out
    assert "==> /var/log/geusemaker/late-start.log <==" in out
    assert "-u geusemaker-stack.service -u geusemaker-late.service" in \
        agent.args("journalctl")[-1]


def test_a_long_log_comes_back_in_pages(gm, proxy, agent, deployed):
    rnd = random.Random(7)
    lines = ["%06d %s" % (i, "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                    for _ in range(90))) for i in range(3000)]
    agent.container_log("ollama", lines)
    agent.in_progress = 0
    r = logs(gm, "--service", "ollama", "--tail", "all")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(line + "\n" for line in lines)
    scripts = sent(proxy)
    # The log (~290 KB, ~180 KB gzipped) needs many pages of at most 24,000
    # characters of output each; every answer fitted (the agent cuts there).
    assert len(scripts) >= 8
    pages = [p["Parameters"]["commands"] for p in scripts[1:]]
    dirs = {c.split("'")[1] for cmds in pages for c in cmds if c.startswith("d='")}
    assert len(dirs) == 1 and dirs.pop().startswith("/tmp/geusemaker-logs.")
    assert any("rm -rf" in c for c in pages[-1]) and not any("rm -rf" in c for c in pages[0])
    for run in agent.runs.values():
        assert len(run["out"]) < OUTPUT_MAX
    assert agent.leftovers() == []  # the last page removed the temporary folder


def test_a_log_over_a_mebibyte_is_cut_at_its_front(gm, proxy, agent, deployed):
    agent.in_progress = 0
    lines = ["%07d the quick brown fox jumps over the lazy dog, again and again" % i
             for i in range(25000)]  # 1.7 MB
    agent.container_log("n8n", lines)
    r = logs(gm, "--service", "n8n", "--tail", "all", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    got = doc["lines"]
    assert doc["truncated"] is True and doc["bytes"] <= 1024 * 1024
    assert got[-1] == lines[-1] and got == lines[len(lines) - len(got):]  # whole lines only
    assert 1024 * 1024 - 100 < sum(len(x) + 1 for x in got) <= 1024 * 1024
    r = logs(gm, "--service", "n8n", "--tail", "all")
    assert r.returncode == 0
    assert "longer than 1048576 bytes: only its last 1048576 are shown" in r.stderr
    assert agent.leftovers() == []


def test_output_json_is_one_document(gm, proxy, agent, deployed):
    agent.container_log("qdrant", ["first", "second \xe9", "third"])
    r = logs(gm, "--service", "qdrant", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["lines"] == ["first", "second \xe9", "third"]
    assert doc["instance_id"] == deployed and doc["service"] == "qdrant"
    assert doc["name"] == "lg" and doc["tail"] == 200 and doc["truncated"] is False
    assert doc["commands"] == 1


def test_waits_for_the_agent_to_register(gm, proxy, agent, deployed):
    proxy.add_rule({"service": "ssm", "action": "SendCommand", "error": "InvalidInstanceId",
                    "message": "Instances [[%s]] not in a valid state for account" % deployed,
                    "times": 3})
    agent.container_log("crawl4ai", ["crawl4ai up"])
    r = logs(gm, "--service", "crawl4ai", "--wait", "1m")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "crawl4ai up\n"
    assert "waiting for the SSM agent on %s to register" % deployed in r.stderr
    assert [x["status"] for x in proxy.find(action="SendCommand")] == [400, 400, 400, 200]
    # The group's instance was looked up once and its state read once: it
    # runs, so waiting makes sense.
    assert proxy.count(action="DescribeInstances") == 2


def test_an_agent_that_never_registers_is_offline(gm, proxy, agent, deployed):
    proxy.add_rule({"service": "ssm", "action": "SendCommand", "error": "InvalidInstanceId"})
    t = time.monotonic()
    r = logs(gm, "--service", "n8n", "--wait", "2s", env={"GEUSEMAKER_POLL_MS": "200"})
    assert r.returncode == 1
    assert "offline" in r.stderr and deployed in r.stderr and "within 2s" in r.stderr
    assert time.monotonic() - t < 30
    # Tried all along the wait, never past it.
    assert 3 <= proxy.count(action="SendCommand") <= 15
    assert proxy.count(action="GetCommandInvocation") == 0


def test_a_stopped_instance_fails_at_once(gm, proxy, agent, deployed, boto):
    boto("ec2").stop_instances(InstanceIds=[deployed])
    proxy.add_rule({"service": "ssm", "action": "SendCommand", "error": "InvalidInstanceId"})
    r = logs(gm, "--service", "n8n")
    assert r.returncode == 1
    assert "is stopped" in r.stderr and deployed in r.stderr
    assert proxy.count(action="SendCommand") == 1


def test_invocation_not_there_yet_and_a_failing_script(gm, proxy, agent, deployed):
    # Right after SendCommand AWS may not know the invocation yet.
    proxy.add_rule({"service": "ssm", "action": "GetCommandInvocation",
                    "error": "InvocationDoesNotExist", "times": 2})
    agent.container_log("n8n", ["ok"])
    r = logs(gm, "--service", "n8n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n"
    proxy.clear_rules()
    proxy.add_rule({"service": "ssm", "action": ["SendCommand", "GetCommandInvocation"],
                    "respond": agent.respond})
    # The script fails on the instance: its exit code and error output are shown.
    (agent.root / "bin" / "mktemp").write_text("#!/bin/sh\necho 'mktemp: No space left' >&2\n"
                                               "exit 1\n")
    (agent.root / "bin" / "mktemp").chmod(0o755)
    r = logs(gm, "--service", "n8n")
    assert r.returncode == 1
    assert "failed on instance '%s' (exit code 1): mktemp: No space left" % deployed in r.stderr


def test_follow_reads_what_is_new_until_ctrl_c(gm, proxy, agent, deployed):
    agent.in_progress = 0
    agent.container_log("n8n", ["before"], at=time.time() - 5)
    (agent.root / "var/log/nginx" / "error.log").write_text("")
    p = gm.popen("logs", "lg", "--service", "n8n", "--follow", "--interval", "1s", env=FAST)
    proxy.wait_for(lambda recs: sum(r["action"] == "SendCommand" for r in recs) >= 1, 30)
    time.sleep(1.5)  # a second of the instance's clock later
    agent.container_log("n8n", ["after"])
    wait_output(p, "after")
    proxy.wait_for(lambda recs: sum(r["action"] == "SendCommand" for r in recs) >= 4, 30)
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=30)
    out, err = gm.output(p)
    assert rc == 130, err
    assert out == "before\nafter\n"  # each line once
    args = agent.args("docker")
    assert args[0].startswith("logs --tail 200 --until ")
    assert all("--since" in a and "--until" in a and "--tail" not in a for a in args[1:])
    # Each window starts where the last ended.
    windows = [(int(a.split("--since ")[1].split()[0]), int(a.split("--until ")[1].split()[0]))
               for a in args[1:]]
    first_until = int(args[0].split("--until ")[1].split()[0])
    assert windows[0][0] == first_until
    assert all(windows[i][0] == windows[i - 1][1] for i in range(1, len(windows)))
    assert agent.leftovers() == []


def test_follow_reads_files_from_where_it_stopped(gm, proxy, agent, deployed):
    agent.in_progress = 0
    log = agent.root / "var/log/nginx" / "access.log"
    log.write_text("line 1\n")
    p = gm.popen("logs", "lg", "--service", "nginx", "--follow", "--interval", "1s", env=FAST)
    proxy.wait_for(lambda recs: sum(r["action"] == "SendCommand" for r in recs) >= 2, 30)
    with open(log, "a") as f:
        f.write("line 2\n")
    wait_output(p, "line 2")
    os.rename(log, str(log) + ".1")  # rotated: the new file is read from its start
    log.write_text("line 3\n")
    wait_output(p, "line 3")
    n = proxy.count(action="SendCommand")
    proxy.wait_for(lambda recs: sum(r["action"] == "SendCommand" for r in recs) >= n + 2, 30)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == 130
    out, _ = gm.output(p)
    out = agent.normal(out)
    assert out.count("line 1") == 1 and out.count("line 2") == 1 and out.count("line 3") == 1
    assert out.index("line 1") < out.index("line 2") < out.index("line 3")


@pytest.mark.parametrize("args, words", [
    (["--service", "mysql"], "unknown --service 'mysql'"),
    (["--tail", "-5"], "invalid --tail '-5'"),
    (["--tail", "ten"], "invalid --tail 'ten'"),
    (["--since", "10"], "invalid --since '10'"),
    (["--since", "10x"], "invalid --since '10x'"),
    (["--since", "0m"], "invalid --since '0m'"),
    (["--since", "400d"], "invalid --since '400d'"),
    (["--wait", "2 h"], "invalid --wait '2 h'"),
    (["--follow", "--output", "json"], "--follow"),
    (["--interval", "5s"], "--interval goes with --follow"),
    (["--follow", "--interval", "0s"], "invalid --interval '0s'"),
])
def test_bad_input_is_refused_before_any_aws_call(gm, proxy, gm_home, args, words):
    r = gm.run("logs", "lg", *args, env=FAST)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr
    assert proxy.records == []


def test_no_record_and_no_instance(gm, proxy, gm_home):
    r = gm.run("logs", "nosuch", "--output", "json", env=FAST)
    assert r.returncode == 2
    assert json.loads(r.stdout)["exit_code"] == 2
    assert proxy.records == []
    # A deployment whose instance never launched.
    proxy.add_rule({"action": "CreateLaunchTemplate", "error": "InvalidAMIID.NotFound",
                    "status": 400})
    assert deploy(gm, "lg", "--no-rollback").returncode == 1
    proxy.clear_records()
    r = logs(gm, "--service", "n8n")
    assert r.returncode == 1
    assert "has no instance" in r.stderr and "deploy --resume lg" in r.stderr
    assert proxy.count(action="SendCommand") == 0


def test_help_lists_the_options(gm):
    r = gm.run("logs", "--help")
    assert r.returncode == 0
    for opt in ("--service", "--tail", "--since", "--follow", "--interval", "--wait"):
        assert opt in r.stdout
    assert "SSM Run Command" in r.stdout


# ---- the IAM policy: with moto enforcing it (test_iam_enforced.py explains what moto checks)


@pytest.fixture(scope="module")
def enforcing_moto(tmp_path_factory):
    from test_iam_enforced import AuthMoto
    m = AuthMoto(tmp_path_factory.mktemp("moto-iam-logs"))
    try:
        yield m
    finally:
        m.stop()


def test_the_documented_policy_allows_logs(enforcing_moto, tmp_path, request):
    """docs/iam-policy.json (as moto reads it: actions verbatim, Resource "*")
    lets a user deploy and read logs; without ssm:SendCommand logs is refused
    (exit 4, credentials not allowed) and nothing runs."""
    from apiaudit import API_AUDIT
    from conftest import GM, REGION, _binary_path, _scrubbed
    from faultproxy import FaultProxy
    from test_iam_enforced import docs_policy, moto_policy

    proxy = FaultProxy(enforcing_moto.url, log_path=tmp_path / "requests.jsonl",
                       observer=API_AUDIT.observe).start()
    agent = FakeAgent(tmp_path / "instance")
    proxy.add_rule({"service": "ssm", "action": ["SendCommand", "GetCommandInvocation"],
                    "respond": agent.respond})
    home = tmp_path / "gmhome"
    home.mkdir(mode=0o700)
    (tmp_path / "wd").mkdir()

    def runner(policy, user):
        key_id, secret = enforcing_moto.user(user, policy)
        env = {k: v for k, v in _scrubbed(os.environ).items() if not k.startswith("GEUSEMAKER_")}
        env.update({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
                    "AWS_REGION": REGION, "AWS_ENDPOINT_URL": proxy.url,
                    "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
                    "GEUSEMAKER_HOME": str(home), "NO_COLOR": "1",
                    "NO_PROXY": "127.0.0.1,localhost"})
        return GM(_binary_path(request.config), env, tmp_path / "wd")

    try:
        gm = runner(moto_policy(docs_policy()), "logs-allowed")
        assert deploy(gm, "lg").returncode == 0
        agent.container_log("n8n", ["allowed"])
        r = logs(gm, "--service", "n8n")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "allowed\n"
        assert [x for x in proxy.records if x["status"] == 403] == []

        proxy.clear_records()
        denied = runner(moto_policy(docs_policy(), drop={"ssm:SendCommand"}), "logs-denied")
        r = logs(denied, "--service", "n8n")
        assert r.returncode == 4, r.stderr
        assert "SendCommand" in r.stderr or "not authorized" in r.stderr
        assert [x["status"] for x in proxy.find(action="SendCommand")] == [403]
        assert proxy.count(action="GetCommandInvocation") == 0
    finally:
        proxy.stop()
