"""The base layer keeps what the official clearml-server docker-compose.yml (server 2.3) has.

The lists below were taken from that file; a later edit of compose/base.yml that drops a service,
an environment variable name, a volume target or a network fails here instead of silently.
agent-services lives in the agents layer.
"""

from __future__ import annotations

import pytest

from tests.contract.test_compose_config import merged, settings_for

pytestmark = pytest.mark.contract

OFFICIAL = {
    "apiserver": {
        "env": {
            "CLEARML_ELASTIC_SERVICE_HOST", "CLEARML_ELASTIC_SERVICE_PORT", "CLEARML_MONGODB_SERVICE_HOST",
            "CLEARML_MONGODB_SERVICE_PORT", "CLEARML_REDIS_SERVICE_HOST", "CLEARML_REDIS_SERVICE_PORT",
            "CLEARML_SERVER_DEPLOYMENT_TYPE", "CLEARML__apiserver__pre_populate__enabled",
            "CLEARML__apiserver__pre_populate__zip_files", "CLEARML__apiserver__pre_populate__artifacts_path",
            "CLEARML__services__async_urls_delete__enabled",
            "CLEARML__services__async_urls_delete__fileserver__url_prefixes",
            "CLEARML__secure__credentials__services_agent__user_key",
            "CLEARML__secure__credentials__services_agent__user_secret",
        },
        "volumes": {"/var/log/clearml", "/opt/clearml/config", "/mnt/fileserver"},
        "networks": {"backend", "frontend"},
        "command": ["apiserver"],
        "target_ports": {8008},
    },
    "elasticsearch": {
        "env": {
            "bootstrap.memory_lock", "cluster.name", "cluster.routing.allocation.node_initial_primaries_recoveries",
            "cluster.routing.allocation.disk.watermark.low", "cluster.routing.allocation.disk.watermark.high",
            "cluster.routing.allocation.disk.watermark.flood_stage", "discovery.type", "http.compression_level",
            "node.name", "reindex.remote.whitelist", "xpack.security.enabled",
        },
        "volumes": {"/usr/share/elasticsearch/data", "/usr/share/elasticsearch/logs"},
        "networks": {"backend"},
        "target_ports": set(),
    },
    "fileserver": {
        "env": {"CLEARML__fileserver__delete__allow_batch"},
        "volumes": {"/var/log/clearml", "/mnt/fileserver", "/opt/clearml/config"},
        "networks": {"backend", "frontend"},
        "command": ["fileserver"],
        "target_ports": {8081},
    },
    "mongo": {
        "env": set(),
        "volumes": {"/data/db", "/data/configdb"},
        "networks": {"backend"},
        "command": ["--setParameter", "internalQueryMaxBlockingSortMemoryUsageBytes=196100200"],
        "target_ports": set(),
    },
    "redis": {"env": set(), "volumes": {"/data"}, "networks": {"backend"}, "target_ports": set()},
    "webserver": {
        "env": set(),
        "volumes": set(),
        "networks": {"backend", "frontend"},
        "command": ["webserver"],
        "target_ports": {80},
    },
    "async_delete": {
        "env": {
            "CLEARML_ELASTIC_SERVICE_HOST", "CLEARML_ELASTIC_SERVICE_PORT", "CLEARML_MONGODB_SERVICE_HOST",
            "CLEARML_MONGODB_SERVICE_PORT", "CLEARML_REDIS_SERVICE_HOST", "CLEARML_REDIS_SERVICE_PORT",
            "PYTHONPATH", "CLEARML__services__async_urls_delete__fileserver__url_prefixes",
        },
        "volumes": {"/var/log/clearml", "/opt/clearml/config"},
        "networks": {"backend"},
        "entrypoint": ["python3", "-m", "jobs.async_urls_delete", "--fileserver-host", "http://fileserver:8081"],
        "target_ports": set(),
    },
}
OFFICIAL_ES_ULIMITS = {"memlock": {"soft": -1, "hard": -1}, "nofile": {"soft": 65536, "hard": 65536}}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return merged(settings_for(tmp_path_factory.mktemp("parity")), ["base"])["services"]


def test_same_services(base):
    assert set(base) == set(OFFICIAL)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_service_keeps_env_volumes_networks_command_and_ports(base, name):
    want, svc = OFFICIAL[name], base[name]
    assert want["env"] <= set(svc.get("environment", {})), want["env"] - set(svc.get("environment", {}))
    assert want["volumes"] <= {v["target"] for v in svc.get("volumes", [])}
    assert set(svc.get("networks", {})) == want["networks"]
    assert {int(p["target"]) for p in svc.get("ports", [])} == want["target_ports"]
    for key in ("command", "entrypoint"):
        if key in want:
            assert svc[key] == want[key]
    assert svc["restart"] == "unless-stopped"


def test_elasticsearch_limits_and_official_values(base):
    es = base["elasticsearch"]
    assert es["ulimits"] == OFFICIAL_ES_ULIMITS
    assert es["environment"]["cluster.routing.allocation.disk.watermark.flood_stage"] == "500mb"
    assert es["environment"]["discovery.type"] == "single-node"
    assert es["environment"]["reindex.remote.whitelist"] == "'*.*'"
