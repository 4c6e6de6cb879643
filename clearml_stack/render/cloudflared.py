"""A cloudflared (Cloudflare Tunnel) configuration for the subdomain gateway (pure).

Cloudflare ends TLS at its edge and forwards each name to the gateway on this host, keeping the
Host header, so the gateway routes as usual. Its free Universal SSL certificate covers the zone and
one level below it (``*.example.com``), so the three names must be ``app.``, ``api.`` and ``files.``
directly under the zone: ``CLEARML_DOMAIN`` is the zone itself (ClearML's docs say the same; a
deeper name fails in browsers with ERR_SSL_VERSION_OR_CIPHER_MISMATCH).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from ..errors import StackError
from ..settings import Settings
from ..urls import gateway_names

HEADER = """\
# cloudflared configuration for clearml-lightning, written by `inv tunnel.cloudflare`: run that again
# after changing CLEARML_DOMAIN or CLEARML_GATEWAY_PORT instead of editing this file.
# Cloudflare ends TLS; every name goes to the gateway on this host, which routes by host name.
"""

_TUNNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True)
class TunnelPlan:
    text: str
    hostnames: tuple[str, ...]
    origin: str
    warnings: tuple[str, ...]
    commands: tuple[str, ...]


def origin_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.public_bind == "0.0.0.0" else settings.public_bind
    return f"http://{host}:{settings.port('gateway')}"


def plan(settings: Settings, tunnel: str, credentials_file: str, config_path: str) -> TunnelPlan:
    """The config text, the warnings and the commands to run, or a StackError saying what to change."""
    if settings.mode != "subdomains":
        raise StackError(
            f"CLEARML_ACCESS_MODE={settings.mode}: a Cloudflare tunnel fronts the subdomain gateway",
            "`inv install --mode subdomains --domain ZONE --tls external` (ZONE: your domain on Cloudflare, "
            "e.g. example.com), then run this again",
        )
    if settings.tls != "external":
        raise StackError(
            f"CLEARML_TLS={settings.tls}: Cloudflare ends TLS in front of the gateway, so the public URLs are "
            "https:// on port 443",
            "`inv install --tls external` (the gateway then speaks plain HTTP to cloudflared on this host)",
        )
    if not _TUNNEL_NAME.fullmatch(tunnel):
        raise StackError(f"--tunnel {tunnel!r}: a tunnel name is letters, digits, '.', '-' or '_'",
                         "e.g. --tunnel clearml")
    if credentials_file and ("\n" in credentials_file or not credentials_file.strip()):
        raise StackError(f"--credentials-file {credentials_file!r} is not a path", "give the JSON file's path")
    names = gateway_names(settings)
    origin = origin_url(settings)
    doc: dict = {"tunnel": tunnel}
    if credentials_file:
        doc["credentials-file"] = credentials_file
    # the Host header is set explicitly per name: the gateway routes by it
    doc["ingress"] = [{"hostname": n, "service": origin, "originRequest": {"httpHostHeader": n}} for n in names]
    doc["ingress"].append({"service": "http_status:404"})
    warnings = []
    labels = settings.domain.split(".")
    if re.match(r"\d+-", labels[0]):
        raise StackError(
            f"CLEARML_DOMAIN={settings.domain} is a Lightning Studio name; Cloudflare needs a zone you own",
            "`inv install --domain example.com` with your Cloudflare zone",
        )
    if len(labels) > 2:
        warnings.append(
            f"app.{settings.domain} is two levels below {'.'.join(labels[1:])}: Cloudflare's free certificate "
            f"covers only one level below the zone. Unless {settings.domain} is itself the zone, use the zone "
            "as CLEARML_DOMAIN (`inv install --domain example.com`)"
        )
    if settings.public_bind == "0.0.0.0":
        warnings.append(
            f"the gateway also listens on all interfaces (port {settings.port('gateway')}): anyone reaching "
            "this host there bypasses Cloudflare. Set CLEARML_PUBLIC_BIND=127.0.0.1 and run `inv up`"
        )
    commands = (
        "cloudflared tunnel login",
        f"cloudflared tunnel create {tunnel}",
        *(f"cloudflared tunnel route dns {tunnel} {n}" for n in names),
        f"cloudflared tunnel --config {config_path} run {tunnel}",
    )
    text = HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    return TunnelPlan(text, names, origin, tuple(warnings), commands)
