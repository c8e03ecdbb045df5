"""The credential provider chain, end to end.

Each test runs the real binary (`geusemaker whoami --output json`) against moto
through the fault proxy, with credentials coming from exactly the sources the
test sets up: environment variables, the shared credentials file, the config
file, a credential_process script, or the fake IMDS. The base environment
(conftest.gm_env) has AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY set, IMDS
disabled and both AWS files pointing at paths that do not exist; tests remove
variables by passing None.

Which access key signed the requests is read from the proxy's records
(Authorization header) when they carry the request headers; the
credential_source field of the output is checked in every case.
"""

import json
import os
import re
import stat

import pytest

RUN_TIMEOUT = 60  # seconds per binary run; IMDS calls use 1 s timeouts
NO_ENV_KEYS = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None}
CRED_RE = re.compile(r"Credential=([^/,\s]+)/")

# Secrets used below all carry this marker, which must never be printed.
MARK = "sekr1t"


# -- helpers ---------------------------------------------------------------

def whoami(gm, *args, env=None):
    return gm.run("whoami", "--output", "json", *args, env=env, timeout=RUN_TIMEOUT)


def describe(r):
    return "exit %d\n--- stdout\n%s\n--- stderr\n%s" % (r.returncode, r.stdout, r.stderr)


def ok_json(r):
    assert r.returncode == 0, describe(r)
    data = json.loads(r.stdout)
    for key in ("account", "arn", "user_id", "region", "credential_source", "profile"):
        assert key in data, "missing %r in %r" % (key, data)
    return data


def assert_no_secret(r, *secrets):
    text = r.stdout + r.stderr
    assert MARK not in text, describe(r)
    for s in secrets:
        assert s not in text, describe(r)


def signing_keys(proxy):
    """Access key ids of the Authorization headers the proxy saw (None when
    the records carry no headers)."""
    keys = []
    seen_headers = False
    for rec in proxy.records:
        headers = rec.get("request_headers")
        if headers is None:
            continue
        seen_headers = True
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        m = CRED_RE.search(auth)
        if m:
            keys.append(m.group(1))
    return keys if seen_headers else None


def assert_signed_with(proxy, akid):
    keys = signing_keys(proxy)
    if keys is None:
        return  # records without headers: credential_source is the check
    assert keys, "no signed request reached the proxy"
    assert set(keys) == {akid}, keys


def write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def files_env(tmp_path, credentials=None, config=None):
    """Env overrides pointing the AWS files at fresh files in tmp_path."""
    env = {}
    if credentials is not None:
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(write(tmp_path / "aws-credentials", credentials))
    if config is not None:
        env["AWS_CONFIG_FILE"] = str(write(tmp_path / "aws-config", config))
    return env


def process_script(tmp_path, akid, secret, name="cred-helper.sh", exit_code=0, marker=None):
    """A credential_process script printing the given keys (as JSON) and
    exiting with exit_code; touches marker when run, if given."""
    doc = json.dumps({"Version": 1, "AccessKeyId": akid, "SecretAccessKey": secret,
                      "SessionToken": "proc-token-" + MARK, "Expiration": "2999-01-01T00:00:00Z"})
    lines = ["#!/bin/sh"]
    if marker:
        lines.append("touch '%s'" % marker)
    lines.append("cat <<'EOF'\n%s\nEOF" % doc)
    lines.append("exit %d" % exit_code)
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    os.chmod(p, stat.S_IRWXU)
    return p


def imds_env(imds):
    return {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}


# -- single sources ---------------------------------------------------------

def test_environment_source(gm, proxy):
    env = {"AWS_ACCESS_KEY_ID": "AKIDENVSOURCE", "AWS_SECRET_ACCESS_KEY": "env-" + MARK}
    r = whoami(gm, env=env)
    data = ok_json(r)
    assert data["credential_source"] == "environment"
    assert data["profile"] is None  # no profile was used
    assert re.fullmatch(r"\d{12}", data["account"]), data
    assert_signed_with(proxy, "AKIDENVSOURCE")
    assert_no_secret(r)


def test_environment_session_token_is_sent(gm, proxy):
    env = {"AWS_ACCESS_KEY_ID": "ASIAENVTOKEN", "AWS_SECRET_ACCESS_KEY": "env-" + MARK,
           "AWS_SESSION_TOKEN": "envtoken-" + MARK}
    r = whoami(gm, env=env)
    assert ok_json(r)["credential_source"] == "environment"
    assert_no_secret(r)
    tokens = [v for rec in proxy.records for k, v in (rec.get("request_headers") or {}).items()
              if k.lower() == "x-amz-security-token"]
    if any(rec.get("request_headers") is not None for rec in proxy.records):
        assert tokens and set(tokens) == {"envtoken-" + MARK}


def test_partial_environment_keys_fail(gm, proxy):
    r = whoami(gm, env={"AWS_ACCESS_KEY_ID": "AKIDHALF", "AWS_SECRET_ACCESS_KEY": None})
    assert r.returncode != 0, describe(r)
    assert "AWS_SECRET_ACCESS_KEY" in r.stderr
    assert proxy.records == []


def test_shared_credentials_file(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, credentials=(
        "[default]\n"
        "aws_access_key_id = AKIDCREDSFILE\n"
        "aws_secret_access_key = file-" + MARK + "\n")))
    r = whoami(gm, env=env)
    data = ok_json(r)
    assert data["credential_source"] == "shared-credentials-file"
    assert data["profile"] == "default"
    assert_signed_with(proxy, "AKIDCREDSFILE")
    assert_no_secret(r)


def test_config_file(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, config=(
        "[default]\n"
        "region = us-east-1\n"
        "aws_access_key_id = AKIDCONFIGFILE\n"
        "aws_secret_access_key = cfg-" + MARK + "\n")))
    r = whoami(gm, env=env)
    data = ok_json(r)
    assert data["credential_source"] == "config-file"
    assert_signed_with(proxy, "AKIDCONFIGFILE")
    assert_no_secret(r)


def test_config_file_named_profile(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, config=(
        "[default]\nregion = us-east-1\n"
        "[profile dev]\n"
        "aws_access_key_id = AKIDCONFIGDEV\n"
        "aws_secret_access_key = dev-" + MARK + "\n")))
    r = whoami(gm, "--profile", "dev", env=env)
    data = ok_json(r)
    assert data["credential_source"] == "config-file"
    assert data["profile"] == "dev"
    assert_signed_with(proxy, "AKIDCONFIGDEV")


# -- profile selection ------------------------------------------------------

CREDS_TWO_PROFILES = (
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULTPROFILE\n"
    "aws_secret_access_key = default-" + MARK + "\n"
    "\n"
    "[work]\n"
    "aws_access_key_id = AKIDWORKPROFILE\n"
    "aws_secret_access_key = work-" + MARK + "\n")


def test_profile_flag_selects_section(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, credentials=CREDS_TWO_PROFILES))
    r = whoami(gm, "--profile", "work", env=env)
    data = ok_json(r)
    assert data["profile"] == "work"
    assert data["credential_source"] == "shared-credentials-file"
    assert_signed_with(proxy, "AKIDWORKPROFILE")
    assert_no_secret(r)


def test_aws_profile_selects_section(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, credentials=CREDS_TWO_PROFILES))
    env["AWS_PROFILE"] = "work"
    r = whoami(gm, env=env)
    data = ok_json(r)
    assert data["profile"] == "work"
    assert_signed_with(proxy, "AKIDWORKPROFILE")


def test_profile_flag_beats_aws_profile(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, credentials=CREDS_TWO_PROFILES))
    env["AWS_PROFILE"] = "work"
    r = whoami(gm, "--profile", "default", env=env)
    data = ok_json(r)
    assert data["profile"] == "default"
    assert_signed_with(proxy, "AKIDDEFAULTPROFILE")


def test_aws_profile_does_not_beat_environment_keys(gm, proxy, tmp_path):
    # As the AWS SDKs: environment keys come first even when AWS_PROFILE is set.
    env = files_env(tmp_path, credentials=CREDS_TWO_PROFILES)
    env.update({"AWS_PROFILE": "work", "AWS_ACCESS_KEY_ID": "AKIDENVWINS",
                "AWS_SECRET_ACCESS_KEY": "env-" + MARK})
    r = whoami(gm, env=env)
    assert ok_json(r)["credential_source"] == "environment"
    assert_signed_with(proxy, "AKIDENVWINS")


def test_profile_flag_beats_environment_keys(gm, proxy, tmp_path):
    # As the AWS CLI: an explicit --profile means that profile, not the env keys.
    env = files_env(tmp_path, credentials=CREDS_TWO_PROFILES)
    env.update({"AWS_ACCESS_KEY_ID": "AKIDENVIGNORED", "AWS_SECRET_ACCESS_KEY": "env-" + MARK})
    r = whoami(gm, "--profile", "work", env=env)
    data = ok_json(r)
    assert data["credential_source"] == "shared-credentials-file"
    assert_signed_with(proxy, "AKIDWORKPROFILE")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_unknown_profile_is_an_error(gm, proxy, tmp_path, how):
    env = files_env(tmp_path, credentials=CREDS_TWO_PROFILES, config="[default]\nregion = us-east-1\n")
    args = []
    if how == "flag":
        args = ["--profile", "nosuchprofile"]
        env.update(NO_ENV_KEYS)
    else:
        env.update(NO_ENV_KEYS)
        env["AWS_PROFILE"] = "nosuchprofile"
    r = whoami(gm, *args, env=env)
    assert r.returncode != 0, describe(r)
    assert "profile 'nosuchprofile' not found" in r.stderr
    assert proxy.records == []
    assert_no_secret(r)


def test_malformed_credentials_file_names_the_line(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, credentials=(
        "[default]\n"
        "aws_access_key_id = AKIDBROKEN\n"
        "aws_secret_access_key " + MARK + "\n")))
    r = whoami(gm, env=env)
    assert r.returncode != 0, describe(r)
    assert "aws-credentials:3" in r.stderr
    assert_no_secret(r)


# -- credential_process -----------------------------------------------------

def test_credential_process(gm, proxy, tmp_path):
    script = process_script(tmp_path, "AKIDPROCESS", "proc-" + MARK)
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, config="[default]\ncredential_process = %s\n" % script))
    r = whoami(gm, env=env)
    data = ok_json(r)
    assert data["credential_source"] == "credential-process"
    assert_signed_with(proxy, "AKIDPROCESS")
    assert_no_secret(r)


def test_credential_process_with_arguments_and_named_profile(gm, proxy, tmp_path):
    helper = tmp_path / "helper.sh"
    helper.write_text('#!/bin/sh\n'
                      '[ "$1" = "--role" ] && [ "$2" = "deployer" ] || exit 9\n'
                      'printf \'{"Version": 1, "AccessKeyId": "AKIDPROCARGS", '
                      '"SecretAccessKey": "args-%s"}\'\n' % MARK)
    os.chmod(helper, stat.S_IRWXU)
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, config="[profile ci]\ncredential_process = %s --role deployer\n"
                         % helper))
    r = whoami(gm, "--profile", "ci", env=env)
    data = ok_json(r)
    assert data["credential_source"] == "credential-process"
    assert data["profile"] == "ci"
    assert_signed_with(proxy, "AKIDPROCARGS")


def test_credential_process_failure(gm, proxy, tmp_path):
    script = process_script(tmp_path, "AKIDFAILED", "failed-" + MARK, exit_code=7)
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, config="[default]\ncredential_process = %s\n" % script))
    r = whoami(gm, env=env)
    assert r.returncode != 0, describe(r)
    assert "status 7" in r.stderr
    assert "credential_process" in r.stderr
    assert proxy.records == []
    assert_no_secret(r, "AKIDFAILED")


def test_credential_process_bad_json(gm, proxy, tmp_path):
    script = tmp_path / "bad.sh"
    script.write_text("#!/bin/sh\necho 'this is not json %s'\n" % MARK)
    os.chmod(script, stat.S_IRWXU)
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, config="[default]\ncredential_process = %s\n" % script))
    r = whoami(gm, env=env)
    assert r.returncode != 0, describe(r)
    assert "json" in r.stderr
    assert_no_secret(r)


# -- IMDS -------------------------------------------------------------------

def test_imds(gm, proxy, imds):
    env = dict(NO_ENV_KEYS)
    env.update(imds_env(imds))
    r = whoami(gm, env=env)
    data = ok_json(r)
    assert data["credential_source"] == "imds"
    recs = imds.records
    assert recs, "the fake IMDS saw no request"
    assert recs[0]["method"] == "PUT" and recs[0]["path"] == "/latest/api/token", recs
    gets = [x for x in recs if x["method"] == "GET"]
    assert gets, recs
    assert all(x["had_token"] and x["token_valid"] for x in gets), recs
    paths = [x["path"] for x in gets]
    assert "/latest/meta-data/iam/security-credentials/" in paths
    assert "/latest/meta-data/iam/security-credentials/" + imds.role in paths
    assert_signed_with(proxy, imds.access_key_id)
    assert_no_secret(r, imds.secret_access_key, imds.token)


def test_imds_disabled_is_not_contacted(gm, proxy, imds):
    env = dict(NO_ENV_KEYS)
    env.update({"AWS_EC2_METADATA_DISABLED": "TRUE",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url})
    r = whoami(gm, env=env)
    assert r.returncode != 0, describe(r)
    assert imds.records == []
    assert "instance metadata (disabled)" in r.stderr


def test_imds_without_role(gm, proxy, imds):
    imds.role = None
    env = dict(NO_ENV_KEYS)
    env.update(imds_env(imds))
    r = whoami(gm, env=env)
    assert r.returncode != 0, describe(r)
    assert "no aws credentials found" in r.stderr
    assert "no instance role" in r.stderr
    assert imds.records and imds.records[0]["method"] == "PUT"


# -- precedence -------------------------------------------------------------

def test_precedence_env_file_process_imds(gm, proxy, imds, tmp_path):
    marker = tmp_path / "process-ran"
    script = process_script(tmp_path, "AKIDPRECPROCESS", "prec-proc-" + MARK, marker=marker)
    creds_text = ("[default]\naws_access_key_id = AKIDPRECFILE\n"
                  "aws_secret_access_key = prec-file-" + MARK + "\n")
    config_text = "[default]\nregion = us-east-1\ncredential_process = %s\n" % script
    base = files_env(tmp_path, credentials=creds_text, config=config_text)
    base.update(imds_env(imds))

    # 1. environment beats everything; nothing else is consulted.
    env = dict(base, AWS_ACCESS_KEY_ID="AKIDPRECENV", AWS_SECRET_ACCESS_KEY="prec-env-" + MARK)
    r = whoami(gm, env=env)
    assert ok_json(r)["credential_source"] == "environment"
    assert not marker.exists()
    assert imds.records == []
    assert_no_secret(r)

    # 2. without env keys: the credentials file beats credential_process and IMDS.
    proxy.clear_records()
    env = dict(base, **NO_ENV_KEYS)
    r = whoami(gm, env=env)
    assert ok_json(r)["credential_source"] == "shared-credentials-file"
    assert_signed_with(proxy, "AKIDPRECFILE")
    assert not marker.exists()
    assert imds.records == []

    # 3. without static keys: credential_process beats IMDS.
    proxy.clear_records()
    os.unlink(base["AWS_SHARED_CREDENTIALS_FILE"])
    r = whoami(gm, env=env)
    assert ok_json(r)["credential_source"] == "credential-process"
    assert_signed_with(proxy, "AKIDPRECPROCESS")
    assert marker.exists()
    assert imds.records == []

    # 4. nothing else: IMDS.
    proxy.clear_records()
    write(tmp_path / "aws-config", "[default]\nregion = us-east-1\n")
    r = whoami(gm, env=env)
    assert ok_json(r)["credential_source"] == "imds"
    assert_signed_with(proxy, imds.access_key_id)
    assert imds.records[0]["method"] == "PUT"
    assert_no_secret(r, imds.secret_access_key)


def test_credentials_file_beats_config_file(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(
        tmp_path,
        credentials=("[default]\naws_access_key_id = AKIDBOTHCREDS\n"
                     "aws_secret_access_key = both-c-" + MARK + "\n"),
        config=("[default]\naws_access_key_id = AKIDBOTHCONFIG\n"
                "aws_secret_access_key = both-g-" + MARK + "\n")))
    r = whoami(gm, env=env)
    assert ok_json(r)["credential_source"] == "shared-credentials-file"
    assert_signed_with(proxy, "AKIDBOTHCREDS")


# -- nothing configured ------------------------------------------------------

def test_nothing_configured_lists_sources(gm, proxy, tmp_path):
    r = whoami(gm, env=dict(NO_ENV_KEYS))
    assert r.returncode != 0, describe(r)
    err = r.stderr
    assert "no aws credentials found" in err
    for source in ("environment variables", "shared credentials file", "config file",
                   "credential_process", "instance metadata"):
        assert source in err, describe(r)
    assert "nonexistent-aws-credentials" in err
    assert "nonexistent-aws-config" in err
    assert proxy.records == []


def test_assume_role_profile_is_refused_clearly(gm, proxy, tmp_path):
    env = dict(NO_ENV_KEYS)
    env.update(files_env(tmp_path, config=(
        "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\n"
        "source_profile = default\n"
        "[default]\naws_access_key_id = AKIDSOURCE\naws_secret_access_key = src-" + MARK + "\n")))
    r = whoami(gm, "--profile", "deploy", env=env)
    assert r.returncode != 0, describe(r)
    assert "not supported yet" in r.stderr
    assert proxy.records == []
    assert_no_secret(r)


# -- secrets ----------------------------------------------------------------

def test_secrets_never_printed_even_verbose(gm, proxy, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "AKIDVERBOSE", "AWS_SECRET_ACCESS_KEY": "verbose-" + MARK,
           "AWS_SESSION_TOKEN": "verbose-token-" + MARK}
    r = gm.run("whoami", "--output", "json", "--verbose", env=env, timeout=RUN_TIMEOUT)
    assert r.returncode == 0, describe(r)
    assert_no_secret(r)
    r = gm.run("whoami", "--verbose", env=env, timeout=RUN_TIMEOUT)
    assert r.returncode == 0, describe(r)
    assert_no_secret(r)
    # The log files under GEUSEMAKER_HOME (if any) hold no secret either.
    home = gm.env.get("GEUSEMAKER_HOME")
    if home:
        for root, _dirs, files in os.walk(home):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    assert MARK.encode() not in fh.read(), os.path.join(root, f)
