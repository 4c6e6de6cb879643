"""The smoke test's steps and report, against an in-process fake API on 127.0.0.1 (see fake_api.py)."""

from __future__ import annotations

import json

import pytest

from clearml_stack import smoke
from clearml_stack.apiclient import Credentials
from clearml_stack.settings import load
from tests.kit import free_port
from tests.unit.fake_api import FakeServer

ALICE = Credentials("alice", "s3cret pass", "web user 'alice'")


@pytest.fixture
def settings(tmp_path):
    return load({"CLEARML_ENV_FILE": str(tmp_path / ".env"), "CLEARML_AGENT_ACCESS_KEY": "AGENTKEY0123456789AB",
                 "CLEARML_AGENT_SECRET_KEY": "agentsecret0123456789abcdefghijkl"})


def run_against(server: FakeServer, settings, credentials=ALICE) -> smoke.SmokeReport:
    return smoke.run(settings, credentials, api_url=server.url, files_url=server.url, web_url="http://web.test")


def test_every_step_passes_against_a_server_that_answers_as_documented(settings):
    with FakeServer({"alice": "s3cret pass"}) as server:
        report = run_against(server, settings)
    assert [s.name for s in report.steps] == list(smoke.STEPS)
    assert report.ok, smoke.table(report)
    # what reached the server is what the steps claim
    (task_id, task), = server.tasks.items()
    assert task["type"] == "testing" and task["project"] == server.projects[smoke.PROJECT]
    assert server.events == [{**server.events[0], "task": task_id, "metric": "smoke", "value": 1.0,
                              "type": "training_stats_scalar"}]
    (path, content), = server.files.items()
    assert path.startswith(smoke.FILES_FOLDER + "/") and content.startswith(b"clearml-lightning smoke")
    assert report.links["task"] == f"http://web.test/projects/{task['project']}/tasks/{task_id}/output/log"
    assert report.links["file"].endswith(path)
    # the file is registered on the task, under the file server URL, with its size and hash
    (artifact,) = task["execution"]["artifacts"].values()
    assert artifact["key"] == smoke.ARTIFACT_KEY and artifact["mode"] == "output"
    assert artifact["uri"] == f"{server.url}/{path}" and artifact["content_size"] == len(content)
    import hashlib
    assert artifact["hash"] == hashlib.sha256(content).hexdigest()
    assert report.step("register artifact").detail == f"artifact 'smoke file' on task {task_id}: {server.url}/{path}"
    assert report.step("download file").detail.endswith("through the task's artifact link, identical")
    calls = [p for m, p in server.requests if m == "POST"]
    assert calls.index("tasks.add_or_update_artifacts") < calls.index("tasks.get_by_id")


def test_a_second_run_reuses_the_project(settings):
    with FakeServer({"alice": "s3cret pass"}) as server:
        assert run_against(server, settings).ok
        assert run_against(server, settings).ok
    assert len(server.projects) == 1 and len(server.tasks) == 2


def test_missing_endpoints_fail_with_the_servers_answer_and_the_rest_still_runs(settings):
    with FakeServer({"alice": "s3cret pass"}, endpoints={"debug.ping", "auth.login", "files"}) as server:
        report = run_against(server, settings)
    assert not report.ok
    assert report.step("log in").ok and report.step("upload file").ok and report.step("download file").ok
    create = report.step("create task")
    assert not create.ok and create.detail.startswith("projects.get_all: HTTP 404: Unable to find endpoint")
    scalar = report.step("report scalar")
    assert not scalar.ok and "create task failed" in scalar.detail
    register = report.step("register artifact")
    assert not register.ok and register.detail.startswith("not tried: there is no task to register it on")
    assert "projects.get_all: HTTP 404: Unable to find endpoint" in register.detail  # the server's answer, carried on
    assert report.step("download file").detail.endswith("through the uploaded path, identical")
    assert [s.name for s in report.failed] == ["create task", "report scalar", "register artifact"]


def test_a_server_without_the_artifact_endpoint_fails_that_step_with_its_answer(settings):
    without = FakeServer.ALL - {"tasks.add_or_update_artifacts"}
    with FakeServer({"alice": "s3cret pass"}, endpoints=without) as server:
        report = run_against(server, settings)
    step = report.step("register artifact")
    assert not step.ok
    assert step.detail == ("tasks.add_or_update_artifacts: HTTP 404: Unable to find endpoint for name "
                           "tasks.add_or_update_artifacts and version 2.31")
    assert [s.name for s in report.failed] == ["register artifact"]
    assert report.step("download file").ok  # the file itself still came back


def test_an_artifact_the_task_does_not_list_afterwards_fails(settings):
    with FakeServer({"alice": "s3cret pass"}, forget_artifacts=True) as server:
        report = run_against(server, settings)
    step = report.step("register artifact")
    assert not step.ok and "the task does not list artifact 'smoke file'" in step.detail
    assert "(it lists: none)" in step.detail


def test_the_artifact_is_registered_under_the_canonical_files_url_by_default(tmp_path):
    with FakeServer({"alice": "s3cret pass"}) as server:
        s = load({"CLEARML_ENV_FILE": str(tmp_path / ".env"), "CLEARML_ACCESS_MODE": "ports",
                  "CLEARML_DOMAIN": "gpu1.example.com", "CLEARML_FILES_PORT": str(server.port)})
        # API and files reached here on loopback; the task's link names the URL every client uses
        report = smoke.run(s, ALICE, api_url=server.url, web_url="http://web.test")
    assert report.ok, smoke.table(report)
    assert report.files_url == f"http://127.0.0.1:{server.port}"
    (path,) = server.files
    (task,) = server.tasks.values()
    (artifact,) = task["execution"]["artifacts"].values()
    assert artifact["uri"] == f"http://gpu1.example.com:{server.port}/{path}"
    # and the download went through that link, mapped to this host's file server URL
    assert report.links["file"] == f"http://127.0.0.1:{server.port}/{path}"


def test_wrong_password_stops_after_login_with_the_401(settings):
    with FakeServer({"alice": "other"}) as server:
        report = run_against(server, settings)
    login = report.step("log in")
    assert not login.ok and "HTTP 401: Unauthorized (invalid credentials)" in login.detail
    assert all(s.detail == "not tried: login failed" for s in report.steps[2:])
    assert ("POST", "tasks.create") not in server.requests


def test_a_download_that_differs_fails(settings):
    with FakeServer({"alice": "s3cret pass"}, corrupt_downloads=True) as server:
        report = run_against(server, settings)
    step = report.step("download file")
    assert not step.ok and "content differs" in step.detail


def test_no_server_fails_the_first_step_and_tries_nothing_else(settings):
    port = free_port()
    report = smoke.run(settings, ALICE, api_url=f"http://127.0.0.1:{port}", files_url=f"http://127.0.0.1:{port}")
    first = report.steps[0]
    assert not first.ok and "no answer" in first.detail and "refused" in first.detail.lower()
    assert all(s.detail == "not tried: the API server did not answer" for s in report.steps[1:])


def test_default_credentials_are_the_kits_agent_key_and_the_secret_never_shows(settings):
    with FakeServer({"AGENTKEY0123456789AB": "agentsecret0123456789abcdefghijkl"}) as server:
        report = smoke.run(settings, api_url=server.url, files_url=server.url)
    assert report.ok
    assert "services-agent" in report.credentials
    text = smoke.table(report) + json.dumps(report.as_dict())
    assert "agentsecret0123456789abcdefghijkl" not in text and "agentsecret" not in repr(smoke.default_credentials(settings))


def test_default_endpoints_are_this_hosts_loopback_ports(tmp_path):
    s = load({"CLEARML_ENV_FILE": str(tmp_path / ".env"), "CLEARML_API_PORT": "18008", "CLEARML_FILES_PORT": "18081"})
    assert smoke.local_endpoints(s) == ("http://127.0.0.1:18008", "http://127.0.0.1:18081")


def test_table_shows_each_step_result_and_answer():
    report = smoke.SmokeReport("http://a", "http://f", "http://w", "web user 'bob'", [
        smoke.StepResult("server answers", True, "HTTP 200"),
        smoke.StepResult("log in", False, "auth.login as bob: HTTP 401: Unauthorized"),
    ])
    lines = smoke.table(report).splitlines()
    assert lines[0].split() == ["STEP", "RESULT", "SERVER", "ANSWER"]
    assert "pass" in lines[2] and "FAIL" in lines[3] and "HTTP 401: Unauthorized" in lines[3]
    assert not report.ok and report.as_dict()["ok"] is False
    assert not smoke.SmokeReport("a", "f", "w", "c").ok  # no steps is not a pass
