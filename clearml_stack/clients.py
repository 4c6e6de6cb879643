"""Client machines: where the tunnel goes, which local ports it uses, which URLs and credentials a
client's ``clearml.conf`` holds. Pure parsing and decisions; rendering is in ``render/`` and acting in
``tasks/clients.py``.

Reused by the agent bundle: :func:`client_urls`, :func:`client_environment`, and the renderers
``render.connect_script.render_connect_script`` and ``render.client_config.render_client_config``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from . import urls
from .errors import StackError
from .settings import HOSTNAME_RE, Settings

LIGHTNING_SSH_HOST = "ssh.lightning.ai"
SERVICES = ("web", "api", "files")

_USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_IPV4_RE = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")
_SPACE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
# credentials as the web UI issues them (letters, digits and a few url-safe signs), nothing that
# could be whitespace, a quote or a line break pasted by accident
_CREDENTIAL_RE = re.compile(r"[A-Za-z0-9._~+/=-]{8,256}")
_HOST_PORT_RE = re.compile(rf"(?:{HOSTNAME_RE}|{_IPV4_RE.pattern})(?::(\d{{1,5}}))?")


# --- the SSH target ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshTarget:
    """Where the tunnels go: ``user@host`` and an optional SSH port."""

    user: str
    host: str
    port: int | None = None

    @property
    def destination(self) -> str:
        """``user@host`` as ssh takes it."""
        return f"{self.user}@{self.host}"

    def __str__(self) -> str:
        return self.destination + (f":{self.port}" if self.port else "")


def target_problem(text: str) -> str | None:
    """Why ``text`` is not a ``USER@HOST[:PORT]`` target, or None (pure; the settings check)."""
    if text == "":
        return None
    try:
        parse_target(text)
    except StackError as exc:
        return exc.message
    return None


def parse_target(text: str) -> SshTarget:
    """``USER@HOST[:PORT]`` -> :class:`SshTarget`; anything else is refused with the reason."""
    fix = "give it as USER@HOST or USER@HOST:PORT, e.g. s_01abc@ssh.lightning.ai or alice@10.0.0.5:2222"
    if text.count("@") != 1:
        raise StackError(f"SSH target {text!r} must be USER@HOST[:PORT]", fix)
    user, rest = text.split("@")
    if not _USER_RE.fullmatch(user):
        raise StackError(f"SSH target {text!r}: user {user!r} must be letters, digits, '.', '_' or '-'", fix)
    host, port = rest, None
    if ":" in rest:
        host, port_text = rest.rsplit(":", 1)
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise StackError(f"SSH target {text!r}: port {port_text!r} must be a number from 1 to 65535", fix)
        port = int(port_text)
    if not (_IPV4_RE.fullmatch(host) or re.fullmatch(HOSTNAME_RE, host)):
        raise StackError(f"SSH target {text!r}: host {host!r} must be a DNS name or an IPv4 address", fix)
    return SshTarget(user, host, port)


def lightning_target(environ: Mapping[str, str]) -> SshTarget | None:
    """On a Lightning Studio: ``s_<LIGHTNING_CLOUD_SPACE_ID>@ssh.lightning.ai``; elsewhere None."""
    space = environ.get("LIGHTNING_CLOUD_SPACE_ID", "")
    if not space or not _SPACE_ID_RE.fullmatch(space):
        return None
    return SshTarget(f"s_{space}", LIGHTNING_SSH_HOST)


def resolve_target(given: str, settings: Settings, environ: Mapping[str, str]) -> SshTarget:
    """The target: ``--target``, else ``CLEARML_SSH_TARGET``, else this Studio's SSH address."""
    if given:
        return parse_target(given)
    configured = settings.values.get("CLEARML_SSH_TARGET", "")
    if configured:
        return parse_target(configured)
    found = lightning_target(environ)
    if found:
        return found
    raise StackError(
        "no SSH target: this is not a Lightning Studio, so the kit cannot guess how clients reach this host",
        "give the address clients ssh to: `inv connect-script --target USER@HOST[:PORT]` "
        "(or set CLEARML_SSH_TARGET in the settings file)",
    )


def find_target(settings: Settings, environ: Mapping[str, str]) -> SshTarget | None:
    """Like :func:`resolve_target` without ``--target``, but None when nothing is known."""
    try:
        return resolve_target("", settings, environ)
    except StackError:
        return None


# --- local ports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalPorts:
    """The ports the tunnels listen on at the client (127.0.0.1)."""

    web: int
    api: int
    files: int

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.web, self.api, self.files)


def server_ports(settings: Settings) -> LocalPorts:
    """The server's own published ports: the default local ports of a tunnel."""
    return LocalPorts(settings.port("web"), settings.port("api"), settings.port("files"))


def parse_local_ports(text: str) -> LocalPorts:
    """``WEB,API,FILES`` -> :class:`LocalPorts`: three different ports from 1024 to 65535."""
    fix = "give three different ports as WEB,API,FILES, e.g. --local-ports 18080,18008,18081"
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise StackError(f"--local-ports {text!r} must list exactly three ports (web, API, files)", fix)
    ports = []
    for name, part in zip(("web", "API", "files"), parts):
        if not part.isdigit() or not 1024 <= int(part) <= 65535:
            raise StackError(f"--local-ports {text!r}: the {name} port {part!r} must be a number from 1024 to 65535 "
                             "(lower ports need root)", fix)
        ports.append(int(part))
    if len(set(ports)) != 3:
        raise StackError(f"--local-ports {text!r}: the three ports must differ", fix)
    return LocalPorts(*ports)


# --- what a client's clearml.conf holds ----------------------------------------------------------


@dataclass(frozen=True)
class ClientUrls:
    """The three URLs a client uses, plus the path substitution a tunnel with other ports needs.

    ``files`` is always the canonical file server URL (the one artifact URLs are registered with);
    ``substitution`` maps it to the URL this client reaches it at, when they differ.
    """

    web: str
    api: str
    files: str
    substitution: tuple[str, str] | None = None

    @property
    def files_local(self) -> str:
        return self.substitution[1] if self.substitution else self.files


def local_url(port: int) -> str:
    return f"http://localhost:{port}"


def client_urls(settings: Settings, local_ports: LocalPorts | None = None) -> ClientUrls:
    """The URLs for a client in the active mode (pure).

    tunnel: web and API at the tunnel's local ports; files at the canonical URL with a substitution
    to the tunnel's local files port when it differs. Other modes: the mode's public URLs.
    """
    public = urls.public_urls(settings)
    if settings.mode != "tunnel":
        return ClientUrls(public.web, public.api, public.files)
    ports = local_ports or server_ports(settings)
    files_local = local_url(ports.files)
    substitution = (public.files, files_local) if files_local != public.files else None
    return ClientUrls(local_url(ports.web), local_url(ports.api), public.files, substitution)


@dataclass(frozen=True)
class Credentials:
    """An API access key and secret key (created in the web UI under Settings > Workspace)."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:  # never show the secret in tracebacks or logs
        return f"Credentials(access_key={self.access_key!r}, secret_key='********')"


def check_credentials(access_key: str, secret_key: str) -> Credentials:
    """Both keys present and plausible, or one message naming which is wrong (values not shown)."""
    fix = ("copy both from the web UI: Settings > Workspace > Create new credentials "
           "(pipe the whole snippet into `inv client-config --credentials-stdin`)")
    for name, value in (("access key", access_key), ("secret key", secret_key)):
        if not value:
            raise StackError(f"the {name} is missing", fix)
        if not _CREDENTIAL_RE.fullmatch(value):
            raise StackError(f"the {name} ({len(value)} characters) has characters an API key never has "
                             "(spaces, quotes, line breaks?) or is shorter than 8", fix)
    return Credentials(access_key, secret_key)


_SNIPPET_KEY_RE = re.compile(r"""["']?(access_key|secret_key)["']?\s*[:=]\s*["']?([^"'\s,}]+)["']?""")


def parse_credentials_text(text: str) -> Credentials:
    """Credentials from stdin: the web UI's clearml.conf snippet, or ``ACCESS SECRET`` (one or two lines)."""
    found = dict((m.group(1), m.group(2)) for m in _SNIPPET_KEY_RE.finditer(text))
    if found:
        return check_credentials(found.get("access_key", ""), found.get("secret_key", ""))
    words = text.split()
    if len(words) != 2:
        raise StackError(
            f"stdin held {len(words)} words; expected the access key and the secret key, or the web UI's snippet",
            "pipe either `printf '%s\\n%s\\n' KEY SECRET` or the snippet the web UI shows into "
            "`inv client-config --credentials-stdin`",
        )
    return check_credentials(words[0], words[1])


def client_environment(settings: Settings, credentials: Credentials,
                       local_ports: LocalPorts | None = None) -> dict[str, str]:
    """The SDK/agent environment variables for a client (they override clearml.conf).

    Environment variables cannot express ``sdk.storage.path_substitution``: a tunnel whose local files
    port differs from the server's needs the clearml.conf from ``render_client_config`` instead.
    """
    found = client_urls(settings, local_ports)
    return {
        "CLEARML_WEB_HOST": found.web,
        "CLEARML_API_HOST": found.api,
        "CLEARML_FILES_HOST": found.files_local,
        "CLEARML_API_ACCESS_KEY": credentials.access_key,
        "CLEARML_API_SECRET_KEY": credentials.secret_key,
    }


# --- object storage ------------------------------------------------------------------------------

OUTPUT_URI_SCHEMES = ("s3", "gs", "azure", "http", "https", "file")


def check_output_uri(uri: str) -> str:
    """A default output URI such as ``s3://host:9000/bucket/path`` (empty is fine: no default)."""
    if uri == "":
        return uri
    fix = "give a URI like s3://bucket/path, s3://minio.local:9000/bucket/path, gs://bucket/path or file:///data"
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in OUTPUT_URI_SCHEMES:
        raise StackError(f"--output-uri {uri!r} must start with one of: "
                         + ", ".join(s + "://" for s in OUTPUT_URI_SCHEMES), fix)
    if any(ch.isspace() or ch in "\"'\\{}" for ch in uri) or len(uri) > 1024:
        raise StackError(f"--output-uri {uri!r} has spaces, quotes, backslashes or braces", fix)
    return uri


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible store (MinIO, Ceph...): credentials come from the AWS credentials chain."""

    host: str  # host[:port], no scheme
    secure: bool = True  # https
    verify: bool = True  # check its certificate


def parse_s3_endpoint(text: str, no_tls: bool = False, no_verify: bool = False) -> S3Endpoint:
    """``HOST[:PORT]`` of an S3-compatible endpoint; ``no_tls``: plain http; ``no_verify``: self-signed."""
    fix = "give HOST or HOST:PORT without a scheme, e.g. --s3-endpoint minio.local:9000 (add --s3-no-tls for http)"
    if "://" in text:
        scheme, rest = text.split("://", 1)
        raise StackError(f"--s3-endpoint {text!r} must not include a scheme",
                         f"use --s3-endpoint {rest.rstrip('/')}" + (" --s3-no-tls" if scheme == "http" else ""))
    match = _HOST_PORT_RE.fullmatch(text)
    if not match or (match.group(1) and not 1 <= int(match.group(1)) <= 65535):
        raise StackError(f"--s3-endpoint {text!r} must be HOST or HOST:PORT", fix)
    return S3Endpoint(text, secure=not no_tls, verify=not (no_tls or no_verify))


# --- how to connect (inv host) -------------------------------------------------------------------

_MODE_SUMMARY = {
    "tunnel": "the server listens on 127.0.0.1 only; client machines reach it through SSH tunnels (connect.sh)",
    "lightning-proxy": "clients reach the server through this Lightning Studio's port-prefixed public hosts",
    "subdomains": "clients reach the server through the gateway's app./api./files. names",
    "ports": "the server's ports are open on every interface of this host",
}


def _scp_command(target: SshTarget, path: str, dest: str) -> str:
    import shlex

    port = f"-P {target.port} " if target.port else ""
    return f"scp {port}{shlex.quote(target.destination + ':' + path)} {dest}"


def connection_guide(settings: Settings, target: SshTarget | None, script_path: str, config_path: str) -> str:
    """What `inv host` prints for the active mode: the URLs, the exact client commands, next steps (pure).

    ``script_path``/``config_path``: where `inv connect-script`/`inv client-config` write by default.
    """
    import shlex

    found = client_urls(settings)
    tunnel = settings.mode == "tunnel"
    lines = [f"Access mode {settings.mode}: {_MODE_SUMMARY.get(settings.mode, '')}.", ""]
    if tunnel:
        if target:
            lines += [
                "1. On this server, write the tunnel script:",
                f"     inv connect-script      # tunnels through {target}",
                "2. On each client machine (Linux or macOS with bash and ssh; autossh recommended), fetch it and",
                "   keep it running (Ctrl-C closes the tunnels):",
                f"     {_scp_command(target, script_path, '.')}",
            ]
        else:
            lines += [
                "1. On this server, write the tunnel script with the address clients ssh to:",
                "     inv connect-script --target USER@HOST[:PORT]",
                "   (or set CLEARML_SSH_TARGET in the settings file; on a Lightning Studio it is found by itself)",
                "2. Copy connect.sh to each client machine (Linux or macOS with bash and ssh; autossh",
                "   recommended) and keep it running (Ctrl-C closes the tunnels):",
            ]
        lines += [
            "     bash connect.sh",
            "   and in another terminal check that the server answers through it:",
            "     bash connect.sh --check",
            "",
            "With the tunnels open, the client uses:",
        ]
    else:
        lines += ["Browsers and client machines use (no tunnel needed):"]
    copy = (f"     {_scp_command(target, config_path, '~/clearml.conf')}" if tunnel and target
            else f"  and copy {shlex.quote(config_path)} to the client as ~/clearml.conf.")
    from .access import access_next_steps

    lines += [
        f"  web UI       {found.web}",
        f"  API server   {found.api}",
        f"  file server  {found.files}",
        "",
        "Next steps:",
        *(f"- {step}." for step in access_next_steps(settings)),
        f"- Open {found.web}, sign in, and create API credentials: Settings > Workspace > Create new credentials.",
        "- Make the client's clearml.conf here by pasting the snippet the web UI shows into",
        "     inv client-config --credentials-stdin",
        *(["  and fetch it on the client:", copy] if tunnel and target else [copy]),
        "- On the client: pip install clearml, then run a script that calls Task.init(project_name=..., task_name=...).",
    ]
    return "\n".join(lines)
