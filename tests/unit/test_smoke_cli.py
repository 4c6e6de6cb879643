"""`inv smoke` and `inv examples` through the real command line when nothing answers (no engine needed)."""

from __future__ import annotations

import re

from tests.kit import free_port


def test_smoke_without_a_server_fails_every_step_with_the_reason(kit):
    kit.env.update(CLEARML_API_PORT=str(free_port()), CLEARML_FILES_PORT=str(free_port()))
    kit.inv("install")
    proc = kit.inv("smoke", check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["STEP", "RESULT"]
    assert re.search(r"^server answers +FAIL ", proc.stdout, re.M) and "Connection refused" in proc.stdout
    assert re.search(r"^register artifact +FAIL +not tried: the API server did not answer", proc.stdout, re.M)
    assert "7 of 7 steps failed, first 'server answers'" in proc.stderr


def test_smoke_refuses_a_secret_without_an_owner_and_two_kinds_of_login(kit):
    kit.inv("install")
    proc = kit.inv("smoke", "--password-stdin", input="pw\n", check=False)
    assert proc.returncode == 1 and "say whose it is: --user NAME" in proc.stderr
    proc = kit.inv("smoke", "--user", "a", "--access-key", "K", check=False)
    assert proc.returncode == 1 and "both --user and --access-key" in proc.stderr


def test_smoke_needs_an_installed_kit(kit):
    proc = kit.inv("smoke", check=False)
    assert proc.returncode == 1 and "run `inv install` first" in proc.stderr


def test_examples_without_a_server_fail_before_running_anything(kit):
    kit.env.update(CLEARML_API_PORT=str(free_port()))
    kit.inv("install")
    proc = kit.inv("examples", check=False)
    assert proc.returncode == 1
    assert "does not answer: no answer" in proc.stderr and "start it with `inv up`" in proc.stderr
    assert "example base_task" not in proc.stderr


def test_examples_refuse_unknown_names_and_a_zero_scale(kit):
    proc = kit.inv("examples", "--only", "nope", check=False)
    assert proc.returncode == 1 and "pick from: base_task, train_cpu" in proc.stderr
    proc = kit.inv("examples", "--scale", "0", check=False)
    assert proc.returncode == 1 and "must be 1 or more" in proc.stderr
