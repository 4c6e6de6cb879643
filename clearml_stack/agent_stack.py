"""Acting on worker agents: `inv agents.up/down/status`, all through the stack's one compose choke point."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from typing import Sequence

from . import agents, agents_api, settings as settings_mod, ui
from .envfile import parse_env, set_values
from .errors import StackError
from .fsutil import atomic_write
from .health import api_ping
from .runner import run
from .settings import Settings
from .stack import Stack
from .urls import api_probe_url


def save_settings(settings: Settings, updates: dict[str, str]) -> Settings:
    """Write ``updates`` into the settings file (validated first, atomically, 0600) and reload."""
    if not updates:
        return settings
    shadowed = [k for k in updates if k in settings.overridden and os.environ.get(k) != updates[k]]
    if shadowed:
        raise StackError(f"{', '.join(shadowed)} set in the environment, which wins over {settings.env_file}",
                         f"unset {' '.join(shadowed)} (or give the value there) and run the command again")
    text = set_values(settings.env_file.read_text(), updates)
    found = settings_mod.problems(settings_mod.merge_sources(parse_env(text, str(settings.env_file)), os.environ))
    if found:
        raise StackError("invalid settings, nothing was written:\n  " + "\n  ".join(found), "fix the flags")
    atomic_write(settings.env_file, text, 0o600)
    ui.note(f"set {', '.join(f'{k}={v}' for k, v in sorted(updates.items()))} in {settings.env_file}")
    return settings_mod.load()


def engine_runtimes() -> list[str]:
    """Runtimes the Docker engine offers (``docker info``)."""
    res = run(["docker", "info", "--format", "{{json .Runtimes}}"], capture=True, check=False, echo=False, timeout=30)
    if not res.ok:
        raise StackError("`docker info` failed: " + (res.stderr.strip().splitlines() or ["no output"])[-1],
                         "start the Docker engine")
    try:
        return sorted(json.loads(res.stdout or "{}"))
    except ValueError:
        return []


def require_server(settings: Settings) -> None:
    answered, detail = api_ping(api_probe_url(settings))
    if not answered:
        raise StackError(f"the ClearML API server does not answer at {api_probe_url(settings)} ({detail})",
                         "start the server first: `inv up`, then `inv agents.up`")


def up(settings: Settings, replicas: int | None = None, queues: Sequence[str] = (), gpus: str = "",
       cpu_only: bool = False, timeout: int | None = None) -> None:
    settings.require_installed()
    plan = agents.plan_up(settings.values, replicas, queues, gpus, cpu_only)
    gcs = agents.gcs_file_problem(settings["CLEARML_AGENT_GCS_CREDENTIALS_FILE"])
    if gcs:
        raise StackError(gcs, agents.GCS_FIX)
    if plan.gpus:
        problem = agents.gpu_problem(engine_runtimes(), bool(shutil.which("nvidia-container-runtime-hook")))
        if problem:
            raise StackError(problem, agents.GPU_FIX)
    require_server(settings)
    settings = save_settings(settings, plan.updates)
    stack = Stack(settings)
    wait = timeout or int(settings["CLEARML_WAIT_TIMEOUT"])
    ui.note(f"starting {plan.replicas} worker agent(s) on queue(s) {' '.join(plan.queues)} "
            f"({settings['CLEARML_AGENT_MODE']} mode, {'GPUs ' + plan.gpus if plan.gpus else 'CPU only'}); "
            "the agent image is built on first use")
    res = stack.compose("up", "-d", "--no-deps", "--wait", "--wait-timeout", str(wait), agents.WORKER_SERVICE,
                        check=False)
    if not res.ok:
        stack.compose("logs", "--no-color", "--tail", "20", agents.WORKER_SERVICE, check=False)
        raise StackError("worker agents did not start (see the output above)",
                         "`inv agents.status` and `inv logs --service agent` show what they report")
    ui.ok(f"{plan.replicas} worker agent(s) running; `inv agents.status` shows them, `inv agents.down` stops them")


def down(settings: Settings, forget: bool = False) -> None:
    """Stop and remove every worker agent; the server and the services agent keep running.

    The configured count stays (the next `inv agents.up`, `inv up` or Studio start brings them back)
    unless ``forget``, which sets CLEARML_AGENT_REPLICAS=0.
    """
    current = agents.replicas(settings)
    updates = agents.down_updates(settings.values, forget)
    # the worker service must be part of the files for compose to address it, even at 0 replicas
    view = settings if current > 0 else settings_mod.load(overrides={"CLEARML_AGENT_REPLICAS": "1"})
    Stack(view).compose("rm", "--stop", "--force", agents.WORKER_SERVICE)
    save_settings(settings, updates)
    if current > 0 and not forget:
        ui.ok(f"worker agents stopped; {current} stay configured (`inv agents.up` starts them again, "
              "`inv agents.down --forget` keeps none); the server keeps running (`inv down` stops it)")
    else:
        ui.ok("worker agents stopped; none configured; the server keeps running (`inv down` stops it)")


def status(settings: Settings) -> dict:
    stack = Stack(settings)
    states = stack.states()
    containers = [{"container": s.container, "state": s.state, "health": s.health}
                  for s in states if s.service == agents.WORKER_SERVICE]
    services = [s for s in states if s.service == agents.SERVICES_SERVICE]
    api_workers: list[dict] = []
    api_error = ""
    try:
        api_workers = agents_api.workers(api_probe_url(settings), settings.secret("CLEARML_AGENT_ACCESS_KEY"),
                                         settings.secret("CLEARML_AGENT_SECRET_KEY"))
    except StackError as exc:
        api_error = exc.message
    rows = agents.join_workers(containers, api_workers, agents.worker_prefix(settings))
    return {
        "replicas": agents.replicas(settings),
        "queues": agents.split_queues(settings["CLEARML_AGENT_QUEUES"]),
        "mode": settings["CLEARML_AGENT_MODE"],
        "gpus": settings["CLEARML_AGENT_GPUS"],
        "workers": [asdict(r) for r in rows],
        "services_agent": ({"state": services[0].state, "health": services[0].health,
                            "queue": settings["CLEARML_SERVICES_QUEUE"]} if services else None),
        "registered": sorted(str(w.get("id", "")) for w in api_workers),
        "api_error": api_error,
    }


def status_text(report: dict) -> str:
    head = (f"worker agents: {report['replicas']} wanted, queue(s) {' '.join(report['queues'])}, "
            f"{report['mode']} mode, {'GPUs ' + report['gpus'] if report['gpus'] else 'CPU only'}")
    rows = [(w["container"], w["state"], w["health"] or "-", w["worker"] or "(not registered)", w["queues"] or "-",
             w["task"]) for w in report["workers"]]
    text = head + "\n" + (ui.table(("CONTAINER", "STATE", "HEALTH", "WORKER", "QUEUES", "TASK"), rows)
                          if rows else "no worker agent containers (start some with `inv agents.up`)")
    sa = report["services_agent"]
    text += "\nservices agent: " + (f"{sa['state']}{', ' + sa['health'] if sa['health'] else ''} (queue {sa['queue']})"
                                    if sa else "not running")
    if report["api_error"]:
        text += f"\nAPI: {report['api_error']}"
    return text
