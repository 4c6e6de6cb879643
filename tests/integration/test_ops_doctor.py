"""`inv doctor` through the real CLI on this host: it fails on a too-low vm.max_map_count reading and on
a published port someone else holds, names the fix, and `--fix` applies the kernel setting as root."""

from __future__ import annotations

import importlib.util
import json
import os
import socket

import pytest

from tests.kit import free_port, new_kit

pytestmark = pytest.mark.integration


@pytest.fixture
def doctor_kit(tmp_path, docker_engine):
    proc_file, conf = tmp_path / "max_map_count", tmp_path / "sysctl.d" / "99-clearml.conf"
    kit = new_kit(tmp_path, CLEARML_WEB_PORT=str(free_port()), CLEARML_API_PORT=str(free_port()),
                  CLEARML_FILES_PORT=str(free_port()), CLEARML_PROC_MAX_MAP_COUNT=str(proc_file),
                  CLEARML_SYSCTL_FILE=str(conf))
    kit.inv("install")
    return kit, proc_file, conf


def checks_of(proc) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


def test_doctor_fails_on_low_max_map_count_and_a_port_in_use(doctor_kit) -> None:
    kit, proc_file, _ = doctor_kit
    proc_file.write_text("65530\n")
    web = int(kit.env["CLEARML_WEB_PORT"])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", web))
        holder.listen()
        proc = kit.inv("doctor", "--json", check=False)
    assert proc.returncode != 0
    found = checks_of(proc)
    assert found["vm.max_map_count"]["status"] == "fail"
    assert "65530" in found["vm.max_map_count"]["detail"] and "sysctl" in found["vm.max_map_count"]["fix"]
    port = found[f"port {web}"]
    assert port["status"] == "fail" and "already in use by process" in port["detail"]
    assert "CLEARML_WEB_PORT" in port["fix"]
    assert "vm.max_map_count" in proc.stderr and f"port {web}" in proc.stderr  # the exit message names them

    text = kit.inv("doctor", check=False)
    assert text.returncode != 0 and "FAIL  vm.max_map_count" in text.stdout


def test_doctor_passes_those_checks_once_fixed(doctor_kit) -> None:
    kit, proc_file, conf = doctor_kit
    proc_file.write_text("65530\n")
    if os.geteuid() == 0:
        proc = kit.inv("doctor", "--fix", "--json", check=False)
        assert proc_file.read_text().strip() == "524288"
        assert "vm.max_map_count=524288" in conf.read_text()
        assert any("set vm.max_map_count=524288" in line for line in json.loads(proc.stdout)["fixed"])
    else:
        proc = kit.inv("doctor", "--fix", "--json", check=False)
        assert "sudo sysctl -w vm.max_map_count=524288" in " ".join(json.loads(proc.stdout)["fixed"])
        proc_file.write_text("524288\n")
    found = checks_of(kit.inv("doctor", "--json", check=False))
    assert found["vm.max_map_count"]["status"] == "ok"
    assert found[f"port {kit.env['CLEARML_WEB_PORT']}"]["status"] == "ok"
    assert found["settings"]["status"] == "ok" and found["stack"]["status"] == "ok"
    report = json.loads(kit.inv("doctor", "--json", check=False).stdout)
    if importlib.util.find_spec("clearml_stack.audit") is None:
        assert "security audit" in report["skipped"]
    else:  # the hardening audit is merged: its checks are part of the report
        assert "security audit" not in report["skipped"]


def test_doctor_without_settings_says_to_install(tmp_path, docker_engine) -> None:
    kit = new_kit(tmp_path)
    proc = kit.inv("doctor", check=False)
    assert proc.returncode != 0
    assert "no settings file" in proc.stdout and "inv install" in proc.stdout


def test_k8s_export_data_makes_its_archive_with_inv_backups_function(tmp_path, docker_engine) -> None:
    """`inv k8s.export-data` without --archive takes a backup through clearml_stack.backup.create_backup."""
    kit = new_kit(tmp_path)
    kit.inv("install", "--domain", "clearml.example.com")
    (kit.data_dir / "data/fileserver/f.txt").write_text("artifact")
    proc = kit.inv("k8s.export-data")
    archives = list((kit.dir / "backups").glob("clearml-backup-*.tar.gz"))
    assert len(archives) == 1 and proc.stdout.startswith(f"Backup archive: {archives[0]}")
    assert "backup written" in proc.stderr
