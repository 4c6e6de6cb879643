"""The readiness benchmark counts a service healthy only on the exact "health_status: healthy" event."""

from __future__ import annotations

import json

from bench.readiness import first_healthy


def line(service: str, action: str, at_s: float, legacy: bool = False) -> str:
    key = "status" if legacy else "Action"
    return json.dumps({key: action, "timeNano": int(at_s * 1e9),
                       "Actor": {"Attributes": {"com.docker.compose.service": service}}})


def test_unhealthy_and_other_events_never_count_as_healthy():
    lines = [
        line("apiserver", "health_status: unhealthy", 10),
        line("apiserver", "health_status: starting", 11),
        line("apiserver", "health_status: healthy", 12),
        line("apiserver", "health_status: healthy", 20),  # later transitions do not move the first
        line("mongo", "health_status: unhealthy", 13, legacy=True),
        line("redis", "health_status: healthy", 14, legacy=True),
    ]
    assert first_healthy(lines) == {"apiserver": 12.0, "redis": 14.0}
