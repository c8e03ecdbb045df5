"""Settings from outside the command line: flags > GEUSEMAKER_<OPTION> >
./geusemaker.yaml > $GEUSEMAKER_HOME/config.yaml > defaults, checked
strictly, shown by `config`, sampled by `init`."""
import json
import os

import pytest

from deployhelpers import FAST, deploy, destroy


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def effective(gm, *args, env=None):
    r = gm.run("config", "--output", "json", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["settings"]


# (where the winning value is set, expected source) for one key at a time;
# every lower layer is set too, so the case proves it wins over them.
LAYERS = ["default", "user", "project", "env", "flag"]


@pytest.mark.parametrize("key, values, flag", [
    ("region", {"user": "eu-west-1", "project": "eu-west-2", "env": "eu-west-3",
                "flag": "eu-central-1"}, "--region"),
    ("tier", {"user": "gpu", "project": "automation", "env": "gpu", "flag": "automation"},
     "--tier"),
    ("min-saving", {"user": "10", "project": "15", "env": "25", "flag": "30"}, "--min-saving"),
])
@pytest.mark.parametrize("top", LAYERS)
def test_precedence(gm, gm_home, key, values, flag, top):
    wd = gm.workdir
    for f in (os.path.join(str(gm_home), "config.yaml"), os.path.join(str(wd), "geusemaker.yaml")):
        if os.path.exists(f):
            os.unlink(f)
    env, args = {}, []
    upto = LAYERS[1:LAYERS.index(top) + 1]
    if "user" in upto:
        write(os.path.join(str(gm_home), "config.yaml"), "%s: %s\n" % (key, values["user"]))
    if "project" in upto:
        write(os.path.join(str(wd), "geusemaker.yaml"), "# project\n%s: %s\n"
              % (key, values["project"]))
    if "env" in upto:
        env["GEUSEMAKER_" + key.upper().replace("-", "_")] = values["env"]
    if "flag" in upto:
        args = [flag, values["flag"]]
    s = effective(gm, *args, env=env)[key]
    if top == "default":
        assert s["source"] == "default"
    else:
        assert s["value"] == values[top], s
        expect = {"user": "user file", "project": "project file", "env": "environment",
                  "flag": "flag"}[top]
        assert s["source"] == expect, s
    if top == "project":
        assert s["where"].endswith("geusemaker.yaml:2")
    if top == "env":
        assert s["where"] == "GEUSEMAKER_" + key.upper().replace("-", "_")


def test_lists_and_flags(gm):
    write(os.path.join(str(gm.workdir), "geusemaker.yaml"),
          "allow-cidr: [203.0.113.0/24, 198.51.100.0/24]\nspot-only: yes\n")
    s = effective(gm)
    assert s["allow-cidr"]["value"] == ["203.0.113.0/24", "198.51.100.0/24"]
    assert s["spot-only"]["value"] is True
    s = effective(gm, env={"GEUSEMAKER_ALLOW_CIDR": "192.0.2.0/24,192.0.2.128/25",
                           "GEUSEMAKER_SPOT_ONLY": "false"})
    assert s["allow-cidr"]["value"] == ["192.0.2.0/24", "192.0.2.128/25"]
    assert s["spot-only"]["value"] is False


@pytest.mark.parametrize("text, line, message", [
    ("tier: dev\nregoin: eu-west-1\n", 2, "unknown key 'regoin' (did you mean 'region'?)"),
    ("tier: [dev, gpu]\n", 1, "'tier' takes one value, not a list"),
    ("tier:\n  name: x\n", 2, "'tier' takes a value, not a mapping"),
    ("spot-only: maybe\n", 1, "'spot-only' is a flag: true or false"),
    ("tier: dev\ntier: gpu\n", 2, "'tier' is given twice"),
    ("- tier\n", 1, "must be a mapping"),
    ("tier: [dev\n", 2, "not valid YAML"),
    ("yes: 1\n", 1, "unknown key 'yes'"),
    ("tier: ''\n", 1, "'tier' has an empty value"),
])
def test_config_errors_name_file_line_and_key(gm, proxy, text, line, message):
    path = os.path.join(str(gm.workdir), "geusemaker.yaml")
    write(path, text)
    for argv in (["config"], ["status", "demo"], ["deploy", "--name", "x", "--yes"]):
        r = gm.run(*argv, env=FAST)
        assert r.returncode == 2, (argv, r.stderr)
        assert "geusemaker.yaml:%d" % line in r.stderr and message in r.stderr, r.stderr
    assert proxy.records == []


def test_env_errors(gm, proxy):
    r = gm.run("config", env={"GEUSEMAKER_SPOT_ONLY": "sometimes"})
    assert r.returncode == 2 and "GEUSEMAKER_SPOT_ONLY" in r.stderr
    r = gm.run("config", env={"GEUSEMAKER_TIER": "dev,gpu"})
    assert r.returncode == 2 and "GEUSEMAKER_TIER takes one value" in r.stderr
    r = gm.run("whoami", env={"GEUSEMAKER_REGION": "useast1"})
    assert r.returncode == 2 and "did you mean 'us-east-1'" in r.stderr
    assert proxy.records == []


def test_unsafe_config_file_is_refused(gm, gm_home):
    path = os.path.join(str(gm_home), "config.yaml")
    write(path, "tier: gpu\n", mode=0o666)
    r = gm.run("config")
    assert r.returncode == 2 and "chmod go-w" in r.stderr, r.stderr


def test_init_writes_a_sample_that_reads_back(gm, gm_home):
    r = gm.run("init")
    assert r.returncode == 0, r.stderr
    path = os.path.join(str(gm_home), "config.yaml")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    text = open(path).read()
    for key in ("# region:", "# tier: dev", "# allow-cidr: [", "# certificate-arn:"):
        assert key in text
    assert gm.run("config").returncode == 0  # all commented: reads as empty
    r = gm.run("init")
    assert r.returncode == 2 and "--force" in r.stderr
    assert gm.run("init", "--force").returncode == 0
    r = gm.run("init", "--project")
    assert r.returncode == 0 and os.path.exists(os.path.join(str(gm.workdir), "geusemaker.yaml"))
    # Uncommenting a line takes effect.
    write(path, text.replace("# tier: dev", "tier: automation"))
    assert effective(gm)["tier"]["value"] == "automation"


def test_settings_drive_a_deploy_but_never_a_records_region(gm, proxy, boto):
    """tier from the project file reaches the deploy; a region in the file
    does not move commands on an existing record away from its region."""
    write(os.path.join(str(gm.workdir), "geusemaker.yaml"), "tier: automation\n")
    assert deploy(gm, "fromfile").returncode == 0
    r = gm.run("status", "fromfile", "--output", "json", env=FAST)
    assert json.loads(r.stdout)["tier"] == "automation"
    write(os.path.join(str(gm.workdir), "geusemaker.yaml"),
          "tier: automation\nregion: eu-west-1\nname: fromfile\n")
    r = gm.run("status", "fromfile", "--output", "json", env=FAST)
    assert r.returncode == 0 and json.loads(r.stdout)["region"] == "us-east-1"
    # A resume takes its saved configuration: the settings are not "options".
    r = gm.run("deploy", "--resume", "fromfile", env=FAST, timeout=180)
    assert r.returncode == 0, r.stderr
    assert destroy(gm, "fromfile").returncode == 0
