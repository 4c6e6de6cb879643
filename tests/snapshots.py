"""Snapshot files for rendered text: compare, or rewrite them with UPDATE_SNAPSHOTS=1 (then review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

SNAPSHOTS = Path(__file__).resolve().parent / "unit" / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not path.exists():
        if os.environ.get("CI", "").lower() in ("1", "true") and not path.exists():
            raise AssertionError(f"snapshot {name} is missing; create it with UPDATE_SNAPSHOTS=1 and commit it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"rendered text differs from snapshot {name} (UPDATE_SNAPSHOTS=1 to accept)"
