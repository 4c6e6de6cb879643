"""Where people reach the server in each access mode (pure).

``public_urls(settings)`` is the one answer to "which web, API and file server URLs do browsers,
``clearml.conf`` and agents use": every mode, every TLS choice. Everything else (the printed next
steps, ``inv host``, client configs, the file server URL prefix async delete matches) derives from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from .access import gateway_public_port, public_scheme, studio_host
from .settings import Settings


@dataclass(frozen=True)
class ServerUrls:
    web: str
    api: str
    files: str


def lightning_host(environ: Mapping[str, str] | None = None) -> str:
    """This Lightning Studio's public host (``$LIGHTNING_CLOUDSPACE_HOST``), or "" elsewhere."""
    return studio_host(os.environ if environ is None else environ)


def public_urls(settings: Settings, hostname: str | None = None) -> ServerUrls:
    """The URLs users open and put in clearml.conf for the active mode.

    ``hostname`` is this machine's name for ports mode when CLEARML_DOMAIN is empty (default: the
    kernel's node name).
    """
    mode = settings.mode
    web, api, files = settings.port("web"), settings.port("api"), settings.port("files")
    if mode == "subdomains":
        d = settings.domain
        scheme = public_scheme(mode, settings.tls)
        port = gateway_public_port(settings.tls, settings.port("gateway"))
        suffix = f":{port}" if port else ""
        return ServerUrls(f"{scheme}://app.{d}{suffix}", f"{scheme}://api.{d}{suffix}",
                          f"{scheme}://files.{d}{suffix}")
    if mode == "lightning-proxy":
        host = settings.domain  # the Studio host; Lightning serves <port>-<host> over https
        return ServerUrls(f"https://{web}-{host}", f"https://{api}-{host}", f"https://{files}-{host}")
    if mode == "ports":
        host = settings.domain or hostname or os.uname().nodename
        return ServerUrls(f"http://{host}:{web}", f"http://{host}:{api}", f"http://{host}:{files}")
    return local_urls(settings)


def gateway_names(settings: Settings) -> tuple[str, str, str]:
    """The three host names the gateway serves (subdomains mode): app., api., files. of the domain."""
    d = settings.domain
    return f"app.{d}", f"api.{d}", f"files.{d}"


def local_urls(settings: Settings) -> ServerUrls:
    """The URLs on this host itself (ports are always published on loopback at least)."""
    return ServerUrls(
        f"http://localhost:{settings.port('web')}",
        f"http://localhost:{settings.port('api')}",
        f"http://localhost:{settings.port('files')}",
    )


def task_page(web: str, task_id: str, project_id: str = "") -> str:
    """The web UI page of a task (its console log), as the SDK links it (pure).

    Without the project id the UI takes ``*`` and finds the task's project itself.
    """
    return f"{web.rstrip('/')}/projects/{project_id or '*'}/tasks/{task_id}/output/log"


def api_probe_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.port('api')}"
