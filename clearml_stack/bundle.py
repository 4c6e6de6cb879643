"""`inv agents.bundle`: a tarball that turns another machine into worker agents of this server.

It holds a compose file (one agent service, scaled), the agent image's build context, ``agent.env``
with the agent key pair and nothing else secret (mode 0600 inside the archive), the connect script in
tunnel mode, a README with the two commands, and a Makefile. Rendering is pure; writing is one call.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from . import agents
from .clients import find_target
from .errors import StackError
from .fsutil import atomic_write
from .render.connect_script import render_connect_script
from .render.template import fill_file
from .settings import Settings
from .urls import ServerUrls, local_urls, public_urls

TOP = "clearml-agents"
CONNECT = "connect.sh"


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative to the bundle's top directory
    data: bytes
    mode: int = 0o644


def server_urls(settings: Settings) -> ServerUrls:
    """Where the bundle's agents reach the server: through the tunnel's local ports in tunnel mode
    (the ports connect.sh opens on 127.0.0.1), the public URLs in every other mode."""
    return local_urls(settings) if settings.mode == "tunnel" else public_urls(settings)


def connect_script(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """The generated tunnel script for a tunnel-mode bundle, or None when there is nothing to bake in.

    Its SSH target is ``CLEARML_SSH_TARGET`` or this Lightning Studio's address (see ``inv host``); it
    opens the server's own port numbers on 127.0.0.1, which is what ``server_urls`` gives the agents.
    """
    if settings.mode != "tunnel":
        return None
    target = find_target(settings, os.environ if environ is None else environ)
    return render_connect_script(settings, target) if target else None


def _yaml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def render(settings: Settings, replicas: int, queues: Sequence[str], connect: str | None,
           context: Path | None = None) -> list[BundleFile]:
    """Every file of the bundle (pure apart from reading the image's build context)."""
    if replicas < 1:
        raise StackError(f"--replicas {replicas}: must be 1 or more", "e.g. --replicas 2")
    names = [q for given in queues for q in agents.split_queues(given)] or \
        agents.split_queues(settings["CLEARML_AGENT_QUEUES"])
    context = context or agents.context_dir(settings.kit_root)
    urls = server_urls(settings)
    tunnel = settings.mode == "tunnel"
    values = {
        "server": public_urls(settings).web if not tunnel else f"{urls.web} (through connect.sh)",
        "image": agents.image_ref(settings, agents.context_digest(context)),
        "base_image": _yaml(agents.build_args(settings)["BASE_IMAGE"]),
        "agent_version": settings["CLEARML_AGENT_VERSION"],
        "apt_packages": _yaml(settings["CLEARML_AGENT_APT_PACKAGES"]),
        "replicas": str(replicas),
        "queues": " ".join(names),
        "api": urls.api,
        "web": urls.web,
        "files": urls.files,
        "reach": "the tunnel connect.sh opens on this machine's 127.0.0.1" if tunnel else "the server's public URLs",
    }
    compose_text = fill_file("agents/bundle/docker-compose.yml.tmpl", values)
    files = [BundleFile("docker-compose.yml", compose_text.encode()),
             BundleFile("agent.env", env_text(settings).encode(), 0o600)]
    if tunnel:
        if connect is not None:
            files.append(BundleFile(CONNECT, connect.encode(), 0o755))
            commands = "./connect.sh &          # keep the tunnel to the server open\ndocker compose up -d    # start the agents"
            commands_text = ("`./connect.sh` opens the SSH tunnel to the server (your SSH key must be accepted "
                             "there) and keeps it open; run it in the background as above, in tmux, or in a "
                             "second terminal. Then compose starts the agents, which reach the server through it.")
            connect_file = "\n- `connect.sh`: the SSH tunnel to the server (tunnel mode)."
        else:
            commands = ("./connect.sh &          # the tunnel script: get it on the server with `inv connect-script`\n"
                        "docker compose up -d    # start the agents")
            commands_text = ("The server runs in tunnel mode: copy `connect.sh` (made on the server with "
                             "`inv connect-script`) into this directory first.")
            connect_file = "\n- `connect.sh` (add it): the SSH tunnel to the server."
        up_deps, tunnel_needs, tunnel_stop = " connect", " and ssh", ", then `make disconnect` (or stop connect.sh)"
        connect_targets = (
            "\nconnect: ## open the tunnel to the server in the background (connect.log, connect.pid)\n"
            "\t@if [ -f connect.pid ] && kill -0 $$(cat connect.pid) 2>/dev/null; then echo 'tunnel already open';"
            " else nohup ./connect.sh > connect.log 2>&1 & echo $$! > connect.pid; sleep 3; fi\n"
            "\ndisconnect: ## close the tunnel\n"
            "\t@if [ -f connect.pid ]; then kill $$(cat connect.pid) 2>/dev/null; rm -f connect.pid; fi\n")
    else:
        commands = "docker compose up -d    # start the agents"
        commands_text = f"The agents reach the server at {urls.api} directly."
        connect_file = up_deps = tunnel_needs = tunnel_stop = connect_targets = ""
    files.append(BundleFile("README.md", fill_file("agents/bundle/README.md.tmpl", {
        "server": values["server"], "replicas": str(replicas), "queues": values["queues"],
        "tunnel_needs": tunnel_needs, "commands": commands, "commands_text": commands_text,
        "agent_version": values["agent_version"], "connect_file": connect_file, "tunnel_stop": tunnel_stop,
    }).encode()))
    files.append(BundleFile("Makefile", fill_file("agents/bundle/Makefile.tmpl", {
        "server": values["server"], "up_deps": up_deps, "connect_targets": connect_targets,
    }).encode()))
    for path in agents.context_files(context):
        rel = path.relative_to(context).as_posix()
        files.append(BundleFile(f"image/{rel}", path.read_bytes(), 0o755 if path.stat().st_mode & 0o111 else 0o644))
    files.append(BundleFile("state/slots/.keep", b""))
    return files


def env_text(settings: Settings) -> str:
    """``agent.env``: the agent key pair, nothing else."""
    return ("# ClearML agent credentials (the server's services_agent pair); keep this file private\n"
            f"CLEARML_API_ACCESS_KEY={settings.secret('CLEARML_AGENT_ACCESS_KEY')}\n"
            f"CLEARML_API_SECRET_KEY={settings.secret('CLEARML_AGENT_SECRET_KEY')}\n")


def tarball(files: Sequence[BundleFile], mtime: float | None = None) -> bytes:
    """The files as a gzip tarball under ``clearml-agents/`` with their modes (pure)."""
    mtime = time.time() if mtime is None else mtime
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        dirs = sorted({"/".join(f.path.split("/")[:i]) for f in files for i in range(1, f.path.count("/") + 1)})
        for d in ["", *dirs]:
            info = tarfile.TarInfo(f"{TOP}/{d}".rstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(mtime)
            tar.addfile(info)
        for f in files:
            info = tarfile.TarInfo(f"{TOP}/{f.path}")
            info.size, info.mode, info.mtime = len(f.data), f.mode, int(mtime)
            tar.addfile(info, io.BytesIO(f.data))
    return buf.getvalue()


def write(out: Path, data: bytes) -> None:
    """The tarball holds a credential: written atomically, mode 0600."""
    atomic_write(out, data, 0o600)
