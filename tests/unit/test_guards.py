"""The session guards themselves: what counts as left behind, a temporary HOME, the real home watched."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests import guards
from tests.guards import HomeGuard, Ownership, Snapshot, isolate_home, left_behind

PREFIX = "clt0a1b2c"


def event(kind: str, action: str, actor: str, **attrs: str) -> str:
    return json.dumps({"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": attrs}})


def test_only_objects_created_by_this_run_count():
    before = Snapshot({"old": ("clt0a1b2c-sshd", "", "")}, {"n0": ("bridge", "")}, {"anon-old": ""})
    after = Snapshot(
        containers={
            "old": ("clt0a1b2c-sshd", "", ""),                        # was there before the run
            "c1": (f"{PREFIX}11111111-elasticsearch-1", f"{PREFIX}11111111", ""),
            "c2": ("clt99999999-apiserver-1", "clt99999999", ""),    # another run on the same engine
            "c3": ("angry_turing", "", "tc-session"),                 # our testcontainers session
            "c4": ("someone_else", "", "other-session"),
        },
        networks={"n0": ("bridge", ""), "n1": (f"{PREFIX}11111111_backend", f"{PREFIX}11111111"),
                  "n2": ("clt99999999_backend", "clt99999999")},
        volumes={"anon-old": "", "anon-ours": "", "anon-theirs": "", f"{PREFIX}11111111_elastic_logs": f"{PREFIX}11111111"},
    )
    ours = Ownership(PREFIX, "tc-session")
    ours.read_events([
        event("container", "create", "c9", name=f"{PREFIX}22222222-elasticsearch-1",
              **{"com.docker.compose.project": f"{PREFIX}22222222"}),
        event("volume", "mount", "anon-ours", container="c9", destination="/usr/share/elasticsearch/logs"),
        event("container", "create", "c8", name="clt99999999-elasticsearch-1"),
        event("volume", "mount", "anon-theirs", container="c8"),
        "not json",
    ])
    leaks = left_behind(before, after, ours)
    assert leaks == {
        "containers": ["angry_turing (c3)", f"{PREFIX}11111111-elasticsearch-1 (c1)"],
        "networks": [f"{PREFIX}11111111_backend"],
        "volumes": ["anon-ours", f"{PREFIX}11111111_elastic_logs"],
    }


def test_nothing_left_is_empty():
    snap = Snapshot({"a": ("x", "", "")}, {"n": ("bridge", "")}, {"v": ""})
    assert not any(left_behind(snap, snap, Ownership(PREFIX)).values())


def test_home_guard_fails_on_what_this_run_wrote_and_warns_on_the_rest(tmp_path):
    studio = tmp_path / ".lightning_studio"
    run_dir = "/tmp/pytest-of-u/pytest-7/"
    guard = HomeGuard(studio)
    guard.start()
    assert guard.problems([run_dir]) == ([], [])
    studio.mkdir()
    (studio / "on_start.sh").write_text(f"export CLEARML_ENV_FILE={run_dir}kit0/.env\n")
    (failure,), warnings = guard.problems([run_dir])
    assert "was created by the test run" in failure and "on_start.sh" in failure and warnings == []

    guard.start()
    (studio / "on_start.sh").write_text("export CLEARML_ENV_FILE=/tmp/pytest-of-u/pytest-70/kit0/.env\n")
    failures, (warning,) = guard.problems([run_dir])
    assert failures == [] and "changed during the test run by another program" in warning

    guard.start()
    (studio / "on_stop.sh").write_text(f"cd {run_dir}kit1\n")
    (failure,), _ = guard.problems([run_dir])
    assert "was changed by the test run" in failure and "on_stop.sh" in failure


def test_isolated_home_keeps_docker_config_and_images_cache(tmp_path):
    real = tmp_path / "real"
    (real / ".docker").mkdir(parents=True)
    env = {"HOME": str(real)}
    isolation = isolate_home(env)
    try:
        home = Path(env["HOME"])
        assert home != real and home.is_dir() and not any(home.iterdir())
        assert env["DOCKER_CONFIG"] == str(real / ".docker")
        assert env[guards.IMAGES_CACHE_ENV] == str(real / ".cache" / "clearml-lightning")
        assert isolation.next_home() != home
    finally:
        isolation.remove()
    assert not isolation.base.exists()


def test_this_test_runs_in_a_temporary_home():
    home = Path(os.environ["HOME"])
    assert home.name.startswith("t") and home.parent.name.startswith("clearml-lightning-home-")
    assert Path.home() == home and not any(home.iterdir())
