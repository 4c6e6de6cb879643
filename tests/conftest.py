"""Shared fixtures. Integration tests use the real Docker engine: with CI=true a missing engine fails.

Every test runs with HOME set to a new temporary directory, and the run fails when it leaves Docker
containers, networks or volumes behind or touches the real home's ~/.lightning_studio (tests/guards.py).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from tests import guards
from tests.kit import IN_CI, RUN_PREFIX, Kit, free_port, new_kit

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")


_home: guards.HomeIsolation | None = None


def pytest_configure(config) -> None:
    """Tests run with a temporary HOME (never the real one): set before any test is collected."""
    global _home
    if _home is None:
        _home = guards.isolate_home()


def pytest_unconfigure(config) -> None:
    global _home
    if _home is not None:
        os.environ["HOME"] = str(_home.real)
        _home.remove()
        _home = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A new empty HOME for every test (what module fixtures wrote stays in the home they ran with)."""
    os.environ["HOME"] = str(_home.next_home()) if _home is not None else os.environ.get("HOME", "")
    yield


@pytest.fixture(scope="session", autouse=True)
def leaves_nothing_behind(tmp_path_factory):
    """Fail the run if it left Docker objects it created, or created/changed the real ~/.lightning_studio."""
    studio = guards.HomeGuard((_home.real if _home else Path.home()) / ".lightning_studio")
    studio.start()
    ledger = None
    if _engine()[0]:
        try:
            from testcontainers.core.labels import SESSION_ID
        except ImportError:
            SESSION_ID = ""
        ledger = guards.DockerLedger(RUN_PREFIX, SESSION_ID)
        ledger.start()
    yield
    markers = [str(tmp_path_factory.getbasetemp()) + os.sep] + ([str(_home.base) + os.sep] if _home else [])
    problems, notes = studio.problems(markers)
    for note in notes:
        warnings.warn(note, stacklevel=1)
    if ledger is not None:
        leaks = ledger.finish()
        if any(leaks.values()):
            ledger.remove(leaks)
            problems.append("the test run left Docker objects behind (now removed): "
                            + "; ".join(f"{kind}: {', '.join(names)}" for kind, names in leaks.items() if names))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


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


def es_limits() -> dict[str, str]:
    """Elasticsearch limits this host can grant: the official nofile 65536 / memlock unlimited, or less.

    A sandboxed engine (e.g. a daemon whose hard open-files limit is 20000) refuses to start a container
    asking for more than it has; the stand-in does not need the official values.
    """
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    return {
        "CLEARML_ES_NOFILE": str(65536 if nofile == resource.RLIM_INFINITY else min(65536, nofile)),
        "CLEARML_ES_MEMLOCK": "unlimited" if memlock == resource.RLIM_INFINITY else str(memlock),
    }


def stand_in_kit(directory, images: dict[str, str], **extra: str) -> Kit:
    """A deployment in ``directory`` wired to the stand-in images, free loopback ports and fast healthchecks.

    ``extra`` adds or replaces settings (given as environment variables)."""
    env = dict(
        CLEARML_SERVER_IMAGE=images["CLEARML_SERVER_IMAGE"],
        MONGO_IMAGE=images["MONGO_IMAGE"],
        ELASTIC_IMAGE=images["ELASTIC_IMAGE"],
        REDIS_IMAGE=images["REDIS_IMAGE"],
        NGINX_IMAGE=images["NGINX_IMAGE"],
        CLEARML_WEB_PORT=str(free_port()),
        CLEARML_API_PORT=str(free_port()),
        CLEARML_FILES_PORT=str(free_port()),
        CLEARML_GATEWAY_PORT=str(free_port()),
        CLEARML_PUBLIC_BIND="127.0.0.1",  # tests publish on loopback only, whatever the access mode
        CLEARML_ES_HEAP="256m",
        **es_limits(),
        CLEARML_HEALTHCHECK_INTERVAL="1s",
        CLEARML_WAIT_TIMEOUT="120",
        CLEARML_SERVICES_AGENT="false",
    )
    return new_kit(directory, **{**env, **extra})


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


# --- measured figures: a test's numbers shown in the run's terminal summary (print() is captured) ----

_FIGURES: list[tuple[str, str, str]] = []


@pytest.fixture
def record_figure(request):
    """``record_figure(name, value, unit="")``: report a measured figure at the end of the run (and in --junitxml)."""

    def record(name: str, value: float, unit: str = "") -> None:
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        _FIGURES.append((name, shown + unit, request.node.nodeid))
        request.node.user_properties.append((name, value))

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if _FIGURES:
        terminalreporter.section("measured figures")
        for name, value, nodeid in _FIGURES:
            terminalreporter.write_line(f"{name}: {value}   ({nodeid})")
