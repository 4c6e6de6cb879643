"""Service state read back from compose itself, and the API's own answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

from .compose import ps_records


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str
    state: str  # running, exited, restarting, created ...
    health: str  # healthy, unhealthy, starting, or "" when the service has no healthcheck
    ports: str
    exit_code: int = 0

    @property
    def good(self) -> bool:
        return self.state == "running" and self.health in ("healthy", "")

    def as_dict(self) -> dict:
        return asdict(self)


def _ports(record: dict) -> str:
    publishers = record.get("Publishers") or []
    shown = sorted({f"{p['URL']}:{p['PublishedPort']}->{p['TargetPort']}" for p in publishers
                    if p.get("PublishedPort")})
    return ", ".join(shown)


def parse_ps(text: str) -> list[ServiceState]:
    """States from ``compose ps -a --format json`` output, sorted by service (pure)."""
    states = [
        ServiceState(
            service=r.get("Service", ""),
            container=r.get("Name", ""),
            state=r.get("State", ""),
            health=r.get("Health", "") or "",
            ports=_ports(r),
            exit_code=int(r.get("ExitCode") or 0),
        )
        for r in ps_records(text)
    ]
    return sorted(states, key=lambda s: (s.service, s.container))


def not_good(states: list[ServiceState]) -> list[ServiceState]:
    return [s for s in states if not s.good]


def api_ping(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """GET ``<api>/debug.ping``: (answered, what it said)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/debug.ping", timeout=timeout) as resp:
            body = resp.read(2000).decode(errors="replace")
            try:
                msg = json.loads(body).get("data", {}).get("msg", "")
            except (ValueError, AttributeError):
                msg = ""
            return True, f"HTTP {resp.status}" + (f" {msg}" if msg else "")
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"no answer ({reason})"
