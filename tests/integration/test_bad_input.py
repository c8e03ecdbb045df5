"""Bad input, table-driven: every case is argv + environment -> the exit code,
a piece of the message that names the problem, and no AWS request at all
(the fault proxy in front of moto records none).

Exit codes (README): 2 bad input, 4 credentials missing, broken or rejected.
The credential_process that outlives its deadline is killed with its whole
process group (the last test).
"""
import os
import time

import pytest

from deployhelpers import CIDR, FAST

CERT_CN = "arn:aws-cn:acm:cn-north-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
NO_KEYS = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}


def process_profile(command):
    """Environment whose only credentials are a credential_process in the
    config file ({tmp} is the test's directory)."""
    env = dict(NO_KEYS, AWS_CONFIG_FILE="{tmp}/config")
    files = {"config": "[default]\ncredential_process = %s\n" % command}
    return env, files


def case(name, argv, code, message, env=None, files=None):
    return pytest.param(argv, env or {}, files or {}, code, message, id=name)


def dep(*extra):
    # --yes: a deploy without a terminal needs it, and these cases are about later checks.
    return ["deploy", "--name", "bad", "--allow-cidr", CIDR, "--yes"] + list(extra)


def cidr(value, *extra):
    return ["deploy", "--name", "bad", "--allow-cidr", value] + list(extra)


_proc = {
    "v2": process_profile(
        "printf '{\"Version\": 2, \"AccessKeyId\": \"a\", \"SecretAccessKey\": \"b\"}'"),
    "json": process_profile("echo not-json"),
    "exit": process_profile("sh -c 'exit 3'"),
    "big": process_profile("head -c 200000 /dev/zero"),
    "slow": process_profile("sleep 30"),
    "nokey": process_profile("printf '{\"Version\": 1, \"SecretAccessKey\": \"b\"}'"),
}


def proc_case(name, key, message, argv=("whoami",), extra_env=None):
    env, files = _proc[key]
    env = dict(env, **(extra_env or {}))
    return case(name, list(argv), 4, message, env=env, files=files)


CASES = [
    # --- CIDRs: strict IPv4, no leading zeros, no host bits, /0 needs --yes
    case("cidr-leading-zero-octet", cidr("010.0.0.1/32"), 2,
         "the octet '010' has a leading zero"),
    case("cidr-leading-zero-prefix", cidr("10.0.0.0/08"), 2,
         "prefix length after '/' must be a number from 0 to 32 without a leading zero"),
    case("cidr-ipv6", cidr("2001:db8::/32"), 2, "only IPv4 ranges are supported"),
    case("cidr-ipv6-any", cidr("::/0", "--yes"), 2, "IPv6 is not"),
    case("cidr-host-bits", cidr("10.0.0.5/24"), 2,
         "host bits are set; did you mean '10.0.0.0/24'?"),
    case("cidr-host-bits-any", cidr("1.2.3.4/0"), 2, "did you mean '0.0.0.0/0'?"),
    case("cidr-octet-over-255", cidr("10.0.0.256/32"), 2, "the octet '256' is over 255"),
    case("cidr-prefix-33", cidr("10.0.0.0/33"), 2, "a number from 0 to 32"),
    case("cidr-no-prefix", cidr("10.0.0.1"), 2, "no prefix length; for this one address write "
         "'10.0.0.1/32'"),
    case("cidr-three-octets", cidr("10.0.0/24"), 2, "expected an IPv4 range of four numbers"),
    case("cidr-empty", cidr(""), 2, "empty --allow-cidr"),
    case("cidr-list-in-one", cidr("10.0.0.0/8,10.1.0.0/16"), 2, "invalid --allow-cidr"),
    case("cidr-whole-internet-needs-yes", cidr("0.0.0.0/0"), 2,
         "opens the stack to the whole internet (every IPv4 address): pass --yes"),
    case("cidr-plan-too", ["plan", "--name", "bad", "--allow-cidr", "10.0.0.05/32"], 2,
         "the octet '05' has a leading zero"),

    # --- regions: the shipped table, before any call, with suggestions
    case("region-flag-typo", ["--region", "useast1", "whoami"], 2,
         "unknown region 'useast1' (from --region): did you mean 'us-east-1'?"),
    case("region-flag-after-command", ["whoami", "--region", "eu-west-9"], 2,
         "did you mean 'eu-west-1', 'eu-west-2' or 'eu-west-3'?"),
    case("region-upper-case", ["whoami", "--region", "US-EAST-1"], 2,
         "did you mean 'us-east-1'?"),
    case("region-empty-flag", ["whoami", "--region", ""], 2, "empty region from --region"),
    case("region-env", ["whoami"], 2, "unknown region 'mars-1' (from AWS_REGION)",
         env={"AWS_REGION": "mars-1"}),
    case("region-default-env", ["whoami"], 2,
         "unknown region 'us-east-7' (from AWS_DEFAULT_REGION): did you mean",
         env={"AWS_REGION": None, "AWS_DEFAULT_REGION": "us-east-7"}),
    case("region-config-file", ["whoami"], 2,
         "unknown region 'eu-wset-1' (from the region of profile 'default' in the aws config "
         "file): did you mean 'eu-west-1'?",
         env={"AWS_REGION": None, "AWS_CONFIG_FILE": "{tmp}/config"},
         files={"config": "[default]\nregion = eu-wset-1\n"}),
    case("region-none", ["whoami"], 2, "no aws region configured",
         env={"AWS_REGION": None}),
    case("region-china-typo", ["plan", "--name", "bad", "--region", "cn-north-2"], 2,
         "'cn-north-1'"),
    case("region-deploy", dep("--region", "eu-centrl-1"), 2, "did you mean 'eu-central-1'?"),
    case("region-status", ["status", "nosuch", "--region", "ap-southeast-8"], 2,
         "unknown region 'ap-southeast-8'"),
    case("region-userdata", ["userdata", "--name", "bad"], 2,
         "unknown region 'atlantis-1' (from AWS_REGION)", env={"AWS_REGION": "atlantis-1"}),

    # --- numeric options: named, digits only, in range
    case("alb-timeout-unit", dep("--tier", "automation", "--alb-timeout", "5s"), 2,
         "invalid --alb-timeout '5s': expected a whole number from 1 to 3600"),
    case("alb-timeout-zero", dep("--tier", "automation", "--alb-timeout", "0"), 2,
         "invalid --alb-timeout '0'"),
    case("alb-timeout-space", dep("--tier", "automation", "--alb-timeout", " 30"), 2,
         "invalid --alb-timeout ' 30'"),
    case("hc-interval-word", dep("--tier", "automation", "--health-check-interval", "often"),
         2, "invalid --health-check-interval 'often'"),
    case("hc-interval-range", dep("--tier", "automation", "--health-check-interval", "400"), 2,
         "invalid --health-check-interval 400: must be 5 to 300 seconds"),
    case("healthy-threshold", dep("--tier", "automation", "--healthy-threshold", "1"), 2,
         "invalid --healthy-threshold 1: must be 2 to 10"),
    case("launch-timeout-unit", dep("--launch-timeout", "10m"), 2,
         "invalid --launch-timeout '10m': expected a whole number from 1 to 86400"),
    case("launch-timeout-zero", dep("--launch-timeout", "0"), 2,
         "invalid --launch-timeout '0'"),
    case("deploy-timeout-unit", dep("--timeout", "10m"), 2,
         "invalid --timeout '10m': expected a whole number of seconds"),
    case("health-timeout-negative", dep("--health-timeout", "-5"), 2,
         "invalid --health-timeout '-5'"),
    case("budget-word", dep("--budget", "lots"), 2, "invalid --budget 'lots'"),
    case("max-spot-zero", dep("--max-spot-price", "0"), 2, "invalid --max-spot-price '0'"),
    case("min-saving-over", dep("--min-saving", "150"), 2, "invalid --min-saving '150'"),
    case("efs-gb-word", ["plan", "--name", "bad", "--assume-efs-gb", "ten"], 2,
         "invalid --assume-efs-gb 'ten'"),

    # --- numeric environment variables: named, never a silent default
    case("env-max-attempts-word", ["whoami"], 2,
         "invalid AWS_MAX_ATTEMPTS 'many': expected a whole number from 1 to 20",
         env={"AWS_MAX_ATTEMPTS": "many"}),
    case("env-max-attempts-zero", ["whoami"], 2, "invalid AWS_MAX_ATTEMPTS '0'",
         env={"AWS_MAX_ATTEMPTS": "0"}),
    case("env-max-attempts-space", dep(), 2, "invalid AWS_MAX_ATTEMPTS ' 3'",
         env={"AWS_MAX_ATTEMPTS": " 3"}),
    case("env-poll-ms", dep(), 2, "invalid GEUSEMAKER_POLL_MS 'fast'",
         env={"GEUSEMAKER_POLL_MS": "fast"}),
    case("env-poll-ms-status", ["status", "nosuch"], 2, "invalid GEUSEMAKER_POLL_MS '0'",
         env={"GEUSEMAKER_POLL_MS": "0"}),
    case("env-destroy-timeout", ["destroy", "nosuch", "--yes"], 2,
         "invalid GEUSEMAKER_DESTROY_TIMEOUT_MS '1e3'",
         env={"GEUSEMAKER_DESTROY_TIMEOUT_MS": "1e3"}),
    case("env-health-poll", ["health", "nosuch"], 2, "invalid GEUSEMAKER_HEALTH_POLL_MS '-1'",
         env={"GEUSEMAKER_HEALTH_POLL_MS": "-1"}),
    case("env-retry-base", ["whoami"], 2, "invalid GEUSEMAKER_RETRY_BASE_MS '10ms'",
         env={"GEUSEMAKER_RETRY_BASE_MS": "10ms"}),
    case("env-process-timeout", ["whoami"], 2,
         "invalid GEUSEMAKER_CREDENTIAL_PROCESS_TIMEOUT_MS 'soon'",
         env={"GEUSEMAKER_CREDENTIAL_PROCESS_TIMEOUT_MS": "soon"}),

    # --- endpoint urls: http:// or https:// only, before any call
    case("endpoint-ftp", ["whoami"], 2,
         "invalid AWS_ENDPOINT_URL 'ftp://127.0.0.1:1': expected an http:// or https:// url",
         env={"AWS_ENDPOINT_URL": "ftp://127.0.0.1:1"}),
    case("endpoint-no-scheme", ["whoami"], 2, "invalid AWS_ENDPOINT_URL '127.0.0.1:5000'",
         env={"AWS_ENDPOINT_URL": "127.0.0.1:5000"}),
    case("endpoint-service", ["whoami"], 2, "invalid AWS_ENDPOINT_URL_EC2 'file:///tmp'",
         env={"AWS_ENDPOINT_URL_EC2": "file:///tmp"}),
    case("endpoint-no-host", ["whoami"], 2, "invalid AWS_ENDPOINT_URL_STS 'http://'",
         env={"AWS_ENDPOINT_URL_STS": "http://"}),
    case("endpoint-health", dep(), 2, "invalid GEUSEMAKER_HEALTH_ENDPOINT 'localhost:8080/h'",
         env={"GEUSEMAKER_HEALTH_ENDPOINT": "localhost:8080/h"}),
    case("endpoint-ip", dep(), 2, "invalid GEUSEMAKER_IP_ENDPOINT 'ftp://127.0.0.1/'",
         env={"GEUSEMAKER_IP_ENDPOINT": "ftp://127.0.0.1/"}),

    # --- unknown commands and options, missing arguments
    case("unknown-command", ["deploi"], 2, "unknown command 'deploi' (did you mean 'deploy'?"),
    case("unknown-option", ["deploy", "--nmae", "bad"], 2, "did you mean '--name'?"),
    case("unknown-global-option", ["--bogus", "whoami"], 2, "unknown option '--bogus'"),
    case("bad-output", ["--output", "yaml", "whoami"], 2, "invalid --output 'yaml'"),
    case("empty-profile", ["--profile", "", "whoami"], 2, "empty --profile"),
    case("option-needs-value", ["deploy", "--name"], 2, "option '--name' of 'deploy' needs a value"),
    case("flag-takes-no-value", ["destroy", "x", "--keep-efs=yes"], 2, "takes no value"),
    case("extra-argument", ["whoami", "extra"], 2, "unexpected argument 'extra'"),
    case("two-names", ["status", "a", "b"], 2, "status takes exactly one deployment name"),
    case("status-no-name", ["status"], 2, "status takes exactly one deployment name"),
    case("destroy-no-name", ["destroy"], 2, "destroy takes exactly one deployment name"),
    case("deploy-no-name", ["deploy", "--allow-cidr", CIDR], 2,
         "a deployment name is required (--name NAME)"),
    case("plan-no-name", ["plan"], 2, "missing --name for 'plan'"),
    case("userdata-no-name", ["userdata"], 2, "missing --name for 'userdata'"),
    case("destroy-no-tty-no-yes", ["destroy", "bad"], 2, "destroy needs --yes"),

    # --- unknown deployment names: bad input, nothing done
    case("unknown-status", ["status", "nosuch"], 2, "no deployment named 'nosuch'"),
    case("unknown-destroy", ["destroy", "nosuch", "--yes"], 2, "no deployment named 'nosuch'"),
    case("unknown-cost", ["cost", "nosuch"], 2, "no deployment named 'nosuch'"),
    case("unknown-health", ["health", "nosuch"], 2, "no deployment named 'nosuch'"),
    case("unknown-secrets", ["secrets", "nosuch", "--yes"], 2, "no deployment named 'nosuch'"),
    case("unknown-resume", ["deploy", "--resume", "nosuch"], 2, "no deployment named 'nosuch'"),
    case("unknown-forget", ["forget", "nosuch", "--yes"], 2, "no deployment named 'nosuch'"),

    # --- adopt and cleanup
    case("adopt-bad-name", ["adopt", "Bad_Name"], 2, "invalid deployment name 'Bad_Name'"),
    case("adopt-bad-id", ["adopt", "good", "--id", "NOT-AN-ID"], 2, "is not a deployment id"),
    case("adopt-no-name", ["adopt"], 2, "adopt takes exactly one deployment name"),
    case("cleanup-region-and-all", ["cleanup", "--all-regions", "--region", "us-east-1"], 2,
         "--all-regions and --region exclude each other"),
    case("cleanup-no-tty-no-yes", ["cleanup"], 2, "cleanup needs --yes"),
    case("cleanup-bad-name", ["cleanup", "--dry-run", "--name", "Bad_Name"], 2,
         "invalid deployment name 'Bad_Name'"),
    case("cleanup-bad-region", ["cleanup", "--dry-run", "--region", "useast1"], 2,
         "did you mean 'us-east-1'"),
    case("cleanup-argument", ["cleanup", "extra"], 2, "unexpected argument 'extra'"),

    # --- bad names, tiers, types, ids
    case("bad-name", ["deploy", "--name", "Bad_Name", "--allow-cidr", CIDR], 2,
         "invalid deployment name 'Bad_Name'"),
    case("name-given-twice", dep("--name", "other"), 2,
         "option '--name' given twice with different values"),
    case("long-name", ["deploy", "--name", "x" * 40, "--allow-cidr", CIDR], 2,
         "is 40 characters"),
    case("bad-name-status", ["status", "BAD!"], 2, "invalid deployment name 'BAD!'"),
    case("bad-tier", dep("--tier", "nope"), 2, "unknown --tier 'nope'"),
    case("bad-type", dep("--instance-type", "T3.LARGE"), 2, "invalid --instance-type 'T3.LARGE'"),
    case("gpu-tier-no-gpu", dep("--tier", "gpu", "--instance-type", "t3.large"), 2,
         "needs a GPU instance type"),
    case("spot-and-on-demand", dep("--spot", "--on-demand"), 2, "exclude each other"),
    case("bad-vpc-id", dep("--vpc-id", "vpc-1", "--subnet-ids", "subnet-a,subnet-b"), 2,
         "invalid --vpc-id 'vpc-1'"),
    case("one-zone", dep("--azs", "us-east-1a"), 2, "--azs needs at least two zones"),
    case("zones-of-another-region", dep("--azs", "eu-west-1a,eu-west-1b"), 2,
         "--azs zone 'eu-west-1a' is not in region 'us-east-1'"),
    case("alb-option-on-dev", dep("--alb-timeout", "60"), 2,
         "load balancer options need --tier automation"),
    case("certificate-junk", dep("--tier", "automation", "--certificate-arn", "cert-1"), 2,
         "invalid --certificate-arn 'cert-1'"),
    case("certificate-other-partition", dep("--tier", "automation", "--certificate-arn", CERT_CN),
         2, "is a certificate of region 'cn-north-1' (partition aws-cn), but the deployment is "
         "in 'us-east-1' (partition aws)"),
    case("unknown-profile", ["--profile", "nosuch", "whoami"], 2,
         "profile 'nosuch' not found"),

    # --- image overrides (--image SERVICE=REF): a known service, a pinned reference
    case("image-no-equals", dep("--image", "n8nio/n8n:2.42.0"), 2,
         "invalid --image 'n8nio/n8n:2.42.0': expected SERVICE=REF"),
    case("image-unknown-service", dep("--image", "n8m=n8nio/n8n:2.42.0"), 2,
         "no service 'n8m' in tier dev (did you mean 'n8n'?); expected one of postgres, n8n, "
         "qdrant, ollama, crawl4ai"),
    case("image-no-tag", dep("--image", "n8n=n8nio/n8n"), 2,
         "names no tag and no digest, so Docker would pull 'latest'"),
    case("image-latest", dep("--image", "n8n=n8nio/n8n:latest"), 2,
         "the tag 'latest' moves: a replacement instance would pull whatever it points at"),
    case("image-shell", dep("--image", "n8n=n8nio/n8n:2.42.0;reboot"), 2,
         "the character ';' cannot appear in an image reference"),
    case("image-upper-case", dep("--image", "n8n=N8nio/n8n:2.42.0"), 2,
         "has capitals (repository names are lowercase)"),
    case("image-bad-digest", dep("--image", "n8n=n8nio/n8n@sha256:abc"), 2,
         "the digest 'sha256:abc' is not 'sha256:' and 64 lowercase hex digits"),
    case("image-twice", dep("--image", "n8n=n8nio/n8n:2.42.0", "--image", "n8n=n8nio/n8n:2.43.0"),
         2, "--image names service 'n8n' twice"),
    case("image-empty-ref", dep("--image", "n8n="), 2, "invalid --image 'n8n=': no image"),
    case("image-too-long", dep("--image", "n8n=n8nio/" + "n" * 250 + ":1"), 2,
         "characters, at most 255"),
    case("image-plan", ["plan", "--name", "bad", "--image", "ollama=ollama/ollama"], 2,
         "invalid --image 'ollama=ollama/ollama'"),
    case("image-env", dep(), 2, "invalid --image 'n8n=n8nio/n8n:latest'",
         env={"GEUSEMAKER_IMAGE": "n8n=n8nio/n8n:latest"}),

    # --- credentials: missing or broken is exit 4, before any request
    case("no-credentials", ["whoami"], 4, "no aws credentials found", env=NO_KEYS),
    case("half-env-keys", ["whoami"], 4,
         "'AWS_ACCESS_KEY_ID' is set but 'AWS_SECRET_ACCESS_KEY' is not",
         env={"AWS_SECRET_ACCESS_KEY": None}),
    case("junk-credentials-file", ["whoami"], 4, "malformed line",
         env=dict(NO_KEYS, AWS_SHARED_CREDENTIALS_FILE="{tmp}/credentials"),
         files={"credentials": "this is not an ini file\n[default\n"}),
    case("half-keys-in-file", ["whoami"], 4, "sets 'aws_access_key_id' but not",
         env=dict(NO_KEYS, AWS_SHARED_CREDENTIALS_FILE="{tmp}/credentials"),
         files={"credentials": "[default]\naws_access_key_id = AKIDONLY\n"}),
    proc_case("process-version-2", "v2", "has an unsupported 'Version' (expected 1)"),
    proc_case("process-not-json", "json", "credential_process output is not valid json"),
    proc_case("process-exit-status", "exit", "exited with status 3"),
    proc_case("process-oversize", "big", "wrote more than 65536 bytes to stdout"),
    proc_case("process-timeout", "slow", "timed out after 300 ms",
              extra_env={"GEUSEMAKER_CREDENTIAL_PROCESS_TIMEOUT_MS": "300"}),
    proc_case("process-no-key", "nokey", "has no 'AccessKeyId'"),
    proc_case("process-on-deploy", "v2", "unsupported 'Version'", argv=dep()),
]


def _materialise(env, files, tmp_path):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = dict(FAST)
    for k, v in env.items():
        out[k] = v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v
    return out


@pytest.mark.parametrize("argv, env, files, code, message", CASES)
def test_bad_input(gm, proxy, tmp_path, argv, env, files, code, message):
    r = gm.run(*argv, env=_materialise(env, files, tmp_path), timeout=60)
    why = "exit %d\n--- stdout\n%s\n--- stderr\n%s" % (r.returncode, r.stdout, r.stderr)
    assert r.returncode == code, why
    assert message in r.stderr, why
    assert r.stderr.startswith("error: ") or "\nerror: " in r.stderr, why
    assert proxy.records == [], proxy.records


def test_table_is_large_enough():
    assert len(CASES) >= 60


def _state(pid):
    """The process state letter, or None when it is gone (a zombie counts as
    gone: it runs nothing and holds nothing)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in ("Z", "X") else state


def test_credential_process_group_is_killed_at_the_deadline(gm, proxy, tmp_path):
    """A credential_process that starts a background job and sleeps: at the
    deadline its whole process group dies, not only the shell."""
    script = tmp_path / "slow-credentials"
    script.write_text("#!/bin/sh\n"
                      "sleep 300 &\n"
                      "echo $! > %s/child.pid\n"
                      "echo $$ > %s/parent.pid\n"
                      "sleep 300\n" % (tmp_path, tmp_path))
    script.chmod(0o755)
    env, files = process_profile(str(script))
    env = dict(env, GEUSEMAKER_CREDENTIAL_PROCESS_TIMEOUT_MS="1000")
    t0 = time.monotonic()
    r = gm.run("whoami", env=_materialise(env, files, tmp_path), timeout=60)
    assert r.returncode == 4, r.stderr
    assert "credential_process of profile 'default' timed out after 1000 ms" in r.stderr
    assert time.monotonic() - t0 < 20
    assert proxy.records == []
    pids = [int((tmp_path / f).read_text()) for f in ("parent.pid", "child.pid")]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_state(p) for p in pids):
        time.sleep(0.05)
    alive = [p for p in pids if _state(p)]
    for p in alive:  # never leave them behind, even when the test fails
        try:
            os.kill(p, 9)
        except OSError:
            pass
    assert alive == [], "still running after the deadline: %s" % alive
