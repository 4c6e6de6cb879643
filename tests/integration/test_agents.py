"""Worker agents on the real engine against the stand-in server: scale up, down and back, stop without
touching the server, and a bundle started on its own that reaches the server through 127.0.0.1.

The agent image is built from the test base image with the clearml-agent wheels downloaded on the
host; "reached the API" means the stand-in lists the worker, which it only does for a caller that
authenticated with the agent key pair and registered (standin/workers.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
import tarfile
import time

import pytest

from clearml_stack import agents_api
from clearml_stack.compose import find
from tests.agent_support import install_wheels

pytestmark = pytest.mark.integration
PREFIX = socket.gethostname().split(".")[0]


@pytest.fixture(scope="module")
def agent_stack(tmp_path_factory, test_images):
    """One stand-in server for the module, agents built from the test base image."""
    from tests.conftest import remove_project
    from tests.kit import free_port, new_kit

    install_wheels()
    k = new_kit(
        tmp_path_factory.mktemp("agents"),
        CLEARML_SERVER_IMAGE=test_images["CLEARML_SERVER_IMAGE"], MONGO_IMAGE=test_images["MONGO_IMAGE"],
        ELASTIC_IMAGE=test_images["ELASTIC_IMAGE"], REDIS_IMAGE=test_images["REDIS_IMAGE"],
        NGINX_IMAGE=test_images["NGINX_IMAGE"], CLEARML_WEB_PORT=str(free_port()),
        CLEARML_API_PORT=str(free_port()), CLEARML_FILES_PORT=str(free_port()),
        CLEARML_GATEWAY_PORT=str(free_port()), CLEARML_ES_HEAP="256m", CLEARML_HEALTHCHECK_INTERVAL="1s",
        CLEARML_WAIT_TIMEOUT="300", CLEARML_SERVICES_AGENT="false",
        CLEARML_AGENT_BASE_IMAGE=test_images["TEST_BASE_IMAGE"], CLEARML_AGENT_APT_PACKAGES="",
    )
    try:
        k.inv("install")
        k.inv("up", "--allow-open")
        yield k
    finally:  # also when start-up fails: nothing of the project may stay behind
        remove_project(k)


def registered(k) -> dict[str, dict]:
    s = k.settings()
    found = agents_api.workers(f"http://127.0.0.1:{s.port('api')}", s.secret("CLEARML_AGENT_ACCESS_KEY"),
                               s.secret("CLEARML_AGENT_SECRET_KEY"))
    return {w["id"]: w for w in found}


def wait_for(condition, timeout: float = 120, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


def worker_containers(k) -> list[str]:
    label = f"label=com.docker.compose.project={k.project}"
    out = subprocess.run(["docker", "ps", "--filter", label, "--filter", "label=com.docker.compose.service=agent",
                          "--format", "{{.Names}}"], capture_output=True, text=True, check=True).stdout
    return sorted(out.split())


def ids(*numbers: int) -> set[str]:
    return {f"{PREFIX}:agent-{n}" for n in numbers}


def test_three_workers_scale_to_one_and_back_then_stop_leaving_the_server(agent_stack):
    k = agent_stack
    k.inv("agents.up", "--replicas", "3", "--queue", "default", timeout=900)
    assert worker_containers(k) == [f"{k.project}-agent-{n}" for n in (1, 2, 3)]
    wait_for(lambda: ids(1, 2, 3) <= set(registered(k)), what="three registered workers")
    workers = registered(k)
    assert all(w["user"]["name"] == "services_agent" for wid, w in workers.items() if wid in ids(1, 2, 3))
    assert all([q["name"] for q in workers[wid]["queues"]] == ["default"] for wid in ids(1, 2, 3))
    report = json.loads(k.inv("agents.status", "--json").stdout)
    assert {w["worker"] for w in report["workers"]} == ids(1, 2, 3)
    assert report["replicas"] == 3 and "CLEARML_AGENT_REPLICAS=3" in k.env_file.read_text()

    k.inv("agents.up", "--replicas", "1")
    assert worker_containers(k) == [f"{k.project}-agent-1"]
    # the stopped agents unregister on SIGTERM; the one left keeps its id
    wait_for(lambda: set(registered(k)) & ids(1, 2, 3) == ids(1), timeout=60, what="two workers to unregister")

    k.inv("agents.up", "--replicas", "3")
    assert len(worker_containers(k)) == 3
    wait_for(lambda: ids(1, 2, 3) <= set(registered(k)), what="three workers again")

    k.inv("agents.down")
    assert worker_containers(k) == []
    assert "CLEARML_AGENT_REPLICAS=0" in k.env_file.read_text()
    status = json.loads(k.inv("status", "--json").stdout)
    assert status["healthy"], status
    assert {s["service"] for s in status["services"]} >= {"apiserver", "fileserver", "webserver"}
    assert not any(s["service"] == "agent" for s in status["services"])


def test_gpu_request_fails_clearly_without_the_nvidia_runtime(agent_stack):
    runtimes = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True,
                              text=True).stdout
    if "nvidia" in runtimes:
        pytest.fail("this engine has the NVIDIA runtime: this test checks the refusal on engines without it")
    before = agent_stack.env_file.read_text()
    proc = agent_stack.inv("agents.up", "--gpus", "all", check=False)
    assert proc.returncode != 0
    assert "no NVIDIA runtime" in proc.stderr and "--cpu-only" in proc.stderr
    assert agent_stack.env_file.read_text() == before


def test_bundle_started_on_its_own_reaches_the_server_through_loopback(agent_stack, tmp_path):
    k = agent_stack
    out = tmp_path / "agents.tar.gz"
    k.inv("agents.bundle", "--out", str(out), "--replicas", "2", "--queue", "remote")
    with tarfile.open(out) as tar:
        tar.extractall(tmp_path)
    top = tmp_path / "clearml-agents"
    project = f"{k.project}-bundle"
    compose = [*find().argv, "-p", project]
    start = time.time()
    try:
        # the README's command (no tunnel needed here: the server's ports are on this host's 127.0.0.1)
        proc = subprocess.run([*compose, "up", "-d"], cwd=top, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        workers = wait_for(lambda: (lambda r: r if ids(1, 2) <= set(r) else None)(registered(k)),
                           what="two bundle workers")
        for wid in ids(1, 2):
            assert [q["name"] for q in workers[wid]["queues"]] == ["remote"]
            assert workers[wid]["register_time"] >= start - 1
        logs = subprocess.run([*compose, "logs", "--no-color"], cwd=top, capture_output=True, text=True).stdout
        assert f"api http://localhost:{k.settings().port('api')}" in logs
        assert "slot" in logs  # host networking: ids come from slots, not compose DNS
    finally:
        subprocess.run([*compose, "down", "--remove-orphans"], cwd=top, capture_output=True, timeout=300)
