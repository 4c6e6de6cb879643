"""Test helpers: a kit instance in a temp directory, driven through the real `inv` command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INV = Path(sys.executable).parent / "inv"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# every compose project and container a test run creates starts with this (one value per run), so the
# run's leftovers can be told from other users' objects on a shared engine (tests/guards.py)
RUN_PREFIX = f"clt{uuid.uuid4().hex[:6]}"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environ() -> dict[str, str]:
    """The test process environment without any settings a developer may have exported."""
    from clearml_stack.settings import BY_KEY

    return {k: v for k, v in os.environ.items() if k not in BY_KEY and k != "CLEARML_ENV_FILE"}


@dataclass
class Kit:
    """One deployment's settings in ``dir``; ``env`` holds settings given as environment variables."""

    dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.dir / ".env"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def project(self) -> str:
        return self.env["COMPOSE_PROJECT_NAME"]

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # the kernel setting is read from, and `inv doctor --fix` writes to, files of this kit: a test
        # run as root never changes the host's vm.max_map_count or /etc/sysctl.d (tests may override)
        host_guard = {"CLEARML_PROC_MAX_MAP_COUNT": str(self.dir / ".test-max_map_count"),
                      "CLEARML_SYSCTL_FILE": str(self.dir / ".test-sysctl.d" / "99-clearml.conf")}
        return {**clean_environ(), **host_guard, "CLEARML_ENV_FILE": str(self.env_file), "NO_COLOR": "1",
                **self.env, **(extra or {})}

    def inv(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 600,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``inv ARGS`` as a user would; raises with the output when ``check`` and it fails."""
        proc = subprocess.run([str(INV), *args], cwd=ROOT, env=self.environ(extra_env), input=input, text=True,
                              capture_output=True, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"inv {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}"
                                 f"\n--- stderr\n{proc.stderr}")
        return proc

    def settings(self):
        from clearml_stack.settings import load

        return load(self.environ())


def new_kit(tmp_path: Path, **env: str) -> Kit:
    project = f"{RUN_PREFIX}{uuid.uuid4().hex[:8]}"
    return Kit(tmp_path, {"COMPOSE_PROJECT_NAME": project, **env})


def require_tool(name: str, why: str = "") -> str:
    """The path of a host tool a test needs: missing is a skip on a user's machine, a failure in CI."""
    import shutil

    found = shutil.which(name)
    if not found:
        unavailable(f"{name} is not installed on this host" + (f" ({why})" if why else ""))
    return found


def unavailable(message: str) -> None:
    """A test's precondition this host lacks: a skip on a user's machine, a failure in CI (CI=true)."""
    import pytest

    if IN_CI:
        pytest.fail(message + "; CI=true: .ci/run must provide it")
    pytest.skip(message + "; with CI=true this fails instead")
