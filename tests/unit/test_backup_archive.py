"""Backup archives without an engine: manifest, checksums, tampering, unsafe members, extraction."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from clearml_stack import backup
from clearml_stack.backup import Entry, build_manifest, compare, release_problem, safe_member
from clearml_stack.errors import StackError
from tests.kit import clean_environ


@pytest.fixture
def installed(tmp_path):
    """An installed kit in tmp_path with a few files in every store directory."""
    from clearml_stack.install import install
    from clearml_stack.settings import load

    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(tmp_path / ".env"), "COMPOSE_PROJECT_NAME": "unitbk"}
    install({}, environ)
    settings = load(environ)
    data = settings.data_dir
    (data / "data/mongo_4/db/tasks").mkdir(parents=True)
    (data / "data/mongo_4/db/tasks/t1.json").write_text('{"name": "train"}')
    (data / "data/fileserver/proj").mkdir(parents=True)
    (data / "data/fileserver/proj/model.bin").write_bytes(os.urandom(300_000))
    (data / "data/redis/dump.rdb").write_bytes(b"REDIS0011" + os.urandom(100))
    (data / "data/elastic_7/nodes").mkdir(parents=True)
    os.symlink("nodes", data / "data/elastic_7/current")
    (data / "logs/apiserver.log").write_text("not backed up\n")
    (data / "tls").mkdir()
    (data / "tls/ca.crt").write_text("-----BEGIN CERTIFICATE-----\nunit\n-----END CERTIFICATE-----\n")
    (data / "tls/ca.key").write_text("-----BEGIN PRIVATE KEY-----\nunit\n-----END PRIVATE KEY-----\n")
    os.chmod(data / "tls/ca.key", 0o600)
    settings.users_file.write_text('[{"username": "a"}]')
    return settings


def make_archive(settings, tmp_path: Path) -> Path:
    target = tmp_path / "out" / "b.tar.gz"
    target.parent.mkdir()
    backup.write_archive(settings, target, "test: not running")
    return target


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def rewrite(src: Path, dst: Path, change) -> None:
    """Copy an archive member by member, letting ``change(info, data)`` return a new (info, data) or None."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w:gz") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            out = change(m, data)
            if out is None:
                continue
            info, data = out
            tout.addfile(info, io.BytesIO(data) if data is not None else None)


def test_archive_content_mode_and_manifest(installed, tmp_path) -> None:
    path = make_archive(installed, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    names = members(path)
    assert list(names)[-1] == "manifest.json"
    assert {"settings.env", "users.json", "data/data/mongo_4/db/tasks/t1.json", "data/data/fileserver/proj/model.bin",
            "data/data/redis/dump.rdb", "data/config/secure.conf", "data/data/elastic_7/current",
            "data/tls/ca.crt", "data/tls/ca.key"} <= set(names), "the gateway's CA is part of the backup"
    assert not any(n.startswith("data/logs") for n in names), "logs are not part of a backup"
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        blob = tar.extractfile("data/data/fileserver/proj/model.bin").read()
    assert manifest["format"] == 1 and manifest["project"] == "unitbk" and manifest["server_version"] == "2.3.0"
    assert manifest["images"]["mongo"] == "mongo:7.0.22" and manifest["images"]["server"] == "clearml/server:2.3.0"
    entry = next(e for e in manifest["entries"] if e["path"] == "data/data/fileserver/proj/model.bin")
    assert entry["sha256"] == hashlib.sha256(blob).hexdigest() and entry["size"] == 300_000
    assert manifest["totals"]["files"] == sum(1 for e in manifest["entries"] if e["type"] == "file")
    assert manifest["totals"]["bytes"] >= 300_000
    assert manifest["created"].endswith("Z") and manifest["method"] == "test: not running"


def test_verify_accepts_an_intact_archive(installed, tmp_path) -> None:
    checked = backup.verify(make_archive(installed, tmp_path))
    assert checked.settings_text == installed.env_file.read_text()
    assert checked.users_text == '[{"username": "a"}]'
    assert release_problem(checked.manifest, checked.settings_text, ["2.3.0"]) is None


def test_a_flipped_byte_in_the_compressed_stream_is_refused(installed, tmp_path) -> None:
    path = make_archive(installed, tmp_path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(StackError, match="refusing"):
        backup.verify(bad)


def test_a_truncated_archive_is_refused(installed, tmp_path) -> None:
    path = make_archive(installed, tmp_path)
    bad = tmp_path / "short.tar.gz"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(StackError, match="damaged"):
        backup.verify(bad)


def test_a_changed_file_with_a_valid_gzip_is_refused_by_its_checksum(installed, tmp_path) -> None:
    path, bad = make_archive(installed, tmp_path), tmp_path / "tampered.tar.gz"

    def change(info, data):
        if info.name == "data/data/mongo_4/db/tasks/t1.json":
            data = b'{"name": "evil"}'
            info.size = len(data)
        return info, data

    rewrite(path, bad, change)
    with pytest.raises(StackError) as err:
        backup.verify(bad)
    assert "t1.json: checksum mismatch" in err.value.message and "Nothing was changed" in err.value.fix


def test_missing_and_extra_members_are_refused(installed, tmp_path) -> None:
    path = make_archive(installed, tmp_path)
    dropped = tmp_path / "dropped.tar.gz"
    rewrite(path, dropped, lambda i, d: None if i.name == "data/data/redis/dump.rdb" else (i, d))
    with pytest.raises(StackError, match="missing from the archive: data/data/redis/dump.rdb"):
        backup.verify(dropped)


def test_a_path_escaping_the_archive_is_refused(installed, tmp_path) -> None:
    path, bad = make_archive(installed, tmp_path), tmp_path / "escape.tar.gz"

    def change(info, data):
        if info.name == "users.json":
            info.name = "data/config/../../../etc/cron.d/x"
        return info, data

    rewrite(path, bad, change)
    with pytest.raises(StackError, match="unexpected member"):
        backup.verify(bad)


def test_a_link_pointing_outside_is_refused(installed, tmp_path) -> None:
    path, bad = make_archive(installed, tmp_path), tmp_path / "link.tar.gz"

    def change(info, data):
        if info.name == "data/data/elastic_7/current":
            info.linkname = "/etc/shadow"
        return info, data

    rewrite(path, bad, change)
    with pytest.raises(StackError, match="points outside"):
        backup.verify(bad)


def test_no_manifest_is_refused(installed, tmp_path) -> None:
    path, bad = make_archive(installed, tmp_path), tmp_path / "nomanifest.tar.gz"
    rewrite(path, bad, lambda i, d: None if i.name == "manifest.json" else (i, d))
    with pytest.raises(StackError, match="no manifest.json"):
        backup.verify(bad)


def test_not_a_tar_at_all(tmp_path) -> None:
    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(gzip.compress(b"hello"))
    with pytest.raises(StackError, match="refusing"):
        backup.verify(bad)
    with pytest.raises(StackError, match="no backup archive"):
        backup.verify(tmp_path / "absent.tar.gz")


def test_extract_reproduces_every_entry(installed, tmp_path) -> None:
    checked = backup.verify(make_archive(installed, tmp_path))
    staging = tmp_path / "staging"
    staging.mkdir()
    backup.extract(checked, staging)
    src = installed.data_dir
    for rel in ("data/mongo_4/db/tasks/t1.json", "data/fileserver/proj/model.bin", "data/redis/dump.rdb",
                "config/secure.conf", "tls/ca.key", "tls/ca.crt"):
        assert (staging / rel).read_bytes() == (src / rel).read_bytes(), rel
        assert stat.S_IMODE((staging / rel).stat().st_mode) == stat.S_IMODE((src / rel).stat().st_mode)
    assert os.readlink(staging / "data/elastic_7/current") == "nodes"
    assert not (staging / "logs").exists()
    assert stat.S_IMODE((staging / "tls/ca.key").stat().st_mode) == 0o600


def test_the_archive_appears_under_its_name_only_when_complete(installed, tmp_path, monkeypatch) -> None:
    """Written as NAME.partial and renamed: while it is written, and after a failure, NAME does not exist."""
    target = tmp_path / "out" / "b.tar.gz"
    target.parent.mkdir()
    partial = target.with_name("b.tar.gz.partial")
    seen = []
    real_add = backup._add

    def watching_add(tar, source, name):
        seen.append((target.exists(), partial.exists()))
        if name == "data/data/redis/dump.rdb":
            raise OSError(5, "Input/output error")
        return real_add(tar, source, name)

    monkeypatch.setattr(backup, "_add", watching_add)
    with pytest.raises(OSError):
        backup.write_archive(installed, target, "test")
    assert seen and all(state == (False, True) for state in seen)
    assert not target.exists() and not partial.exists(), "a failed backup leaves nothing behind"
    monkeypatch.setattr(backup, "_add", real_add)
    backup.write_archive(installed, target, "test")
    assert target.is_file() and not partial.exists()
    backup.verify(target)


# --- pure helpers --------------------------------------------------------------------------------


def test_compare_reports_each_difference() -> None:
    listed = [Entry("a", "file", 1, "x"), Entry("b", "file", 2, "y"), Entry("d", "dir")]
    manifest = build_manifest(listed, project="p", server_version="2.3.0", images={}, created=0, data_dir="/d",
                              settings_file="/e", method="m")
    assert compare(manifest, {e.path: e for e in listed}) == []
    seen = {"a": Entry("a", "file", 1, "DIFFERENT"), "d": Entry("d", "file", 0, ""), "c": Entry("c", "dir")}
    problems = compare(manifest, seen)
    assert "missing from the archive: b" in problems
    assert "not in the manifest: c" in problems
    assert any(p.startswith("a: checksum mismatch") for p in problems)
    assert "d: a file, the manifest says dir" in problems
    assert compare({**manifest, "format": 99}, seen)[0].startswith("manifest format 99")


@pytest.mark.parametrize("name,ok", [
    ("manifest.json", True), ("settings.env", True), ("users.json", True), ("data/data/x", True),
    ("data/config/apiserver.conf", True), ("data/tls/ca.key", True), ("data/logs/x", False), ("data", False), ("/etc/passwd", False),
    ("data/data/../../x", False), ("other", False), ("data/agent/x", False),
])
def test_safe_member(name, ok) -> None:
    assert safe_member(name) is ok


def test_release_problem() -> None:
    m = {"server_version": "2.3.0"}
    assert release_problem(m, "CLEARML_SERVER_VERSION=2.3.0\n", ["2.3.0"]) is None
    assert "does not know" in release_problem({"server_version": "9.0.0"}, "CLEARML_SERVER_VERSION=9.0.0\n", ["2.3.0"])
    assert "settings record" in release_problem(m, "CLEARML_SERVER_VERSION=2.0.0\n", ["2.0.0", "2.3.0"])
    assert "no settings file" in release_problem(m, None, ["2.3.0"])


MANIFEST_23 = {"server_version": "2.3.0", "images": {"server": "clearml/server:2.3.0", "mongo": "mongo:7.0.22",
                                                    "elastic": "elasticsearch:8.17.0", "redis": "redis:7.4.1"}}


def test_runtime_mismatch_names_the_variable_to_unset_or_set() -> None:
    same = dict(MANIFEST_23["images"])
    assert backup.runtime_mismatch(MANIFEST_23, "2.3.0", same, ()) == []
    mirror = {**same, "mongo": "registry.local:5000/mirror/mongo:7.0.22"}
    assert backup.runtime_mismatch(MANIFEST_23, "2.3.0", mirror, {"MONGO_IMAGE"}) == [], "a mirror of the same tag"
    [env] = backup.runtime_mismatch(MANIFEST_23, "2.0.0", {}, {"CLEARML_SERVER_VERSION"})
    assert "server 2.0.0" in env and "2.3.0" in env and "unset CLEARML_SERVER_VERSION" in env
    [file] = backup.runtime_mismatch(MANIFEST_23, "2.0.0", {}, ())
    assert "set CLEARML_SERVER_VERSION=2.3.0" in file
    [mongo] = backup.runtime_mismatch(MANIFEST_23, "2.3.0", {**same, "mongo": "mongo:5.0.26"}, {"MONGO_IMAGE"})
    assert "mongo:5.0.26" in mongo and "unset MONGO_IMAGE" in mongo and "mongo:7.0.22" in mongo
    [redis] = backup.runtime_mismatch(MANIFEST_23, "2.3.0", {**same, "redis": "redis:7.4.1@sha256:ab"}, ())
    assert "set REDIS_IMAGE=redis:7.4.1" in redis


@pytest.mark.parametrize("ref,tag", [("mongo:7.0.22", "7.0.22"), ("localhost:5000/mongo", "latest"),
                                     ("localhost:5000/mongo:7.0", "7.0"), ("mongo@sha256:ab", "sha256:ab")])
def test_image_tag(ref, tag) -> None:
    assert backup.image_tag(ref) == tag


@pytest.mark.parametrize("override,variable", [({"CLEARML_SERVER_VERSION": "2.0.0"}, "CLEARML_SERVER_VERSION"),
                                               ({"MONGO_IMAGE": "mongo:5.0.26"}, "MONGO_IMAGE")])
def test_restore_refuses_a_release_other_than_the_archives(installed, tmp_path, monkeypatch, override,
                                                          variable) -> None:
    """Mongo 5 (or server 2.0) on data of 2.3.0 would not start or would damage it: refused, nothing changed."""
    from clearml_stack.settings import BY_KEY

    archive = make_archive(installed, tmp_path)
    for key in BY_KEY:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLEARML_ENV_FILE", str(installed.env_file))
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "unitbk")
    for key, value in override.items():
        monkeypatch.setenv(key, value)
    before = {p: p.read_bytes() for p in installed.data_dir.rglob("*") if p.is_file()}
    with pytest.raises(StackError) as err:
        backup.restore(archive, start=False)
    assert f"unset {variable}" in err.value.message and "nothing was changed" in err.value.fix
    assert {p: p.read_bytes() for p in installed.data_dir.rglob("*") if p.is_file()} == before
    assert not list(installed.data_dir.glob("pre-restore-*"))


def test_chown_command_for_a_restore_as_a_user(tmp_path) -> None:
    assert backup.chown_command(tmp_path, []) == ""
    assert backup.chown_command(Path("/srv/my data"), ["data", "config"]) == \
        "sudo chown -R 1000:1000 '/srv/my data/data' '/srv/my data/config'"
    (tmp_path / "data").mkdir()
    owner = os.stat(tmp_path / "data").st_uid
    assert backup.not_owned(tmp_path, ["data", "config"], uid=owner) == []
    assert backup.not_owned(tmp_path, ["data", "config"], uid=owner + 1) == ["data"]


def test_archive_name_sorts_by_time() -> None:
    a = backup.archive_name("clearml", "2.3.0", 1_700_000_000)
    b = backup.archive_name("clearml", "2.3.0", 1_700_000_060)
    assert a == "clearml-backup-clearml-2.3.0-20231114T221320Z.tar.gz" and a < b


def test_rollback_commands_put_everything_back() -> None:
    side = backup.SideCopy(Path("/d/pre-restore-1"), ("data", "config"), Path("/d/pre-restore-1/settings.env"), None)
    cmds = side.rollback_commands(Path("/d"), Path("/k/.env"), Path("/k/users.json"))
    assert cmds == ["inv down", "rm -rf /d/data", "mv /d/pre-restore-1/data /d/data", "rm -rf /d/config",
                    "mv /d/pre-restore-1/config /d/config", "cp -p /d/pre-restore-1/settings.env /k/.env"]
