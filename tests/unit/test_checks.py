"""Pure checks over fake readings."""

from __future__ import annotations

from pathlib import Path

from clearml_stack import checks
from clearml_stack.settings import Settings, defaults


def test_max_map_count():
    assert checks.max_map_count(524288).status == "ok"
    low = checks.max_map_count(65530)
    assert low.status == "warn" and "65530" in low.detail and "sysctl -w vm.max_map_count=524288" in low.fix
    assert checks.max_map_count(None).status == "warn"


def test_engine_unreachable_says_how_to_fix():
    c = checks.engine(False, "Cannot connect to the Docker daemon")
    assert c.status == "fail" and "Cannot connect" in c.detail and "systemctl start docker" in c.fix


def test_ports_name_the_owner_and_the_setting():
    s = Settings(values={**defaults(), "CLEARML_WEB_PORT": "18080"}, env_file=Path("/x/.env"))
    wanted = checks.published_ports(s, ["base"])
    found = checks.ports(wanted, is_free=lambda host, port: port != 18080, owner=lambda port: "process nc (pid 7)",
                         ours=set())
    bad = [c for c in found if c.status == "fail"]
    assert len(bad) == 1 and "CLEARML_WEB_PORT=18080" in bad[0].detail and "nc (pid 7)" in bad[0].detail
    assert "CLEARML_WEB_PORT" in bad[0].fix
    # a port our own running stack holds is fine
    assert all(c.status == "ok" for c in checks.ports(wanted, lambda h, p: p != 18080, lambda p: "x", ours={18080}))
    assert checks.worst(found) == "fail"


def test_gateway_port_only_with_nginx_layer():
    s = Settings(values=defaults(), env_file=Path("/x/.env"))
    assert [k for k, _, _ in checks.published_ports(s, ["base"])] == ["CLEARML_WEB_PORT", "CLEARML_API_PORT", "CLEARML_FILES_PORT"]
    assert "CLEARML_GATEWAY_PORT" in [k for k, _, _ in checks.published_ports(s, ["base", "nginx"])]
