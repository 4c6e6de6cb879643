"""Shared fixtures. Integration tests use the real Docker engine: with CI=true a missing engine fails."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess

import pytest

from tests.kit import IN_CI, Kit, free_port, new_kit

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")


def _engine() -> tuple[bool, str]:
    if not shutil.which("docker"):
        return False, "the docker CLI is not installed"
    proc = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True)
    if proc.returncode != 0:
        return False, (proc.stderr.strip().splitlines() or ["docker version failed"])[-1]
    return True, proc.stdout.strip()


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The engine version; in CI a missing engine is a failure, elsewhere a skip that says why."""
    ok, detail = _engine()
    if not ok:
        message = f"Docker engine not reachable: {detail}"
        if IN_CI:
            pytest.fail(message + " (CI=true: integration tests must run)")
        pytest.skip(message + "; integration tests need it (with CI=true this fails instead)")
    return detail


@pytest.fixture(scope="session")
def test_images(docker_engine: str) -> dict[str, str]:
    """Image settings of the locally built test images (built once, cached by content)."""
    from tests.images.build import build_all

    return build_all()


@pytest.fixture
def kit(tmp_path) -> Kit:
    """A fresh deployment directory (settings, users, data) with its own compose project name."""
    return new_kit(tmp_path)


def stand_in_kit(directory, images: dict[str, str]) -> Kit:
    """A deployment in ``directory`` wired to the stand-in images, free loopback ports and fast healthchecks."""
    return new_kit(
        directory,
        CLEARML_SERVER_IMAGE=images["CLEARML_SERVER_IMAGE"],
        MONGO_IMAGE=images["MONGO_IMAGE"],
        ELASTIC_IMAGE=images["ELASTIC_IMAGE"],
        REDIS_IMAGE=images["REDIS_IMAGE"],
        NGINX_IMAGE=images["NGINX_IMAGE"],
        CLEARML_WEB_PORT=str(free_port()),
        CLEARML_API_PORT=str(free_port()),
        CLEARML_FILES_PORT=str(free_port()),
        CLEARML_GATEWAY_PORT=str(free_port()),
        CLEARML_ES_HEAP="256m",
        # the official limits (nofile 65536, memlock unlimited) may exceed what a sandboxed engine grants
        CLEARML_ES_NOFILE=str(min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])),
        CLEARML_ES_MEMLOCK=str(resource.getrlimit(resource.RLIMIT_MEMLOCK)[1])
        if resource.getrlimit(resource.RLIMIT_MEMLOCK)[1] != resource.RLIM_INFINITY else "unlimited",
        CLEARML_HEALTHCHECK_INTERVAL="1s",
        CLEARML_WAIT_TIMEOUT="120",
        CLEARML_SERVICES_AGENT="false",
    )


@pytest.fixture
def stack_kit(tmp_path, test_images) -> Kit:
    """A stand-in deployment for one test; everything its compose project created is removed afterwards."""
    k = stand_in_kit(tmp_path, test_images)
    try:
        yield k
    finally:
        remove_project(k)


def remove_project(k: Kit) -> None:
    """Remove every container, network and volume of the kit's compose project."""
    if k.env_file.exists():
        k.inv("compose", "--", "down", "--volumes", "--remove-orphans", check=False)
    label = f"label=com.docker.compose.project={k.project}"
    for ls, rm in ((["container", "ls", "-aq"], ["container", "rm", "-f"]),
                   (["network", "ls", "-q"], ["network", "rm"]),
                   (["volume", "ls", "-q"], ["volume", "rm", "-f"])):
        ids = subprocess.run(["docker", *ls, "--filter", label], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", *rm, *ids], capture_output=True)
