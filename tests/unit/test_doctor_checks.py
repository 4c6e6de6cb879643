"""Every doctor check against fake readings, the whole report, and the fixes on temp paths."""

from __future__ import annotations

import json
import sys
import types

import pytest

from clearml_stack import doctor
from clearml_stack.checks import MIN_MAX_MAP_COUNT, Check
from clearml_stack.doctor import GIB, MIB, Readings
from clearml_stack.health import ServiceState


def state(service: str, state: str = "running", health: str = "healthy", exit_code: int = 0) -> ServiceState:
    return ServiceState(service, f"p-{service}-1", state, health, "", exit_code)


def healthy_readings(**over) -> Readings:
    base = dict(
        engine=(True, "24.0.7"), compose=("2.29.1", "", ""), max_map_count=MIN_MAX_MAP_COUNT, mem_total=16 * GIB,
        settings_file="/k/.env", release_version="2.3.0", release_verified=True, release_source="compose",
        es_heap="2g", services_agent=True, data_dir="/k/data", disk=(100 * GIB, 200 * GIB),
        ownership={"data/elastic_7": 1000, "data/fileserver": 1000, "config": 1000, "logs": 1000,
                   "data/mongo_4/db": 999, "data/redis": 1000},
        ports=[Check("port 8080", "ok", "free")],
        services=[state(s) for s in ("apiserver", "elasticsearch", "mongo", "redis", "fileserver", "webserver")],
        api=(True, "HTTP 200", "http://127.0.0.1:8008"), audit=[Check("audit: secrets", "ok", "generated")],
    )
    base.update(over)
    return Readings(**base)


# --- one check at a time ------------------------------------------------------------------------


def test_engine() -> None:
    assert doctor.engine_check(True, "24.0.7").status == "ok"
    bad = doctor.engine_check(False, "Cannot connect to the Docker daemon")
    assert bad.status == "fail" and "systemctl start docker" in bad.fix


@pytest.mark.parametrize("version,status", [("24.0.7", "ok"), ("20.10.24+dfsg1", "ok"), ("19.03.15", "ok"),
                                            ("18.09.1", "warn"), ("1.13.1", "warn"), ("dev", "warn")])
def test_engine_version_against_what_the_compose_files_need(version, status) -> None:
    c = doctor.engine_check(True, version)
    assert c.status == status
    if status == "warn":
        assert version in c.detail and "19.03" in c.fix


def test_compose() -> None:
    assert doctor.compose_check("2.29.1", "", "").detail == "Docker Compose 2.29.1"
    assert doctor.compose_check("2.17.0", "", "").status == "ok"
    old = doctor.compose_check("2.16.0", "", "")
    assert old.status == "fail" and "2.16.0" in old.detail and "2.17.0" in old.detail
    assert "pip install -U" in old.fix
    bad = doctor.compose_check(None, "only Docker Compose v1 was found", "install Compose v2")
    assert (bad.status, bad.detail, bad.fix) == ("fail", "only Docker Compose v1 was found", "install Compose v2")


@pytest.mark.parametrize("value,status", [(None, "warn"), (65530, "fail"), (262144, "fail"),
                                          (MIN_MAX_MAP_COUNT - 1, "fail"), (MIN_MAX_MAP_COUNT, "ok"), (2**31, "ok")])
def test_max_map_count(value, status) -> None:
    c = doctor.max_map_count_check(value)
    assert c.status == status
    if status != "ok":
        assert f"vm.max_map_count={MIN_MAX_MAP_COUNT}" in c.fix and "99-clearml.conf" in c.fix


@pytest.mark.parametrize("mem,heap,agent,status", [
    (16 * GIB, "4g", True, "ok"),
    (8 * GIB, "2g", True, "ok"),
    (6 * GIB, "1g", False, "warn"),  # enough for the services, below the official 8 GiB
    (4 * GIB, "2g", True, "fail"),  # 2g heap + ~3.5 GiB of other services + agent
    (4 * GIB, "512m", False, "warn"),
    (2 * GIB, "512m", False, "fail"),
    (None, "2g", True, "warn"),
    (16 * GIB, "lots", True, "warn"),
])
def test_memory(mem, heap, agent, status) -> None:
    c = doctor.memory_check(mem, heap, agent)
    assert c.status == status, c.detail
    if status == "fail":
        assert "CLEARML_ES_HEAP" in c.fix


def test_memory_counts_the_services_agent() -> None:
    need_without = doctor.memory_check(1, "1g", False).detail
    need_with = doctor.memory_check(1, "1g", True).detail
    assert need_without != need_with


@pytest.mark.parametrize("free,total,status", [
    (100 * GIB, 200 * GIB, "ok"),
    (15 * GIB, 200 * GIB, "warn"),  # under 10% of the disk
    (9 * GIB, 50 * GIB, "warn"),  # under 10 GiB
    (900 * MIB, 50 * GIB, "fail"),  # close to the 500mb flood stage
    (100 * MIB, 50 * GIB, "fail"),
])
def test_disk_warns_before_the_elasticsearch_watermark(free, total, status) -> None:
    c = doctor.disk_check("/k/data", (free, total))
    assert c.status == status
    if status != "ok":
        assert "read-only" in c.detail or "stops writing" in c.detail
        assert "CLEARML_DATA_DIR" in c.fix


def test_disk_unreadable() -> None:
    assert doctor.disk_check("/k/data", None).status == "warn"


def test_ownership() -> None:
    found = {c.name: c for c in doctor.ownership_checks("/k/data", {
        "data/elastic_7": 0, "data/fileserver": 1000, "config": 1001, "data/mongo_4/db": 999, "logs": None})}
    assert found["owner data/elastic_7"].status == "fail"
    assert "chown -R 1000:1000 /k/data/data/elastic_7" in found["owner data/elastic_7"].fix
    assert found["owner data/fileserver"].status == "ok"
    assert found["owner config"].status == "warn"
    assert found["owner data/mongo_4/db"].status == "ok"  # mongo's own user is fine
    assert found["owner logs"].status == "warn" and "inv install" in found["owner logs"].fix


def test_settings() -> None:
    assert doctor.settings_check(None, "/k/.env").status == "ok"
    bad = doctor.settings_check(("invalid settings:\n  CLEARML_WEB_PORT='x': must be a port", "edit /k/.env"), "")
    assert bad.status == "fail" and "CLEARML_WEB_PORT" in bad.detail


def test_release() -> None:
    assert doctor.release_check("2.3.0", True, "compose").status == "ok"
    assert doctor.release_check("2.0.0", False, "helm").status == "warn"
    assert doctor.release_check("", True, "") is None


def test_services_and_api() -> None:
    assert doctor.service_checks(None) == []
    assert [c.status for c in doctor.service_checks([])] == ["ok"]
    found = doctor.service_checks([state("mongo"), state("elasticsearch", "running", "unhealthy"),
                                   state("apiserver", "exited", "", 62), state("redis", "running", "")])
    assert [c.status for c in found] == ["ok", "fail", "fail", "ok"]
    assert "exit code 62" in found[2].detail and "inv logs --service apiserver" in found[2].fix
    assert doctor.api_check(None) is None
    assert doctor.api_check((True, "HTTP 200", "http://x")).status == "ok"
    assert doctor.api_check((False, "no answer (refused)", "http://x")).status == "fail"


@pytest.mark.parametrize("text,n", [("512m", 512 * MIB), ("2g", 2 * GIB), ("1024k", 2**20), ("7", 7), ("x", None)])
def test_size_bytes(text, n) -> None:
    assert doctor.size_bytes(text) == n


# --- the whole report ---------------------------------------------------------------------------


def test_a_healthy_host_has_no_failures() -> None:
    found = doctor.evaluate(healthy_readings())
    assert all(c.status == "ok" for c in found), [c for c in found if c.status != "ok"]
    names = [c.name for c in found]
    for expected in ("docker engine", "docker compose", "vm.max_map_count", "settings", "release", "memory", "disk",
                     "owner data/elastic_7", "port 8080", "audit: secrets", "service apiserver", "api"):
        assert expected in names


def test_low_max_map_count_and_a_busy_port_fail_the_report() -> None:
    r = healthy_readings(max_map_count=65530,
                         ports=[Check("port 8080", "fail", "CLEARML_WEB_PORT=8080 on 127.0.0.1 is already in use by "
                                                           "process nginx (pid 7)", "stop that program")])
    failed = {c.name for c in doctor.evaluate(r) if c.status == "fail"}
    assert failed == {"vm.max_map_count", "port 8080"}


def test_broken_settings_skip_what_depends_on_them() -> None:
    r = Readings(engine=(True, "24"), compose=("2.29", "", ""), max_map_count=MIN_MAX_MAP_COUNT,
                 settings_problem=("no settings file at /k/.env", "run `inv install` first"))
    found = doctor.evaluate(r)
    assert [c.name for c in found] == ["docker engine", "docker compose", "vm.max_map_count", "settings"]
    assert found[-1].status == "fail"


def test_report_formats() -> None:
    found = doctor.evaluate(healthy_readings(max_map_count=1))
    text = doctor.report_text(found, {"security audit": "not installed"})
    assert "FAIL  vm.max_map_count" in text and "fix: sudo sysctl" in text and "skip  security audit" in text
    data = json.loads(doctor.report_json(found, {}, ["did x"]))
    assert data["ok"] is False and data["worst"] == "fail" and data["fixed"] == ["did x"]
    assert {"name", "status", "detail", "fix"} <= set(data["checks"][0])


# --- the security audit integration -------------------------------------------------------------


def test_the_audit_section_runs_clearml_stack_audit(monkeypatch) -> None:
    calls = []
    fake = types.ModuleType("clearml_stack.audit")
    fake.run = lambda settings: calls.append(settings) or [Check("audit: x", "warn", "y", "z")]
    monkeypatch.setitem(sys.modules, "clearml_stack.audit", fake)
    monkeypatch.setattr("clearml_stack.audit", fake, raising=False)
    found, why = doctor._audit("SETTINGS")
    assert calls == ["SETTINGS"] and why == "" and found[0].name == "audit: x"


def test_the_audit_section_is_skipped_with_a_note_until_it_exists(monkeypatch) -> None:
    import importlib.util

    if importlib.util.find_spec("clearml_stack.audit") is not None:
        # merged: doctor must reach the real audit by that name (its checks are Check rows)
        from clearml_stack import audit

        assert callable(audit.run)
        import clearml_stack

        monkeypatch.setitem(sys.modules, "clearml_stack.audit", None)  # then simulate it missing
        monkeypatch.delattr(clearml_stack, "audit", raising=False)
    found, why = doctor._audit(object())
    assert found is None and "security audit module is not installed" in why


# --- fixes ---------------------------------------------------------------------------------------


def test_fix_max_map_count_as_root_sets_and_persists(tmp_path, monkeypatch) -> None:
    proc, conf = tmp_path / "max_map_count", tmp_path / "sysctl.d" / "99-clearml.conf"
    proc.write_text("65530\n")
    monkeypatch.setenv("CLEARML_PROC_MAX_MAP_COUNT", str(proc))
    monkeypatch.setenv(doctor.SYSCTL_FILE_ENV, str(conf))
    done = doctor.fix_max_map_count(65530, euid=0)
    assert proc.read_text().strip() == str(MIN_MAX_MAP_COUNT)
    assert f"vm.max_map_count={MIN_MAX_MAP_COUNT}" in conf.read_text().splitlines()
    assert str(conf) in done[0]
    from clearml_stack import hostinfo

    assert hostinfo.max_map_count() == MIN_MAX_MAP_COUNT


def test_fix_max_map_count_as_a_user_prints_the_sudo_command(tmp_path, monkeypatch) -> None:
    proc = tmp_path / "max_map_count"
    proc.write_text("65530\n")
    monkeypatch.setenv("CLEARML_PROC_MAX_MAP_COUNT", str(proc))
    monkeypatch.setenv(doctor.SYSCTL_FILE_ENV, str(tmp_path / "c.conf"))
    done = doctor.fix_max_map_count(65530, euid=1000)
    assert "sudo sysctl -w vm.max_map_count=524288" in done[0]
    assert proc.read_text().strip() == "65530" and not (tmp_path / "c.conf").exists()


def test_fix_max_map_count_does_nothing_when_high_enough(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(doctor.SYSCTL_FILE_ENV, str(tmp_path / "c.conf"))
    assert doctor.fix_max_map_count(MIN_MAX_MAP_COUNT, euid=0) == []
    assert not (tmp_path / "c.conf").exists()


def test_fix_ownership_names_only_the_bad_paths() -> None:
    found = doctor.ownership_checks("/k/data", {"data/elastic_7": 0, "config": 1000, "logs": None})
    done = doctor.fix_ownership("/k/data", found, euid=1000)
    assert done == ["not root: run `sudo chown -R 1000:1000 /k/data/data/elastic_7`"]


def test_fix_runs_the_audits_own_fixes(monkeypatch, tmp_path) -> None:
    seen = []
    fake = types.ModuleType("clearml_stack.audit")
    fake.gather = lambda settings: "READINGS"
    fake.fix_modes = lambda found, readings: seen.append((found, readings)) or [tmp_path / ".env"]
    monkeypatch.setitem(sys.modules, "clearml_stack.audit", fake)
    monkeypatch.setattr("clearml_stack.audit", fake, raising=False)
    monkeypatch.setattr("clearml_stack.settings.load", lambda: "SETTINGS")
    found = [Check("settings file mode", "fail", "0644")]
    assert doctor.fix_audit(found) == [f"made {tmp_path / '.env'} private (mode 0600)"]
    assert seen == [(found, "READINGS")]


def test_an_audit_that_crashes_is_a_failed_check_not_a_crashed_doctor(monkeypatch) -> None:
    fake = types.ModuleType("clearml_stack.audit")

    def boom(settings):
        raise KeyError("users_file")

    fake.run = boom
    monkeypatch.setitem(sys.modules, "clearml_stack.audit", fake)
    monkeypatch.setattr("clearml_stack.audit", fake, raising=False)
    found, why = doctor._audit(object())
    assert why == "" and found[0].status == "fail" and "KeyError" in found[0].detail
