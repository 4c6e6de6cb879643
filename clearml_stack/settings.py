"""Settings: every key the kit reads, its default, its check, and one typed object loaded once.

Precedence (as docker compose does it): environment variable > ``.env`` > default.
Every error names the key, the bad value and the fix; loading never writes anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from . import kubenames, versions
from .envfile import parse_env
from .errors import StackError

KIT_ROOT = Path(__file__).resolve().parent.parent
MODES = ("tunnel", "lightning-proxy", "subdomains", "ports")
EXPOSE_CHOICES = ("no", "loopback", "all")
TLS_CHOICES = ("off", "self-signed", "provided", "external")
STORE_PORT_KEYS = ("CLEARML_MONGO_PORT", "CLEARML_ELASTIC_PORT", "CLEARML_REDIS_PORT")

Check = Callable[[str], "str | None"]  # returns the reason a value is bad, or None


# --- checks -------------------------------------------------------------------------------


def _choice(options: tuple[str, ...]) -> Check:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _port(v: str) -> str | None:
    if not v.isdigit() or not 1 <= int(v) <= 65535:
        return "must be a port number between 1 and 65535"
    return None


def _optional_port(v: str) -> str | None:
    return None if v == "" else _port(v)


def _ipv4(v: str) -> str | None:
    parts = v.split(".")
    if len(parts) == 4 and all(p.isdigit() and int(p) <= 255 and str(int(p)) == p for p in parts):
        return None
    return "must be an IPv4 address such as 0.0.0.0 or 127.0.0.1"


def _positive_int(v: str) -> str | None:
    return None if v.isdigit() and int(v) > 0 else "must be a whole number above 0"


def _regex(pattern: str, reason: str) -> Check:
    compiled = re.compile(pattern)
    return lambda v: None if compiled.fullmatch(v) else reason


def _image(v: str) -> str | None:
    if v == "":
        return None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*", v):
        return "must be an image reference like registry/name:tag (no spaces or quotes)"
    if v.rsplit("/", 1)[-1].endswith(":latest"):
        return "must pin a version: 'latest' changes under you and breaks upgrades"
    return None


def _bool(v: str) -> str | None:
    return None if v.lower() in ("true", "false", "yes", "no", "1", "0") else "must be true or false"


HOSTNAME_RE = r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"


def check_domain(v: str) -> str | None:
    """A bare DNS name: no scheme, path, port, spaces, braces or semicolons."""
    if v == "":
        return None
    if "://" in v:
        return "must be a bare host name without a scheme (drop 'http://' or 'https://')"
    if "/" in v:
        return "must be a bare host name without a path"
    if not re.fullmatch(HOSTNAME_RE, v):
        return "must be a DNS name made of letters, digits, '-' and '.' (no spaces, braces, ';' or ports)"
    return None


def _secret(min_len: int) -> Check:
    def check(v: str) -> str | None:
        if v == "":
            return None  # filled in by `inv install`
        if not re.fullmatch(r"[A-Za-z0-9]+", v):
            return "must be letters and digits only"
        if v.isdigit():
            return "must not be digits only (the server would read it as a number)"
        if len(v) < min_len:
            return f"must be at least {min_len} characters"
        return None

    return check


def _control_chars(v: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in v)


def _one_line(v: str) -> str | None:
    """Free text (user names, keys, tokens): anything on one line."""
    return "must be one line without control characters (no newline or tab)" if _control_chars(v) else None


def _path(v: str) -> str | None:
    """A host path compose may mount: ':' would split the mount and a newline would cut the line."""
    if not v.strip():
        return "must be a path, not empty"
    if _control_chars(v):
        return "must be a path on one line (no newline, tab or other control character)"
    if ":" in v:
        return "must not contain ':' (docker compose splits volume mounts at ':', so the mount would break)"
    return None


def _optional_path(v: str) -> str | None:
    return None if v == "" else _path(v)


def _host_file(v: str) -> str | None:
    """An absolute host path compose can mount (its existence is checked before agents start)."""
    if v == "":
        return None
    if not v.startswith("/"):
        return "must be an absolute path on this host"
    if any(ch in v for ch in ":,\n\"'$") or v.strip() != v:
        return "must be a path without ':', ',', quotes, '$', line breaks or surrounding spaces (compose mounts it)"
    return None


def _anything(v: str) -> str | None:
    return None


def _ssh_target(v: str) -> str | None:
    from .clients import target_problem  # lazily: clients imports this module

    return target_problem(v)


# --- the settings table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    key: str
    default: str
    help: str
    check: Check = _anything
    fix: str = ""
    secret: bool = False  # generated by `inv install`
    sensitive: bool = False  # given by the user (a password or key): masked like secrets, never generated

    @property
    def validated(self) -> bool:
        """True when the setting has a check of its own (every value it refuses is named with a fix)."""
        return self.check is not _anything


_GEN = "generated by `inv install`; keep it secret"

SETTINGS: tuple[Setting, ...] = (
    # where things live
    Setting("CLEARML_DATA_DIR", "./data", "Data directory (relative paths start at this file's folder)", _path,
            "set a writable directory without ':', e.g. ./data or /opt/clearml"),
    Setting("CLEARML_USERS_FILE", "users.json", "Web login users file (bcrypt hashes only, mode 0600)", _path,
            "set a file path without ':', e.g. users.json"),
    Setting("CLEARML_BACKUP_DIR", "backups", "Where `inv backup` writes archives (relative: beside this file)",
            _path, "set a directory without ':' outside the data directory, e.g. backups or /var/backups/clearml"),
    Setting("COMPOSE_PROJECT_NAME", "clearml", "Compose project name (prefix of containers and networks)",
            _regex(r"[a-z0-9][a-z0-9_-]*", "must be lowercase letters, digits, '-' or '_'"),
            "use a name like clearml"),
    # what runs
    Setting("CLEARML_SERVER_VERSION", versions.DEFAULT_VERSION, "ClearML server release the stack runs",
            _regex(r"\d+\.\d+\.\d+(?:-\d+)?", "must be a release number like 2.3.0"),
            f"use one of: {', '.join(versions.known_versions())}"),
    Setting("IMAGE_REGISTRY", "", "Prefix for every image, for a private mirror (e.g. registry.local:5000/)",
            _regex(r"(?:[A-Za-z0-9][A-Za-z0-9._:/-]*/)?", "must be empty or end with '/'"),
            "e.g. registry.local:5000/ (with the trailing slash)"),
    Setting("CLEARML_SERVER_IMAGE", "", "ClearML server image; empty: clearml/server at CLEARML_SERVER_VERSION",
            _image, "give name:tag, or a name without tag to use the release's tag"),
    Setting("MONGO_IMAGE", "", "MongoDB image; empty: the one pinned for the release", _image,
            "give name:tag, or a name without tag to use the release's tag"),
    Setting("ELASTIC_IMAGE", "", "Elasticsearch image; empty: the one pinned for the release", _image,
            "give name:tag, or a name without tag to use the release's tag"),
    Setting("REDIS_IMAGE", "", "Redis image; empty: the one pinned for the release", _image,
            "give name:tag, or a name without tag to use the release's tag"),
    Setting("NGINX_IMAGE", "", "nginx image for the subdomain gateway; empty: the kit's pinned nginx", _image,
            "give name:tag"),
    # how people reach it
    Setting("CLEARML_ACCESS_MODE", "tunnel", "tunnel | lightning-proxy | subdomains | ports (see README)",
            _choice(MODES), "pick one of: " + ", ".join(MODES)),
    Setting("CLEARML_DOMAIN", "", "Public name: base domain in subdomains mode (app./api./files.<domain>), the "
            "Studio host in lightning-proxy mode, the server's name in ports mode", check_domain,
            "use a bare name like clearml.example.com, or run `inv install --domain NAME`"),
    Setting("CLEARML_TLS", "off", "TLS at the gateway (subdomains mode): off | self-signed | provided | external "
            "(a proxy in front ends TLS: Lightning, Cloudflare)",
            _choice(TLS_CHOICES), "use off, self-signed, provided (with the two paths below) or external"),
    Setting("CLEARML_TLS_CERT", "", "Certificate chain (PEM) when CLEARML_TLS=provided", _optional_path,
            "give the path of a PEM file without ':', e.g. /etc/letsencrypt/live/example.com/fullchain.pem"),
    Setting("CLEARML_TLS_KEY", "", "Private key (PEM) when CLEARML_TLS=provided", _optional_path,
            "give the path of a PEM file without ':', e.g. /etc/letsencrypt/live/example.com/privkey.pem"),
    Setting("CLEARML_PUBLIC_BIND", "0.0.0.0", "Address the mode's public ports listen on (the gateway; web/API/files "
            "in ports and lightning-proxy modes); 127.0.0.1 keeps them on this host", _ipv4,
            "use 0.0.0.0 (all interfaces), 127.0.0.1 (behind cloudflared or a proxy on this host) or one address"),
    Setting("CLEARML_GATEWAY_HTTP_PORT", "", "Extra plain-HTTP gateway port redirecting to HTTPS (e.g. 80 when "
            "CLEARML_GATEWAY_PORT=443); empty: none", _optional_port, "give a free port such as 80, or leave it empty"),
    Setting("CLEARML_SERVICES_AGENT", "true", "Run the services agent (agents layer) with the server", _bool,
            "use true or false"),
    Setting("CLEARML_WEB_PORT", "8080", "Host port of the web UI", _port, "pick a free port, e.g. 8080"),
    Setting("CLEARML_API_PORT", "8008", "Host port of the API server", _port, "pick a free port, e.g. 8008"),
    Setting("CLEARML_FILES_PORT", "8081", "Host port of the file server", _port, "pick a free port, e.g. 8081"),
    Setting("CLEARML_GATEWAY_PORT", "8000", "Host port of the nginx gateway (subdomains mode; `inv install` makes it "
            "443 with TLS at the gateway, 80 without, except on a Lightning Studio)", _port,
            "pick a free port, e.g. 8000 on a Lightning Studio, 80 elsewhere"),
    Setting("CLEARML_EXPOSE_STORES", "no", "Publish Mongo/Elasticsearch/Redis ports: no | loopback | all",
            _choice(EXPOSE_CHOICES), "use no (safe), loopback (127.0.0.1 only) or all (warned about)"),
    # store ports (only published when CLEARML_EXPOSE_STORES is loopback or all)
    Setting("CLEARML_MONGO_PORT", "27017", "Host port of MongoDB when stores are exposed", _port,
            "pick a free port, e.g. 27017"),
    Setting("CLEARML_ELASTIC_PORT", "9200", "Host port of Elasticsearch when stores are exposed", _port,
            "pick a free port, e.g. 9200"),
    Setting("CLEARML_REDIS_PORT", "6379", "Host port of Redis when stores are exposed", _port,
            "pick a free port, e.g. 6379"),
    # client machines (connect.sh, clearml.conf)
    Setting("CLEARML_SSH_TARGET", "", "USER@HOST[:PORT] client machines ssh to for their tunnels; empty: "
            "s_<LIGHTNING_CLOUD_SPACE_ID>@ssh.lightning.ai on a Lightning Studio", _ssh_target,
            "e.g. alice@clearml.example.com or alice@10.0.0.5:2222"),
    # tuning
    Setting("CLEARML_ES_HEAP", "auto", "Elasticsearch heap, e.g. 2g or 512m; auto: a quarter of RAM, 1g to 4g",
            _regex(r"auto|[1-9][0-9]*[mg]", "must be auto or a size like 2g or 512m"), "use e.g. 2g"),
    Setting("CLEARML_ES_NOFILE", "65536", "Elasticsearch open-files limit (official: 65536; at most the engine's own limit)",
            _positive_int, "use 65536, or the Docker engine's limit if it is lower"),
    Setting("CLEARML_ES_MEMLOCK", "unlimited", "Elasticsearch locked-memory limit: unlimited (official) or bytes",
            _regex(r"unlimited|[1-9][0-9]*", "must be unlimited or a number of bytes"),
            "use unlimited, or the Docker engine's limit if it cannot grant that"),
    Setting("CLEARML_WAIT_TIMEOUT", "300", "Seconds `inv up` waits for every service to be healthy",
            _positive_int, "use e.g. 300"),
    Setting("CLEARML_HEALTHCHECK_INTERVAL", "5s", "How often each container's healthcheck runs (e.g. 5s, 1s)",
            _regex(r"[1-9][0-9]*(?:ms|s|m)", "must be a duration like 5s, 500ms or 1m"), "use e.g. 5s"),
    Setting("CLEARML_WATCHDOG_THRESHOLD_SEC", "7200", "Running tasks silent this long are stopped by the server",
            _positive_int, "use seconds, e.g. 7200"),
    Setting("CLEARML_WATCHDOG_INTERVAL_SEC", "900", "How often the server's task watchdog runs", _positive_int,
            "use seconds, e.g. 900"),
    # Kubernetes hand-off: `inv k8s.values` (values for the official Helm charts)
    Setting("CLEARML_K8S_NAMESPACE", "clearml", "Kubernetes namespace the Helm charts are installed in",
            kubenames.dns_label, "use a name like clearml"),
    Setting("CLEARML_K8S_INGRESS_CLASS", "", "Ingress class for app./api./files.; empty: the cluster's default",
            kubenames.optional_dns_subdomain, "use e.g. nginx, or leave empty"),
    Setting("CLEARML_K8S_TLS_SECRET", "clearml-tls", "Kubernetes TLS Secret the ingresses use when CLEARML_TLS is on",
            kubenames.dns_subdomain, "use a name like clearml-tls"),
    Setting("CLEARML_K8S_STORAGE_CLASS", "", "Storage class of every volume; empty: the cluster's default",
            kubenames.optional_dns_subdomain, "use e.g. gp3 or standard, or leave empty"),
    Setting("CLEARML_K8S_FILESERVER_SIZE", "50Gi", "Volume size for uploaded files and artifacts", kubenames.quantity,
            "use e.g. 50Gi"),
    Setting("CLEARML_K8S_MONGO_SIZE", "50Gi", "Volume size for the bundled MongoDB", kubenames.quantity, "use e.g. 50Gi"),
    Setting("CLEARML_K8S_ELASTIC_SIZE", "50Gi", "Volume size for the bundled Elasticsearch", kubenames.quantity,
            "use e.g. 50Gi"),
    Setting("CLEARML_K8S_REDIS_SIZE", "5Gi", "Volume size for the bundled Redis", kubenames.quantity, "use e.g. 5Gi"),
    Setting("CLEARML_EXTERNAL_MONGO_URI", "", "With --external-stores: MongoDB URI without a database path",
            kubenames.mongo_uri, "use e.g. mongodb://mongo.example.com:27017"),
    Setting("CLEARML_EXTERNAL_ELASTIC_HOSTS", "", "With --external-stores: Elasticsearch nodes as host:port,host:port",
            kubenames.host_port_list, "use e.g. es1.example.com:9200"),
    Setting("CLEARML_EXTERNAL_REDIS_HOST", "", "With --external-stores: Redis host name", kubenames.optional_host,
            "use e.g. redis.example.com"),
    Setting("CLEARML_EXTERNAL_REDIS_PORT", "6379", "With --external-stores: Redis port", _port, "use e.g. 6379"),
    # agents (services agent, workers on this host, bundles for other machines)
    Setting("CLEARML_AGENT_VERSION", "3.0.3", "clearml-agent release baked into the agent image (never self-updates)",
            _regex(r"\d+\.\d+\.\d+(?:\.\d+)?", "must be a release number like 3.0.3"), "use e.g. 3.0.3"),
    Setting("CLEARML_AGENT_BASE_IMAGE", "python:3.11.13-slim-bookworm", "Pinned Python image the agent image is built on",
            _image, "give name:tag of a Debian-based Python image"),
    Setting("CLEARML_AGENT_APT_PACKAGES", "git docker.io", "Debian packages added to the agent image (git clones "
            "task code; docker.io is the docker CLI for docker/services mode)",
            _regex(r"[a-z0-9][a-z0-9.+-]*(?: [a-z0-9][a-z0-9.+-]*)*|", "must be Debian package names separated by spaces"),
            "e.g. git docker.io"),
    Setting("CLEARML_AGENT_DEFAULT_DOCKER", "python:3.11.13-bookworm", "Default image of task containers (docker "
            "and services mode)", _image, "give name:tag, e.g. nvidia/cuda:12.4.1-runtime-ubuntu22.04 for GPUs"),
    Setting("CLEARML_SERVICES_QUEUE", "services", "Queue the services agent serves",
            _regex(r"[A-Za-z0-9_.-]+", "must be a queue name (letters, digits, '_', '.', '-')"), "e.g. services"),
    Setting("CLEARML_SERVICES_CONCURRENCY", "0", "Most services tasks the services agent runs at once (0: no limit)",
            _regex(r"[0-9]+", "must be a whole number (0: no limit)"), "e.g. 4"),
    Setting("CLEARML_AGENT_MODE", "venv", "Worker agents: venv (tasks run in the agent's container) or docker "
            "(each task in its own container; mounts the docker socket)", _choice(("venv", "docker")),
            "use venv or docker"),
    Setting("CLEARML_AGENT_QUEUES", "default", "Queues worker agents serve, first has priority (`inv agents.up --queue`)",
            _regex(r"[A-Za-z0-9_.-]+(?:[ ,]+[A-Za-z0-9_.-]+)*", "must be queue names separated by spaces or commas"),
            "e.g. default or 'gpu default'"),
    Setting("CLEARML_AGENT_REPLICAS", "0", "Worker agents on this host (`inv agents.up --replicas N` sets it)",
            _regex(r"[0-9]+", "must be a whole number"), "e.g. 2"),
    Setting("CLEARML_AGENT_GPUS", "", "GPUs reserved for each worker: empty (CPU only), all, or ids like 0,1",
            _regex(r"|all|[0-9]+(?:,[0-9]+)*", "must be empty, all, or GPU ids like 0,1"), "e.g. all or 0,1"),
    Setting("CLEARML_AGENT_WORKER_PREFIX", "", "Worker id prefix (<prefix>:agent-<n>); empty: this host's name",
            _regex(r"[A-Za-z0-9_.-]*", "must be letters, digits, '_', '.', '-'"), "e.g. gpu-box-1"),
    Setting("CLEARML_AGENT_GIT_USER", "", "Git user agents clone private repositories with (agents only)", _one_line,
            "write the user name on one line"),
    Setting("CLEARML_AGENT_GIT_PASS", "", "Git password or token for CLEARML_AGENT_GIT_USER (agents only)", _one_line,
            "write the token on one line", sensitive=True),
    Setting("AWS_ACCESS_KEY_ID", "", "S3 access key for task storage (agents only)", _one_line,
            "write the key on one line"),
    Setting("AWS_SECRET_ACCESS_KEY", "", "S3 secret key (agents only)", _one_line, "write the key on one line",
            sensitive=True),
    Setting("AWS_DEFAULT_REGION", "", "S3 region (agents only)", _one_line, "e.g. us-east-1"),
    Setting("AZURE_STORAGE_ACCOUNT", "", "Azure storage account (agents only)", _one_line,
            "write the account name on one line"),
    Setting("AZURE_STORAGE_KEY", "", "Azure storage key (agents only)", _one_line, "write the key on one line",
            sensitive=True),
    Setting("GOOGLE_APPLICATION_CREDENTIALS", "", "Path of a GCS service-account JSON inside the agent "
            "containers (agents only)", _one_line, "write the path on one line, e.g. /root/gcs.json"),
    Setting("CLEARML_AGENT_GCS_CREDENTIALS_FILE", "", "Host path of a GCS service-account JSON, mounted read-only "
            "into the agent containers, where GOOGLE_APPLICATION_CREDENTIALS names it (agents only)", _host_file,
            "give the absolute path of the JSON key file, e.g. /home/me/keys/gcs.json"),
    # generated secrets
    Setting("CLEARML_AGENT_ACCESS_KEY", "", "Agent access key (services_agent); " + _GEN, _secret(20), secret=True),
    Setting("CLEARML_AGENT_SECRET_KEY", "", "Agent secret key (services_agent); " + _GEN, _secret(32), secret=True),
    Setting("CLEARML_AUTH_TOKEN_SECRET", "", "Login token signing key; " + _GEN, _secret(32), secret=True),
    Setting("CLEARML_SESSION_SECRET", "", "API server session secret; " + _GEN, _secret(32), secret=True),
    Setting("CLEARML_APISERVER_KEY", "", "apiserver system access key; " + _GEN, _secret(20), secret=True),
    Setting("CLEARML_APISERVER_SECRET", "", "apiserver system secret; " + _GEN, _secret(32), secret=True),
    Setting("CLEARML_FILESERVER_KEY", "", "fileserver system access key; " + _GEN, _secret(20), secret=True),
    Setting("CLEARML_FILESERVER_SECRET", "", "fileserver system secret; " + _GEN, _secret(32), secret=True),
    Setting("CLEARML_WEBSERVER_KEY", "", "webserver system access key; " + _GEN, _secret(20), secret=True),
    Setting("CLEARML_WEBSERVER_SECRET", "", "webserver system secret; " + _GEN, _secret(32), secret=True),
    Setting("CLEARML_TESTS_KEY", "", "tests user access key; " + _GEN, _secret(20), secret=True),
    Setting("CLEARML_TESTS_SECRET", "", "tests user secret; " + _GEN, _secret(32), secret=True),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
#: settings only agent containers receive (git and cloud storage credentials)
AGENT_ONLY_KEYS: tuple[str, ...] = tuple(s.key for s in SETTINGS if s.help.endswith("(agents only)"))
SECRET_KEYS: tuple[str, ...] = tuple(s.key for s in SETTINGS if s.secret)
MASKED_KEYS: tuple[str, ...] = tuple(s.key for s in SETTINGS if s.secret or s.sensitive)


def env_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the settings file is: ``$CLEARML_ENV_FILE`` or ``.env`` beside tasks.py."""
    environ = os.environ if environ is None else environ
    given = environ.get("CLEARML_ENV_FILE")
    return Path(given).expanduser().resolve() if given else KIT_ROOT / ".env"


def defaults() -> dict[str, str]:
    return {s.key: s.default for s in SETTINGS}


def merge_sources(file_values: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Defaults, overlaid by ``.env``, overlaid by environment variables of the same name."""
    merged = defaults()
    merged.update({k: v for k, v in file_values.items()})
    merged.update({k: environ[k] for k in BY_KEY if k in environ})
    return merged


def problems(values: Mapping[str, str]) -> list[str]:
    """Every bad value, each message naming the key, the value and the fix (pure)."""
    found: list[str] = []
    bad: set[str] = set()
    for s in SETTINGS:
        value = values.get(s.key, s.default)
        reason = s.check(value)
        if reason:
            bad.add(s.key)
            shown = "(hidden)" if s.secret or s.sensitive else repr(value)
            fix = s.fix or ("delete the line and run `inv install` to generate a new one" if s.secret else "")
            found.append(f"{s.key}={shown}: {reason}" + (f"; fix: {fix}" if fix else ""))
    gcs_file, gcs_path = values.get("CLEARML_AGENT_GCS_CREDENTIALS_FILE", ""), values.get("GOOGLE_APPLICATION_CREDENTIALS", "")
    if gcs_file and gcs_path:
        found.append(f"CLEARML_AGENT_GCS_CREDENTIALS_FILE={gcs_file!r} and GOOGLE_APPLICATION_CREDENTIALS={gcs_path!r} "
                     "are both set: the mounted file sets GOOGLE_APPLICATION_CREDENTIALS in the agents; fix: empty "
                     "GOOGLE_APPLICATION_CREDENTIALS (or CLEARML_AGENT_GCS_CREDENTIALS_FILE)")
    version = values.get("CLEARML_SERVER_VERSION", "")
    if "CLEARML_SERVER_VERSION" not in bad and versions.release(version) is None:
        found.append(f"CLEARML_SERVER_VERSION={version!r}: the kit does not know this release; "
                     f"fix: use one of {', '.join(versions.known_versions())}")
    from .access import problems as access_problems  # lazily: access imports this module

    found += access_problems(values, bad)
    ports = {k: values.get(k, "") for k in ("CLEARML_WEB_PORT", "CLEARML_API_PORT", "CLEARML_FILES_PORT")}
    if values.get("CLEARML_ACCESS_MODE") == "subdomains":
        ports["CLEARML_GATEWAY_PORT"] = values.get("CLEARML_GATEWAY_PORT", "")
        if values.get("CLEARML_GATEWAY_HTTP_PORT") and values.get("CLEARML_TLS") in ("self-signed", "provided"):
            ports["CLEARML_GATEWAY_HTTP_PORT"] = values["CLEARML_GATEWAY_HTTP_PORT"]
    if values.get("CLEARML_EXPOSE_STORES", "no") != "no":
        ports.update({k: values.get(k, BY_KEY[k].default) for k in STORE_PORT_KEYS})
    seen: dict[str, str] = {}
    for key, port in ports.items():
        if port in seen:
            found.append(f"{key}={port!r}: same port as {seen[port]}; fix: give each service its own port")
        seen.setdefault(port, key)
    return found


#: host paths compose mounts into containers (their resolved location must not contain ':' either)
MOUNTED_PATH_KEYS = ("CLEARML_DATA_DIR",)


def resolve_path(value: str, base_dir: Path) -> Path:
    """A path setting as the kit uses it: ``~`` expanded, relative paths starting at ``base_dir``."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def location_problems(values: Mapping[str, str], base_dir: Path) -> list[str]:
    """Mounted paths that are fine as written but resolve to a place compose cannot mount (pure).

    A relative ``CLEARML_DATA_DIR`` starts at the settings file's folder, which may itself contain ':'.
    """
    found: list[str] = []
    for key in MOUNTED_PATH_KEYS:
        value = values.get(key, BY_KEY[key].default)
        if _path(value) is not None:
            continue  # already reported by problems()
        resolved = str(resolve_path(value, base_dir))
        if ":" in resolved or _control_chars(resolved):
            found.append(f"{key}={value!r}: resolves to {resolved!r}, which docker compose cannot mount (it splits "
                         f"volumes at ':'); fix: set {key} to an absolute path without ':', e.g. /opt/clearml")
    return found


def truthy(value: str) -> bool:
    return value.lower() in ("true", "yes", "1")


def auto_es_heap(mem_bytes: int) -> str:
    """A quarter of RAM in whole GiB, between 1g and 4g (512m on hosts under 4 GiB)."""
    gib = mem_bytes / 2**30
    if gib < 4:
        return "512m"
    return f"{max(1, min(4, int(gib // 4)))}g"


def host_memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def _with_tag(value: str, repo: str, tag: str, registry: str) -> str:
    if not value:
        ref = f"{repo}:{tag}"
    elif "@" in value or ":" in value.rsplit("/", 1)[-1]:
        ref = value
    else:
        ref = f"{value}:{tag}"
    return registry + ref


@dataclass(frozen=True)
class Settings:
    """The validated settings of one deployment. Build it with :func:`load`."""

    values: dict[str, str]
    env_file: Path
    kit_root: Path = KIT_ROOT
    env_file_exists: bool = True
    overridden: frozenset[str] = field(default_factory=frozenset)

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    @property
    def base_dir(self) -> Path:
        return self.env_file.parent

    def _path(self, key: str) -> Path:
        return resolve_path(self.values[key], self.base_dir)

    @property
    def data_dir(self) -> Path:
        return self._path("CLEARML_DATA_DIR")

    @property
    def config_dir(self) -> Path:
        return self.data_dir / "config"

    @property
    def users_file(self) -> Path:
        return self._path("CLEARML_USERS_FILE")

    @property
    def project(self) -> str:
        return self.values["COMPOSE_PROJECT_NAME"]

    @property
    def mode(self) -> str:
        return self.values["CLEARML_ACCESS_MODE"]

    @property
    def domain(self) -> str:
        return self.values["CLEARML_DOMAIN"]

    def port(self, name: str) -> int:
        """Host port of ``web``, ``api``, ``files``, ``gateway``, ``mongo``, ``elastic`` or ``redis``."""
        return int(self.values[f"CLEARML_{name.upper()}_PORT"])

    @property
    def bind_address(self) -> str:
        """Where the web/api/files ports are published: loopback unless the mode needs them public."""
        return self.public_bind if self.mode in ("ports", "lightning-proxy") else "127.0.0.1"

    @property
    def public_bind(self) -> str:
        """Where the ports the mode makes public listen (the gateway; web/api/files in ports/lightning-proxy)."""
        return self.values["CLEARML_PUBLIC_BIND"]

    @property
    def tls(self) -> str:
        """TLS at the gateway: off, self-signed, provided or external (ended by a proxy in front)."""
        return self.values["CLEARML_TLS"]

    @property
    def release(self) -> versions.Release:
        found = versions.release(self.values["CLEARML_SERVER_VERSION"])
        if found is None:
            raise StackError(
                f"CLEARML_SERVER_VERSION={self.values['CLEARML_SERVER_VERSION']!r}: the kit does not know this release",
                f"use one of: {', '.join(versions.known_versions())}",
            )
        return found

    def image(self, name: str) -> str:
        """Resolved image reference, ``IMAGE_REGISTRY`` prefixed: ``server``, ``mongo``, ``elastic``, ``redis``,
        ``nginx``, ``agent-base`` (what the agent image is built on) or ``agent-docker`` (task containers)."""
        rel = self.release
        registry = self.values["IMAGE_REGISTRY"]
        table = {
            "server": ("CLEARML_SERVER_IMAGE", rel.server_repo, rel.server_tag),
            "mongo": ("MONGO_IMAGE", versions.MONGO_REPO, rel.mongo_tag),
            "elastic": ("ELASTIC_IMAGE", versions.ELASTIC_REPO, rel.elastic_tag),
            "redis": ("REDIS_IMAGE", versions.REDIS_REPO, rel.redis_tag),
            "nginx": ("NGINX_IMAGE", versions.NGINX_REPO, versions.NGINX_TAG),
            "agent-base": ("CLEARML_AGENT_BASE_IMAGE", *BY_KEY["CLEARML_AGENT_BASE_IMAGE"].default.split(":")),
            "agent-docker": ("CLEARML_AGENT_DEFAULT_DOCKER", *BY_KEY["CLEARML_AGENT_DEFAULT_DOCKER"].default.split(":")),
        }
        key, repo, tag = table[name]
        return _with_tag(self.values[key], repo, tag, registry)

    @property
    def es_heap(self) -> str:
        heap = self.values["CLEARML_ES_HEAP"]
        return auto_es_heap(host_memory_bytes()) if heap == "auto" else heap

    def secret(self, key: str) -> str:
        return self.values[key]

    @property
    def missing_secrets(self) -> list[str]:
        return [k for k in SECRET_KEYS if not self.values.get(k)]

    def require_installed(self) -> None:
        """Refuse to act on a deployment that `inv install` has not completed."""
        if not self.env_file_exists:
            raise StackError(f"no settings file at {self.env_file}", "run `inv install` first")
        if self.missing_secrets:
            raise StackError(
                f"{self.env_file} lacks generated secrets: {', '.join(self.missing_secrets)}",
                "run `inv install` (it fills in what is missing and keeps what is there)",
            )


def load(environ: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None) -> Settings:
    """Load and validate settings; raises :class:`StackError` listing every bad value. Writes nothing."""
    environ = os.environ if environ is None else environ
    env_file = env_file_path(environ)
    exists = env_file.is_file()
    file_values = parse_env(env_file.read_text(), str(env_file)) if exists else {}
    values = merge_sources(file_values, environ)
    values.update(overrides or {})
    found = problems(values) + location_problems(values, env_file.parent)
    if found:
        raise StackError(
            "invalid settings:\n  " + "\n  ".join(found),
            f"edit {env_file} (or the environment variable of the same name) and run the command again",
        )
    overridden = frozenset(k for k in BY_KEY if k in environ)
    return Settings(values=values, env_file=env_file, env_file_exists=exists, overridden=overridden)
