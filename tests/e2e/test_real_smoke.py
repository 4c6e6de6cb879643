"""`inv smoke` and the base task example against the real pinned images (marker real_images).

Runs where the release's images are present in the local engine (pulled or loaded beforehand);
elsewhere it is skipped with the list of missing images. Every step of the smoke test must pass
here (the real server implements tasks, events and artifacts), the base task must complete through
the real SDK with the client configuration `inv examples` derives from the settings (reading its
artifacts back from the file server), and the task pipeline must run its steps on a worker agent
started with `inv agents.up`: the online branch of the pipeline examples. The lifecycle flows (status,
down/up persistence, restart, a second install, no public default in effect) run on the real images
as the real_images variant of tests/integration/test_lifecycle.py.
"""

from __future__ import annotations

import json
import re

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
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["register artifact"]["detail"].startswith("artifact 'smoke file' on task ")
    assert steps["download file"]["detail"].endswith("through the task's artifact link, identical")


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
    # the artifacts came back from the file server, not from a local path
    for key in ("summary", "points"):
        (line,) = [x for x in proc.stdout.splitlines() if x.startswith(f"artifact '{key}' fetched back, identical: ")]
        assert line.split(": ", 1)[1].startswith("http://localhost:"), line


TASK_LINK = re.compile(r"(http://localhost:\d+)/projects/[^/]+/tasks/([0-9a-f]{32})/output/log$")


def test_pipeline_from_task_runs_its_steps_on_a_worker_agent(real_stack, tmp_path):
    """The online branch of the pipeline examples: clones of the base task run on `inv agents.up`'s
    worker, the controller here; every step is listed with its web UI page and completed."""
    from clearml_stack.apiclient import Api
    from clearml_stack.smoke import default_credentials

    home = tmp_path / "home"
    home.mkdir()
    real_stack.inv("agents.up", "--queue", "default", "--replicas", "1", timeout=1800)
    try:
        proc = real_stack.inv("examples", "--only", "base_task,pipeline_from_task", "--queue", "default",
                              "--timeout", "2400", extra_env={"HOME": str(home)}, timeout=2700, check=False)
    finally:
        real_stack.inv("agents.down", check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "2 example(s) ran" in proc.stderr
    rows = {line.split("  ")[0].strip(): line.split()[-1] for line in proc.stdout.splitlines()
            if line.startswith("pipeline_from_task: ")}
    assert set(rows) == {"pipeline_from_task: pipeline pipeline from task", "pipeline_from_task: step train train",
                         "pipeline_from_task: step confirm confirm"}, rows
    steps = {}
    for what, link in rows.items():
        match = TASK_LINK.match(link)
        assert match, f"{what}: {link} is not a web UI page"
        steps[what] = match.group(2)
    settings = real_stack.settings()
    api = Api(f"http://127.0.0.1:{settings.port('api')}")
    assert api.login(default_credentials(settings)).ok
    answer = api.call("tasks.get_all", {"id": list(steps.values()), "only_fields": ["id", "status", "hyperparams"]})
    assert answer.ok, answer.describe()
    by_id = {t["id"]: t for t in answer.data["tasks"]}
    for what, task_id in steps.items():
        assert by_id[task_id]["status"] == "completed", (what, by_id[task_id])
    # the confirm step read the learning rate the train step really used, with its own seed
    confirm = by_id[steps["pipeline_from_task: step confirm confirm"]]["hyperparams"]["General"]
    train = by_id[steps["pipeline_from_task: step train train"]]["hyperparams"]["General"]
    assert confirm["lr"]["value"] == train["lr"]["value"] and confirm["seed"]["value"] == "2"
