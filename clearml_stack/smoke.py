"""The shortest end-to-end proof that a deployment works, step by step, in plain HTTP.

``run(settings)`` logs in, creates a task, reports a scalar, uploads a file to the file server,
registers it on the task as an artifact (``tasks.add_or_update_artifacts``, read back with
``tasks.get_by_id``) and fetches it back through the link the task holds with the login token, and
returns a :class:`SmokeReport` with each step's
outcome and what the server answered. It needs no SDK and knows nothing of what serves the URLs.
``inv smoke``, ``inv up --smoke`` and ``inv upgrade --smoke`` (after the last hop) call it; printing
and exit codes belong to them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import urllib.parse
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from .apiclient import Answer, Api, Credentials
from .settings import Settings

PROJECT = "clearml-lightning smoke"
FILES_FOLDER = "clearml-lightning-smoke"

ARTIFACT_KEY = "smoke file"

STEPS = ("server answers", "log in", "create task", "report scalar", "upload file", "register artifact",
         "download file")


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    detail: str  # the server's answer, or why the step was not tried
    seconds: float = 0.0


@dataclass
class SmokeReport:
    api_url: str
    files_url: str
    web_url: str
    credentials: str  # where the credentials came from (never the secret)
    steps: list[StepResult] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps if not s.ok]

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def default_credentials(settings: Settings) -> Credentials:
    """The kit's own services-agent pair: an admin key the server always knows, no user needed."""
    return Credentials(settings.secret("CLEARML_AGENT_ACCESS_KEY"), settings.secret("CLEARML_AGENT_SECRET_KEY"),
                       "the kit's services-agent key (CLEARML_AGENT_ACCESS_KEY)")


def local_endpoints(settings: Settings) -> tuple[str, str]:
    """API and file server on this host (every mode publishes them on loopback at least)."""
    return f"http://127.0.0.1:{settings.port('api')}", f"http://127.0.0.1:{settings.port('files')}"


def task_url(web: str, project_id: str, task_id: str) -> str:
    from .urls import task_page

    return task_page(web, task_id, project_id)


def artifact(uri: str, content: bytes, stamp: int) -> dict:
    """The artifact entry ``tasks.add_or_update_artifacts`` takes for the uploaded file (pure)."""
    return {"key": ARTIFACT_KEY, "type": "custom", "mode": "output", "uri": uri, "content_size": len(content),
            "hash": hashlib.sha256(content).hexdigest(), "timestamp": stamp,
            "type_data": {"content_type": "text/plain", "preview": content.decode("utf-8", "replace")[:100]}}


def listed_artifacts(task: dict) -> list[dict]:
    """The artifacts ``tasks.get_by_id`` lists on a task (a list; a dict by id in what is stored)."""
    found = ((task or {}).get("execution") or {}).get("artifacts") or []
    return list(found.values()) if isinstance(found, dict) else list(found)


def _timed(fn: Callable[[], tuple[bool, str]], name: str) -> StepResult:
    tic = time.monotonic()
    ok, detail = fn()
    return StepResult(name, ok, detail, round(time.monotonic() - tic, 3))


def _find_or_create_project(api: Api, name: str) -> tuple[str | None, str, Answer]:
    """(project id or None, the endpoint that answered last, its answer)."""
    found = api.call("projects.get_all", {"name": f"^{re.escape(name)}$", "only_fields": ["id", "name"]})
    if not found.ok:
        return None, "projects.get_all", found
    for project in (found.data or {}).get("projects") or []:
        if project.get("name") == name and project.get("id"):
            return project["id"], "projects.get_all", found
    created = api.call("projects.create", {"name": name, "description": "tasks made by `inv smoke`"})
    return ((created.data or {}).get("id") if created.ok else None), "projects.create", created


def run(settings: Settings, credentials: Credentials | None = None, *, api_url: str = "", files_url: str = "",
        web_url: str = "", timeout: float = 60.0) -> SmokeReport:
    """Run every step against the deployment; never raises for what the server answers.

    The artifact is registered under the canonical file server URL (the one every client's artifact
    links start with, which the server's cleanup knows), or under ``files_url`` when one is given.
    """
    from .urls import public_urls

    local_api, local_files = local_endpoints(settings)
    credentials = credentials or default_credentials(settings)
    report = SmokeReport(api_url or local_api, files_url or local_files, web_url or public_urls(settings).web,
                         credentials.source or "given credentials")
    api = Api(report.api_url, report.files_url, timeout=timeout)
    registered_base = (files_url or public_urls(settings).files).rstrip("/")
    state: dict[str, str] = {}
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    run_id = secrets.token_hex(6)

    def ping() -> tuple[bool, str]:
        answer = api.ping()
        return answer.ok, f"{report.api_url}/debug.ping: {answer.describe()}"

    def login() -> tuple[bool, str]:
        answer = api.login(credentials)
        return answer.ok, f"auth.login as {credentials.source or credentials.key}: {answer.describe()}"

    def create_task() -> tuple[bool, str]:
        project_id, endpoint, answer = _find_or_create_project(api, PROJECT)
        if not project_id:
            return False, f"{endpoint}: {answer.describe()}"
        created = api.call("tasks.create", {"name": f"smoke {stamp}", "type": "testing", "project": project_id,
                                            "comment": "made by `inv smoke`"})
        task_id = (created.data or {}).get("id") if created.ok else None
        if not task_id:
            return False, f"tasks.create: {created.describe()}"
        state.update(project=project_id, task=task_id)
        report.links["task"] = task_url(report.web_url, project_id, task_id)
        return True, f"task {task_id} in project {PROJECT!r}"

    def report_scalar() -> tuple[bool, str]:
        if "task" not in state:
            return False, "not tried: there is no task to report to (create task failed)"
        event = {"type": "training_stats_scalar", "task": state["task"], "iter": 0, "metric": "smoke",
                 "variant": "value", "value": 1.0, "timestamp": int(time.time() * 1000)}
        answer = api.call_lines("events.add_batch", [event])
        added = (answer.data or {}).get("added")
        if answer.ok and added == 1:
            return True, "events.add_batch: 1 scalar added"
        return False, f"events.add_batch: {answer.describe()}" + (f" (added={added})" if answer.ok else "")

    content = f"clearml-lightning smoke {run_id} {stamp}\n".encode()
    path = f"{FILES_FOLDER}/{run_id}/smoke.txt"

    def upload() -> tuple[bool, str]:
        answer = api.upload(path, content)
        if answer.ok:
            state["uploaded"] = path
            return True, f"{api.file_url(path)}: {answer.describe()}"
        return False, f"POST {report.files_url}/ ({path}): {answer.describe()}"

    def register() -> tuple[bool, str]:
        if "task" not in state:
            create = report.step("create task")
            return False, f"not tried: there is no task to register it on (create task failed: {create.detail})"
        if "uploaded" not in state:
            return False, "not tried: nothing was uploaded (upload file failed)"
        uri = f"{registered_base}/{urllib.parse.quote(path)}"
        added = api.call("tasks.add_or_update_artifacts", {"task": state["task"], "force": True,
                                                           "artifacts": [artifact(uri, content, int(time.time()))]})
        if not added.ok:
            return False, f"tasks.add_or_update_artifacts: {added.describe()}"
        got = api.call("tasks.get_by_id", {"task": state["task"]})
        if not got.ok:
            return False, f"tasks.get_by_id: {got.describe()}"
        listed = listed_artifacts((got.data or {}).get("task") or {})
        mine = [a for a in listed if a.get("key") == ARTIFACT_KEY]
        if not mine or mine[0].get("uri") != uri:
            held = ", ".join(f"{a.get('key')}={a.get('uri')}" for a in listed) or "none"
            return False, f"tasks.get_by_id: the task does not list artifact {ARTIFACT_KEY!r} at {uri} (it lists: {held})"
        state["registered"] = uri
        return True, f"artifact {ARTIFACT_KEY!r} on task {state['task']}: {uri}"

    def download() -> tuple[bool, str]:
        if "uploaded" not in state:
            return False, "not tried: nothing was uploaded (upload file failed)"
        fetch, via = path, "the uploaded path"
        if "registered" in state:  # the link the task holds, reached at this host's file server URL
            fetch = urllib.parse.unquote(state["registered"][len(registered_base) + 1:])
            via = "the task's artifact link"
        answer = api.download(fetch)
        if not answer.ok:
            return False, f"GET {api.file_url(fetch)}: {answer.describe()}"
        if answer.body != content:
            return False, f"GET {api.file_url(fetch)}: HTTP {answer.status} but the content differs " \
                          f"({len(answer.body)} bytes back, {len(content)} sent)"
        report.links["file"] = api.file_url(fetch)
        return True, f"{len(content)} bytes back through {via}, identical"

    for name, fn in zip(STEPS, (ping, login, create_task, report_scalar, upload, register, download)):
        if name != "server answers" and not report.steps[0].ok:
            report.steps.append(StepResult(name, False, "not tried: the API server did not answer"))
            continue
        if name not in ("server answers", "log in") and not report.step("log in").ok:
            report.steps.append(StepResult(name, False, "not tried: login failed"))
            continue
        report.steps.append(_timed(fn, name))
    return report


def table(report: SmokeReport) -> str:
    """The report as aligned text: one row per step (pure)."""
    from .ui import table as ui_table

    rows = [(s.name, "pass" if s.ok else "FAIL", s.detail) for s in report.steps]
    text = ui_table(("STEP", "RESULT", "SERVER ANSWER"), rows)
    text += f"\nAPI {report.api_url}, files {report.files_url}, credentials: {report.credentials}"
    for what, url in report.links.items():
        text += f"\n{what}: {url}"
    return text
