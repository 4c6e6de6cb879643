"""`inv smoke` against the stand-in stack on the real engine.

The stand-in server implements login (fixed users and system keys, by HTTP Basic on auth.login)
and the file server with token checks, but no tasks, events or artifacts. So smoke must pass exactly
those steps and report task creation, the scalar and the artifact registration as failed, with what
the server answered. The command
itself is the one users run; nothing in it knows about stand-ins.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import remove_project, stand_in_kit

pytestmark = pytest.mark.integration

PASSWORD = "correct horse #battery staple!"


@pytest.fixture(scope="module")
def running(tmp_path_factory, test_images):
    kit = stand_in_kit(tmp_path_factory.mktemp("smoke"), test_images)
    try:
        kit.inv("install")
        kit.inv("users.add", "alice", "--password-stdin", input=PASSWORD + "\n")
        kit.inv("up")
        yield kit
    finally:
        remove_project(kit)


def smoke_json(kit, *args, input=None) -> tuple[int, dict, str]:
    proc = kit.inv("smoke", "--json", *args, input=input, check=False)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def steps(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["steps"]}


def test_smoke_passes_what_the_stand_in_implements_and_fails_the_rest_with_its_answer(running):
    code, report, stderr = smoke_json(running, "--user", "alice", "--password-stdin", input=PASSWORD + "\n")
    by_name = steps(report)
    for name in ("server answers", "log in", "upload file", "download file"):
        assert by_name[name]["ok"], by_name[name]
    assert "auth.login as web user 'alice': HTTP 200" in by_name["log in"]["detail"]
    assert by_name["download file"]["detail"].endswith("identical")
    create = by_name["create task"]
    assert not create["ok"] and create["detail"].startswith("projects.get_all: HTTP 400")  # the server's own answer
    assert "Invalid request path" in create["detail"]
    assert not by_name["report scalar"]["ok"] and "create task failed" in by_name["report scalar"]["detail"]
    # registering the file on a task needs the task: the step fails and carries the server's answer
    register = by_name["register artifact"]
    assert not register["ok"] and "there is no task to register it on" in register["detail"]
    assert "projects.get_all: HTTP 400" in register["detail"] and "Invalid request path" in register["detail"]
    assert by_name["download file"]["detail"].endswith("through the uploaded path, identical")
    assert [s["name"] for s in report["steps"] if not s["ok"]] == ["create task", "report scalar",
                                                                    "register artifact"]
    assert code != 0 and report["ok"] is False
    assert "3 of 7 steps failed, first 'create task'" in stderr
    # the file really went through the file server into the data directory, under the token
    (stored,) = (running.data_dir / "data" / "fileserver" / "clearml-lightning-smoke").glob("*/smoke.txt")
    assert stored.read_bytes().startswith(b"clearml-lightning smoke")
    assert report["links"]["file"].endswith("/" + "/".join(stored.parts[-3:]))


def test_smoke_with_the_kits_own_key_logs_in_without_a_user(running):
    code, report, _ = smoke_json(running)
    by_name = steps(report)
    assert "services-agent" in report["credentials"]
    assert by_name["log in"]["ok"] and by_name["upload file"]["ok"] and by_name["download file"]["ok"]
    assert code != 0  # tasks and events are not there


def test_smoke_reports_a_wrong_password_as_the_servers_401(running):
    code, report, _ = smoke_json(running, "--user", "alice", "--password-stdin", input="wrong\n")
    by_name = steps(report)
    assert "HTTP 401: Unauthorized (invalid credentials)" in by_name["log in"]["detail"]
    assert [s["detail"] for s in report["steps"][2:]] == ["not tried: login failed"] * 5
    assert code != 0


def test_the_file_server_refuses_an_upload_without_a_token(running):
    """What the upload step proves: the token is what lets it through (auth layer on, a user exists)."""
    from clearml_stack.apiclient import Api
    from clearml_stack.smoke import local_endpoints

    api_url, files_url = local_endpoints(running.settings())
    answer = Api(api_url, files_url).upload("clearml-lightning-smoke/no-token/x.txt", b"x")
    assert answer.status == 401


def test_inv_examples_gives_the_real_sdk_a_working_client_configuration(running, tmp_path):
    """The SDK, configured by `inv examples` alone, logs in to the stand-in and then stops at the
    first endpoint the stand-in lacks, with the server's answer (a bad configuration would stop at
    login or name another host)."""
    home = tmp_path / "home"
    home.mkdir()
    proc = running.inv("examples", "--only", "base_task", "--timeout", "600", check=False,
                       extra_env={"HOME": str(home)})
    assert proc.returncode != 0
    assert "client configuration: http://localhost:" in proc.stderr and "services-agent" in proc.stderr
    assert "projects.get_all" in proc.stderr and "Invalid request path" in proc.stderr
    assert "401" not in proc.stderr
    assert "error: example base_task exited 1" in proc.stderr


def test_inv_examples_names_the_queue_no_agent_serves(running):
    proc = running.inv("examples", "--only", "pipeline_from_task", check=False)
    assert proc.returncode != 0
    assert "no agent listens on queue 'services'" in proc.stderr or "no agent listens on queue 'default'" in proc.stderr
    assert "inv agents.up --queue" in proc.stderr
    assert "$ " not in proc.stderr  # nothing was started


def test_up_with_smoke_runs_it_after_the_stack_is_healthy(running):
    proc = running.inv("up", "--smoke", check=False)
    assert "ClearML server is up" in proc.stderr
    assert re.search(r"^log in +pass ", proc.stdout, re.M) and re.search(r"^upload file +pass ", proc.stdout, re.M)
    assert re.search(r"^register artifact +FAIL ", proc.stdout, re.M)
    assert proc.returncode != 0 and "smoke test: 3 of 7 steps failed" in proc.stderr
