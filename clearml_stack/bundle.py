"""`inv agents.bundle`: a tarball that turns another machine into worker agents of this server.

It holds a compose file (one agent service, scaled), the agent image's build context (without this
host's offline wheels: the other machine installs clearml-agent from PyPI), ``agent.env``
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
from .clients import ClientUrls, Credentials, LocalPorts, client_environment, client_urls, find_target
from .errors import StackError
from .fsutil import atomic_write
from .render.connect_script import render_connect_script
from .render.template import fill_file
from .settings import Settings

TOP = "clearml-agents"
CONNECT = "connect.sh"
CA_FILE = "tls/ca.crt"  # in the bundle: the gateway's self-signed CA (CLEARML_TLS=self-signed)
CA_IN_CONTAINER = "/etc/clearml-agent/ca.crt"
CA_BUNDLE_IN_CONTAINER = "/etc/clearml-agent/ca-bundle.pem"  # public CAs + CA_IN_CONTAINER, made at start


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative to the bundle's top directory
    data: bytes
    mode: int = 0o644


def server_urls(settings: Settings, local_ports: LocalPorts | None = None) -> ClientUrls:
    """Where the bundle's agents reach the server: exactly what a client gets (``inv client-config``),
    so through the tunnel's local ports in tunnel mode and the mode's public URLs otherwise."""
    return client_urls(settings, local_ports)


def agent_environment(settings: Settings, local_ports: LocalPorts | None = None) -> dict[str, str]:
    """The hosts and the agent key pair, generated like a client's (``clients.client_environment``)."""
    pair = Credentials(settings.secret("CLEARML_AGENT_ACCESS_KEY"), settings.secret("CLEARML_AGENT_SECRET_KEY"))
    return client_environment(settings, pair, local_ports)


def ca_certificate(settings: Settings) -> bytes | None:
    """The gateway's self-signed CA the agents must trust, or None when TLS is not self-signed here."""
    if settings.mode != "subdomains" or settings.tls != "self-signed":
        return None
    from .gateway import ca_cert_path

    path = ca_cert_path(settings)
    if not path.is_file():
        raise StackError(f"CLEARML_TLS=self-signed but the gateway's CA {path} does not exist yet",
                         "run `inv install` (or `inv up`), which makes it, then `inv agents.bundle` again")
    return path.read_bytes()


def connect_script(settings: Settings, environ: Mapping[str, str] | None = None,
                   local_ports: LocalPorts | None = None) -> str | None:
    """The generated tunnel script for a tunnel-mode bundle, or None when there is nothing to bake in.

    Its SSH target is ``CLEARML_SSH_TARGET`` or this Lightning Studio's address (see ``inv host``); it
    opens the server's own port numbers on 127.0.0.1, which is what ``server_urls`` gives the agents.
    """
    if settings.mode != "tunnel":
        return None
    target = find_target(settings, os.environ if environ is None else environ)
    return render_connect_script(settings, target, local_ports) if target else None


def _yaml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def render(settings: Settings, replicas: int, queues: Sequence[str], connect: str | None,
           context: Path | None = None, local_ports: LocalPorts | None = None) -> list[BundleFile]:
    """Every file of the bundle (pure apart from reading the image's build context and the gateway CA)."""
    if replicas < 1:
        raise StackError(f"--replicas {replicas}: must be 1 or more", "e.g. --replicas 2")
    names = [q for given in queues for q in agents.split_queues(given)] or \
        agents.split_queues(settings["CLEARML_AGENT_QUEUES"])
    context = context or agents.context_dir(settings.kit_root)
    urls = server_urls(settings, local_ports)
    env = agent_environment(settings, local_ports)
    ca = ca_certificate(settings)
    tunnel = settings.mode == "tunnel"
    values = {
        "server": urls.web if not tunnel else f"{urls.web} (through connect.sh)",
        "image": agents.image_ref(settings, agents.context_digest(context, agents.portable_context_files(context))),
        "base_image": _yaml(agents.build_args(settings)["BASE_IMAGE"]),
        "agent_version": settings["CLEARML_AGENT_VERSION"],
        "apt_packages": _yaml(settings["CLEARML_AGENT_APT_PACKAGES"]),
        "replicas": str(replicas),
        "queues": " ".join(names),
        "api": env["CLEARML_API_HOST"],
        "web": env["CLEARML_WEB_HOST"],
        "files": env["CLEARML_FILES_HOST"],
        "reach": "the tunnel connect.sh opens on this machine's 127.0.0.1" if tunnel else "the server's public URLs",
        "tls_env": "" if ca is None else (
            f"\n      # the gateway's self-signed CA ({CA_FILE}), trusted beside the public CAs\n"
            f"      AGENT_CA_CERT: {CA_IN_CONTAINER}\n"
            f"      REQUESTS_CA_BUNDLE: {CA_BUNDLE_IN_CONTAINER}\n"
            '      CLEARML_API_HOST_VERIFY_CERT: "true"'),
        "tls_volume": "" if ca is None else f"\n      - ./{CA_FILE}:{CA_IN_CONTAINER}:ro",
    }
    compose_text = fill_file("agents/bundle/docker-compose.yml.tmpl", values)
    files = [BundleFile("docker-compose.yml", compose_text.encode()),
             BundleFile("agent.env", env_text(env).encode(), 0o600)]
    if ca is not None:
        files.append(BundleFile(CA_FILE, ca))
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
        commands_text = f"The agents reach the server at {urls.api} directly." + (
            f" Its certificate is signed by the server's own CA, `{CA_FILE}`, which the agents trust." if ca else "")
        connect_file = up_deps = tunnel_needs = tunnel_stop = connect_targets = ""
    files.append(BundleFile("README.md", fill_file("agents/bundle/README.md.tmpl", {
        "server": values["server"], "replicas": str(replicas), "queues": values["queues"],
        "tunnel_needs": tunnel_needs, "commands": commands, "commands_text": commands_text,
        "agent_version": values["agent_version"], "connect_file": connect_file, "tunnel_stop": tunnel_stop,
    }).encode()))
    files.append(BundleFile("Makefile", fill_file("agents/bundle/Makefile.tmpl", {
        "server": values["server"], "up_deps": up_deps, "connect_targets": connect_targets,
    }).encode()))
    for path in agents.portable_context_files(context):  # never this host's wheels: the other CPU may differ
        rel = path.relative_to(context).as_posix()
        files.append(BundleFile(f"image/{rel}", path.read_bytes(), 0o755 if path.stat().st_mode & 0o111 else 0o644))
    files.append(BundleFile("state/slots/.keep", b""))
    return files


def env_text(env: Mapping[str, str]) -> str:
    """``agent.env``: the agent key pair of ``agent_environment``, nothing else."""
    return ("# ClearML agent credentials (the server's services_agent pair); keep this file private\n"
            f"CLEARML_API_ACCESS_KEY={env['CLEARML_API_ACCESS_KEY']}\n"
            f"CLEARML_API_SECRET_KEY={env['CLEARML_API_SECRET_KEY']}\n")


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
