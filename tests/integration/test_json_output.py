"""--output json: every command prints exactly one JSON document on stdout,
on success and on failure ({"error": {...}, "exit_code": N})."""
import json

import pytest

from deployhelpers import FAST

# The commands whose output is a script or a page, not data.
NOT_DATA = {"completion", "manpage"}


def one_document(text):
    doc, end = json.JSONDecoder().raw_decode(text)
    assert text[end:].strip() == "", "more than one document: %r" % text[end:][:200]
    return doc


def commands(gm):
    r = gm.run("--help")
    block = r.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def test_every_command_fails_with_one_json_document(gm, proxy):
    for command in commands(gm):
        if command in NOT_DATA:
            continue
        r = gm.run(command, "--output", "json", "--no-such-option", env=FAST)
        assert r.returncode == 2, (command, r.stderr)
        doc = one_document(r.stdout)
        assert doc["exit_code"] == 2 and "--no-such-option" in doc["error"]["message"], command
    assert proxy.records == []


@pytest.mark.parametrize("argv, code", [
    (["status", "nosuch"], 2), (["destroy", "nosuch", "--yes"], 2), (["cost", "nosuch"], 2),
    (["health", "nosuch"], 2), (["secrets", "nosuch", "--yes"], 2),
    (["forget", "nosuch", "--yes"], 2), (["deploy", "--resume", "nosuch"], 2),
    (["whoami"], 4), (["adopt", "nosuch"], 2),
])
def test_failures_are_one_document(gm, proxy, argv, code):
    env = dict(FAST)
    if argv == ["whoami"]:
        env.update({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    r = gm.run(*argv, "--output", "json", env=env)
    assert r.returncode == code, r.stderr
    doc = one_document(r.stdout)
    assert doc["exit_code"] == code and doc["error"]["message"] and doc["error"]["kind"]
    assert r.stderr.startswith("error:") or "error:" in r.stderr


@pytest.mark.parametrize("argv", [["list"], ["config"], ["whoami"], ["init"],
                                  ["cleanup", "--dry-run"], ["userdata", "--name", "x"]])
def test_successes_are_one_document(gm, proxy, argv):
    r = gm.run(*argv, "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    one_document(r.stdout)
