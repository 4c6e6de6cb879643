"""`upgrade.run` without an engine: what it records before the backup, and that every failure after the
backup names it and the rollback. Compose and the backup are replaced by recorders; the settings file,
its loading and the planner are real."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from clearml_stack import upgrade
from clearml_stack.envfile import parse_env, set_values
from clearml_stack.errors import StackError
from clearml_stack.health import ServiceState
from tests.kit import clean_environ


@dataclass
class Result:
    ok: bool = True


class Engine:
    """Records each compose call with the release the settings of the calling stack name."""

    def __init__(self, running: bool = True) -> None:
        self.calls: list[tuple[str, str]] = []
        self.running = running
        self.fail: tuple[str, str] | None = None  # (release, first compose word) that raises

    def stack(self, settings):
        engine = self

        class FakeStack:
            def __init__(self, s) -> None:
                self.settings = s

            def states(self):
                return [ServiceState("apiserver", "p-apiserver-1", "running", "healthy", "", 0)] if engine.running else []

            def compose(self, *args, check=True):
                version = self.settings["CLEARML_SERVER_VERSION"]
                engine.calls.append((version, args[0]))
                if engine.fail == (version, args[0]):
                    raise StackError(f"compose {args[0]} failed", "see the output above")
                return Result()

            def explain_failure(self):
                raise StackError("a service did not become healthy", "inv logs")

        return FakeStack(settings)


@pytest.fixture
def kit(tmp_path, monkeypatch):
    """An installed kit whose settings `load()` finds, with compose and the backup recorded, not run."""
    from clearml_stack import backup, install as install_mod, stack as stack_mod
    from clearml_stack.settings import BY_KEY, load

    for key in BY_KEY:
        monkeypatch.delenv(key, raising=False)
    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(tmp_path / ".env"), "COMPOSE_PROJECT_NAME": "unitup"}
    install_mod.install({}, environ)
    monkeypatch.setenv("CLEARML_ENV_FILE", environ["CLEARML_ENV_FILE"])
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "unitup")
    engine = Engine()
    monkeypatch.setattr(stack_mod, "Stack", engine.stack)
    monkeypatch.setattr(install_mod, "render_config", lambda settings, report: None)
    archive = tmp_path / "backups" / "b.tar.gz"
    backups: list[tuple[str, str]] = []

    def fake_create(settings, out_dir=None, restart=True, print_path=True) -> Path:
        file_says = parse_env(settings.env_file.read_text())["CLEARML_SERVER_VERSION"]
        backups.append((settings["CLEARML_SERVER_VERSION"], file_says))
        return archive

    monkeypatch.setattr(backup, "create", fake_create)

    def record(version: str) -> None:
        env_file = Path(environ["CLEARML_ENV_FILE"])
        env_file.write_text(set_values(env_file.read_text(), {"CLEARML_SERVER_VERSION": version}))

    return dict(load=load, engine=engine, backups=backups, archive=archive, record=record,
                recorded=lambda: parse_env(Path(environ["CLEARML_ENV_FILE"]).read_text())["CLEARML_SERVER_VERSION"])


def test_hops_run_in_order_after_the_backup(kit) -> None:
    kit["record"]("1.17.1")
    upgrade.run(kit["load"](), "1.17.1", "2.3.0")
    assert kit["backups"] == [("1.17.1", "1.17.1")]
    assert kit["engine"].calls == [("1.17.1", "stop"), ("2.0.0", "up"), ("2.0.0", "stop"), ("2.3.0", "up")]
    assert kit["recorded"]() == "2.3.0"


def test_adopting_records_the_named_release_before_the_backup(kit) -> None:
    """Settings that say 2.0.0 for a server that runs 1.17.1: the backup must be labelled 1.17.1."""
    kit["record"]("2.0.0")
    upgrade.run(kit["load"](), "1.17.1", "2.3.0")
    assert kit["backups"] == [("1.17.1", "1.17.1")], "settings object and file both say the adopted release"
    assert kit["engine"].calls[0] == ("1.17.1", "stop")


@pytest.mark.parametrize("fail,hop,previous", [(("2.0.0", "stop"), "hop 1/2 (2.0.0)", "1.17.1"),
                                               (("1.17.1", "stop"), "hop 1/2 (2.0.0)", "1.17.1"),
                                               (("2.3.0", "up"), "hop 2/2 (2.3.0)", "2.0.0")])
def test_a_failing_stop_or_start_names_the_backup_and_the_rollback(kit, fail, hop, previous) -> None:
    kit["record"]("1.17.1")
    kit["engine"].fail = fail
    with pytest.raises(StackError) as err:
        upgrade.run(kit["load"](), "1.17.1", "2.3.0")
    assert f"upgrade stopped at {hop}" in err.value.message and f"compose {fail[1]} failed" in err.value.message
    assert str(kit["archive"]) in err.value.message
    assert f"inv down && inv restore {kit['archive']}" in err.value.fix
    assert f"inv upgrade --from {previous} --to 2.3.0" in err.value.fix, "the retry starts the failed hop again"


def test_a_settings_file_that_cannot_be_written_still_names_the_backup(kit, monkeypatch) -> None:
    kit["record"]("1.17.1")
    real = upgrade.record_version
    calls = []

    def failing(env_file, version):
        calls.append(version)
        if version == "2.3.0":
            raise OSError(28, "No space left on device", str(env_file))
        real(env_file, version)

    monkeypatch.setattr(upgrade, "record_version", failing)
    with pytest.raises(StackError) as err:
        upgrade.run(kit["load"](), "1.17.1", "2.3.0")
    assert "hop 2/2 (2.3.0)" in err.value.message and "No space left" in err.value.message
    assert "records 2.0.0" in err.value.message and f"inv restore {kit['archive']}" in err.value.fix


def test_the_check_runs_once_on_the_target_before_it_is_stopped(kit) -> None:
    kit["record"]("1.17.1")
    kit["engine"].running = False  # was stopped: the last hop is stopped again after the check
    seen = []
    upgrade.run(kit["load"](), "1.17.1", "2.3.0",
                check=lambda s: seen.append((s["CLEARML_SERVER_VERSION"], list(kit["engine"].calls))))
    assert seen == [("2.3.0", [("1.17.1", "stop"), ("2.0.0", "up"), ("2.0.0", "stop"), ("2.3.0", "up")])]
    assert kit["engine"].calls[-1] == ("2.3.0", "stop")


def test_a_failing_check_is_reported_like_a_failed_hop(kit) -> None:
    kit["record"]("1.17.1")

    def smoke(settings):
        raise StackError("smoke test: 1 of 6 steps failed, first 'upload file'", "inv logs")

    with pytest.raises(StackError) as err:
        upgrade.run(kit["load"](), "1.17.1", "2.3.0", check=smoke)
    assert "hop 2/2 (2.3.0): smoke test" in err.value.message and f"inv restore {kit['archive']}" in err.value.fix
