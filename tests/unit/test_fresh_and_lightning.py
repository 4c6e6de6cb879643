"""`inv fresh` planning and the Lightning hook blocks (pure parts)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clearml_stack import lightning
from clearml_stack.errors import StackError
from clearml_stack.fresh import confirmed, plan
from clearml_stack.repair import compose_args

K = Path("/home/u/kit")


def test_fresh_keeps_settings_and_users_unless_all() -> None:
    p = plan(K / "data", K / ".env", K / "users.json", K / "backups", everything=False, kit_root=K)
    assert p.remove == (K / "data",)
    assert set(p.keep) == {K / ".env", K / "users.json", K / "backups"}
    p = plan(K / "data", K / ".env", K / "users.json", K / "backups", everything=True, kit_root=K)
    assert set(p.remove) == {K / "data", K / ".env", K / "users.json"}
    assert p.keep == (K / "backups",)


@pytest.mark.parametrize("backup_dir,users,data", [
    (K / "data/backups", K / "users.json", K / "data"),  # the backup would be deleted
    (K / "backups", K / "data/users.json", K / "data"),  # the users file would be deleted
    (K / "backups", K / "users.json", K),  # the kit itself would be deleted
])
def test_fresh_refuses_to_remove_what_it_must_keep(backup_dir, users, data) -> None:
    with pytest.raises(StackError):
        plan(data, K / ".env", users, backup_dir, everything=False, kit_root=K)


def test_fresh_confirmation_is_the_exact_project_name() -> None:
    assert confirmed("clearml\n", "clearml")
    assert not confirmed("yes", "clearml") and not confirmed("ClearML", "clearml") and not confirmed("", "clearml")


def test_repair_runs_mongod_repair_in_a_one_off_container_of_the_mongo_service() -> None:
    assert compose_args() == ["run", "--rm", "--no-deps", "-T", "mongo", "mongod", "--repair", "--dbpath", "/data/db"]


@pytest.mark.parametrize("env,expected", [
    ({}, False), ({"LIGHTNING_CLOUDSPACE_HOST": "x.cloudspaces.litng.ai"}, True),
    ({"LIGHTNING_CLOUD_SPACE_ID": "01abc"}, True), ({"LIGHTNING_CLOUD_PROJECT_ID": "01p"}, True),
    ({"LIGHTNING_CLOUDSPACE_HOST": ""}, False), ({"HOME": "/teamspace/studios/this_studio"}, False),
])
def test_studio_detection(env, expected) -> None:
    assert lightning.is_studio(env) is expected


VALUES = lightning.HookValues(Path("/home/u/my kit"), Path("/home/u/my kit/.env"), Path("/home/u/my kit/.venv/bin/inv"),
                              Path("/home/u/.lightning_studio/clearml-lightning.log"))


def test_blocks_are_marked_and_quote_paths() -> None:
    start = lightning.render_block("on_start", VALUES)
    stop = lightning.render_block("on_stop", VALUES)
    for block in (start, stop):
        assert block.startswith(lightning.BEGIN) and block.rstrip().endswith(lightning.END)
        assert "kit='/home/u/my kit'" in block and "export CLEARML_ENV_FILE='/home/u/my kit/.env'" in block
        assert "{{" not in block
    assert "want=524288" in start and '"$inv" up' in start and "agents.up" in start
    assert '"$inv" down' in stop and "agents.down" in stop and "sysctl" not in stop


def test_a_new_hook_file_gets_a_shebang() -> None:
    text = lightning.with_block(None, "BLOCK\n")
    assert text.startswith("#!/usr/bin/env bash\n") and text.endswith("BLOCK\n")


def test_user_lines_are_kept_and_the_block_is_replaced_not_duplicated() -> None:
    user = "#!/bin/bash\necho 'my own start'\n"
    block = lightning.render_block("on_start", VALUES)
    once = lightning.with_block(user, block)
    assert once.startswith(user) and once.count(lightning.BEGIN) == 1
    newer = block.replace("want=524288", "want=600000")
    twice = lightning.with_block(once, newer)
    assert twice.count(lightning.BEGIN) == 1 and "want=600000" in twice and twice.startswith(user)
    assert lightning.without_block(twice) == user  # uninstall gives the user's file back, byte for byte


def test_user_lines_after_the_block_survive_uninstall() -> None:
    block = lightning.render_block("on_stop", VALUES)
    text = "#!/bin/bash\n\n" + block + "echo after\n"
    rest = lightning.without_block(text)
    assert lightning.BEGIN not in rest and "echo after" in rest


def test_a_file_that_only_held_our_block_is_removed() -> None:
    assert lightning.without_block(lightning.with_block(None, lightning.render_block("on_start", VALUES))) is None


def test_data_outside_home_is_warned_about_on_a_studio(tmp_path) -> None:
    class S:
        data_dir = tmp_path / "elsewhere"

    home = tmp_path / "home"
    home.mkdir()
    assert "outside the home directory" in lightning.data_warning(S(), {"HOME": str(home)})
    S.data_dir = home / "kit" / "data"
    assert lightning.data_warning(S(), {"HOME": str(home)}) is None


class _Kit:
    kit_root = Path("/home/u/my kit")
    env_file = Path("/home/u/my kit/.env")


def test_placing_and_removing_keep_the_users_file_mode_and_never_half_write_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    hooks = tmp_path / ".lightning_studio"
    hooks.mkdir()
    start = hooks / "on_start.sh"
    start.write_text("#!/bin/bash\necho 'my own start'\n")
    os.chmod(start, 0o775)
    environ = {"HOME": str(tmp_path), "LIGHTNING_CLOUDSPACE_HOST": "x.litng.ai"}
    lightning.place(_Kit(), environ)
    assert stat.S_IMODE(start.stat().st_mode) == 0o775 and lightning.BEGIN in start.read_text()
    assert stat.S_IMODE((hooks / "on_stop.sh").stat().st_mode) == 0o755
    placed = start.read_text()

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:  # a failed write leaves the file as it was, not truncated
        m.setattr(os, "replace", no_rename)
        with pytest.raises(OSError):
            lightning.remove(environ)
    assert start.read_text() == placed and sorted(p.name for p in hooks.iterdir()) == ["on_start.sh", "on_stop.sh"]
    lightning.remove(environ)
    assert start.read_text() == "#!/bin/bash\necho 'my own start'\n"
    assert stat.S_IMODE(start.stat().st_mode) == 0o775 and not (hooks / "on_stop.sh").exists()
