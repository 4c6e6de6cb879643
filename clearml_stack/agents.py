"""Agents: the agent image, which worker layers apply, the values the agent compose files read,
the plan behind `inv agents.up`, and the reports of `inv agents.status` (pure unless said otherwise).
"""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from .errors import StackError
from .settings import BY_KEY, Settings, problems as setting_problems

IMAGE_REPO = "clearml-lightning/agent"
WORKER_SERVICE = "agent"
SERVICES_SERVICE = "agent-services"
WORKER_LAYERS = ("workers", "workers-docker", "workers-gpu")


def context_dir(kit_root: Path) -> Path:
    """The agent image's build context (Dockerfile, entrypoint, optional offline wheels)."""
    return kit_root / "agents" / "image"


def context_files(context: Path) -> list[Path]:
    return sorted(p for p in context.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def context_digest(context: Path) -> str:
    """Hash of every file of the build context: path, executable bit and content."""
    h = hashlib.sha256()
    for path in context_files(context):
        for part in (path.relative_to(context).as_posix().encode(), str(path.stat().st_mode & 0o111).encode(),
                     path.read_bytes()):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
    return h.hexdigest()


def build_args(settings: Settings) -> dict[str, str]:
    return {
        "BASE_IMAGE": settings.image("agent-base"),
        "CLEARML_AGENT_VERSION": settings["CLEARML_AGENT_VERSION"],
        "APT_PACKAGES": settings["CLEARML_AGENT_APT_PACKAGES"],
    }


def image_ref(settings: Settings, digest: str | None = None) -> str:
    """``clearml-lightning/agent:<clearml-agent version>-<hash>``: a new tag whenever the context or a
    build argument changes, so compose builds again instead of running a stale image."""
    digest = digest or context_digest(context_dir(settings.kit_root))
    args = "\n".join(f"{k}={v}" for k, v in sorted(build_args(settings).items()))
    tag = hashlib.sha256(f"{digest}\n{args}".encode()).hexdigest()[:12]
    return f"{IMAGE_REPO}:{settings['CLEARML_AGENT_VERSION']}-{tag}"


def split_queues(text: str) -> list[str]:
    return [q for q in re.split(r"[\s,]+", text) if q]


def replicas(settings: Settings) -> int:
    return int(settings["CLEARML_AGENT_REPLICAS"])


def worker_layers(settings: Settings) -> list[str]:
    """Worker layers for this deployment: none while no worker is wanted (nothing to build or keep)."""
    if replicas(settings) <= 0:
        return []
    chosen = ["workers"]
    if settings["CLEARML_AGENT_MODE"] == "docker":
        chosen.append("workers-docker")
    if settings["CLEARML_AGENT_GPUS"]:
        chosen.append("workers-gpu")
    return chosen


def worker_prefix(settings: Settings) -> str:
    return settings["CLEARML_AGENT_WORKER_PREFIX"] or socket.gethostname().split(".")[0]


def environment(settings: Settings) -> dict[str, str]:
    """The ``STACK_AGENT_*`` values the agent layers read (hashes the build context; no writes)."""
    return {
        "STACK_AGENT_IMAGE": image_ref(settings),
        "STACK_AGENT_CONTEXT": str(context_dir(settings.kit_root)),
        "STACK_AGENT_BASE_IMAGE": build_args(settings)["BASE_IMAGE"],
        "STACK_AGENT_VERSION": settings["CLEARML_AGENT_VERSION"],
        "STACK_AGENT_APT_PACKAGES": settings["CLEARML_AGENT_APT_PACKAGES"],
        "STACK_AGENT_DEFAULT_DOCKER": settings.image("agent-docker"),
        "STACK_AGENT_NETWORK": f"{settings.project}_backend",
        "STACK_AGENT_REPLICAS": str(replicas(settings)),
        "STACK_AGENT_MODE": settings["CLEARML_AGENT_MODE"],
        "STACK_AGENT_QUEUES": " ".join(split_queues(settings["CLEARML_AGENT_QUEUES"])),
        "STACK_AGENT_GPUS": settings["CLEARML_AGENT_GPUS"],
        "STACK_AGENT_WORKER_PREFIX": worker_prefix(settings),
        "STACK_SERVICES_QUEUE": settings["CLEARML_SERVICES_QUEUE"],
        "STACK_SERVICES_CONCURRENCY": settings["CLEARML_SERVICES_CONCURRENCY"],
    }


# --- inv agents.up: flags -> settings ----------------------------------------------------------


@dataclass(frozen=True)
class UpPlan:
    updates: dict[str, str]  # settings to write into .env (only those that change)
    replicas: int
    queues: list[str]
    gpus: str


def plan_up(values: Mapping[str, str], replicas_flag: int | None = None, queues_flag: Sequence[str] = (),
            gpus: str = "", cpu_only: bool = False) -> UpPlan:
    """What `inv agents.up` sets: flags given win, the rest stays as configured (pure; raises on bad input)."""
    if gpus and cpu_only:
        raise StackError("--gpus and --cpu-only contradict each other", "give one of them")
    wanted: dict[str, str] = {}
    if replicas_flag is not None:
        if replicas_flag < 1:
            raise StackError(f"--replicas {replicas_flag}: must be 1 or more",
                             "to stop every worker use `inv agents.down`")
        wanted["CLEARML_AGENT_REPLICAS"] = str(replicas_flag)
    elif int(values.get("CLEARML_AGENT_REPLICAS", "0") or "0") < 1:
        wanted["CLEARML_AGENT_REPLICAS"] = "1"  # `inv agents.up` alone starts one worker
    if queues_flag:
        names = [q for given in queues_flag for q in split_queues(given)]
        wanted["CLEARML_AGENT_QUEUES"] = " ".join(dict.fromkeys(names))
    if gpus:
        wanted["CLEARML_AGENT_GPUS"] = gpus.replace(" ", "")
    elif cpu_only:
        wanted["CLEARML_AGENT_GPUS"] = ""
    merged = {**values, **wanted}
    bad = [p for p in setting_problems(merged)
           if p.split("=", 1)[0] in ("CLEARML_AGENT_REPLICAS", "CLEARML_AGENT_QUEUES", "CLEARML_AGENT_GPUS")]
    if bad:
        flags = {"CLEARML_AGENT_REPLICAS": "--replicas", "CLEARML_AGENT_QUEUES": "--queue",
                 "CLEARML_AGENT_GPUS": "--gpus"}
        raise StackError("bad agent options:\n  " + "\n  ".join(bad),
                         "fix " + ", ".join(flags[p.split("=", 1)[0]] for p in bad))
    updates = {k: v for k, v in wanted.items() if values.get(k, BY_KEY[k].default) != v}
    return UpPlan(updates, int(merged["CLEARML_AGENT_REPLICAS"]), split_queues(merged["CLEARML_AGENT_QUEUES"]),
                  merged["CLEARML_AGENT_GPUS"])


def gpu_problem(runtimes: Sequence[str], hook_on_path: bool) -> str | None:
    """Why GPU reservations cannot work on this engine, or None (pure)."""
    if "nvidia" in runtimes or hook_on_path:
        return None
    shown = ", ".join(runtimes) or "none"
    return f"the Docker engine has no NVIDIA runtime (runtimes: {shown}), so it cannot hand GPUs to containers"


GPU_FIX = ("install the NVIDIA Container Toolkit and run `sudo nvidia-ctk runtime configure --runtime=docker "
           "&& sudo systemctl restart docker`, or start CPU workers with `inv agents.up --cpu-only`")


# --- inv agents.status --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRow:
    container: str
    state: str
    health: str
    worker: str  # the worker id the API knows for it, or "" when it has not registered
    queues: str
    task: str


def replica_of(container: str) -> int | None:
    match = re.search(r"-(\d+)$", container)
    return int(match.group(1)) if match else None


def join_workers(containers: Sequence[Mapping[str, str]], api_workers: Sequence[Mapping], prefix: str) -> list[WorkerRow]:
    """One row per worker container, matched with the worker the API reports for its replica number,
    then any API worker of this host that has no container (pure)."""
    by_id = {str(w.get("id", "")): w for w in api_workers}
    rows: list[WorkerRow] = []
    used: set[str] = set()
    for c in containers:
        n = replica_of(c["container"])
        wid = f"{prefix}:{WORKER_SERVICE}-{n}" if n is not None else ""
        w = by_id.get(wid)
        if w is not None:
            used.add(wid)
        rows.append(_row(c["container"], c.get("state", ""), c.get("health", ""), wid if w else "", w))
    for wid, w in sorted(by_id.items()):
        if wid not in used and wid.startswith(f"{prefix}:{WORKER_SERVICE}-"):
            rows.append(_row("-", "gone", "", wid, w))
    return rows


def _row(container: str, state: str, health: str, wid: str, w: Mapping | None) -> WorkerRow:
    queues = ""
    task = ""
    if w:
        queues = " ".join(str(q.get("name") or q.get("id") or "") for q in (w.get("queues") or []))
        t = w.get("task") or {}
        task = str(t.get("name") or t.get("id") or "") if isinstance(t, Mapping) else str(t)
    return WorkerRow(container, state, health, wid, queues, task or "-")
