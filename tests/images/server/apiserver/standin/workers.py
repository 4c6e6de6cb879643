"""Queues and workers for the apiserver stand-in (test-only, kept in memory; not the product).

Reproduces the part of the ClearML API a `clearml-agent daemon` uses to come up and idle, as read
from clearml-agent 3.0's daemon and observed against a recording server: ``queues.get_all`` (by name
or id), ``queues.create`` (``--create-queue``), ``queues.get_default``, ``workers.register``,
``workers.status_report``, ``workers.unregister`` and ``queues.get_next_task`` (always empty: the
stand-in never hands out tasks). ``workers.get_all`` lists the registered workers with their queues,
user and last activity, which is how tests see that each agent authenticated and registered.
Every call needs an authenticated identity; workers silent for ``timeout`` seconds drop out, as the
real server does with its worker timeout.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any, Callable


class NotFound(LookupError):
    pass


class Registry:
    def __init__(self, timeout: float = 600.0) -> None:
        self.lock = threading.Lock()
        self.queues: dict[str, dict[str, Any]] = {}  # id -> queue
        self.workers: dict[str, dict[str, Any]] = {}  # id -> worker
        self.timeout = timeout

    # --- queues ------------------------------------------------------------------------------
    def _queue_id(self, name: str) -> str:
        return hashlib.sha256(f"queue:{name}".encode()).hexdigest()[:32]

    def create_queue(self, name: str) -> str:
        with self.lock:
            qid = self._queue_id(name)
            self.queues.setdefault(qid, {"id": qid, "name": name, "tags": [], "system_tags": [], "entries": []})
            return qid

    def get_queues(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        ids, name = body.get("id"), body.get("name")
        ids = [ids] if isinstance(ids, str) else ids
        with self.lock:
            found = [q for q in self.queues.values()
                     if (ids is None or q["id"] in ids) and (name is None or q["name"] == name)]
        return [dict(q) for q in found]

    def queue_ref(self, ref: str) -> dict[str, Any]:
        with self.lock:
            for q in self.queues.values():
                if ref in (q["id"], q["name"]):
                    return {"id": q["id"], "name": q["name"]}
        raise NotFound(f"queue {ref}")

    # --- workers -----------------------------------------------------------------------------
    def report(self, worker: str, user: str, queues: list[str] | None, register: bool = False) -> None:
        now = time.time()
        with self.lock:
            if register:
                self.workers.pop(worker, None)  # registering starts a fresh worker entry
            w = self.workers.setdefault(worker, {"id": worker, "user": {"id": user, "name": user},
                                                 "register_time": now, "queues": [], "task": None})
            w["last_activity_time"] = now
        if queues is not None:
            refs = [self.queue_ref(q) for q in queues]
            with self.lock:
                w["queues"] = refs
                w["queue"] = refs[0] if refs else None

    def unregister(self, worker: str) -> None:
        with self.lock:
            self.workers.pop(worker, None)

    def all_workers(self) -> list[dict[str, Any]]:
        cutoff = time.time() - self.timeout
        with self.lock:
            for wid in [w for w, v in self.workers.items() if v["last_activity_time"] < cutoff]:
                del self.workers[wid]
            return [dict(w) for w in sorted(self.workers.values(), key=lambda v: v["id"])]


def handlers(registry: Registry, body: Callable[[], dict[str, Any]], user: Callable[[], str]) -> dict[str, Callable]:
    """Endpoint name -> handler returning the reply's data (``user()`` raises when unauthenticated)."""

    def get_all() -> dict[str, Any]:
        user()
        return {"queues": registry.get_queues(body())}

    def create() -> dict[str, Any]:
        user()
        return {"id": registry.create_queue(str(body()["name"]))}

    def get_default() -> dict[str, Any]:
        user()
        qid = registry.create_queue("default")
        return {"id": qid, "name": "default"}

    def register() -> dict[str, Any]:
        b = body()
        registry.report(str(b["worker"]), user(), list(b.get("queues") or []), register=True)
        return {}

    def status_report() -> dict[str, Any]:
        b = body()
        registry.report(str(b["worker"]), user(), b.get("queues"))
        return {}

    def unregister() -> dict[str, Any]:
        user()
        registry.unregister(str(body()["worker"]))
        return {}

    def next_task() -> dict[str, Any]:
        user()
        return {}

    def workers_all() -> dict[str, Any]:
        user()
        return {"workers": registry.all_workers()}

    return {
        "queues.get_all": get_all, "queues.create": create, "queues.get_default": get_default,
        "queues.get_next_task": next_task, "workers.register": register, "workers.status_report": status_report,
        "workers.unregister": unregister, "workers.get_all": workers_all,
    }
