"""Checks as data: each reading becomes ok / warn / fail with the fix. Pure functions only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from .settings import Settings

MIN_MAX_MAP_COUNT = 524288
SYSCTL_FILE = "/etc/sysctl.d/99-clearml.conf"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def engine(reachable: bool, detail: str) -> Check:
    if reachable:
        return Check("docker engine", "ok", f"Docker engine {detail}")
    return Check(
        "docker engine", "fail", f"the Docker engine is not reachable ({detail})",
        "start it (`sudo systemctl start docker`), or check DOCKER_HOST and that you may use the docker socket "
        "(`sudo usermod -aG docker $USER`, then log in again)",
    )


def max_map_count(value: int | None) -> Check:
    fix = (f"sudo sysctl -w vm.max_map_count={MIN_MAX_MAP_COUNT} && echo vm.max_map_count={MIN_MAX_MAP_COUNT} "
           f"| sudo tee {SYSCTL_FILE}   (or `inv doctor --fix`)")
    if value is None:
        return Check("vm.max_map_count", "warn", "cannot read vm.max_map_count", fix)
    if value >= MIN_MAX_MAP_COUNT:
        return Check("vm.max_map_count", "ok", f"vm.max_map_count={value}")
    return Check("vm.max_map_count", "warn",
                 f"vm.max_map_count={value} is below {MIN_MAX_MAP_COUNT}; Elasticsearch may fail or be slow", fix)


def published_ports(settings: Settings, layers: Iterable[str]) -> list[tuple[str, str, int]]:
    """(setting, bind address, host port) for every port the chosen layers publish (pure)."""
    layers = list(layers)
    ports = [(f"CLEARML_{n.upper()}_PORT", settings.bind_address, settings.port(n)) for n in ("web", "api", "files")]
    if "nginx" in layers:
        ports.append(("CLEARML_GATEWAY_PORT", settings.public_bind, settings.port("gateway")))
    if "nginx-http" in layers:
        ports.append(("CLEARML_GATEWAY_HTTP_PORT", settings.public_bind, int(settings["CLEARML_GATEWAY_HTTP_PORT"])))
    if "ports-exposed" in layers:
        store_bind = "0.0.0.0" if settings["CLEARML_EXPOSE_STORES"] == "all" else "127.0.0.1"
        ports += [(f"CLEARML_{n.upper()}_PORT", store_bind, settings.port(n)) for n in ("mongo", "elastic", "redis")]
    return ports


def ports(wanted: list[tuple[str, str, int]], is_free: Callable[[str, int], bool],
          owner: Callable[[int], str], ours: set[int]) -> list[Check]:
    """One check per published port; ports our own running containers hold count as free."""
    found = []
    for key, host, port in wanted:
        if port in ours or is_free(host, port):
            found.append(Check(f"port {port}", "ok", f"{key}={port} is free on {host}"))
        else:
            found.append(Check(
                f"port {port}", "fail", f"{key}={port} on {host} is already in use by {owner(port)}",
                f"stop that program, or set {key} to a free port in the settings file",
            ))
    return found


def worst(checks: Iterable[Check]) -> str:
    order = {"ok": 0, "warn": 1, "fail": 2}
    return max((c.status for c in checks), key=order.__getitem__, default="ok")
