"""`list` reads the records through the store's index (deployments/.index.json):
a cache keyed by each record file's identity, so a listing never shows a
record that is gone, misses one that exists, or shows an old copy of one that
changed, whatever state the index is in (missing, corrupt, stale, of another
version, or cut short by a kill)."""
import json
import os
import signal
import stat
import subprocess

from deployhelpers import state_path


def write_record(gm_home, name, status="failed", region="us-east-1", replace=False):
    d = os.path.join(str(gm_home), "deployments")
    os.makedirs(d, mode=0o700, exist_ok=True)
    doc = {"schema_version": 1, "name": name, "tier": "dev", "region": region,
           "status": status, "status_reason": "deploy failed" if status == "failed" else None,
           "created_at": 1, "updated_at": 2, "config": {"instance_type": "t3.medium"},
           "cost": {"hourly": 0.05, "breakdown": {"ec2": 0.04}}, "nodes": [],
           "events": [{"ts": 1, "type": "x", "message": "m"}]}
    if doc["status_reason"] is None:
        del doc["status_reason"]
    path = state_path(gm_home, name)
    tmp = path + ".writing"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    if os.path.exists(path) and not replace:
        raise AssertionError("exists")
    os.rename(tmp, path)  # as the store saves: a new file renamed over the old
    return path


def index_path(gm_home):
    return os.path.join(str(gm_home), "deployments", ".index.json")


def rows(gm):
    r = gm.run("list", "--offline", "--output", "json")
    assert r.returncode == 0, r.stderr
    return {d["name"]: d for d in json.loads(r.stdout)}


def test_index_is_built_and_follows_every_change(gm, gm_home):
    for n in ("a", "b", "c"):
        write_record(gm_home, n)
    assert set(rows(gm)) == {"a", "b", "c"}
    with open(index_path(gm_home)) as f:
        idx = json.load(f)
    assert set(idx["records"]) == {"a", "b", "c"}
    assert stat.S_IMODE(os.stat(index_path(gm_home)).st_mode) == 0o600
    # the reduced copy keeps no events and only the hourly cost
    assert idx["records"]["a"]["record"]["events"] == []
    assert idx["records"]["a"]["record"]["cost"] == {"hourly": 0.05}
    # a changed record is read again; a removed one disappears; a new one appears
    write_record(gm_home, "b", status="destroyed", replace=True)
    os.unlink(state_path(gm_home, "c"))
    write_record(gm_home, "d")
    got = rows(gm)
    assert set(got) == {"a", "b", "d"}
    assert got["b"]["status"] == "destroyed" and got["a"]["status"] == "failed"
    assert got["a"]["cost_per_hour"] == 0.05 and got["a"]["instance_type"] == "t3.medium"
    with open(index_path(gm_home)) as f:
        assert set(json.load(f)["records"]) == {"a", "b", "d"}


def test_an_unchanged_index_is_not_rewritten(gm, gm_home):
    write_record(gm_home, "a")
    rows(gm)
    before = os.stat(index_path(gm_home))
    rows(gm)
    after = os.stat(index_path(gm_home))
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_a_broken_or_foreign_index_is_rebuilt(gm, gm_home):
    write_record(gm_home, "a")
    write_record(gm_home, "b")
    rows(gm)
    good = open(index_path(gm_home)).read()
    for junk in ("", "{half", good[: len(good) // 2], '{"index": 99, "records": {}}',
                 json.dumps(dict(json.loads(good), version="list-0"))):
        with open(index_path(gm_home), "w") as f:
            f.write(junk)
        assert set(rows(gm)) == {"a", "b"}, junk
        assert json.load(open(index_path(gm_home))) == json.loads(good)


def test_a_planted_entry_for_another_file_is_not_trusted(gm, gm_home):
    write_record(gm_home, "a")
    rows(gm)
    idx = json.load(open(index_path(gm_home)))
    idx["records"]["a"]["record"]["status"] = "running"
    idx["records"]["a"]["file"][0] += 1  # another inode: not this file
    idx["records"]["ghost"] = idx["records"]["a"]
    with open(index_path(gm_home), "w") as f:
        json.dump(idx, f)
    got = rows(gm)
    assert set(got) == {"a"} and got["a"]["status"] == "failed"


def test_unreadable_record_is_listed_as_such_and_not_cached(gm, gm_home):
    write_record(gm_home, "a")
    p = state_path(gm_home, "bad")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"{not json")
    os.close(fd)
    got = rows(gm)
    assert got["bad"]["status"] == "unreadable" and "corrupt" in got["bad"]["error"]
    assert "bad" not in json.load(open(index_path(gm_home)))["records"]
    os.unlink(p)
    write_record(gm_home, "bad")
    assert rows(gm)["bad"]["status"] == "failed"


def test_leftovers_of_a_killed_writer_are_removed(gm, gm_home):
    write_record(gm_home, "a")
    d = os.path.join(str(gm_home), "deployments")
    # a pid that cannot be alive: a child that has exited and been reaped
    child = subprocess.Popen(["true"])
    child.wait()
    dead = os.path.join(d, ".index.json.%d.tmp" % child.pid)
    live = os.path.join(d, ".index.json.%d.tmp" % os.getpid())
    for p in (dead, live):
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"{")
        os.close(fd)
    assert set(rows(gm)) == {"a"}
    assert not os.path.exists(dead)
    assert os.path.exists(live)  # a live writer's file is left alone


def test_kill_while_listing_never_breaks_the_next_listing(gm, gm_home):
    for i in range(200):
        write_record(gm_home, "k%03d" % i)
    for delay in (0.001, 0.005, 0.01, 0.02, 0.05):
        if os.path.exists(index_path(gm_home)):
            os.unlink(index_path(gm_home))
        p = gm.popen("list", "--offline", "--output", "json")
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
        got = rows(gm)
        assert len(got) == 200 and all(r["status"] == "failed" for r in got.values())


def test_unsafe_index_is_refused_with_the_fix(gm, gm_home):
    write_record(gm_home, "a")
    rows(gm)
    os.chmod(index_path(gm_home), 0o666)
    r = gm.run("list", "--offline")
    assert r.returncode == 2
    assert "chmod go-w" in r.stderr and ".index.json" in r.stderr
