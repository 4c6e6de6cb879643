"""`inv upgrade` across stand-in releases on the real engine.

The releases exist only for this test (CLEARML_EXTRA_RELEASES; the shipped table never holds them).
Their Mongo stand-ins are variants of the test image with STANDIN_VERSION baked in; the stand-in opens
data of its own series or the one before and exits 62 otherwise, as mongod does. So a plan that skipped
the 6.0 hop could not start 7.0 on 5.0 data: reaching 7.0 proves the hops ran in order. The failing
release claims Mongo 8.0 but runs the 6.0 stand-in, which refuses 7.0 data (a downgrade) with exit 62.
"""

from __future__ import annotations

import json
import re
import tarfile
import urllib.request

import pytest

from clearml_stack.envfile import parse_env, set_values
from tests.integration.ops_helpers import add_user, mongo_get, mongo_put, states
from tests.conftest import remove_project, stand_in_kit

pytestmark = pytest.mark.integration


def repo_tag(ref: str) -> tuple[str, str]:
    repo, _, tag = ref.rpartition(":")
    return repo, tag


@pytest.fixture
def upgrade_kit(tmp_path, test_images):
    from tests.images.build import variant

    server_repo, _ = repo_tag(test_images["CLEARML_SERVER_IMAGE"])
    mongo_repo, _ = repo_tag(test_images["MONGO_IMAGE"])
    es_repo, es_tag = repo_tag(test_images["ELASTIC_IMAGE"])
    redis_repo, redis_tag = repo_tag(test_images["REDIS_IMAGE"])

    def release(version: str, series: str, mongo_runs: str) -> dict:
        return {
            "version": version, "server_repo": server_repo,
            "server_tag": repo_tag(variant(test_images["CLEARML_SERVER_IMAGE"], {"STANDIN_VERSION": version}))[1],
            "mongo_tag": repo_tag(variant(test_images["MONGO_IMAGE"], {"STANDIN_VERSION": mongo_runs}))[1],
            "elastic_tag": es_tag, "redis_tag": redis_tag, "mongo_series": series,
            "source": "test-only stand-in release",
        }

    table = [release("90.0.0", "5.0", "5.0"), release("90.1.0", "6.0", "6.0"), release("90.2.0", "7.0", "7.0"),
             release("90.3.0", "8.0", "6.0")]  # the last one is broken on purpose
    extra = tmp_path / "test-releases.json"
    extra.write_text(json.dumps(table))
    kit = stand_in_kit(tmp_path, test_images)
    kit.env.update(
        CLEARML_EXTRA_RELEASES=str(extra), CLEARML_WAIT_TIMEOUT="90",
        # names without tags: each release's tags apply, as with a private mirror
        CLEARML_SERVER_IMAGE=server_repo, MONGO_IMAGE=mongo_repo, ELASTIC_IMAGE=es_repo, REDIS_IMAGE=redis_repo,
    )
    kit.inv("install")
    kit.env_file.write_text(set_values(kit.env_file.read_text(), {"CLEARML_SERVER_VERSION": "90.0.0"}))
    add_user(kit)
    try:
        yield kit
    finally:
        remove_project(kit)


def recorded(kit) -> str:
    return parse_env(kit.env_file.read_text())["CLEARML_SERVER_VERSION"]


def server_version(kit) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{kit.env['CLEARML_API_PORT']}/server.info", timeout=120) as resp:
        return json.load(resp)["data"]["version"]


def data_series(kit) -> str:
    return (kit.data_dir / "data/mongo_4/db/standin.version").read_text().strip()


def test_upgrade_walks_the_hops_in_order_and_a_failing_hop_names_the_backup(upgrade_kit) -> None:
    kit = upgrade_kit
    kit.inv("up")
    assert server_version(kit) == "90.0.0" and data_series(kit) == "5.0"
    mongo_put(kit, "tasks", "t1", {"name": "before the upgrade"})

    plan = kit.inv("upgrade", "--to", "90.2.0", "--dry-run")
    assert "90.0.0 (Mongo 5.0) -> 90.2.0 (Mongo 7.0) in 2 hop(s)" in plan.stdout
    assert plan.stdout.index("1. 90.1.0") < plan.stdout.index("2. 90.2.0")
    assert recorded(kit) == "90.0.0" and server_version(kit) == "90.0.0", "a dry run changes nothing"

    proc = kit.inv("upgrade", "--to", "90.2.0")
    err = proc.stderr
    assert err.index("hop 1/2: 90.1.0") < err.index("hop 1: 90.1.0 healthy") < err.index("hop 2/2: 90.2.0")
    assert "backup written" in err.split("hop 1/2")[0], "the backup comes first"
    backups = sorted((kit.dir / "backups").glob("clearml-backup-*-90.0.0-*.tar.gz"))
    assert len(backups) == 1
    assert recorded(kit) == "90.2.0" and data_series(kit) == "7.0"
    assert server_version(kit) == "90.2.0", "it ran before, so it runs the new release afterwards"
    assert all(s == ("running", "healthy") for s in states(kit).values())
    assert mongo_get(kit, "tasks", "t1") == {"name": "before the upgrade"}

    down = kit.inv("upgrade", "--to", "90.0.0", check=False)
    assert down.returncode != 0 and "downgrade" in down.stderr
    unknown = kit.inv("upgrade", "--to", "91.0.0", check=False)
    assert unknown.returncode != 0 and "unknown target release '91.0.0'" in unknown.stderr

    # a hop that fails: stop there, name the backup and the rollback command
    proc = kit.inv("upgrade", "--to", "90.3.0", check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert "upgrade stopped at hop 1/1 (90.3.0)" in err and "mongo" in err
    backup = next(p for p in (kit.dir / "backups").glob("clearml-backup-*-90.2.0-*.tar.gz"))
    assert f"inv down && inv restore {backup}" in err
    assert recorded(kit) == "90.3.0"

    # the printed rollback brings back 90.2.0 with its data
    kit.inv("down")
    kit.inv("restore", str(backup))
    assert recorded(kit) == "90.2.0" and data_series(kit) == "7.0" and server_version(kit) == "90.2.0"
    assert mongo_get(kit, "tasks", "t1") == {"name": "before the upgrade"}


def test_adopting_a_server_by_naming_from(upgrade_kit) -> None:
    """Settings that record another release than the data holds: --from names what really ran, and it is
    recorded before the backup, so the archive, its manifest and the rollback name the data's release."""
    kit = upgrade_kit
    kit.inv("up")  # 90.0.0: its data is Mongo 5.0
    mongo_put(kit, "tasks", "t1", {"name": "written by 90.0.0"})
    kit.inv("down")
    assert data_series(kit) == "5.0"
    kit.env_file.write_text(set_values(kit.env_file.read_text(), {"CLEARML_SERVER_VERSION": "90.2.0"}))
    plan = kit.inv("upgrade", "--from", "90.0.0", "--to", "90.2.0", "--dry-run")
    assert "90.0.0 (Mongo 5.0) -> 90.2.0 (Mongo 7.0) in 2 hop(s)" in plan.stdout
    same = kit.inv("upgrade", "--to", "90.2.0")
    assert "already at 90.2.0: nothing to do" in same.stdout
    pinned = kit.inv("upgrade", "--from", "90.0.0", "--to", "90.2.0", extra_env={"MONGO_IMAGE": "mongo:7.0.22"},
                     check=False)
    assert pinned.returncode != 0 and "MONGO_IMAGE" in pinned.stderr and "without a tag" in pinned.stderr
    assert recorded(kit) == "90.2.0" and not list((kit.dir / "backups").glob("*")), "refused before any change"

    # --smoke runs the smoke test on the target after the last hop; the stand-in server has no tasks or
    # events, so it fails there (as `inv up --smoke` does) and the failure names the backup
    proc = kit.inv("upgrade", "--from", "90.0.0", "--to", "90.2.0", "--smoke", check=False)
    assert "adopting a server at 90.0.0" in proc.stderr
    assert proc.stderr.index("adopting") < proc.stderr.index("backup written") < proc.stderr.index("hop 1/2")
    assert "hop 2: 90.2.0 healthy" in proc.stderr, proc.stderr
    assert re.search(r"^log in +pass ", proc.stdout, re.M) and re.search(r"^upload file +pass ", proc.stdout, re.M)
    assert proc.returncode != 0
    assert re.search(r"upgrade stopped at hop 2/2 \(90\.2\.0\): smoke test: \d+ of \d+ steps failed", proc.stderr)
    [archive] = (kit.dir / "backups").glob("clearml-backup-*.tar.gz")
    assert f"inv down && inv restore {archive}" in proc.stderr
    assert "-90.0.0-" in archive.name
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        archived_settings = parse_env(tar.extractfile("settings.env").read().decode())
    assert manifest["server_version"] == "90.0.0" and archived_settings["CLEARML_SERVER_VERSION"] == "90.0.0"
    assert manifest["images"]["mongo"].endswith(archived_mongo_tag(kit, "90.0.0"))
    assert recorded(kit) == "90.2.0" and data_series(kit) == "7.0"

    # the rollback an upgrade prints (`inv down && inv restore BACKUP`) starts 90.0.0 on its Mongo 5.0 data
    kit.inv("down")
    kit.inv("restore", str(archive))
    assert recorded(kit) == "90.0.0" and data_series(kit) == "5.0" and server_version(kit) == "90.0.0"
    assert mongo_get(kit, "tasks", "t1") == {"name": "written by 90.0.0"}


def archived_mongo_tag(kit, version: str) -> str:
    """The Mongo tag the stand-in release ``version`` runs (from the test's release table)."""
    rows = json.loads((kit.dir / "test-releases.json").read_text())
    return next(r["mongo_tag"] for r in rows if r["version"] == version)
