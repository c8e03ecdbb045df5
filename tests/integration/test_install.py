"""Discoverability and installation: the completions and the man page list
every command and option the parser accepts (they are generated from the same
tables), `cmake --install` installs the three, and the .deb installs into a
clean root and runs."""
import os
import re
import shutil
import subprocess

import pytest


def run(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


def visible_commands(gm):
    r = gm.run("--help")
    block = r.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def options_of(gm, command):
    """The options `COMMAND --help` lists (what the parser accepts, hidden ones aside)."""
    r = gm.run(command, "--help")
    assert r.returncode == 0
    return sorted(set(re.findall(r"^  (?:-\w, )?(--[a-z0-9-]+)", r.stdout, re.M)))


def bash_complete(script, words):
    """COMPREPLY for the command line `words` (the last one being completed)."""
    prog = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _geusemaker; '
            'printf "%s\\n" "${COMPREPLY[@]}"')
    r = run("bash", "-c", prog, "complete", script, *words)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_bash_completion_completes_every_command_and_option(gm, tmp_path):
    script = tmp_path / "geusemaker.bash"
    r = gm.run("completion", "bash")
    assert r.returncode == 0
    script.write_text(r.stdout)
    assert run("bash", "-n", script).returncode == 0
    commands = visible_commands(gm)
    assert {"deploy", "destroy", "adopt", "cleanup", "config", "completion"} <= set(commands)
    assert set(commands) <= set(bash_complete(script, ["geusemaker", ""]))
    assert bash_complete(script, ["geusemaker", "dep"]) == ["deploy"]
    for command in commands:
        offered = set(bash_complete(script, ["geusemaker", command, "--"]))
        missing = set(options_of(gm, command)) - offered
        assert not missing, (command, missing)
    assert bash_complete(script, ["geusemaker", "deploy", "--tier", "a"]) == ["automation"]
    assert bash_complete(script, ["geusemaker", "status", "--output", ""]) == ["text", "json"]
    assert bash_complete(script, ["geusemaker", "image", "b"]) == ["build"]
    assert bash_complete(script, ["geusemaker", "image", "de"]) == ["delete"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_parse(gm, tmp_path, shell):
    r = gm.run("completion", shell)
    assert r.returncode == 0 and "deploy" in r.stdout
    if not shutil.which(shell):
        pytest.skip("%s is not installed" % shell)
    path = tmp_path / ("c." + shell)
    path.write_text(r.stdout)
    assert run(shell, "-n", path).returncode == 0


def test_unknown_shell(gm):
    r = gm.run("completion", "tcsh")
    assert r.returncode == 2 and "bash, zsh or fish" in r.stderr


def test_man_page_renders_and_lists_every_option(gm, tmp_path):
    page = tmp_path / "geusemaker.1"
    page.write_text(gm.run("manpage").stdout)
    r = run("man", "-l", page, env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0"))
    assert r.returncode == 0, r.stderr
    text = re.sub(r".\x08", "", r.stdout)
    for command in visible_commands(gm):
        assert re.search(r"^   %s$" % re.escape(command), text, re.M), command
        for opt in options_of(gm, command):
            assert opt in text, (command, opt)


def build_dir(gm):
    d = gm.bin.parent
    if not (d / "CMakeCache.txt").exists():
        pytest.skip("the binary is not in a CMake build directory")
    return d


def test_cmake_install_installs_binary_man_page_and_completions(gm, tmp_path):
    d = build_dir(gm)
    r = run("cmake", "--install", d, "--prefix", tmp_path / "prefix")
    assert r.returncode == 0, r.stderr
    prefix = tmp_path / "prefix"
    for rel in ("bin/geusemaker", "share/man/man1/geusemaker.1",
                "share/bash-completion/completions/geusemaker",
                "share/zsh/vendor-completions/_geusemaker",
                "share/fish/vendor_completions.d/geusemaker.fish"):
        assert (prefix / rel).is_file(), rel
    r = run(prefix / "bin/geusemaker", "--version")
    assert r.returncode == 0 and r.stdout.startswith("geusemaker ")


def test_deb_names_its_libraries_and_installs_into_a_clean_root(gm, tmp_path):
    d = build_dir(gm)
    out = tmp_path / "pkg"
    r = run("cpack", "-G", "DEB", "-B", out, cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    debs = list(out.glob("geusemaker_*.deb"))
    assert len(debs) == 1
    depends = run("dpkg-deb", "-f", debs[0], "Depends").stdout
    for lib in ("libcurl4", "libssl3", "libxml2", "libjansson4", "libyaml-0-2", "zlib1g", "libc6"):
        assert lib in depends, depends
    root = tmp_path / "root"
    for sub in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (root / sub).mkdir(parents=True)
    for f in ("status", "available"):
        (root / "var/lib/dpkg" / f).touch()
    # A clean root has none of the libraries: their packages are the host's.
    r = run("dpkg", "--root", root, "--force-not-root", "--force-depends", "--log", "/dev/null",
            "-i", debs[0])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ii  geusemaker" in run("dpkg", "--root", root, "-l", "geusemaker").stdout
    r = run(root / "usr/bin/geusemaker", "--version")
    assert r.returncode == 0 and r.stdout.strip() == "geusemaker %s" % debs[0].name.split("_")[1]
    assert (root / "usr/share/man/man1/geusemaker.1").is_file()
