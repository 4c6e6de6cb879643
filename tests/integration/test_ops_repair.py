"""`inv repair` on the real engine: a Mongo store with a corrupted record refuses to start; the repair
runs `mongod --repair` in a one-off container of the stack's mongo image after a backup, and the stack
then starts with the readable records intact."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.integration.ops_helpers import add_user, last_line, mongo_get, mongo_put, states

pytestmark = pytest.mark.integration


def test_repair_on_a_running_stack_and_on_a_corrupted_stopped_store(stack_kit) -> None:
    kit = stack_kit
    kit.inv("install")
    add_user(kit)
    kit.inv("up")
    mongo_put(kit, "tasks", "good", {"name": "keep me"})

    # on a running stack: stop, back up, repair, start again what ran
    proc = kit.inv("repair", "--out", str(kit.dir / "archives"))
    err = proc.stderr
    assert "stopping the stack for the repair" in err and "starting again" in err
    assert err.index("backup written") < err.index("mongod --repair")
    assert "run --rm --no-deps -T mongo mongod --repair --dbpath /data/db" in err
    assert all(s == ("running", "healthy") for s in states(kit).values())
    assert mongo_get(kit, "tasks", "good") == {"name": "keep me"}
    kit.inv("down")

    # a torn write and an unclean shutdown: the store no longer starts
    db = kit.data_dir / "data/mongo_4/db"
    broken = db / "tasks" / "broken.json"
    broken.write_text('{"name": "half writ')
    (db / "mongod.lock").write_text("4242\n")
    up = kit.inv("up", "--timeout", "30", check=False)
    assert up.returncode != 0 and "--repair" in up.stdout + up.stderr, "a corrupted store does not start"
    kit.inv("down")

    proc = kit.inv("repair", "--out", str(kit.dir / "archives"))
    archive = Path(last_line(proc.stdout))
    assert "discarding unreadable record tasks/broken.json" in proc.stdout + proc.stderr
    with tarfile.open(archive) as tar:  # the backup holds the store as it was, broken record included
        assert tar.extractfile("data/data/mongo_4/db/tasks/broken.json").read() == b'{"name": "half writ'
        assert json.load(tar.extractfile("manifest.json"))["method"].startswith("stack was not running")
    assert not broken.exists() and (db / "mongod.lock").read_text() == ""
    assert states(kit) == {}, "it was not running before, so it is not started"

    kit.inv("up")
    assert all(s == ("running", "healthy") for s in states(kit).values())
    assert mongo_get(kit, "tasks", "good") == {"name": "keep me"}
