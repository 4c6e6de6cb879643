"""Worker agents on the real engine against the stand-in server: scale up, down and back, stop without
touching the server, and a bundle started with its own commands (`make up`: the tunnel, then compose)
that reaches the server through an SSH tunnel on 127.0.0.1.

The agent image is built from the test base image with the clearml-agent wheels downloaded on the
host; "reached the API" means the stand-in lists the worker, which it only does for a caller that
authenticated with the agent key pair and registered (standin/workers.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import tarfile
import time
import uuid

import pytest

from clearml_stack import agents_api
from clearml_stack.compose import find
from tests.agent_support import install_wheels

pytestmark = pytest.mark.integration
PREFIX = socket.gethostname().split(".")[0]


@pytest.fixture(scope="module")
def agent_stack(tmp_path_factory, test_images):
    """One stand-in server for the module, agents built from the test base image."""
    from tests.conftest import remove_project, stand_in_kit

    install_wheels()
    k = stand_in_kit(tmp_path_factory.mktemp("agents"), test_images, CLEARML_WAIT_TIMEOUT="300",
                     CLEARML_AGENT_BASE_IMAGE=test_images["TEST_BASE_IMAGE"], CLEARML_AGENT_APT_PACKAGES="")
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
    slots = k.settings().data_dir / "agent" / "slots"
    assert {p.name for p in slots.glob("slot-*.lock")} == {"slot-1.lock", "slot-2.lock", "slot-3.lock"}, \
        "each replica holds the slot of its number, so a replica without DNS cannot take its id"
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
    assert "CLEARML_AGENT_REPLICAS=3" in k.env_file.read_text(), "stopped, not forgotten: a restart brings 3 back"
    status = json.loads(k.inv("status", "--json").stdout)
    assert status["healthy"], status
    assert {s["service"] for s in status["services"]} >= {"apiserver", "fileserver", "webserver"}
    assert not any(s["service"] == "agent" for s in status["services"])
    k.inv("agents.down", "--forget")
    assert "CLEARML_AGENT_REPLICAS=0" in k.env_file.read_text()
    assert "nothing to start" in k.inv("agents.up", "--only-configured").stderr
    assert worker_containers(k) == []


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


@pytest.fixture
def sshd_on_loopback(test_images, tmp_path):
    """A real OpenSSH server on this host's 127.0.0.1 (host network), where the stand-in server's ports
    are: what the server's machine offers a tunnel-mode bundle. Yields (port, ssh shim directory)."""
    from tests.integration.test_connect_tunnels import wait_for_banner
    from tests.kit import free_port

    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bundle-test", "-f", str(key)], check=True)
    port = free_port()
    name = f"clt-bundle-sshd-{uuid.uuid4().hex[:8]}"
    # the user's ssh configuration (their key, known hosts), given as a wrapper so the bundle's commands
    # run unchanged and nothing is written to the real ~/.ssh
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "ssh").write_text(f"""#!/bin/sh
exec {shutil.which("ssh")} -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes \\
  -o UserKnownHostsFile={tmp_path / "known_hosts"} -o StrictHostKeyChecking=accept-new "$@"
""")
    (shim / "ssh").chmod(0o755)
    try:
        subprocess.run(["docker", "run", "-d", "--name", name, "--label", "org.clearml-lightning.test=agents-bundle",
                        "--network", "host", "-e", f"SSH_AUTHORIZED_KEY={(tmp_path / 'id_ed25519.pub').read_text().strip()}",
                        test_images["SSHD_IMAGE"], "-p", str(port), "-o", "ListenAddress=127.0.0.1"],
                       check=True, capture_output=True, text=True)
        wait_for_banner(port)
        yield port, shim
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)


def test_bundle_started_with_its_own_commands_reaches_the_server_through_the_tunnel(agent_stack, sshd_on_loopback,
                                                                                    tmp_path):
    from tests.kit import free_port

    k = agent_stack
    ssh_port, shim = sshd_on_loopback
    local = [free_port() for _ in range(3)]
    while len(set(local)) < 3:
        local = [free_port() for _ in range(3)]
    out = tmp_path / "agents.tar.gz"
    k.inv("agents.bundle", "--out", str(out), "--replicas", "2", "--queue", "remote",
          "--local-ports", ",".join(map(str, local)), extra_env={"CLEARML_SSH_TARGET": f"tunnel@127.0.0.1:{ssh_port}"})
    with tarfile.open(out) as tar:
        tar.extractall(tmp_path)
    top = tmp_path / "clearml-agents"
    readme = (top / "README.md").read_text()
    assert "./connect.sh &" in readme and "docker compose up -d" in readme and "make up" in readme
    assert not list((top / "image" / "wheels").glob("*.whl")), "the bundle ships no wheels of this host"
    # this test host has no PyPI during `docker build`: the README's offline step, wheels for this machine
    for wheel in install_wheels().glob("*.whl"):
        shutil.copy(wheel, top / "image" / "wheels" / wheel.name)
    prefix = f"bundle-{uuid.uuid4().hex[:6]}"  # its own ids: independent of the other tests' workers
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "COMPOSE": shlex.join(find().argv),
           "COMPOSE_PROJECT_NAME": f"{k.project}-bundle", "CLEARML_AGENT_WORKER_PREFIX": prefix}
    for name in [n for n in env if n.startswith(("CLEARML_", "STACK_", "AGENT_")) and n != "CLEARML_AGENT_WORKER_PREFIX"]:
        env.pop(name)
    want = {f"{prefix}:agent-{n}" for n in (1, 2)}
    start = time.time()
    try:
        # `make up` = the README's two commands: ./connect.sh in the background, then docker compose up -d
        proc = subprocess.run(["make", "up"], cwd=top, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr + (top / "connect.log").read_text()
        workers = wait_for(lambda: (lambda r: r if want <= set(r) else None)(registered(k)), timeout=180,
                           what="two bundle workers through the tunnel")
        for wid in want:
            assert [q["name"] for q in workers[wid]["queues"]] == ["remote"]
            assert workers[wid]["register_time"] >= start - 1
        logs = subprocess.run([*find().argv, "logs", "--no-color"], cwd=top, env=env, capture_output=True,
                              text=True).stdout
        assert f"api http://localhost:{local[1]}" in logs, "through the tunnel's local port, not the server's"
        assert "slot" in logs  # host networking: ids come from slots, not compose DNS
        assert "tunnels open to tunnel@127.0.0.1" in (top / "connect.log").read_text()
    finally:
        subprocess.run(["make", "down"], cwd=top, env=env, capture_output=True, timeout=300)
        subprocess.run(["make", "disconnect"], cwd=top, env=env, capture_output=True, timeout=60)
    assert not (top / "connect.pid").exists()
