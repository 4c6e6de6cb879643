"""Acting on the compose stack: one Stack per command, every compose call through one method."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Sequence

from . import checks, compose, hostinfo, layers as layer_mod, ui
from .access import access_next_steps, access_warnings
from .errors import StackError
from .health import ServiceState, api_ping, not_good, parse_ps
from .install import InstallReport, render_config
from .runner import Result, run
from .settings import MASKED_KEYS, Settings
from .urls import api_probe_url, public_urls
from .users import User, load_users

LOG_TAIL = 30


@dataclass
class Stack:
    settings: Settings
    #: the web login users (they decide whether the auth layer applies); read and checked when not given
    users: list[User] | None = None

    def __post_init__(self) -> None:
        if self.users is None:
            self.users = load_users(self.settings.users_file)
        self.layers = layer_mod.select(self.settings, has_users=bool(self.users))

    def _write_generated_layers(self) -> None:
        """The layers made from settings (GPU ids) must match them before compose reads any file."""
        layer_mod.write_generated(self.settings, self.layers)

    # --- the one choke point -----------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        return compose.argv(compose.find(), self.settings, self.layers, args)

    def compose(self, *args: str, capture: bool = False, check: bool = True, echo: bool = True,
                input: str | None = None) -> Result:
        self._write_generated_layers()
        return run(self.argv(*args), env=compose.environment(self.settings), capture=capture, check=check,
                   echo=echo, input=input)

    # --- readings ----------------------------------------------------------------------------
    def states(self, echo: bool = True) -> list[ServiceState]:
        """Each service's state, read from ``compose ps`` (the command is printed on stderr unless ``echo=False``)."""
        res = self.compose("ps", "-a", "--format", "json", capture=True, echo=echo)
        return parse_ps(res.stdout)

    def running_ports(self) -> set[int]:
        """Host ports this stack's running containers publish (they are not "taken" for the preflight)."""
        res = self.compose("ps", "--format", "json", capture=True)
        return {int(p["PublishedPort"]) for r in compose.ps_records(res.stdout)
                for p in (r.get("Publishers") or []) if p.get("PublishedPort")}

    # --- actions -----------------------------------------------------------------------------
    def preflight(self) -> list[checks.Check]:
        """Quick checks before starting; fails raise, warnings are printed."""
        found = [checks.engine(*hostinfo.docker_engine())]
        if found[0].status == "fail":
            raise StackError(found[0].detail, found[0].fix)
        compose.find()
        if any(name in self.layers for name in ("agents-gcs", "workers-gcs")):
            from .agents import GCS_FIX, gcs_file_problem

            gcs = gcs_file_problem(self.settings["CLEARML_AGENT_GCS_CREDENTIALS_FILE"])
            if gcs:
                raise StackError(gcs, GCS_FIX)
        found.append(checks.max_map_count(hostinfo.max_map_count()))
        found += checks.ports(checks.published_ports(self.settings, self.layers), hostinfo.port_free,
                              hostinfo.port_owner, self.running_ports())
        for c in found:
            if c.status == "warn":
                ui.warn(c.detail, c.fix)
        failed = [c for c in found if c.status == "fail"]
        if failed:
            raise StackError("; ".join(c.detail for c in failed), "; ".join(dict.fromkeys(c.fix for c in failed)))
        return found

    def up(self, allow_open: bool = False, timeout: int | None = None) -> None:
        self.settings.require_installed()
        if not self.users and not allow_open:
            raise StackError(
                "no web login user exists: the server would let anyone who reaches it sign up and see everything",
                "add one with `inv users.add NAME` (then `inv up`), or start it open on purpose with "
                "`inv up --allow-open`",
            )
        if not self.users:
            ui.warn("starting WITHOUT login (--allow-open): anyone who reaches the web UI can sign up")
        for message, fix in access_warnings(self.settings):
            ui.warn(message, fix)
        if self.settings["CLEARML_EXPOSE_STORES"] == "all":
            ui.warn("CLEARML_EXPOSE_STORES=all: Mongo, Elasticsearch and Redis listen on ALL interfaces "
                    "without passwords", "set CLEARML_EXPOSE_STORES=loopback or no")
        self.preflight()
        report = InstallReport()
        render_config(self.settings, report)
        for line in report.lines:
            ui.note(line)
        wait = timeout or int(self.settings["CLEARML_WAIT_TIMEOUT"])
        ui.note(f"starting {len(self.layers)} layer(s): {', '.join(self.layers)}; waiting up to {wait}s for health")
        res = self.compose("up", "-d", "--remove-orphans", "--wait", "--wait-timeout", str(wait), check=False)
        if not res.ok:
            self.explain_failure()
        self.print_next_steps()

    def explain_failure(self) -> None:
        """Name what is not healthy (causes first, then what waits on them), show the causes' logs, raise."""
        bad = not_good(self.states())
        if not bad:
            raise StackError("`docker compose up` failed before any service started (see its output above)",
                             "fix what it reports; `inv doctor` checks the usual causes")
        causes, waiting = split_failures(bad)
        for s in causes:
            ui.say(ui.paint(f"--- last {LOG_TAIL} log lines of {s.service} ({s.state}, {s.health or 'no health'})",
                            "yellow"))
            logs = self.compose("logs", "--no-color", "--tail", str(LOG_TAIL), s.service, capture=True, check=False)
            ui.say((logs.stdout + logs.stderr).rstrip() or "(no log lines)")
        names = ", ".join(f"{s.service} ({s.state}{', ' + s.health if s.health else ''})" for s in causes)
        message = f"not healthy: {names}"
        if waiting:
            message += f"; not healthy yet (starting or waiting on it): {', '.join(s.service for s in waiting)}"
        raise StackError(message, f"read the log lines above; `inv logs --service {causes[0].service}` shows more, "
                                  "`inv doctor` checks the host")

    def wait_healthy(self, timeout: int) -> None:
        """Poll compose until every service is healthy, printing changes; raise with logs on timeout."""
        deadline = time.monotonic() + timeout
        last = ""
        first = True
        while True:
            states = self.states(echo=first)  # the polling command is printed once, not every 2 seconds
            first = False
            pending = not_good(states)
            line = ", ".join(f"{s.service}={s.health or s.state}" for s in pending)
            if not pending and states:
                ui.ok("all services healthy")
                return
            if line != last:
                ui.note(f"waiting: {line}")
                last = line
            if time.monotonic() > deadline:
                self.explain_failure()
            time.sleep(2)

    def restart(self, service: str = "") -> None:
        self.settings.require_installed()
        report = InstallReport()
        render_config(self.settings, report)
        for line in report.lines:
            ui.note(line)
        self.compose("restart", *([service] if service else []))
        self.wait_healthy(int(self.settings["CLEARML_WAIT_TIMEOUT"]))

    def down(self) -> None:
        self.compose("down", "--remove-orphans")
        ui.ok(f"stopped; data kept in {self.settings.data_dir}")

    def logs(self, service: str = "", follow: bool = False, tail: int = 200) -> None:
        args = ["logs", "--tail", str(tail)] + (["--follow"] if follow else []) + ([service] if service else [])
        self.compose(*args, check=False)

    def merged_config(self, show_secrets: bool = False) -> str:
        text = self.compose("config", capture=True).stdout  # the command on stderr, the file on stdout
        return text if show_secrets else mask_secrets(text, self.settings)

    def passthrough(self, args: Sequence[str]) -> int:
        return self.compose(*args, check=False).returncode

    # --- reports -----------------------------------------------------------------------------
    def status(self) -> dict:
        states = self.states()
        answered, detail = api_ping(api_probe_url(self.settings))
        return {
            "project": self.settings.project,
            "mode": self.settings.mode,
            "layers": self.layers,
            "services": [s.as_dict() for s in states],
            "api": {"url": api_probe_url(self.settings), "answers": answered, "detail": detail},
            "healthy": bool(states) and not not_good(states) and answered,
        }

    def print_next_steps(self) -> None:
        urls = public_urls(self.settings)
        ui.ok("ClearML server is up")
        ui.out(f"web UI:      {urls.web}")
        ui.out(f"API server:  {urls.api}")
        ui.out(f"file server: {urls.files}")
        steps = ["log in to the web UI, then Settings > Workspace > Create new credentials"]
        if self.settings.mode == "tunnel":
            steps.insert(0, "from another machine: `inv connect-script` writes connect.sh for it (see `inv host`)")
        steps.append("`inv client-config` writes a clearml.conf for the SDK; `inv agents.up` starts workers")
        steps += access_next_steps(self.settings)
        for step in steps:
            ui.note(step)


def mask_secrets(text: str, settings: Settings) -> str:
    """Replace every secret or user-given credential value in ``text`` with a mask (pure)."""
    for key in MASKED_KEYS:
        value = settings.values.get(key)
        if value:
            text = text.replace(value, ui.mask(value))
    return text


def status_table(report: dict) -> str:
    rows = [(s["service"], s["state"], s["health"] or "-", s["ports"] or "-") for s in report["services"]]
    text = ui.table(("SERVICE", "STATE", "HEALTH", "PORTS"), rows) if rows else "no containers (run `inv up`)"
    api = report["api"]
    text += f"\nAPI {api['url']}: {'answers, ' + api['detail'] if api['answers'] else api['detail']}"
    return text


def status_json(report: dict) -> str:
    return json.dumps(report, indent=2)


def split_failures(bad: list[ServiceState]) -> tuple[list[ServiceState], list[ServiceState]]:
    """(the causes, the services merely waiting) among services that are not healthy (pure).

    A service that exited, restarts or is unhealthy is a cause. Failing those, the ones still starting
    (a timeout). A container still ``created`` never ran: it waits for a dependency, its logs are empty,
    and naming it first would hide the cause.
    """
    failed = [s for s in bad if s.state in ("exited", "dead", "restarting") or s.health == "unhealthy"]
    created = [s for s in bad if s.state == "created"]
    starting = [s for s in bad if s not in failed and s not in created]
    causes = failed or starting or created
    return causes, [s for s in bad if s not in causes]
