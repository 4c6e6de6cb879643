"""Backup, fresh start and restore on the real engine with the stand-in stack: every kind of data comes
back identical, a running stack is not restored over, a corrupted archive changes nothing, and doctor
judges the running stack (its own ports excepted)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from tests.integration.ops_helpers import (add_user, api_token, download, es_get, es_put, last_line, mongo_get,
                                           mongo_put, project_volumes, redis_get, redis_set, states, tree_digest,
                                           upload)

pytestmark = pytest.mark.integration


def snapshot(path: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``path``: size, mode and (for files) content hash, to prove nothing changed."""
    import hashlib

    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else ""
        out[p.relative_to(path).as_posix()] = (st.st_size if digest else 0, stat.S_IMODE(st.st_mode), digest)
    return out


def test_backup_fresh_restore_brings_every_store_back(stack_kit) -> None:
    kit = stack_kit
    kit.inv("install")
    add_user(kit)
    kit.inv("up")

    # data written the way the server writes it
    token = api_token(kit)
    model = os.urandom(256 * 1024)
    upload(kit, token, "projects/demo/model.bin", model)
    mongo_put(kit, "tasks", "t1", {"name": "train", "status": "completed", "metrics": [1, 2, 3]})
    redis_set(kit, "queue:default", "task-t1")
    es_put(kit, "events-log", "e1", {"task": "t1", "msg": "epoch 1 done"})
    files_before = tree_digest(kit.data_dir / "data/fileserver")

    # doctor on the running stack: services healthy, API answers, our own ports are not "in use"
    report = json.loads(kit.inv("doctor", "--json", check=False).stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    for service in ("apiserver", "fileserver", "webserver", "mongo", "elasticsearch", "redis", "async_delete"):
        assert by_name[f"service {service}"]["status"] == "ok"
    assert by_name["api"]["status"] == "ok"
    for port in (kit.env["CLEARML_WEB_PORT"], kit.env["CLEARML_API_PORT"], kit.env["CLEARML_FILES_PORT"]):
        assert by_name[f"port {port}"]["status"] == "ok"

    # backup: a consistent archive, and the stack runs again afterwards
    proc = kit.inv("backup", "--out", str(kit.dir / "archives"))
    archive = Path(last_line(proc.stdout))
    assert "stopping 7 running service(s)" in proc.stderr and "starting again" in proc.stderr
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(archive.parent.stat().st_mode) == 0o700
    assert all(s == ("running", "healthy") for s in states(kit).values())
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["server_version"] == "2.3.0" and manifest["project"] == kit.project
    assert manifest["images"]["mongo"] == kit.env["MONGO_IMAGE"]
    assert "docker compose stop" in manifest["method"]
    assert any(e["path"] == "data/data/fileserver/projects/demo/model.bin" for e in manifest["entries"])

    # a running stack is never restored over
    proc = kit.inv("restore", str(archive), check=False)
    assert proc.returncode != 0 and "is running" in proc.stderr and "inv down" in proc.stderr

    # fresh: containers and data go, settings and users stay
    settings_text, users_text = kit.env_file.read_text(), (kit.dir / "users.json").read_text()
    assert project_volumes(kit) == [f"{kit.project}_elastic_logs"]
    proc = kit.inv("fresh", "--yes", "--out", str(kit.dir / "archives"))
    assert states(kit) == {}
    assert project_volumes(kit) == []
    assert not (kit.data_dir / "data/fileserver/projects").exists()
    assert kit.env_file.read_text() == settings_text and (kit.dir / "users.json").read_text() == users_text
    fresh_backup = Path(proc.stdout.strip().splitlines()[-1])
    assert fresh_backup.is_file() and fresh_backup != archive

    # a corrupted archive is refused and nothing changes
    corrupt = kit.dir / "archives" / "corrupt.tar.gz"
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 3] ^= 0x55
    corrupt.write_bytes(bytes(raw))
    before = snapshot(kit.dir)
    proc = kit.inv("restore", str(corrupt), check=False)
    assert proc.returncode != 0 and "refusing" in proc.stderr and "Nothing was changed" in proc.stderr
    assert snapshot(kit.dir) == before
    assert states(kit) == {}

    # restore: verified, put in place, started, healthy; the side copy is then removed
    proc = kit.inv("restore", str(archive))
    assert "every checksum matches" in proc.stderr and "removed the side copy" in proc.stderr
    assert not list(kit.data_dir.glob("pre-restore-*")) and not list(kit.data_dir.glob(".restore-staging-*"))
    kit.inv("up")
    assert all(s == ("running", "healthy") for s in states(kit).values())

    token = api_token(kit)
    assert download(kit, token, "projects/demo/model.bin") == model
    assert tree_digest(kit.data_dir / "data/fileserver") == files_before
    assert mongo_get(kit, "tasks", "t1") == {"name": "train", "status": "completed", "metrics": [1, 2, 3]}
    assert redis_get(kit, "queue:default") == "task-t1"
    assert es_get(kit, "events-log", "e1")["_source"] == {"task": "t1", "msg": "epoch 1 done"}
    assert kit.env_file.read_text() == settings_text
    assert stat.S_IMODE(kit.env_file.stat().st_mode) == 0o600
    if os.geteuid() == 0:
        assert (kit.data_dir / "data/fileserver/projects").stat().st_uid == 1000


def test_restore_keeps_the_previous_state_when_not_started(stack_kit) -> None:
    """--no-start: the side copy stays with the commands to put it back; nothing is started."""
    kit = stack_kit
    kit.inv("install")
    add_user(kit)
    marker = kit.data_dir / "data/fileserver/old.txt"
    marker.write_text("before the backup")
    archive = Path(last_line(kit.inv("backup", "--out", str(kit.dir / "archives")).stdout))
    marker.write_text("changed after the backup")
    proc = kit.inv("restore", str(archive), "--no-start")
    side = next(kit.data_dir.glob("pre-restore-*"))
    assert (side / "data/fileserver/old.txt").read_text() == "changed after the backup"
    assert marker.read_text() == "before the backup"
    assert f"rm -rf {side}" in proc.stderr and "mv " in proc.stderr
    assert (side / "settings.env").read_text() == kit.env_file.read_text()
    assert states(kit) == {}


def gateway_ping(port: int, cafile: Path, host: str) -> int:
    """GET /debug.ping through the TLS gateway, trusting only ``cafile``; returns the HTTP status."""
    import http.client
    import socket
    import ssl

    ctx = ssl.create_default_context(cafile=str(cafile))
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=120), server_hostname=host)
    conn = http.client.HTTPConnection(host, port, timeout=120)
    conn.sock = sock
    try:
        conn.request("GET", "/debug.ping", headers={"Host": host})
        return conn.getresponse().status
    finally:
        conn.close()


def test_restore_on_a_new_host_needs_nothing_but_the_archive(stack_kit, tmp_path) -> None:
    """Settings file, users file and data directory all gone: the archive alone brings back the data, the
    secrets, the users and the gateway's CA, so clients that trusted the old gateway trust the new one."""
    from tests.kit import free_port

    kit = stack_kit
    domain = "clearml.test"
    kit.env["CLEARML_GATEWAY_HTTP_PORT"] = str(free_port())
    kit.inv("install", "--mode", "subdomains", "--domain", domain, "--self-signed")
    add_user(kit)
    kit.inv("up")
    token = api_token(kit)
    upload(kit, token, "projects/demo/weights.bin", b"weights" * 1000)
    mongo_put(kit, "tasks", "t9", {"name": "on the old host"})
    trusted_ca = tmp_path / "client-trusts.crt"  # what a client kept from the old host
    trusted_ca.write_bytes((kit.data_dir / "tls/ca.crt").read_bytes())
    gateway = kit.settings().port("gateway")
    assert gateway_ping(gateway, trusted_ca, f"api.{domain}") == 200
    ca_key = (kit.data_dir / "tls/ca.key").read_bytes()
    archive = Path(last_line(kit.inv("backup", "--out", str(tmp_path / "archives")).stdout))
    kit.inv("down")
    settings_text, users_text = kit.env_file.read_text(), (kit.dir / "users.json").read_text()

    # the new host: nothing of the deployment but the archive
    shutil.rmtree(kit.data_dir)
    kit.env_file.unlink()
    (kit.dir / "users.json").unlink()
    proc = kit.inv("restore", str(archive))
    assert "removed the side copy" in proc.stderr
    assert kit.env_file.read_text() == settings_text and (kit.dir / "users.json").read_text() == users_text
    assert stat.S_IMODE(kit.env_file.stat().st_mode) == 0o600
    assert (kit.data_dir / "tls/ca.crt").read_bytes() == trusted_ca.read_bytes()
    assert (kit.data_dir / "tls/ca.key").read_bytes() == ca_key
    assert stat.S_IMODE((kit.data_dir / "tls/ca.key").stat().st_mode) == 0o600
    assert all(s == ("running", "healthy") for s in states(kit).values())
    assert gateway_ping(gateway, trusted_ca, f"api.{domain}") == 200, "the old CA still verifies the gateway"
    token = api_token(kit)
    assert download(kit, token, "projects/demo/weights.bin") == b"weights" * 1000
    assert mongo_get(kit, "tasks", "t9") == {"name": "on the old host"}
