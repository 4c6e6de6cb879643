"""The client's ``connect.sh``: SSH tunnels to the server with its address and ports baked in.

Every value enters the bash text through :func:`shlex.quote` (strings) or as a validated integer,
so nothing in the settings can inject shell code. The agent bundle reuses :func:`render_connect_script`.
"""

from __future__ import annotations

import shlex

from ..clients import LocalPorts, SshTarget, client_urls, server_ports
from ..settings import Settings
from .template import fill_file

TEMPLATE = "scripts/connect.sh.tmpl"


def _port(value: int) -> str:
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError(f"not a port: {value!r}")
    return str(port)


def render_connect_script(settings: Settings, target: SshTarget, local_ports: LocalPorts | None = None) -> str:
    """The text of ``connect.sh`` (pure): one tunnel per service from ``local_ports`` (default: the
    server's own ports) to the server's published ports on its loopback, through ``target``."""
    local = local_ports or server_ports(settings)
    remote = server_ports(settings)
    canonical_files = client_urls(settings, local).files
    return fill_file(
        TEMPLATE,
        {
            "target": shlex.quote(target.destination),
            "ssh_port": shlex.quote(_port(target.port) if target.port else ""),
            "local_web": _port(local.web),
            "local_api": _port(local.api),
            "local_files": _port(local.files),
            "remote_web": _port(remote.web),
            "remote_api": _port(remote.api),
            "remote_files": _port(remote.files),
            "server_files_url": shlex.quote(canonical_files),
            "access_mode": shlex.quote(settings.mode),
        },
    )
