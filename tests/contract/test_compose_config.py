"""Real `docker compose config` judges every layer list the settings can select, over a grid of access modes,
TLS, agents, workers and store exposure (no engine needed)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from clearml_stack import compose, layers as layer_mod
from clearml_stack.settings import EXPOSE_CHOICES, SECRET_KEYS, Settings, defaults, problems
from clearml_stack.secrets import fill_missing

pytestmark = pytest.mark.contract

# the settings grid: every access mode (subdomains with each TLS choice, with and without the HTTP
# redirect port), services agent on/off, worker variants, store exposure; and with or without users
ACCESS = [
    {"CLEARML_ACCESS_MODE": "tunnel"},
    {"CLEARML_ACCESS_MODE": "ports"},
    {"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": "01abc.cloudspaces.litng.ai"},
    *({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": tls,
       "CLEARML_GATEWAY_HTTP_PORT": http} for tls, http in
      (("off", ""), ("external", ""), ("self-signed", ""), ("self-signed", "8088"), ("provided", "8088"))),
]
SERVICES_AGENT = [{"CLEARML_SERVICES_AGENT": "true"}, {"CLEARML_SERVICES_AGENT": "false"}]
WORKERS = [
    {"CLEARML_AGENT_REPLICAS": "0"},
    {"CLEARML_AGENT_REPLICAS": "2", "CLEARML_AGENT_MODE": "venv"},
    {"CLEARML_AGENT_REPLICAS": "2", "CLEARML_AGENT_MODE": "docker"},
    {"CLEARML_AGENT_REPLICAS": "1", "CLEARML_AGENT_MODE": "venv", "CLEARML_AGENT_GPUS": "all"},
    {"CLEARML_AGENT_REPLICAS": "3", "CLEARML_AGENT_MODE": "docker", "CLEARML_AGENT_GPUS": "0,1"},
    {"CLEARML_AGENT_REPLICAS": "1", "CLEARML_AGENT_MODE": "venv", "CLEARML_AGENT_GCS_CREDENTIALS_FILE": "/srv/keys/gcs.json"},
]
EXPOSE = [{"CLEARML_EXPOSE_STORES": v} for v in EXPOSE_CHOICES]
GCS_TARGET = "/etc/clearml-agent/gcs-credentials.json"
PROVIDED = {"CLEARML_TLS_CERT": "/etc/ssl/clearml/fullchain.pem", "CLEARML_TLS_KEY": "/etc/ssl/clearml/privkey.pem"}


def settings_for(tmp_path: Path, **over: str) -> Settings:
    env_file = tmp_path / ".env"
    secrets = fill_missing({})
    env_file.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return Settings(values={**defaults(), **secrets, **over}, env_file=env_file)


def merged(s: Settings, layers: list[str]) -> dict:
    layer_mod.write_generated(s, layers)
    argv = compose.argv(compose.find(), s, layers, ["config", "--format", "json"])
    proc = subprocess.run(argv, env={**os.environ, **compose.environment(s)}, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(layers)}: {proc.stderr}"
    return json.loads(proc.stdout)


def layer_grid(tmp_path: Path) -> dict[tuple[str, ...], Settings]:
    """Each distinct layer list ``layers.select()`` makes over the settings grid, with the first settings
    that make it (checked valid, so the grid holds only deployments `inv install` would accept)."""
    env_file = tmp_path / ".env"
    secrets = fill_missing({})
    env_file.write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    found: dict[tuple[str, ...], Settings] = {}
    for parts in itertools.product(ACCESS, SERVICES_AGENT, WORKERS, EXPOSE):
        values = {**defaults(), **secrets, **{k: v for part in parts for k, v in part.items()}}
        if values["CLEARML_TLS"] == "provided":
            values.update(PROVIDED)
        assert problems(values) == [], parts
        s = Settings(values=values, env_file=env_file)
        for has_users in (False, True):
            found.setdefault(tuple(layer_mod.select(s, has_users)), s)
    return found


def check_layers(layers: tuple[str, ...], cfg: dict) -> None:
    """What each layer must add to the merged file, and must not add when it is absent."""
    services = cfg["services"]
    assert {"apiserver", "webserver", "fileserver", "mongo", "elasticsearch", "redis"} <= set(services)
    api_env = services["apiserver"]["environment"]
    assert (api_env.get("CLEARML__apiserver__auth__fixed_users__enabled") == "true") == ("auth" in layers)
    assert ("nginx" in services) == ("nginx" in layers)
    if "nginx" in services:
        assert len(services["nginx"]["ports"]) == (2 if "nginx-http" in layers else 1)
    assert ("WEBSERVER__apiBaseUrl" in services["webserver"].get("environment", {})) == ("web-urls" in layers)
    assert ("agent-services" in services) == ("agents" in layers)
    assert ("agent" in services) == ("workers" in layers)
    if "agent" in services:
        agent = services["agent"]
        sockets = [v for v in agent.get("volumes", []) if v.get("source") == "/var/run/docker.sock"]
        assert bool(sockets) == ("workers-docker" in layers)
        devices = agent.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        assert bool(devices) == ("workers-gpu" in layers or "workers-gpu-ids" in layers)
        if "workers-gpu-ids" in layers:
            assert devices[0]["device_ids"] == ["0", "1"]
        mounts = [v["target"] for v in agent.get("volumes", [])]
        assert (GCS_TARGET in mounts) == ("workers-gcs" in layers)
    if "agent-services" in services:
        mounts = [v["target"] for v in services["agent-services"].get("volumes", [])]
        assert (GCS_TARGET in mounts) == ("agents-gcs" in layers)
    for store in ("mongo", "elasticsearch", "redis"):
        assert bool(services[store].get("ports")) == ("ports-exposed" in layers), store
    assert anonymous_volumes(cfg) == [], layers


def test_every_layer_list_the_settings_can_select_is_valid(tmp_path):
    grid = layer_grid(tmp_path)
    assert {layer for layers in grid for layer in layers} == set(layer_mod.ALL_LAYERS), "every layer is covered"
    with ThreadPoolExecutor(max_workers=4) as pool:
        merged_files = dict(zip(grid, pool.map(lambda item: merged(item[1], list(item[0])), grid.items())))
    for layers, cfg in merged_files.items():
        check_layers(layers, cfg)


def anonymous_volumes(cfg: dict) -> list[str]:
    """service:target of every volume mount without a source: the engine orphans one on each recreate."""
    return [f"{name}:{v['target']}" for name, svc in cfg["services"].items() for v in svc.get("volumes", [])
            if v.get("type") == "volume" and not v.get("source")]


def test_elasticsearch_logs_live_on_a_named_volume_of_the_project(tmp_path):
    cfg = merged(settings_for(tmp_path, COMPOSE_PROJECT_NAME="clearml-x"), ["base"])
    (logs,) = [v for v in cfg["services"]["elasticsearch"]["volumes"] if v["target"] == "/usr/share/elasticsearch/logs"]
    assert (logs["type"], logs["source"]) == ("volume", "elastic_logs")
    assert cfg["volumes"]["elastic_logs"]["name"] == "clearml-x_elastic_logs"


def test_tunnel_mode_publishes_only_on_loopback_and_never_the_stores(tmp_path):
    cfg = merged(settings_for(tmp_path), ["base", "auth"])
    published = {name: svc.get("ports", []) for name, svc in cfg["services"].items()}
    for name in ("mongo", "elasticsearch", "redis", "async_delete"):
        assert published[name] == [], name
    for name, port in (("webserver", 8080), ("apiserver", 8008), ("fileserver", 8081)):
        assert [(p["host_ip"], p["published"]) for p in published[name]] == [("127.0.0.1", str(port))], name


def test_ports_mode_publishes_on_all_interfaces(tmp_path):
    cfg = merged(settings_for(tmp_path, CLEARML_ACCESS_MODE="ports"), ["base"])
    assert cfg["services"]["webserver"]["ports"][0]["host_ip"] == "0.0.0.0"


def test_every_service_has_a_healthcheck_and_health_ordered_start(tmp_path):
    cfg = merged(settings_for(tmp_path), ["base"])
    for name, svc in cfg["services"].items():
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dep, how in svc.get("depends_on", {}).items():
            assert how["condition"] == "service_healthy", f"{name} -> {dep}"
        assert svc["logging"]["options"]["max-size"], name


def test_images_are_pinned_and_heap_is_explicit(tmp_path):
    cfg = merged(settings_for(tmp_path, CLEARML_ES_HEAP="3g"), ["base"])
    for name, svc in cfg["services"].items():
        assert not svc["image"].endswith(":latest") and ":" in svc["image"].rsplit("/", 1)[-1], name
    assert cfg["services"]["elasticsearch"]["environment"]["ES_JAVA_OPTS"] == "-Xms3g -Xmx3g"


def test_secret_values_are_read_from_the_settings_file_not_argv(tmp_path):
    s = settings_for(tmp_path)
    cfg = merged(s, ["base"])
    env = cfg["services"]["apiserver"]["environment"]
    assert env["CLEARML__secure__credentials__services_agent__user_key"] == s.values["CLEARML_AGENT_ACCESS_KEY"]
    argv = compose.argv(compose.find(), s, ["base"], ["config"])
    assert not any(s.values[k] in " ".join(argv) for k in SECRET_KEYS)
