"""Which compose layers apply: a pure decision from the settings and whether users exist."""

from __future__ import annotations

from pathlib import Path

from .agents import worker_layers
from .settings import Settings, truthy

ALL_LAYERS = ("base", "auth", "nginx", "agents", "workers", "workers-docker", "workers-gpu", "ports-exposed")
DESCRIPTIONS = {
    "base": "the official services (apiserver, fileserver, webserver, async_delete, mongo, elasticsearch, "
    "redis) with healthchecks, ordered start-up and ports on the mode's address",
    "auth": "closed server: fixed-user login on, fileserver token checks on (applies once a user exists)",
    "nginx": "gateway routing app./api./files.<domain> on one port, optional TLS (subdomains mode)",
    "agents": "the services agent (CLEARML_SERVICES_AGENT): pinned clearml-agent, the services_agent key pair",
    "workers": "worker agents on this host, one service scaled to CLEARML_AGENT_REPLICAS (`inv agents.up`)",
    "workers-docker": "worker agents in docker mode: docker socket, task containers on the backend network",
    "workers-gpu": "GPU device reservations for worker agents (CLEARML_AGENT_GPUS)",
    "ports-exposed": "publishes Mongo, Elasticsearch and Redis (CLEARML_EXPOSE_STORES=loopback|all)",
}


def select(settings: Settings, has_users: bool) -> list[str]:
    """The layers for this deployment, in merge order."""
    chosen = ["base"]
    if has_users:
        chosen.append("auth")
    if settings.mode == "subdomains":
        chosen.append("nginx")
    if truthy(settings["CLEARML_SERVICES_AGENT"]):
        chosen.append("agents")
    chosen += worker_layers(settings)
    if settings["CLEARML_EXPOSE_STORES"] != "no":
        chosen.append("ports-exposed")
    return chosen


def files(kit_root: Path, layers: list[str]) -> list[Path]:
    return [kit_root / "compose" / f"{name}.yml" for name in layers]
