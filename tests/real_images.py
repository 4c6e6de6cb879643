"""The real pinned images (marker real_images): present in the engine, or pulled now, or the suite is skipped.

Shared by tests/e2e and the real-image variant of the lifecycle tests, so both skip with the same reason.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from tests.kit import Kit, free_port, new_kit


def images(tmp_path: Path) -> list[str]:
    """The release's server, Mongo, Elasticsearch and Redis images (the settings' defaults)."""
    from clearml_stack.settings import load

    defaults = load({"CLEARML_ENV_FILE": str(tmp_path / "none.env")})
    return [defaults.image(name) for name in ("server", "mongo", "elastic", "redis")]


@functools.lru_cache(maxsize=None)
def present_or_pulled(image: str) -> bool:
    """The image is in the engine, or a pull of it succeeds now (asked once per test run)."""
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0:
        return True
    try:
        return subprocess.run(["docker", "pull", image], capture_output=True, timeout=900).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def require(tmp_path: Path) -> None:
    """Skip (with the list of missing images and how to get them) unless every real image is available."""
    missing = [i for i in images(tmp_path) if not present_or_pulled(i)]
    if missing:
        pytest.skip(f"real_images suite: {', '.join(missing)} not in the local engine and cannot be pulled here "
                    "(pull or `docker load` them to run this suite)")


def real_kit(directory: Path, **extra: str) -> Kit:
    """A deployment on the real images with free loopback ports and the real start-up times allowed for."""
    return new_kit(directory, CLEARML_WEB_PORT=str(free_port()), CLEARML_API_PORT=str(free_port()),
                   CLEARML_FILES_PORT=str(free_port()), CLEARML_WAIT_TIMEOUT="600", CLEARML_SERVICES_AGENT="false",
                   **extra)
