"""The state folder's safety rules and `forget`, with the real binary.

Unsafe state (a home or folder writable by group/others, a symlinked home or
record, a record writable by others) is refused with exit 2 and the exact fix;
temporary files of a killed save are removed; reading commands create
nothing. `forget` drops a record (into the archive) without touching AWS,
warning about what still exists, and works when the record's region is bogus.
"""
import glob
import json
import os
import pty
import shutil
import stat
import subprocess

from deployhelpers import FAST, deploy, destroy, leftovers, state_path


def refusal(path, why, fix):
    return "error: refusing '%s': %s; fix: %s" % (path, why, fix)


def write_record(gm_home, name, region="us-east-1", nodes=None):
    """A minimal (schema 1, migrated on load) record, as a failed deploy leaves one."""
    d = os.path.join(str(gm_home), "deployments")
    os.makedirs(d, mode=0o700, exist_ok=True)
    doc = {"schema_version": 1, "name": name, "tier": "dev", "region": region,
           "status": "failed", "status_reason": "deploy failed", "created_at": 1,
           "updated_at": 2, "config": {}, "cost": {}, "nodes": nodes or [], "events": []}
    path = state_path(gm_home, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    return path


def listed(gm):
    r = gm.run("list", "--output", "json")
    assert r.returncode == 0, r.stderr
    return [d["name"] for d in json.loads(r.stdout)]


# ---- folder safety ----------------------------------------------------------

def test_world_writable_home_is_refused(gm, gm_home):
    write_record(gm_home, "ww")
    os.chmod(gm_home, 0o777)
    want = refusal(gm_home, "it is writable by group/others", "chmod go-w '%s'" % gm_home)
    for args in (("list",), ("status", "ww"), ("forget", "ww", "--yes"),
                 ("destroy", "ww", "--yes")):
        r = gm.run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip() == want, args
    os.chmod(gm_home, 0o700)
    assert listed(gm) == ["ww"]


def test_group_writable_deployments_folder_is_refused(gm, gm_home):
    write_record(gm_home, "gw")
    dep = os.path.join(str(gm_home), "deployments")
    os.chmod(dep, os.stat(dep).st_mode | stat.S_IWGRP)
    r = gm.run("list")
    assert r.returncode == 2
    assert r.stderr.strip() == refusal(dep, "it is writable by group/others", "chmod go-w '%s'" % dep)
    r = gm.run("status", "gw")
    assert r.returncode == 2 and "chmod go-w '%s'" % dep in r.stderr
    os.chmod(dep, 0o700)
    assert listed(gm) == ["gw"]


def test_world_writable_record_is_refused(gm, gm_home):
    path = write_record(gm_home, "wr")
    os.chmod(path, 0o606)
    want = refusal(path, "it is writable by group/others", "chmod go-w '%s'" % path)
    for args in (("list",), ("status", "wr"), ("forget", "wr", "--yes"),
                 ("destroy", "wr", "--yes")):
        r = gm.run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip() == want, args
    assert os.path.exists(path)  # refused, not removed
    os.chmod(path, 0o600)
    assert listed(gm) == ["wr"]


def test_symlinked_home_is_refused(gm, gm_home, tmp_path):
    write_record(gm_home, "sl")
    link = tmp_path / "linked-home"
    os.symlink(str(gm_home), str(link))
    r = gm.run("list", env={"GEUSEMAKER_HOME": str(link)})
    assert r.returncode == 2
    assert r.stderr.strip() == refusal(
        link, "it is a symlink (to '%s'), and geusemaker does not follow symlinks in its "
        "state folder" % gm_home, "replace it with a real directory: rm '%s' && mv '%s' '%s'"
        % (link, gm_home, link))
    r = gm.run("status", "sl", env={"GEUSEMAKER_HOME": str(link)})
    assert r.returncode == 2 and "it is a symlink" in r.stderr


def test_symlinked_record_is_refused(gm, gm_home, tmp_path):
    real = write_record(gm_home, "slr")
    target = tmp_path / "elsewhere.json"
    shutil.move(real, str(target))
    os.symlink(str(target), real)
    want = refusal(real, "it is a symlink (to '%s'), and geusemaker does not follow symlinks "
                   "in its state folder" % target,
                   "replace it with a real file: cp --remove-destination '%s' '%s' && "
                   "chmod 600 '%s'" % (target, real, real))
    for args in (("list",), ("status", "slr"), ("forget", "slr", "--yes")):
        r = gm.run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip() == want, args
    assert os.path.islink(real) and target.exists()
    # The fix works.
    os.unlink(real)
    shutil.copy(str(target), real)
    os.chmod(real, 0o600)
    assert listed(gm) == ["slr"]


def test_leftover_tmp_files_are_removed(gm, gm_home):
    write_record(gm_home, "tmpd")
    write_record(gm_home, "other")
    dep = os.path.join(str(gm_home), "deployments")
    junk = [".tmpd.json.tmp.4242", ".tmpd.json.bak.tmp.4243"]
    kept = [".tmpd.json.tmp.x", "notes.txt"]
    for f in junk + kept:
        with open(os.path.join(dep, f), "w") as fh:
            fh.write("{half a rec")
    r = gm.run("status", "tmpd")  # no AWS resources: a record without nodes
    assert r.returncode == 5, r.stderr  # read, and reported as failed (not healthy)
    for f in junk:
        assert not os.path.exists(os.path.join(dep, f)), f
    for f in kept:
        assert os.path.exists(os.path.join(dep, f)), f
    # list removes them too, for every name whose lock is free.
    with open(os.path.join(dep, ".other.json.tmp.77"), "w") as fh:
        fh.write("x")
    assert listed(gm) == ["other", "tmpd"]
    assert not os.path.exists(os.path.join(dep, ".other.json.tmp.77"))


def test_reading_commands_create_no_state_folder(gm, tmp_path):
    home = tmp_path / "never-made"
    env = {"GEUSEMAKER_HOME": str(home)}
    r = gm.run("list", env=env)
    assert r.returncode == 0 and "no deployments" in r.stdout
    for args in (("status", "x"), ("cost", "x"), ("forget", "x", "--yes")):
        r = gm.run(*args, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert "no deployment named 'x'" in r.stderr
    assert not home.exists()


def test_created_folders_and_files_are_private(gm, proxy, boto, gm_home):
    home = gm_home / "fresh" / "state"
    env = {"GEUSEMAKER_HOME": str(home)}
    r = deploy(gm, "modes", env=env)
    assert r.returncode == 0, r.stderr
    for sub in ("", "deployments", "archive", "logs"):
        assert stat.S_IMODE(os.stat(os.path.join(str(home), sub)).st_mode) == 0o700, sub
    for f in ("deployments/modes.json", "deployments/modes.lock", "logs/modes.log"):
        assert stat.S_IMODE(os.stat(os.path.join(str(home), f)).st_mode) == 0o600, f
    assert destroy(gm, "modes", env=env).returncode == 0
    for f in glob.glob(os.path.join(str(home), "archive", "*")):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    assert leftovers(boto, "modes") == {}


# ---- forget -----------------------------------------------------------------

def test_forget_keeps_aws_resources_and_warns(gm, proxy, boto, gm_home, tmp_path):
    r = deploy(gm, "fg")
    assert r.returncode == 0, r.stderr
    before = leftovers(boto, "fg")
    assert before.get("instances") and before.get("vpcs")
    record = state_path(gm_home, "fg")
    aside = tmp_path / "fg.json"
    shutil.copy(record, str(aside))

    # Without --yes and without a terminal: refused, nothing changed.
    r = gm.run("forget", "fg")
    assert r.returncode == 2
    assert "forget needs --yes" in r.stderr
    assert os.path.exists(record)

    proxy.clear_records()
    r = gm.run("forget", "fg", "--yes", env=FAST)
    assert r.returncode == 0, r.stderr
    # The look is read-only: every call describes, gets or lists.
    calls = proxy.actions()
    assert calls, "forget made no live look"
    assert all(a.startswith(("Describe", "Get", "List")) for _, a in calls), calls
    assert "still exist in us-east-1 and keep billing" in r.stderr
    assert before["auto_scaling_groups"][0] in r.stderr and before["vpcs"][0] in r.stderr
    assert "'geusemaker destroy fg'" in r.stderr
    assert "geusemaker adopt fg" in r.stderr and "geusemaker cleanup" in r.stderr
    archived = glob.glob(os.path.join(str(gm_home), "archive", "fg-*.forgotten.json"))
    assert len(archived) == 1
    assert "moved to %s" % archived[0] in r.stdout
    assert stat.S_IMODE(os.stat(archived[0]).st_mode) == 0o600
    with open(archived[0]) as f, open(str(aside)) as g:
        assert json.load(f)["nodes"] == json.load(g)["nodes"]
    assert not os.path.exists(record)
    assert not os.path.exists(record + ".bak")
    assert os.path.exists(os.path.join(str(gm_home), "logs", "fg.log"))  # the log stays
    assert "fg" not in listed(gm)
    r = gm.run("status", "fg")
    assert r.returncode == 2 and "no deployment named 'fg'" in r.stderr
    # AWS was not touched: no delete, no change.
    assert leftovers(boto, "fg") == before
    # A second forget: unknown name.
    r = gm.run("forget", "fg", "--yes")
    assert r.returncode == 2 and "no deployment named 'fg'" in r.stderr

    # Clean up with the record put back.
    shutil.copy(str(aside), record)
    os.chmod(record, 0o600)
    assert destroy(gm, "fg").returncode == 0
    assert leftovers(boto, "fg") == {}


def test_forget_json_output(gm, gm_home):
    write_record(gm_home, "fj")
    r = gm.run("forget", "fj", "--yes", "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["name"] == "fj" and doc["status"] == "forgotten"
    assert doc["archived_record"].endswith(".forgotten.json")
    assert os.path.exists(doc["archived_record"])
    assert doc["resources"]["still_existing"] == []
    assert r.stderr == ""  # nothing recorded, nothing to warn about


def test_forget_a_record_with_a_bogus_region(gm, gm_home):
    nodes = [{"name": "vpc", "kind": "vpc", "id": "vpc-0123456789abcdef0",
              "provenance": "created", "status": "created", "token": "t", "created_at": 1,
              "updated_at": 2, "outputs": {}, "error": None},
             {"name": "subnet_a", "kind": "subnet", "provenance": "created",
              "status": "creating", "token": "t2", "outputs": {}}]
    record = write_record(gm_home, "typo", region="useast1", nodes=nodes)
    r = gm.run("forget", "typo", "--yes", env=FAST)
    assert r.returncode == 0, r.stderr
    assert "could not look at the resources of 'typo' in useast1" in r.stderr
    assert "2 recorded resource(s) of 'typo' could not be checked" in r.stderr
    assert "vpc-0123456789abcdef0" in r.stderr
    assert not os.path.exists(record)
    assert "typo" not in listed(gm)


def test_forget_without_credentials_goes_on(gm, gm_home):
    nodes = [{"name": "vpc", "kind": "vpc", "id": "vpc-0123456789abcdef0",
              "provenance": "created", "status": "created", "token": "t", "created_at": 1,
              "updated_at": 2, "outputs": {}, "error": None}]
    record = write_record(gm_home, "nocreds", nodes=nodes)
    r = gm.run("forget", "nocreds", "--yes",
               env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    assert r.returncode == 0, r.stderr
    assert "could not look at the resources of 'nocreds'" in r.stderr
    assert not os.path.exists(record)


def test_forget_confirms_on_a_terminal(gm, gm_home):
    record = write_record(gm_home, "tty")
    for typed, code in ((b"nope\n", 2), (b"tty\n", 0)):
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([str(gm.bin), "forget", "tty"], env=gm._env(None),
                                 stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 cwd=gm.workdir)
            os.write(master, typed)
            out, err = p.communicate(timeout=60)
        finally:
            os.close(master)
            os.close(slave)
        assert p.returncode == code, err
        assert b"Type its name to confirm" in err
        assert os.path.exists(record) == (code != 0)
