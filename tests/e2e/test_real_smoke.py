"""`inv smoke` and the base task example against the real pinned images (marker real_images).

Runs where the release's images are present in the local engine (pulled or loaded beforehand);
elsewhere it is skipped with the list of missing images. Every step of the smoke test must pass
here (the real server implements tasks and events), and the base task must complete through the
real SDK with the client configuration `inv examples` derives from the settings. The lifecycle flows
(status, down/up persistence, restart, a second install, no public default in effect) run on the real
images as the real_images variant of tests/integration/test_lifecycle.py.
"""

from __future__ import annotations

import json

import pytest

from tests import real_images
from tests.conftest import remove_project

pytestmark = pytest.mark.real_images

PASSWORD = "e2e pass #word!"


@pytest.fixture(scope="module")
def real_stack(tmp_path_factory, docker_engine):
    base = tmp_path_factory.mktemp("real")
    real_images.require(base)
    kit = real_images.real_kit(base)
    try:
        kit.inv("install")
        kit.inv("users.add", "alice", "--password-stdin", input=PASSWORD + "\n")
        kit.inv("up", timeout=900)
        yield kit
    finally:
        remove_project(kit)


def test_smoke_passes_every_step_as_a_web_user(real_stack):
    proc = real_stack.inv("smoke", "--json", "--user", "alice", "--password-stdin", input=PASSWORD + "\n", check=False)
    report = json.loads(proc.stdout)
    assert report["ok"], proc.stdout
    assert proc.returncode == 0
    assert report["links"]["task"].startswith("http://localhost:")


def test_smoke_passes_with_the_kits_own_key(real_stack):
    proc = real_stack.inv("smoke", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_base_task_completes_against_the_real_server(real_stack, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = real_stack.inv("examples", "--only", "base_task", "--timeout", "900", extra_env={"HOME": str(home)},
                          timeout=1000)
    assert "1 example(s) ran" in proc.stderr
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("base_task: task")]
    assert "/projects/" in row and "/output/log" in row
