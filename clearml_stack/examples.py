"""`inv examples`: which example programs run, with which client configuration, after which checks.

The examples themselves live in ``examples/`` and use only the ClearML SDK; this module decides
(pure functions) what to run and how, checks the server and the agents the chosen examples need,
runs each through the one runner, and collects the links each example reports.

Client configuration, in order: ``CLEARML_CONFIG_FILE`` when set (e.g. the file ``inv
client-config`` writes; read with the SDK itself for the checks), else the same client
configuration ``inv client-config`` generates for the active access mode
(:func:`clients.client_environment` over :func:`clients.client_urls`), as the SDK's variables, with
``CLEARML_API_ACCESS_KEY``/``SECRET_KEY`` from the environment or, failing those, the kit's own
services-agent key. With ``CLEARML_TLS=self-signed`` the SDK verifies the gateway against the kit's
CA (``REQUESTS_CA_BUNDLE``). :func:`client_environment` is the one place that decides it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from . import ui
from .apiclient import Api, Credentials
from .errors import StackError
from .settings import Settings


@dataclass(frozen=True)
class Example:
    name: str
    script: str
    summary: str
    needs_agents: bool = False  # its steps run on --queue
    needs_services: bool = False  # its child controllers run on the services queue


EXAMPLES: tuple[Example, ...] = (
    Example("base_task", "base_task.py", "hyperparameters, scalars, a plot, artifacts and a model (runs here)"),
    Example("train_cpu", "train_cpu.py", "a small CPU training run uploading to the default output URI (runs here)"),
    Example("pipeline_from_task", "pipeline_from_task.py",
            "a pipeline cloning the base task with UI-editable parameters (steps on --queue)", needs_agents=True),
    Example("pipeline_of_pipelines", "pipeline_of_pipelines.py",
            "--scale N child pipelines at once (controllers on the services queue, steps on --queue)",
            needs_agents=True, needs_services=True),
)
BY_NAME = {e.name: e for e in EXAMPLES}
SERVICES_QUEUE = "services"


def select(only: str) -> list[Example]:
    """The examples to run, in dependency order: all, or the comma-separated names in ``only``."""
    if not only.strip():
        return list(EXAMPLES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise StackError(f"no example named {', '.join(map(repr, unknown))}",
                         f"pick from: {', '.join(BY_NAME)}")
    return [e for e in EXAMPLES if e.name in names]


def argv(example: Example, examples_dir: Path, queue: str, scale: int, result_file: str,
         python: str = sys.executable) -> list[str]:
    """The command line of one example (pure)."""
    cmd = [python, str(examples_dir / example.script), "--result-file", result_file]
    if example.needs_agents:
        cmd += ["--queue", queue]
    if example.name == "pipeline_of_pipelines":
        cmd += ["--runs", str(scale), "--child-queue", SERVICES_QUEUE]
    return cmd


@dataclass(frozen=True)
class ClientConfig:
    env: dict[str, str]  # added to the examples' environment
    api_url: str
    web_url: str
    files_url: str
    credentials: Credentials | None  # None: a config file the SDK reads decides
    source: str  # said to the user
    ca_bundle: str = ""  # the CA file the checks (and the SDK, through REQUESTS_CA_BUNDLE) verify TLS with


def ca_bundle(settings: Settings, environ: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """(CA file to verify the server with, variables for the SDK) for the active TLS setting.

    Only ``CLEARML_TLS=self-signed`` needs one: the gateway's certificate is signed by the kit's own
    CA (``<data>/tls/ca.crt``), which no system trusts. The SDK and its file uploads use requests,
    which reads ``REQUESTS_CA_BUNDLE``; a bundle the user already set there is kept (it must then
    hold that CA). Other TLS settings use certificates the system already trusts.
    """
    from .gateway import ca_cert_path, tls_at_gateway

    if not (tls_at_gateway(settings) and settings.tls == "self-signed"):
        return "", {}
    given = environ.get("REQUESTS_CA_BUNDLE", "")
    if given:
        return given, {}
    path = ca_cert_path(settings)
    if not path.is_file():
        raise StackError(f"CLEARML_TLS=self-signed but the kit's CA {path} does not exist, so the server's "
                         "certificate cannot be verified",
                         "`inv up` creates it (or point REQUESTS_CA_BUNDLE at a bundle holding your CA)")
    return str(path), {"REQUESTS_CA_BUNDLE": str(path)}


def client_environment(settings: Settings, environ: Mapping[str, str] | None = None, offline: bool = False,
                       output_uri: str = "") -> ClientConfig:
    """How the examples reach the server (pure apart from reading ``environ`` and the CA's presence).

    A file ``inv client-config`` wrote, given as ``CLEARML_CONFIG_FILE``, is used as it is;
    otherwise the examples get the variables of :func:`clients.client_environment` for the active
    access mode, the very URLs ``inv client-config`` writes (``CLEARML_*_HOST`` set in the
    environment still win, as they would for the SDK itself).
    """
    from . import clients
    from .smoke import default_credentials

    environ = os.environ if environ is None else environ
    extra = {"CLEARML_DEFAULT_OUTPUT_URI": output_uri} if output_uri else {}
    found = clients.client_urls(settings)
    api = environ.get("CLEARML_API_HOST") or found.api
    web = environ.get("CLEARML_WEB_HOST") or found.web
    files = environ.get("CLEARML_FILES_HOST") or found.files_local
    if offline:
        return ClientConfig({"CLEARML_OFFLINE_MODE": "1", **extra}, api, web, files, None, "offline mode (no server)")
    cafile, ca_env = ca_bundle(settings, environ)
    if environ.get("CLEARML_CONFIG_FILE"):
        path = environ["CLEARML_CONFIG_FILE"]
        if not Path(path).is_file():
            raise StackError(f"CLEARML_CONFIG_FILE={path} does not exist",
                             "write one with `inv client-config --out PATH`, or unset the variable")
        api, web, files, key, secret = read_client_config(path)
        creds = Credentials(key, secret, f"the credentials in {path}") if key and secret else None
        return ClientConfig({**ca_env, **extra}, api, web, files, creds, f"the client configuration in {path}",
                            cafile)
    if environ.get("CLEARML_API_ACCESS_KEY") and environ.get("CLEARML_API_SECRET_KEY"):
        creds = Credentials(environ["CLEARML_API_ACCESS_KEY"], environ["CLEARML_API_SECRET_KEY"],
                            "CLEARML_API_ACCESS_KEY from the environment")
    else:
        creds = default_credentials(settings)
    env = clients.client_environment(settings, clients.Credentials(creds.key, creds.secret))
    env.update({"CLEARML_API_HOST": api, "CLEARML_WEB_HOST": web, "CLEARML_FILES_HOST": files, **ca_env, **extra})
    source = f"{api} ({settings.mode} mode) with {creds.source}"
    if cafile:
        source += f", TLS verified against {cafile}"
    return ClientConfig(env, api, web, files, creds, source, cafile)


def read_client_config(path: str) -> tuple[str, str, str, str, str]:
    """(api, web, files, access key, secret key) as the SDK itself reads ``path``, errors in its words."""
    from clearml.backend_api import Session, load_config
    from clearml.backend_config.errors import ConfigurationError

    saved = os.environ.get("CLEARML_CONFIG_FILE")
    os.environ["CLEARML_CONFIG_FILE"] = path
    try:
        cfg = load_config()
        hosts = (Session.get_api_server_host(cfg), Session.get_app_server_host(cfg),
                 Session.get_files_server_host(cfg))
    except ConfigurationError as exc:
        raise StackError(f"the ClearML SDK cannot read {path}: {exc}",
                         "fix the file (or write a new one with `inv client-config --out PATH --force`)") from None
    except ValueError as exc:  # e.g. "Could not detect ClearML web application server"
        raise StackError(f"{path}: {exc}", "set api_server, web_server and files_server in it") from None
    finally:
        if saved is None:
            os.environ.pop("CLEARML_CONFIG_FILE", None)
        else:
            os.environ["CLEARML_CONFIG_FILE"] = saved
    key = str(cfg.get("api.credentials.access_key", "") or "")
    secret = str(cfg.get("api.credentials.secret_key", "") or "")
    return (*(str(h).rstrip("/") for h in hosts), key, secret)  # type: ignore[return-value]


# --- what the chosen examples need from the server --------------------------------------------


def required_queues(examples: Sequence[Example], queue: str) -> dict[str, list[str]]:
    """queue name -> the examples that need an agent on it (pure)."""
    needed: dict[str, list[str]] = {}
    for e in examples:
        if e.needs_agents:
            needed.setdefault(queue, []).append(e.name)
        if e.needs_services:
            needed.setdefault(SERVICES_QUEUE, []).append(e.name)
    return needed


def queues_without_workers(needed: Mapping[str, list[str]], queues: list[dict], workers: list[dict]) -> list[str]:
    """The needed queue names no worker listens on, from ``queues.get_all`` and ``workers.get_all`` data (pure)."""
    by_id = {q.get("id"): q.get("name") for q in queues}
    served: set[str] = set()
    for w in workers:
        for q in w.get("queues") or []:
            if isinstance(q, dict):
                name = q.get("name") or by_id.get(q.get("id"))
            else:  # a bare queue id
                name = by_id.get(q, q)
            if name:
                served.add(name)
    return [name for name in needed if name not in served]


def preflight(config: ClientConfig, examples: Sequence[Example], queue: str) -> None:
    """Raise with the reason when the server or a needed agent is not there."""
    api = Api(config.api_url, config.files_url, timeout=60, cafile=config.ca_bundle)
    answer = api.ping()
    if not answer.ok:
        raise StackError(f"the API server at {config.api_url} does not answer: {answer.describe()}",
                         "start it with `inv up`; `inv status` shows what is wrong")
    needed = required_queues(examples, queue)
    if config.credentials is None:
        if needed:
            ui.note("agents not checked: the client configuration holds no credentials to ask the server with")
        return
    login = api.login(config.credentials)
    if not login.ok:
        raise StackError(f"the API server refused {config.credentials.source}: {login.describe()}",
                         "check the key and secret (Settings > Workspace in the web UI creates new ones)")
    if not needed:
        return
    queues = api.call("queues.get_all", {"only_fields": ["id", "name"]})
    workers = api.call("workers.get_all", {})
    if not (queues.ok and workers.ok):
        bad = queues if not queues.ok else workers
        raise StackError(f"could not list queues and agents: {bad.describe()}", "`inv status`, `inv logs --service apiserver`")
    missing = queues_without_workers(needed, (queues.data or {}).get("queues") or [],
                                     (workers.data or {}).get("workers") or [])
    if missing:
        lines = [f"no agent listens on queue {name!r} (needed by {', '.join(needed[name])})" for name in missing]
        fixes = []
        if queue in missing:
            fixes.append(f"start workers: `inv agents.up --queue {queue}`")
        if SERVICES_QUEUE in missing:
            fixes.append("start the services agent: CLEARML_SERVICES_AGENT=true then `inv up`")
        fixes.append("or run only what needs no agent: `inv examples --only base_task,train_cpu`")
        raise StackError("; ".join(lines), "; ".join(fixes))


# --- running ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    example: Example
    returncode: int
    result: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.result)


def read_result(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def links(outcome: Outcome, web_url: str = "") -> list[tuple[str, str]]:
    """(what, where) for every task an example reported (pure).

    Where: the page the example reported, else the web UI page built from the task's id (pipeline
    steps and child pipelines report ids only), else its offline folder, else the bare id.
    """
    from .urls import task_page

    found = []
    for task in outcome.result.get("tasks") or []:
        where = task.get("url") or ""
        if not where and task.get("id") and web_url and not task.get("offline_folder"):
            where = task_page(web_url, task["id"], task.get("project") or "")
        where = where or task.get("offline_folder") or task.get("id", "")
        found.append((f"{outcome.example.name}: {task.get('role', 'task')} {task.get('name', '')}".rstrip(), where))
    if outcome.result.get("model_url"):
        found.append((f"{outcome.example.name}: model file", outcome.result["model_url"]))
    return found


def run_all(settings: Settings, examples: Sequence[Example], config: ClientConfig, queue: str, scale: int,
            timeout: float | None = None) -> list[Outcome]:
    """Run the examples in order through the runner; stop at the first that fails."""
    from .runner import run

    examples_dir = settings.kit_root / "examples"
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="clearml-examples-") as tmp:
        for example in examples:
            result_file = Path(tmp) / f"{example.name}.json"
            ui.note(f"example {example.name}: {example.summary}")
            res = run(argv(example, examples_dir, queue, scale, str(result_file)), env=config.env, check=False,
                      timeout=timeout)
            outcome = Outcome(example, res.returncode, read_result(result_file))
            outcomes.append(outcome)
            if not outcome.ok:
                break
    return outcomes
