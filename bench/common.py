"""Shared bench plumbing: a stand-in deployment in a temp dir, timing, one JSON line per benchmark."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from tests.kit import Kit


@contextmanager
def deployment(images: dict[str, str] | None = None, **env: str) -> Iterator[Kit]:
    """An installed stand-in deployment with one user; removed afterwards."""
    from tests.conftest import remove_project, stand_in_kit
    from tests.images.build import build_all

    with tempfile.TemporaryDirectory(prefix="clearml-bench-") as tmp:
        k = stand_in_kit(Path(tmp), images or build_all())
        k.env.update(env)
        k.inv("install", "--user", "bench", "--password-stdin", input="bench-password\n")
        try:
            yield k
        finally:
            remove_project(k)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def emit(result: dict) -> None:
    """The benchmark's one JSON line on stdout (progress went to stderr)."""
    print(json.dumps(result, sort_keys=True))
    sys.stdout.flush()
