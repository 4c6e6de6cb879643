"""`inv doctor`: read the host and the stack once, judge every reading with a pure check, report.

Readings (impure, :func:`collect`) and judgements (pure, :func:`evaluate`) are kept apart so every
check is tested against fake readings. ``--fix`` acts only on what a check reported
(:func:`apply_fixes`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import checks
from .checks import MIN_MAX_MAP_COUNT, Check
from .errors import StackError
from .fsutil import SERVICE_UID, atomic_write

SYSCTL_FILE_ENV = "CLEARML_SYSCTL_FILE"  # where --fix persists the kernel setting (tests point it elsewhere)
MONGO_UID = 999  # the official mongo image gives its data to user mongodb (999) at start
GIB, MIB = 2**30, 2**20
ES_FLOOD_BYTES = 500 * MIB  # compose/base.yml: watermarks low/high/flood_stage all 500mb
DISK_FAIL_BYTES = 2 * ES_FLOOD_BYTES
DISK_WARN_BYTES = 10 * GIB
DISK_WARN_FRACTION = 0.10
RAM_RECOMMENDED = 8 * GIB  # the official minimum
# The oldest engine that runs what the compose files ask for: healthchecks with start_period
# (Engine 17.05, API 1.29) and GPU device requests for `inv agents.up --gpus` (Engine 19.03, API 1.40).
MIN_ENGINE = (19, 3)
MIN_ENGINE_TEXT = "19.03"
# rough resident sizes of everything beside Elasticsearch's heap (estimates, not measurements)
SERVICE_MEMORY = {
    "elasticsearch (off-heap)": 512 * MIB,
    "mongo": 1 * GIB,
    "redis": 128 * MIB,
    "apiserver": 768 * MIB,
    "fileserver": 256 * MIB,
    "webserver": 128 * MIB,
    "async_delete": 256 * MIB,
}
AGENT_MEMORY = 512 * MIB
# data directory entries and the owners the containers need
OWNERSHIP = (
    ("data/elastic_7", (SERVICE_UID,), "fail"),  # Elasticsearch (uid 1000) must write here or exits
    ("data/fileserver", (SERVICE_UID,), "warn"),
    ("config", (SERVICE_UID,), "warn"),
    ("logs", (SERVICE_UID,), "warn"),
    ("data/mongo_4/db", (SERVICE_UID, MONGO_UID), "warn"),
    ("data/redis", (SERVICE_UID, MONGO_UID), "warn"),
)


def sysctl_file() -> Path:
    return Path(os.environ.get(SYSCTL_FILE_ENV) or checks.SYSCTL_FILE)


# --- readings -----------------------------------------------------------------------------------


@dataclass
class Readings:
    """Everything doctor looks at, gathered once. Fields left None were not readable."""

    engine: tuple[bool, str] = (False, "not read")
    compose: tuple[str | None, str, str] = (None, "not read", "")  # version, or (None, problem, fix)
    max_map_count: int | None = None
    mem_total: int | None = None
    settings_problem: tuple[str, str] | None = None  # (message, fix) when settings do not load
    settings_file: str = ""
    release_version: str = ""
    release_verified: bool = True
    release_source: str = ""
    es_heap: str = ""
    services_agent: bool = False
    data_dir: str = ""
    disk: tuple[int, int] | None = None  # (free, total) bytes
    ownership: dict[str, int | None] = field(default_factory=dict)  # relative path -> uid
    ports: list[Check] = field(default_factory=list)
    services: list | None = None  # ServiceState list; None when compose could not be asked
    api: tuple[bool, str, str] | None = None  # (answered, detail, url) when the stack runs
    audit: list[Check] | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # section -> why


def size_bytes(value: str) -> int | None:
    """``512m``/``2g``/``1024k`` -> bytes (pure); None when unparseable."""
    match = re.fullmatch(r"(\d+)([kmg])?", value.strip().lower())
    if not match:
        return None
    return int(match.group(1)) * {"k": 2**10, "m": MIB, "g": GIB, None: 1}[match.group(2)]


def human(n: int | float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


# --- pure checks ---------------------------------------------------------------------------------


def engine_check(reachable: bool, detail: str) -> Check:
    """Reachable, and at least :data:`MIN_ENGINE` (an older engine is a warning: some features will not start)."""
    from .compose import parse_version

    found = checks.engine(reachable, detail)
    if found.status != "ok":
        return found
    version = parse_version(detail)
    if version is None:
        return Check(found.name, "warn", f"Docker engine {detail}: cannot tell its version",
                     f"check `docker version`: the stack needs Docker Engine {MIN_ENGINE_TEXT} or newer")
    if tuple(version[:2]) < MIN_ENGINE:
        return Check(found.name, "warn",
                     f"Docker engine {detail} is older than {MIN_ENGINE_TEXT}, which the compose files need "
                     "(healthcheck start_period from 17.05, GPU device requests from 19.03)",
                     f"upgrade Docker Engine to {MIN_ENGINE_TEXT} or newer (https://docs.docker.com/engine/install/, "
                     "or your distribution's docker-ce / docker.io package)")
    return found


def compose_check(version: str | None, problem: str, fix: str) -> Check:
    """Compose was found and is at least :data:`clearml_stack.compose.MIN_VERSION` (`up --wait-timeout`)."""
    from .compose import MIN_VERSION_TEXT, UPGRADE_FIX, new_enough, parse_version

    if version:
        parsed = parse_version(version)
        if parsed is not None and not new_enough(parsed):
            return Check("docker compose", "fail",
                         f"Docker Compose {version} is older than {MIN_VERSION_TEXT}, which `up --wait-timeout` needs",
                         UPGRADE_FIX)
        return Check("docker compose", "ok", f"Docker Compose {version}")
    return Check("docker compose", "fail", problem, fix)


def max_map_count_check(value: int | None) -> Check:
    """Doctor is stricter than the start-up preflight: a value below the minimum fails."""
    found = checks.max_map_count(value)
    if value is not None and value < MIN_MAX_MAP_COUNT:
        return Check(found.name, "fail", found.detail, found.fix)
    return found


def memory_check(mem_total: int | None, es_heap: str, services_agent: bool) -> Check:
    heap = size_bytes(es_heap)
    if mem_total is None or heap is None:
        return Check("memory", "warn", f"cannot read the host's RAM or the heap ({es_heap!r})",
                     "check `free -g`: the server wants 8 GiB, 16 GiB recommended")
    need = heap + sum(SERVICE_MEMORY.values()) + (AGENT_MEMORY if services_agent else 0)
    detail = (f"{human(mem_total)} RAM; Elasticsearch heap {es_heap} plus the other services need about {human(need)}")
    if mem_total < need:
        return Check("memory", "fail", detail + ": not enough, services will be killed or Elasticsearch will not start",
                     "set a smaller CLEARML_ES_HEAP (e.g. 1g) in the settings file, or use a bigger machine")
    if mem_total < RAM_RECOMMENDED:
        return Check("memory", "warn", detail + f"; below the official minimum of {human(RAM_RECOMMENDED)}",
                     "expect slow searches under load; 16 GiB is recommended")
    return Check("memory", "ok", detail)


def disk_check(data_dir: str, disk: tuple[int, int] | None) -> Check:
    if disk is None:
        return Check("disk", "warn", f"cannot read free space for {data_dir}", f"check `df -h {data_dir}`")
    free, total = disk
    detail = f"{human(free)} free of {human(total)} on the filesystem of {data_dir}"
    fix = ("free space or move CLEARML_DATA_DIR to a bigger disk (stop, move, set the path, start); "
           "old task logs and artifacts can be deleted in the web UI")
    if free < DISK_FAIL_BYTES:
        return Check("disk", "fail", detail + f": Elasticsearch turns read-only at {human(ES_FLOOD_BYTES)} free "
                     "(the server then answers errors)", fix)
    if free < DISK_WARN_BYTES or (total and free < DISK_WARN_FRACTION * total):
        return Check("disk", "warn", detail + f": running low (Elasticsearch stops writing at {human(ES_FLOOD_BYTES)} free)",
                     fix)
    return Check("disk", "ok", detail)


def ownership_checks(data_dir: str, owners: dict[str, int | None]) -> list[Check]:
    """Each data entry must belong to the user its container runs as (uid 1000; Mongo may hold 999)."""
    found = []
    for rel, allowed, severity in OWNERSHIP:
        if rel not in owners:
            continue
        uid = owners[rel]
        path = f"{data_dir}/{rel}"
        name = f"owner {rel}"
        if uid is None:
            found.append(Check(name, "warn", f"{path} does not exist", "run `inv install` (it creates the data layout)"))
        elif uid in allowed:
            found.append(Check(name, "ok", f"{path} belongs to uid {uid}"))
        else:
            found.append(Check(name, severity, f"{path} belongs to uid {uid}, the container runs as uid {allowed[0]}",
                               f"sudo chown -R {SERVICE_UID}:{SERVICE_UID} {shlex.quote(path)}   (or `sudo inv doctor --fix`)"))
    return found


def settings_check(problem: tuple[str, str] | None, settings_file: str) -> Check:
    if problem:
        return Check("settings", "fail", problem[0], problem[1])
    return Check("settings", "ok", f"{settings_file} is valid")


def release_check(version: str, verified: bool, source: str) -> Check | None:
    if not version:
        return None
    if verified:
        return Check("release", "ok", f"server {version} ({source})")
    return Check("release", "warn", f"server {version}: some image tags of this release are unverified ({source})",
                 "pin the images you know work with CLEARML_SERVER_IMAGE/MONGO_IMAGE/..., or upgrade (`inv upgrade`)")


def service_checks(services: list | None) -> list[Check]:
    if services is None:
        return []
    if not services:
        return [Check("stack", "ok", "not running (nothing to check; `inv up` starts it)")]
    found = []
    for s in services:
        if s.good:
            found.append(Check(f"service {s.service}", "ok", f"{s.state}{', ' + s.health if s.health else ''}"))
        else:
            extra = f", exit code {s.exit_code}" if s.state == "exited" else ""
            found.append(Check(f"service {s.service}", "fail", f"{s.state}{', ' + s.health if s.health else ''}{extra}",
                               f"`inv logs --service {s.service}` shows why; `inv up` starts what is stopped"))
    return found


def api_check(api: tuple[bool, str, str] | None) -> Check | None:
    if api is None:
        return None
    answered, detail, url = api
    if answered:
        return Check("api", "ok", f"{url} answers ({detail})")
    return Check("api", "fail", f"{url} does not answer: {detail}", "`inv logs --service apiserver`")


def evaluate(r: Readings) -> list[Check]:
    """Every check, in report order (pure)."""
    found = [engine_check(*r.engine), compose_check(*r.compose), max_map_count_check(r.max_map_count)]
    found.append(settings_check(r.settings_problem, r.settings_file))
    if r.settings_problem is None:
        rel = release_check(r.release_version, r.release_verified, r.release_source)
        if rel:
            found.append(rel)
        found.append(memory_check(r.mem_total, r.es_heap, r.services_agent))
        found.append(disk_check(r.data_dir, r.disk))
        found += ownership_checks(r.data_dir, r.ownership)
        found += r.ports
    found += r.audit or []
    found += service_checks(r.services)
    api = api_check(r.api)
    if api:
        found.append(api)
    return found


# --- gathering the readings ---------------------------------------------------------------------


def _audit(settings) -> tuple[list[Check] | None, str]:
    """The hardening audit (clearml_stack.audit.run), or why it was skipped."""
    try:
        from . import audit  # type: ignore[attr-defined]
    except ImportError as exc:
        return None, f"the security audit module is not installed ({exc})"
    try:
        return list(audit.run(settings)), ""
    except StackError as exc:
        return [Check("security audit", "fail", exc.message, exc.fix)], ""
    except Exception as exc:  # a bug in the audit must not hide the rest of the report
        return [Check("security audit", "fail", f"the audit stopped with {exc!r}",
                      "report it; the other checks above and below are still valid")], ""


def _stack(settings, r: Readings):
    """The Stack doctor reads services through. A users file with a bad entry is the audit's finding
    (with its fix), not a reason to stop: the stack is then read with the entries as they are."""
    from .stack import Stack
    from .users import load_users

    try:
        return Stack(settings)
    except StackError:
        pass
    try:
        return Stack(settings, users=load_users(settings.users_file, check=False))
    except StackError:
        return None  # not even JSON: the audit reports it


def collect(load_settings: Callable | None = None) -> Readings:
    """Read everything doctor judges. Never raises for a reading: a failed reading is a finding."""
    from . import compose, hostinfo, layers as layer_mod
    from .health import api_ping
    from .settings import load, truthy
    from .urls import api_probe_url

    r = Readings(engine=hostinfo.docker_engine(), max_map_count=hostinfo.max_map_count(), mem_total=hostinfo.mem_total())
    try:
        r.compose = (compose.find().version, "", "")
    except StackError as exc:
        r.compose = (None, exc.message, exc.fix)
    try:
        settings = (load_settings or load)()
        if not settings.env_file_exists:
            raise StackError(f"no settings file at {settings.env_file}", "run `inv install` first")
        settings.require_installed()
    except StackError as exc:
        r.settings_problem = (exc.message, exc.fix)
        r.skipped["host and stack checks"] = "they need valid settings"
        return r
    r.settings_file = str(settings.env_file)
    rel = settings.release
    r.release_version, r.release_verified, r.release_source = rel.version, rel.verified, rel.source
    r.es_heap, r.services_agent = settings.es_heap, truthy(settings["CLEARML_SERVICES_AGENT"])
    r.data_dir = str(settings.data_dir)
    r.disk = hostinfo.disk_usage(settings.data_dir)
    r.ownership = {rel_path: hostinfo.owner(settings.data_dir / rel_path) for rel_path, _, _ in OWNERSHIP}
    stack = _stack(settings, r)
    ours: set[int] = set()
    if stack is None:
        r.skipped["services and ports"] = "the users file cannot be read (see the security audit below)"
        r.audit, why = _audit(settings)
        if why:
            r.skipped["security audit"] = why
        return r
    if r.engine[0] and r.compose[0]:
        try:
            r.services = stack.states()
            ours = stack.running_ports()
        except StackError as exc:
            r.skipped["services"] = f"compose could not list them ({exc.message})"
    else:
        r.skipped["services"] = "no Docker engine or Compose"
    wanted = checks.published_ports(settings, layer_mod.select(settings, has_users=bool(stack.users)))
    r.ports = checks.ports(wanted, hostinfo.port_free, hostinfo.port_owner, ours)
    if r.services and any(s.service == "apiserver" and s.state == "running" for s in r.services):
        url = api_probe_url(settings)
        r.api = (*api_ping(url), url)
    r.audit, why = _audit(settings)
    if why:
        r.skipped["security audit"] = why
    return r


# --- acting on findings -------------------------------------------------------------------------


def fix_max_map_count(value: int | None, euid: int | None = None) -> list[str]:
    """Set vm.max_map_count now and persist it, as root; otherwise say the command. Returns what was done."""
    from .hostinfo import max_map_count_path

    if value is not None and value >= MIN_MAX_MAP_COUNT:
        return []
    euid = os.geteuid() if euid is None else euid
    conf = sysctl_file()
    if euid != 0:
        return [f"not root: run `sudo sysctl -w vm.max_map_count={MIN_MAX_MAP_COUNT} && echo "
                f"vm.max_map_count={MIN_MAX_MAP_COUNT} | sudo tee {conf}` (or `sudo .venv/bin/inv doctor --fix`)"]
    try:
        max_map_count_path().write_text(f"{MIN_MAX_MAP_COUNT}\n")
    except OSError as exc:
        raise StackError(f"cannot set vm.max_map_count ({exc.strerror}); in a container it must be set on the host",
                         f"on the host: sudo sysctl -w vm.max_map_count={MIN_MAX_MAP_COUNT}") from exc
    atomic_write(conf, f"# written by clearml-lightning `inv doctor --fix`: Elasticsearch needs it\n"
                       f"vm.max_map_count={MIN_MAX_MAP_COUNT}\n", 0o644)
    return [f"set vm.max_map_count={MIN_MAX_MAP_COUNT} now and in {conf} (kept across reboots)"]


def fix_ownership(data_dir: str, found: list[Check], euid: int | None = None) -> list[str]:
    from .backup import chown_tree

    bad = [c.name.removeprefix("owner ") for c in found
           if c.name.startswith("owner ") and c.status in ("warn", "fail") and "belongs to" in c.detail]
    if not bad:
        return []
    euid = os.geteuid() if euid is None else euid
    paths = [f"{data_dir}/{rel}" for rel in bad]
    if euid != 0:
        return [f"not root: run `sudo chown -R {SERVICE_UID}:{SERVICE_UID} {' '.join(map(shlex.quote, paths))}`"]
    for path in paths:
        chown_tree(Path(path))
    return [f"gave {', '.join(paths)} to uid {SERVICE_UID}"]


def fix_audit(found: list[Check]) -> list[str]:
    """The security audit's own fixes (files holding secrets made private), when the audit offers them."""
    try:
        from . import audit  # type: ignore[attr-defined]
    except ImportError:
        return []
    fixer, gather = getattr(audit, "fix_modes", None), getattr(audit, "gather", None)
    if fixer is None or gather is None:
        return []
    from .settings import load

    try:
        settings = load()
    except StackError:
        return []
    return [f"made {path} private (mode 0600)" for path in fixer(found, gather(settings))]


def report_json(found: list[Check], skipped: dict[str, str], fixed: list[str]) -> str:
    return json.dumps({"ok": checks.worst(found) != "fail", "result": checks.worst(found), "worst": checks.worst(found),
                       "checks": [c.as_dict() for c in found], "skipped": skipped, "fixed": fixed}, indent=2)


def report_text(found: list[Check], skipped: dict[str, str]) -> str:
    from . import ui

    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    lines = []
    for c in found:
        lines.append(f"{marks[c.status]}  {c.name}: {c.detail}")
        if c.status != "ok" and c.fix:
            lines.append(f"      fix: {c.fix}")
    for section, why in skipped.items():
        lines.append(f"skip  {section}: {why}")
    counts = {s: sum(1 for c in found if c.status == s) for s in ("ok", "warn", "fail")}
    lines.append(ui.table(("OK", "WARN", "FAIL"), [(counts["ok"], counts["warn"], counts["fail"])]))
    lines.append(f"result: {checks.worst(found)}")
    return "\n".join(lines)
