"""CLI overhead: `inv status` against raw `docker compose ps` on the same running stack.

Alternating runs (at least 10 each); reports both medians and their ratio. `inv status` does more than
`ps` (it also asks the API), so the ratio is what the kit's comfort costs per call.
"""

from __future__ import annotations

import argparse
import os
import subprocess

from bench.common import deployment, emit, median, timed
from clearml_stack import compose
from clearml_stack.stack import Stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    with deployment() as k:
        k.inv("up")
        settings = k.settings()
        stack = Stack(settings)
        raw = stack.argv("ps", "-a")
        env = {**os.environ, **compose.environment(settings)}
        inv_times, raw_times = [], []
        for _ in range(max(10, args.runs)):
            inv_times.append(timed(lambda: k.inv("status")))
            raw_times.append(timed(lambda: subprocess.run(raw, env=env, capture_output=True, check=True)))
        emit({
            "bench": "cli_overhead",
            "runs": len(inv_times),
            "inv_status_median_s": round(median(inv_times), 4),
            "compose_ps_median_s": round(median(raw_times), 4),
            "ratio": round(median(inv_times) / median(raw_times), 2),
        })


if __name__ == "__main__":
    main()
