"""Test support for agents: the clearml-agent wheels the agent image installs offline here.

`docker build` cannot reach PyPI reliably on the test host, so the pinned clearml-agent and its
dependencies are downloaded on the host (for the test base image's CPython 3.11) and dropped into the
agent image's optional wheels directory, which the Dockerfile installs with --no-index.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from clearml_stack import agents
from clearml_stack.settings import BY_KEY
from tests.images.build import WHEEL_PLATFORM, build_lock, cache_dir, digest
from tests.kit import ROOT

AGENT_VERSION = BY_KEY["CLEARML_AGENT_VERSION"].default


def download_wheels() -> Path:
    """clearml-agent==<pinned> and its dependencies as wheels, downloaded once into the cache."""
    target = cache_dir() / "agent-wheels" / digest(AGENT_VERSION, " ".join(WHEEL_PLATFORM))[:16]
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".agent-wheels-", dir=target.parent))
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", *WHEEL_PLATFORM,
                        "-d", str(tmp), f"clearml-agent=={AGENT_VERSION}"], check=True, stdout=subprocess.DEVNULL)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def install_wheels() -> Path:
    """Put the wheels into agents/image/wheels (git-ignored), unchanged files left alone."""
    with build_lock():
        source = download_wheels()
        dest = agents.context_dir(ROOT) / "wheels"
        for wheel in sorted(source.glob("*.whl")):
            target = dest / wheel.name
            if not target.exists() or target.stat().st_size != wheel.stat().st_size:
                shutil.copy(wheel, target.with_suffix(".tmp"))
                target.with_suffix(".tmp").rename(target)
        return dest
