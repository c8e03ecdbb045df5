"""Image overrides: deploy --image SERVICE=REF runs that image for the service
(the Compose file in the launch template's UserData), keeps the catalogue's
pinned digests for every other service, and saves the override in the record."""
import json
import re

import pytest

from deployhelpers import CIDR, FAST, deploy, destroy, leftovers, load_state, template_userdata

N8N = "n8nio/n8n:2.42.0"
QDRANT = "qdrant/qdrant:v1.20.0@sha256:" + "0123456789abcdef" * 4


def compose_of(script):
    """The Compose file the UserData writes (its quoted heredoc)."""
    m = re.search(r"<<'GM_COMPOSE_EOF'\n(.*?)\nGM_COMPOSE_EOF\n", script, re.S)
    assert m, "no Compose heredoc in the UserData"
    return m.group(1) + "\n"


def images(compose):
    """service -> image, from the Compose file."""
    yaml = pytest.importorskip("yaml")
    return {name: svc["image"] for name, svc in yaml.safe_load(compose)["services"].items()}


def pinned(gm):
    """The catalogue's images: what `userdata --compose` renders without overrides."""
    r = gm.run("userdata", "--name", "pins", "--compose")
    assert r.returncode == 0, r.stderr
    return images(r.stdout)


def test_deploy_with_an_image_override(gm, proxy, boto, gm_home):
    pins = pinned(gm)
    assert set(pins) == {"postgres", "n8n", "qdrant", "ollama", "crawl4ai"}
    assert all(re.search(r":[^/]+@sha256:[0-9a-f]{64}$", ref) for ref in pins.values()), pins
    assert pins["n8n"] != N8N

    r = deploy(gm, "imgs", "--image", "n8n=" + N8N)
    assert r.returncode == 0, r.stderr
    st = load_state(gm_home, "imgs")
    assert st["config"]["images"] == {"n8n": N8N}

    compose = compose_of(template_userdata(boto, st).decode())
    got = images(compose)
    assert got["n8n"] == N8N  # no digest: the user gave none
    assert "# image override (--image); the catalogue pins " + pins["n8n"].split("@")[0] in compose
    for service, ref in pins.items():
        if service != "n8n":
            assert got[service] == ref, service  # pinned by digest, as before
    assert compose.count("@sha256:") == len(pins) - 1

    assert destroy(gm, "imgs").returncode == 0
    assert leftovers(boto, "imgs") == {}


def test_two_overrides_and_a_digest(gm, proxy, boto, gm_home):
    pins = pinned(gm)
    r = deploy(gm, "imgs2", "--image", "qdrant=" + QDRANT, "--image", "n8n=" + N8N)
    assert r.returncode == 0, r.stderr
    st = load_state(gm_home, "imgs2")
    assert st["config"]["images"] == {"qdrant": QDRANT, "n8n": N8N}
    got = images(compose_of(template_userdata(boto, st).decode()))
    assert got["qdrant"] == QDRANT and got["n8n"] == N8N
    assert {s: got[s] for s in ("postgres", "ollama", "crawl4ai")} == \
        {s: pins[s] for s in ("postgres", "ollama", "crawl4ai")}
    assert destroy(gm, "imgs2").returncode == 0


def test_no_override_leaves_the_record_and_pins_alone(gm, proxy, boto, gm_home):
    pins = pinned(gm)
    r = deploy(gm, "noimg")
    assert r.returncode == 0, r.stderr
    st = load_state(gm_home, "noimg")
    assert "images" not in st["config"]
    assert images(compose_of(template_userdata(boto, st).decode())) == pins
    assert destroy(gm, "noimg").returncode == 0


def test_image_from_the_environment_and_plan(gm, proxy, boto):
    """--image is a deployment setting: GEUSEMAKER_IMAGE (comma-separated) and
    plan take it too; a bad one stops both before any AWS call."""
    r = gm.run("plan", "--name", "p1", "--allow-cidr", CIDR, "--image", "n8n=" + N8N,
               "--output", "json", env=FAST)
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)
    proxy.clear_records()
    r = gm.run("plan", "--name", "p1", "--allow-cidr", CIDR, env=dict(
        FAST, GEUSEMAKER_IMAGE="n8n=%s,n8n=n8nio/n8n:2.43.0" % N8N))
    assert r.returncode == 2, r.stderr
    assert "--image names service 'n8n' twice" in r.stderr
    assert proxy.records == []


def test_help_shows_the_option(gm):
    for command in ("deploy", "plan"):
        r = gm.run(command, "--help")
        assert r.returncode == 0, r.stderr
        assert "--image SERVICE=REF" in r.stdout
