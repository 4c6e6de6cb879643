"""Access modes: how people reach the server, and what each mode needs (pure decisions).

- ``tunnel``: ports on 127.0.0.1 only; clients use SSH tunnels.
- ``lightning-proxy``: Lightning's port-prefixed public hosts (``8080-<studio host>``...); the web UI is
  told where the API and file server are (it cannot guess it from those host names).
- ``subdomains``: the nginx gateway on one port routes ``app./api./files.<domain>``; the login cookie
  is shared across the three names; TLS at the gateway or at a proxy in front of it.
- ``ports``: the official single-IP layout (8080/8008/8081) on all interfaces.

``CLEARML_DOMAIN`` is the public name for the mode: the base domain in subdomains mode, the Studio
host in lightning-proxy mode, the server's name in ports mode (optional there).
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

STUDIO_HOST_ENV = "LIGHTNING_CLOUDSPACE_HOST"
#: the one port a Lightning Studio exposes for a custom app; the gateway listens there by default
STUDIO_GATEWAY_PORT = 8000
TLS_AT_GATEWAY = ("self-signed", "provided")

_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_PORT_PREFIX = re.compile(r"\d{2,5}-")


def studio_host(environ: Mapping[str, str]) -> str:
    """The Lightning Studio's public host name, or "" when not on a Studio."""
    return environ.get(STUDIO_HOST_ENV, "").strip()


def default_domain(mode: str, host: str, gateway_port: int = STUDIO_GATEWAY_PORT) -> str:
    """What CLEARML_DOMAIN defaults to on a Studio whose host is ``host`` ("" when the mode has none).

    In subdomains mode it is the Studio's public name of the gateway port (``8000-<host>``).
    """
    if not host:
        return ""
    if mode == "subdomains":
        return f"{gateway_port}-{host}"
    if mode == "lightning-proxy":
        return host
    return ""


def problems(values: Mapping[str, str], bad: set[str]) -> list[str]:
    """Cross-field checks of the access settings (pure); ``bad`` holds keys already reported."""
    found: list[str] = []
    mode = values.get("CLEARML_ACCESS_MODE", "tunnel")
    domain = values.get("CLEARML_DOMAIN", "")
    if "CLEARML_DOMAIN" not in bad:
        if mode == "subdomains" and not domain:
            found.append(
                "CLEARML_DOMAIN='': subdomains mode needs a base domain; fix: run `inv install --domain "
                "clearml.example.com` (app., api. and files. of it must resolve to this host)"
            )
        elif mode == "subdomains" and _IPV4.fullmatch(domain):
            found.append(
                f"CLEARML_DOMAIN={domain!r}: subdomains mode needs a DNS name (app./api./files. of an IP address "
                f"do not exist); fix: use a name you control, a wildcard DNS name such as {domain}.nip.io, "
                "or ports mode for a bare IP"
            )
        elif mode == "lightning-proxy" and not domain:
            found.append(
                f"CLEARML_DOMAIN='': lightning-proxy mode needs the Studio host (${STUDIO_HOST_ENV}); fix: run "
                "`inv install --mode lightning-proxy` on the Studio, or set CLEARML_DOMAIN to that host"
            )
        elif mode == "lightning-proxy" and _PORT_PREFIX.match(domain):
            found.append(
                f"CLEARML_DOMAIN={domain!r}: give the Studio host without a port prefix (the kit adds 8080-, "
                f"8008-, 8081-); fix: set CLEARML_DOMAIN={domain.split('-', 1)[1]}"
            )
    tls = values.get("CLEARML_TLS", "off")
    if tls == "provided" and mode == "subdomains" and "CLEARML_TLS" not in bad:  # (k8s values need no files)
        for key in ("CLEARML_TLS_CERT", "CLEARML_TLS_KEY"):
            if not values.get(key) and key not in bad:
                found.append(f"{key}='': CLEARML_TLS=provided needs the certificate and key paths; fix: "
                             "`inv install --tls-cert FULLCHAIN.pem --tls-key KEY.pem`, or use --self-signed")
    http_port = values.get("CLEARML_GATEWAY_HTTP_PORT", "")
    if http_port and tls not in TLS_AT_GATEWAY and "CLEARML_GATEWAY_HTTP_PORT" not in bad and mode == "subdomains":
        found.append(f"CLEARML_GATEWAY_HTTP_PORT={http_port!r}: only used to redirect to HTTPS when the gateway "
                     "has TLS (CLEARML_TLS=self-signed or provided); fix: leave it empty, or turn TLS on")
    return found


def domain_updates(current: Mapping[str, str], updates: Mapping[str, str], environ: Mapping[str, str],
                   ask: Callable[[str], str] | None) -> dict[str, str]:
    """Settings `inv install` adds so the chosen mode has its public name (pure given ``ask``).

    ``current`` is the merged settings (file and environment) before this install, ``updates`` the
    flags. On a Lightning Studio the name defaults from ``$LIGHTNING_CLOUDSPACE_HOST`` (in subdomains
    mode also ``CLEARML_TLS=external``: Lightning's proxy ends TLS); elsewhere ``ask`` is called when
    there is a terminal, and with none the settings check fails with the fix.
    """
    mode = updates.get("CLEARML_ACCESS_MODE") or current.get("CLEARML_ACCESS_MODE") or "tunnel"
    if "CLEARML_DOMAIN" in updates or mode not in ("subdomains", "lightning-proxy"):
        return {}
    host = studio_host(environ)
    gateway = current.get("CLEARML_GATEWAY_PORT", "")
    gateway_port = int(gateway) if gateway.isdigit() else STUDIO_GATEWAY_PORT
    domain = current.get("CLEARML_DOMAIN", "")
    wanted = default_domain(mode, host, gateway_port)
    studio_defaults = {default_domain(m, host, gateway_port) for m in ("subdomains", "lightning-proxy")} - {""}
    switching_studio_mode = bool(domain) and domain in studio_defaults and domain != wanted
    if domain and not switching_studio_mode:
        return {}
    if "CLEARML_DOMAIN" in environ and not switching_studio_mode:
        return {}
    if host:
        found = {"CLEARML_DOMAIN": wanted}
        if (mode == "subdomains" and current.get("CLEARML_TLS", "off") == "off"
                and "CLEARML_TLS" not in updates and "CLEARML_TLS" not in environ):
            found["CLEARML_TLS"] = "external"
        return found
    if ask is None:
        return {}
    prompt = ("Base domain for subdomains mode (app./api./files.<domain> must reach this host): "
              if mode == "subdomains" else "Lightning Studio host (the part after '8080-' in its URLs): ")
    answer = ask(prompt).strip()
    return {"CLEARML_DOMAIN": answer} if answer else {}


#: (CLEARML_GATEWAY_PORT, CLEARML_GATEWAY_HTTP_PORT) subdomains mode gets off a Lightning Studio, per
#: CLEARML_TLS: the scheme's own port (HTTPS on 443 with a redirect from 80); behind a TLS proxy the
#: port only faces that proxy, so it keeps the template's 8000
OFF_STUDIO_GATEWAY_PORTS = {
    "off": ("80", ""),
    "self-signed": ("443", "80"),
    "provided": ("443", "80"),
    "external": (str(STUDIO_GATEWAY_PORT), ""),
}
GATEWAY_PORT_KEYS = ("CLEARML_GATEWAY_PORT", "CLEARML_GATEWAY_HTTP_PORT")
GATEWAY_PORT_NOTE = ("subdomains mode off a Lightning Studio listens on the scheme's own port: 443 (and 80 "
                     "redirecting to it) with TLS at the gateway, 80 without; set CLEARML_GATEWAY_PORT in the "
                     "settings file or the environment, or give --gateway-port, to choose another")


def gateway_port_updates(current: Mapping[str, str], updates: Mapping[str, str],
                         environ: Mapping[str, str]) -> dict[str, str]:
    """The gateway ports `inv install` sets off a Lightning Studio when the user chose none (pure).

    A Studio exposes 8000, so there the template's 8000 stays. Elsewhere, when subdomains mode is being
    chosen or its TLS setting changes, ports the kit itself picks (the template's 8000, or an earlier
    choice from :data:`OFF_STUDIO_GATEWAY_PORTS`) become 443 + 80 with TLS at the gateway and 80 without.
    A port given by a flag, set in the environment, or another number in the settings file is kept; the
    redirect port is then only cleared when TLS leaves the gateway (it would be refused otherwise).
    """
    mode = updates.get("CLEARML_ACCESS_MODE") or current.get("CLEARML_ACCESS_MODE") or "tunnel"
    if mode != "subdomains" or studio_host(environ):
        return {}
    old_tls = current.get("CLEARML_TLS", "off") or "off"
    new_tls = updates.get("CLEARML_TLS") or old_tls
    entering = current.get("CLEARML_ACCESS_MODE", "tunnel") != "subdomains"
    wanted = OFF_STUDIO_GATEWAY_PORTS.get(new_tls)
    if (not entering and new_tls == old_tls) or wanted is None:
        return {}  # nothing about the gateway changes (a second run keeps what is there), or a bad TLS value
    port_key, http_key = GATEWAY_PORT_KEYS
    given = {key for key in GATEWAY_PORT_KEYS if key in updates or key in environ}
    port, http = current.get(port_key, ""), current.get(http_key, "")
    kit_ports = {p for p, _ in OFF_STUDIO_GATEWAY_PORTS.values()}
    kit_http = {h for _, h in OFF_STUDIO_GATEWAY_PORTS.values()}
    found = {}
    port_chosen = port_key in given or port not in kit_ports
    if not port_chosen:
        found[port_key] = wanted[0]
    if http_key not in given and http in kit_http:
        found[http_key] = wanted[1] if not port_chosen or new_tls not in TLS_AT_GATEWAY else http
    return {key: value for key, value in found.items() if value != current.get(key, "")}


def public_scheme(mode: str, tls: str) -> str:
    """The scheme browsers and clients use for the gateway (subdomains mode) or the Studio proxy."""
    if mode == "lightning-proxy":
        return "https"
    return "https" if mode == "subdomains" and tls != "off" else "http"


def gateway_public_port(tls: str, port: int) -> int | None:
    """The port in public URLs of subdomains mode; None when it is the scheme's default."""
    if tls == "external":
        return None  # the proxy in front listens on 443
    default = 443 if tls in TLS_AT_GATEWAY else 80
    return None if port == default else port


# --- what `inv up` says about the mode (the settings object is duck-typed: no import cycle) ---------


def access_warnings(settings) -> list[tuple[str, str]]:  # noqa: ANN001
    """(message, fix) pairs printed at every `inv up` for risky access settings."""
    found = []
    everywhere = settings.public_bind == "0.0.0.0"
    where = "ALL interfaces" if everywhere else settings.public_bind
    if settings.mode == "ports":
        found.append((
            f"access mode 'ports': the web UI, API and file server listen on {where} over plain HTTP",
            "use tunnel or subdomains mode unless this host sits behind a firewall you control",
        ))
    if settings.mode == "subdomains" and settings.tls == "off" and everywhere:
        found.append((
            f"the gateway serves plain HTTP on {where}: logins and tokens cross the network unencrypted",
            "`inv install --self-signed` (or --tls-cert/--tls-key), or keep it behind a TLS proxy "
            "(CLEARML_TLS=external, CLEARML_PUBLIC_BIND=127.0.0.1 for cloudflared)",
        ))
    return found


def access_next_steps(settings) -> list[str]:  # noqa: ANN001
    """Mode-specific lines for the next steps `inv up` and `inv host` print: what clients need to reach it."""
    steps = []
    d = settings.domain
    if settings.mode == "subdomains":
        port = settings["CLEARML_GATEWAY_PORT"]
        if settings.tls == "external":
            steps.append(f"the TLS proxy in front (Lightning's port {port}, or cloudflared: `inv tunnel.cloudflare`) "
                         f"must send https://app.{d}, api.{d} and files.{d} to this host's port {port}")
        else:
            steps.append(f"app.{d}, api.{d} and files.{d} must reach this host's port {port}: DNS records "
                         f"(a wildcard *.{d} is simplest), a proxy in front, or on each client this line in "
                         f"/etc/hosts: <this host's IP> app.{d} api.{d} files.{d}")
        if settings.tls == "self-signed":
            from .gateway import ca_cert_path

            steps.append(f"browsers, the SDK and agents must trust the gateway's private CA {ca_cert_path(settings)}: "
                         "copy it to each client; `inv tls.show` prints how to trust it there")
    if settings.mode == "lightning-proxy":
        ports = ", ".join(settings[k] for k in ("CLEARML_WEB_PORT", "CLEARML_API_PORT", "CLEARML_FILES_PORT"))
        steps.append(f"ports {ports} must be exposed on the Studio (Lightning's port forwarding); "
                     "see the README for this mode's limits")
        steps.append("this mode's limits: the three ports are public (only the web login and tokens protect them), and the "
                     "login cookie does not reach the file server's host, so images the web UI loads from it "
                     "may fail; the SDK and agents are not affected")
    if settings.mode == "ports":
        ports = ", ".join(settings[k] for k in ("CLEARML_WEB_PORT", "CLEARML_API_PORT", "CLEARML_FILES_PORT"))
        steps.append(f"ports {ports} of this host must be reachable from the clients: open them in the firewall "
                     "to those clients only (every request is plain HTTP)")
    return steps
