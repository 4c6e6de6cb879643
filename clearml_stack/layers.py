"""Which compose layers apply: a pure decision from the settings and whether users exist."""

from __future__ import annotations

from pathlib import Path

from .agents import worker_layers
from .settings import Settings, truthy

ALL_LAYERS = ("base", "auth", "nginx", "nginx-http", "web-urls", "agents", "workers", "workers-docker",
              "workers-gpu", "workers-gpu-ids", "agents-gcs", "workers-gcs", "ports-exposed")
#: layers written from the settings under <data>/compose (see :func:`write_generated`), not kept in compose/
GENERATED = ("workers-gpu-ids",)
DESCRIPTIONS = {
    "base": "the official services (apiserver, fileserver, webserver, async_delete, mongo, elasticsearch, "
    "redis) with healthchecks, ordered start-up and ports on the mode's address",
    "auth": "closed server: fixed-user login on, fileserver token checks on (applies once a user exists)",
    "nginx": "gateway routing app./api./files.<domain> on one port, optional TLS (subdomains mode)",
    "nginx-http": "the gateway's plain-HTTP port redirecting to HTTPS (TLS at the gateway and "
    "CLEARML_GATEWAY_HTTP_PORT set)",
    "web-urls": "tells the web UI the API and file server URLs (lightning-proxy mode)",
    "agents": "the services agent (CLEARML_SERVICES_AGENT): pinned clearml-agent, the services_agent key pair",
    "workers": "worker agents on this host, one service scaled to CLEARML_AGENT_REPLICAS (`inv agents.up`)",
    "workers-docker": "worker agents in docker mode: docker socket, task containers on the backend network",
    "workers-gpu": "every GPU reserved for each worker agent (CLEARML_AGENT_GPUS=all)",
    "workers-gpu-ids": "the GPU ids CLEARML_AGENT_GPUS lists (e.g. 0,1) reserved for each worker agent; "
    "generated as <data>/compose/workers-gpu-ids.yml",
    "agents-gcs": "the GCS key file CLEARML_AGENT_GCS_CREDENTIALS_FILE, read-only in the services agent",
    "workers-gcs": "the GCS key file CLEARML_AGENT_GCS_CREDENTIALS_FILE, read-only in the worker agents",
    "ports-exposed": "publishes Mongo, Elasticsearch and Redis (CLEARML_EXPOSE_STORES=loopback|all)",
}


def select(settings: Settings, has_users: bool) -> list[str]:
    """The layers for this deployment, in merge order."""
    chosen = ["base"]
    if has_users:
        chosen.append("auth")
    if settings.mode == "subdomains":
        chosen.append("nginx")
        if settings.tls in ("self-signed", "provided") and settings["CLEARML_GATEWAY_HTTP_PORT"]:
            chosen.append("nginx-http")
    if settings.mode == "lightning-proxy":
        chosen.append("web-urls")
    gcs = bool(settings["CLEARML_AGENT_GCS_CREDENTIALS_FILE"])
    if truthy(settings["CLEARML_SERVICES_AGENT"]):
        chosen += ["agents", "agents-gcs"] if gcs else ["agents"]
    workers = worker_layers(settings)
    chosen += workers + (["workers-gcs"] if workers and gcs else [])
    if settings["CLEARML_EXPOSE_STORES"] != "no":
        chosen.append("ports-exposed")
    return chosen


def generated_dir(data_dir: Path) -> Path:
    return data_dir / "compose"


def files(kit_root: Path, layers: list[str], data_dir: Path | None = None) -> list[Path]:
    """The compose file of each layer: compose/<name>.yml, or <data>/compose/<name>.yml when generated."""
    found = []
    for name in layers:
        if name in GENERATED:
            if data_dir is None:
                raise ValueError(f"layer {name} is generated under the data directory: pass data_dir")
            found.append(generated_dir(data_dir) / f"{name}.yml")
        else:
            found.append(kit_root / "compose" / f"{name}.yml")
    return found


def write_generated(settings: Settings, layers: list[str]) -> list[Path]:
    """Write the generated layers among ``layers`` where their text changed (0644); return those written."""
    from .agents import generated_layers
    from .fsutil import write_if_changed

    written = []
    for name, text in generated_layers(settings, layers).items():
        path = generated_dir(settings.data_dir) / f"{name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        if write_if_changed(path, text, 0o644):
            written.append(path)
    return written
