"""scripts/host-tools.sh, the host tools `make test` needs: shellcheck, then run under bash with fake
tools, apt-get, sudo and id on PATH (nothing is installed on this machine)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit import ROOT, require_tool

pytestmark = pytest.mark.contract

SCRIPT = ROOT / "scripts" / "host-tools.sh"
BASH = shutil.which("bash") or "/bin/bash"
PRESENT = ("debootstrap", "ssh", "autossh", "lsof", "ss", "netstat")
FAKE = """#!{bash}
# records its name, arguments and DEBIAN_FRONTEND, then behaves as asked
printf '%s\\t%s\\t%s\\n' "${{0##*/}}" "$*" "${{DEBIAN_FRONTEND:-}}" >> "$CALLS"
case "${{0##*/}}" in
  id) echo "${{FAKE_UID:-0}}" ;;
  sudo) exec "$@" ;;
esac
exit 0
"""


def fake_bin(tmp_path: Path, names: tuple[str, ...]) -> Path:
    fakes = tmp_path / "fakebin"
    fakes.mkdir()
    for name in names:
        path = fakes / name
        path.write_text(FAKE.format(bash=BASH))
        path.chmod(0o755)
    (fakes / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    return fakes


def run_script(tmp_path: Path, fakes: Path, uid: int = 0) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    calls = tmp_path / "calls.log"
    calls.touch()
    proc = subprocess.run([BASH, str(SCRIPT)], env={"PATH": str(fakes), "CALLS": str(calls), "FAKE_UID": str(uid)},
                          capture_output=True, text=True, timeout=60)
    return proc, [line.split("\t") for line in calls.read_text().splitlines()]


def test_shellcheck_passes():
    shellcheck = Path(sys.executable).parent / "shellcheck"
    proc = subprocess.run([str(shellcheck), "-s", "bash", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_all_tools_present_is_a_silent_no_op(tmp_path):
    proc, calls = run_script(tmp_path, fake_bin(tmp_path, (*PRESENT, "apt-get", "sudo", "id")))
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    assert calls == []


def test_missing_tool_without_apt_get_is_named_with_the_fix(tmp_path):
    # autossh is looked up on PATH only (never in an sbin folder), so leaving it out makes it missing
    proc, calls = run_script(tmp_path, fake_bin(tmp_path, tuple(t for t in PRESENT if t != "autossh")))
    assert proc.returncode == 1
    assert "autossh" in proc.stderr and "fix:" in proc.stderr
    assert calls == []


@pytest.mark.parametrize("uid,prefix", [(1000, ["sudo"]), (0, [])])
def test_missing_tool_is_installed_with_apt_get_and_sudo_only_when_not_root(tmp_path, uid, prefix):
    names = (*(t for t in PRESENT if t != "autossh"), "apt-get", "sudo", "id")
    proc, calls = run_script(tmp_path, fake_bin(tmp_path, names), uid=uid)
    assert proc.returncode == 0, proc.stderr
    assert "installing host tools for the tests: autossh" in proc.stderr
    programs = [c[0] for c in calls if c[0] != "id"]
    expected = ["sudo", "apt-get", "sudo", "apt-get"] if prefix else ["apt-get", "apt-get"]
    assert programs == expected, calls
    apt = [c for c in calls if c[0] == "apt-get"]
    assert apt[0][1] == "update -qq"
    assert apt[1][1] == "install -y -qq autossh" and apt[1][2] == "noninteractive"


@pytest.mark.parametrize("target", ["test", "test-images"])
def test_make_targets_install_host_tools_first(target):
    require_tool("make", "the README's commands are make targets")
    proc = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "scripts/host-tools.sh", lines
    assert (ROOT / ".ci" / "run").read_text().count("scripts/host-tools.sh") == 1
