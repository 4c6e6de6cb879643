"""Session guards: tests run with a temporary $HOME, and the suite leaves no Docker objects behind.

``isolate_home`` points HOME at a temporary directory (a new one for every test) while keeping what the
tests need from the real home: the Docker CLI's configuration (its plugins, e.g. compose) and the test
images' build cache. ``HomeGuard`` proves the real home's ~/.lightning_studio was neither created nor
changed. ``DockerLedger`` records the containers, networks and volumes present when the run starts and
follows the engine's events; at the end, every object created by this run (its compose projects, its
named containers, its testcontainers, and the anonymous volumes its containers mounted) that still
exists is reported. Other users of a shared engine are never counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOME_ENV = "HOME"
IMAGES_CACHE_ENV = "CLEARML_TEST_IMAGES_CACHE"


@dataclass
class HomeIsolation:
    """The real home and the temporary one tests run in."""

    real: Path
    base: Path
    count: int = 0

    def next_home(self) -> Path:
        """A new empty home directory for one test."""
        self.count += 1
        home = self.base / f"t{self.count}"
        home.mkdir()
        return home

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def isolate_home(environ: dict | None = None) -> HomeIsolation:
    """Point HOME at a temporary directory; keep the Docker CLI config and the test images cache."""
    env = os.environ if environ is None else environ
    real = Path(env.get(HOME_ENV) or os.path.expanduser("~"))
    cache = Path(env.get("XDG_CACHE_HOME") or real / ".cache") / "clearml-lightning"
    env.setdefault(IMAGES_CACHE_ENV, str(cache))
    if "DOCKER_CONFIG" not in env and (real / ".docker").is_dir():
        env["DOCKER_CONFIG"] = str(real / ".docker")  # CLI plugins (compose) installed per user
    base = Path(tempfile.mkdtemp(prefix="clearml-lightning-home-"))
    isolation = HomeIsolation(real, base)
    env[HOME_ENV] = str(isolation.next_home())
    return isolation


def tree_state(root: Path) -> dict[str, tuple[int, str]] | None:
    """Mode and content hash of every entry under ``root``; None when it does not exist."""
    if not root.exists() and not root.is_symlink():
        return None
    state = {}
    for path in sorted([root, *root.rglob("*")]):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        state[path.relative_to(root).as_posix()] = (st.st_mode, digest)
    return state


@dataclass
class HomeGuard:
    """Proves the suite did not create or change a directory of the real home.

    A change whose files name one of this run's temporary directories (``markers``: every kit lives in
    one) is this run's doing: a failure. Another change during the run, on a machine other programs
    use too, is reported as a warning instead, since it cannot be told apart from theirs.
    """

    path: Path
    before: dict | None = None

    def start(self) -> None:
        self.before = tree_state(self.path)

    def problems(self, markers: list[str]) -> tuple[list[str], list[str]]:
        """(failures, warnings) about the directory since start()."""
        after = tree_state(self.path)
        if after == self.before:
            return [], []
        changed = sorted(k for k in set(self.before or {}) | set(after or {})
                         if (self.before or {}).get(k) != (after or {}).get(k))
        what = "created" if self.before is None else "changed"
        ours = [name for name in changed if self._names_any(self.path / name, markers)]
        if ours:
            return [f"{self.path} was {what} by the test run (tests must write into a temporary HOME): {ours}"], []
        return [], [f"{self.path} was {what} during the test run by another program (its files name none of "
                    f"this run's temporary directories): {changed}"]

    @staticmethod
    def _names_any(path: Path, markers: list[str]) -> bool:
        try:
            text = path.read_text(errors="replace") if path.is_file() else ""
        except OSError:
            return False
        return any(marker in text for marker in markers)


# --- Docker objects --------------------------------------------------------------------------------

def _lines(*argv: str) -> list[list[str]]:
    proc = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(argv)}: {proc.stderr.strip()}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line.strip()]


PROJECT = '{{.Label "com.docker.compose.project"}}'


def containers() -> dict[str, tuple[str, str, str]]:
    """id -> (name, compose project, testcontainers session) of every container."""
    rows = _lines("container", "ls", "-a", "--no-trunc", "--format",
                  "{{.ID}}\t{{.Names}}\t" + PROJECT + '\t{{.Label "org.testcontainers.session-id"}}')
    return {r[0]: (r[1], r[2], r[3]) for r in (row + ["", "", ""] for row in rows)}


def networks() -> dict[str, tuple[str, str]]:
    """id -> (name, compose project) of every network."""
    rows = _lines("network", "ls", "--no-trunc", "--format", "{{.ID}}\t{{.Name}}\t" + PROJECT)
    return {r[0]: (r[1], r[2]) for r in (row + ["", ""] for row in rows)}


def volumes() -> dict[str, str]:
    """name -> compose project of every volume."""
    rows = _lines("volume", "ls", "--format", "{{.Name}}\t" + PROJECT)
    return {r[0]: r[1] for r in (row + [""] for row in rows)}


@dataclass
class Snapshot:
    containers: dict[str, tuple[str, str, str]]
    networks: dict[str, tuple[str, str]]
    volumes: dict[str, str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(containers(), networks(), volumes())


@dataclass
class Ownership:
    """What marks an object as created by this run."""

    prefix: str  # of its compose project names and container names
    testcontainers_session: str = ""
    container_ids: set[str] = field(default_factory=set)  # seen created by this run (from events)
    mounted_volumes: set[str] = field(default_factory=set)  # mounted by those containers

    def container(self, cid: str, name: str, project: str, tc_session: str) -> bool:
        return (cid in self.container_ids or name.startswith(self.prefix) or project.startswith(self.prefix)
                or bool(self.testcontainers_session and tc_session == self.testcontainers_session))

    def read_events(self, lines: list[str]) -> None:
        """Learn our containers (create) and the volumes they mounted (mount) from `docker events` JSON."""
        events = [json.loads(line) for line in lines if line.strip().startswith("{")]
        for ev in events:
            attrs = (ev.get("Actor") or {}).get("Attributes") or {}
            if ev.get("Type") == "container" and (ev.get("Action") or ev.get("status")) == "create":
                if self.container("", attrs.get("name", ""), attrs.get("com.docker.compose.project", ""),
                                  attrs.get("org.testcontainers.session-id", "")):
                    self.container_ids.add(ev["Actor"]["ID"])
        for ev in events:
            attrs = (ev.get("Actor") or {}).get("Attributes") or {}
            if ev.get("Type") == "volume" and (ev.get("Action") or ev.get("status")) == "mount":
                if attrs.get("container") in self.container_ids:
                    self.mounted_volumes.add(ev["Actor"]["ID"])


def left_behind(before: Snapshot, after: Snapshot, ours: Ownership) -> dict[str, list[str]]:
    """Objects present after the run, absent before it, and created by it (pure)."""
    return {
        "containers": sorted(f"{name} ({cid[:12]})" for cid, (name, project, tc) in after.containers.items()
                             if cid not in before.containers and ours.container(cid, name, project, tc)),
        "networks": sorted(name for nid, (name, project) in after.networks.items()
                           if nid not in before.networks
                           and (name.startswith(ours.prefix) or project.startswith(ours.prefix))),
        "volumes": sorted(name for name, project in after.volumes.items()
                          if name not in before.volumes
                          and (name.startswith(ours.prefix) or project.startswith(ours.prefix)
                               or name in ours.mounted_volumes)),
    }


class DockerLedger:
    """Before/after record of the engine's objects, with an event stream to attribute anonymous volumes."""

    def __init__(self, prefix: str, testcontainers_session: str = "") -> None:
        self.ours = Ownership(prefix, testcontainers_session)
        self.before: Snapshot | None = None
        self._events: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile(mode="w+")

    def start(self) -> None:
        since = str(int(time.time()) - 1)
        self._events = subprocess.Popen(
            ["docker", "events", "--since", since, "--format", "{{json .}}",
             "--filter", "type=container", "--filter", "type=volume",
             "--filter", "event=create", "--filter", "event=mount"],
            stdout=self._log, stderr=subprocess.DEVNULL)
        self.before = Snapshot.take()

    def finish(self) -> dict[str, list[str]]:
        """What this run left behind (empty lists when nothing)."""
        assert self._events is not None and self.before is not None, "start() first"
        time.sleep(1)  # let the stream deliver the last events
        self._events.terminate()
        self._events.wait(timeout=30)
        self._log.seek(0)
        self.ours.read_events(self._log.read().splitlines())
        self._log.close()
        return left_behind(self.before, Snapshot.take(), self.ours)

    @staticmethod
    def remove(leaks: dict[str, list[str]]) -> None:
        """Remove what was left behind (after it was reported), containers first."""
        ids = [entry.rsplit("(", 1)[1].rstrip(")") for entry in leaks["containers"]]
        for argv, names in ((["container", "rm", "-f", "-v"], ids), (["network", "rm"], leaks["networks"]),
                            (["volume", "rm", "-f"], leaks["volumes"])):
            if names:
                subprocess.run(["docker", *argv, *names], capture_output=True, timeout=300)
