"""Where people reach the server in each access mode (pure)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from .settings import Settings


@dataclass(frozen=True)
class ServerUrls:
    web: str
    api: str
    files: str


def lightning_host(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get("LIGHTNING_CLOUDSPACE_HOST", "")


def public_urls(settings: Settings, environ: Mapping[str, str] | None = None) -> ServerUrls:
    """The URLs users open and put in clearml.conf for the active mode."""
    mode = settings.mode
    web, api, files = settings.port("web"), settings.port("api"), settings.port("files")
    if mode == "subdomains":
        tls = settings["CLEARML_TLS"] != "off"
        scheme = "https" if tls else "http"
        gw = settings.port("gateway")
        suffix = "" if (tls and gw == 443) or (not tls and gw == 80) or _behind_lightning(settings, environ) else f":{gw}"
        d = settings.domain
        return ServerUrls(f"{scheme}://app.{d}{suffix}", f"{scheme}://api.{d}{suffix}", f"{scheme}://files.{d}{suffix}")
    if mode == "lightning-proxy":
        host = lightning_host(environ) or "<LIGHTNING_CLOUDSPACE_HOST>"
        return ServerUrls(f"https://{web}-{host}", f"https://{api}-{host}", f"https://{files}-{host}")
    if mode == "ports":
        host = os.uname().nodename
        return ServerUrls(f"http://{host}:{web}", f"http://{host}:{api}", f"http://{host}:{files}")
    return local_urls(settings)


def _behind_lightning(settings: Settings, environ: Mapping[str, str] | None) -> bool:
    host = lightning_host(environ)
    return bool(host) and settings.domain.endswith(host)


def local_urls(settings: Settings) -> ServerUrls:
    """The URLs on this host itself (ports are always published on loopback at least)."""
    return ServerUrls(
        f"http://localhost:{settings.port('web')}",
        f"http://localhost:{settings.port('api')}",
        f"http://localhost:{settings.port('files')}",
    )


def api_probe_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.port('api')}"
