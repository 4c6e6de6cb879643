"""Readiness: how long after the API server turns healthy does `inv up` return?

The API server stand-in answers 503 for a known delay after start (STANDIN_READY_AFTER), then becomes
healthy. Health transitions are read from `docker events` (health_status); the gap to `inv up`
returning includes the services that start only once the API is healthy (webserver, async_delete),
so the JSON also gives the gap from the last service turning healthy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from bench.common import deployment, emit

HEALTHY = "health_status: healthy"  # exactly: "health_status: unhealthy" also ends with "healthy"


def first_healthy(lines: list[str]) -> dict[str, float]:
    """service -> when it first turned healthy, from `docker events --format '{{json .}}'` lines (pure)."""
    healthy: dict[str, float] = {}
    for line in lines:
        event = json.loads(line)
        service = event["Actor"]["Attributes"].get("com.docker.compose.service", "?")
        if (event.get("Action") or event.get("status")) == HEALTHY:
            healthy.setdefault(service, event["timeNano"] / 1e9)
    return healthy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=int, default=15, help="seconds the API server stays unready")
    args = parser.parse_args()
    from tests.images.build import build_all, variant

    images = build_all()
    images["CLEARML_SERVER_IMAGE"] = variant(images["CLEARML_SERVER_IMAGE"], {"STANDIN_READY_AFTER": str(args.delay)})
    with deployment(images) as k:
        since = str(int(time.time()) - 1)
        events = subprocess.Popen(
            ["docker", "events", "--since", since, "--filter", f"label=com.docker.compose.project={k.project}",
             "--filter", "event=health_status", "--format", "{{json .}}"],
            stdout=subprocess.PIPE, text=True)
        start = time.time()
        k.inv("up")
        returned = time.time()
        time.sleep(1)
        events.terminate()
        out, _ = events.communicate()
        healthy = first_healthy(out.splitlines())
        api = healthy["apiserver"]
        emit({
            "bench": "readiness",
            "api_ready_after_s": args.delay,
            "healthcheck_interval": k.env["CLEARML_HEALTHCHECK_INTERVAL"],
            "up_total_s": round(returned - start, 2),
            "api_healthy_to_up_return_s": round(returned - api, 2),
            "last_healthy_to_up_return_s": round(returned - max(healthy.values()), 2),
            "services_seen_healthy": sorted(healthy),
        })


if __name__ == "__main__":
    main()
