"""Values for the official ClearML Helm charts, from the same settings and users the compose stack runs on.

Pure functions: settings, users and options in, file name -> text out. Every YAML document is built as
plain data and emitted by PyYAML's safe dumper (no text templating of user values); the HOCON the chart
mounts through ``apiserver.additionalConfigs`` goes through :mod:`clearml_stack.render.hocon` like the
compose stack's config does.

Targets: chart ``clearml`` 7.14.4 and chart ``clearml-agent`` 5.3.2 from
https://clearml.github.io/clearml-helm-charts. What those versions read (checked against their
templates): secrets from ``clearml.*`` or from the Secret named by ``clearml.existingSecret`` under the keys
in :data:`CHART_SECRET_KEYS`; the cookie domain as ``clearml.cookieDomain`` (the chart adds the leading
dot); the agent pair from ``clearml.agentk8sglue*`` or ``clearml.existingAgentk8sglueSecret`` under
``agentk8sglue_key/agentk8sglue_secret``. The fileserver deployment of chart 7.14 gets its system
credentials only as ``USER_KEY/USER_SECRET``, which the fileserver does not read, and the API server never
gets the fileserver pair at all: both are given ``CLEARML__secure__credentials__fileserver__*`` through
``extraEnvs`` here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import kubenames
from ..errors import StackError
from ..settings import Settings, check_domain
from ..urls import ServerUrls
from ..users import User, check_display_name, check_username
from . import hocon
from .server_config import fixed_users_block


@dataclass(frozen=True)
class Chart:
    name: str
    version: str


HELM_REPO_NAME = "clearml"
HELM_REPO_URL = "https://clearml.github.io/clearml-helm-charts"
SERVER_CHART = Chart("clearml", "7.14.4")
AGENT_CHART = Chart("clearml-agent", "5.3.2")
SERVER_RELEASE = "clearml"
AGENT_RELEASE = "clearml-agent"
#: the Secret chart 7.14.4 always creates for itself; an existing Secret must not take its name
CHART_OWN_SECRET = "clearml-conf"

VALUES_FILE = "clearml-values.yaml"
AGENT_VALUES_FILE = "clearml-agent-values.yaml"
SECRET_FILE = "clearml-secrets.yaml"
README_FILE = "README.md"
#: file name -> mode: values may hold secrets (or at least password hashes), the manifest holds them
FILE_MODES = {VALUES_FILE: 0o600, AGENT_VALUES_FILE: 0o600, SECRET_FILE: 0o600, README_FILE: 0o644}

#: Secret key the clearml chart reads (templates/*-deployment.yaml) -> the kit setting holding the value
CHART_SECRET_KEYS = {
    "apiserver_key": "CLEARML_APISERVER_KEY",
    "apiserver_secret": "CLEARML_APISERVER_SECRET",
    "fileserver_key": "CLEARML_FILESERVER_KEY",
    "fileserver_secret": "CLEARML_FILESERVER_SECRET",
    "secure_auth_token_secret": "CLEARML_AUTH_TOKEN_SECRET",
    "test_user_key": "CLEARML_TESTS_KEY",
    "test_user_secret": "CLEARML_TESTS_SECRET",
}
#: the same values as plain chart values (used without --existing-secret)
CHART_SECRET_VALUES = {
    "apiserverKey": "CLEARML_APISERVER_KEY",
    "apiserverSecret": "CLEARML_APISERVER_SECRET",
    "fileserverKey": "CLEARML_FILESERVER_KEY",
    "fileserverSecret": "CLEARML_FILESERVER_SECRET",
    "secureAuthTokenSecret": "CLEARML_AUTH_TOKEN_SECRET",
    "testUserKey": "CLEARML_TESTS_KEY",
    "testUserSecret": "CLEARML_TESTS_SECRET",
}
#: Secret key the clearml-agent chart reads from clearml.existingAgentk8sglueSecret -> kit setting
AGENT_SECRET_KEYS = {
    "agentk8sglue_key": "CLEARML_AGENT_ACCESS_KEY",
    "agentk8sglue_secret": "CLEARML_AGENT_SECRET_KEY",
}
#: the kit's own keys in the same Secret, read by the extraEnvs below (the chart does not know them)
KIT_SECRET_KEYS = {
    "http_session_secret": "CLEARML_SESSION_SECRET",
    "webserver_key": "CLEARML_WEBSERVER_KEY",
    "webserver_secret": "CLEARML_WEBSERVER_SECRET",
}
SECRET_SOURCES = {**CHART_SECRET_KEYS, **AGENT_SECRET_KEYS, **KIT_SECRET_KEYS}

FILESERVER_PAIR_ENVS = (
    ("CLEARML__secure__credentials__fileserver__user_key", "fileserver_key"),
    ("CLEARML__secure__credentials__fileserver__user_secret", "fileserver_secret"),
)
#: server settings the chart leaves at the image's public defaults, set from the kit's generated secrets
APISERVER_EXTRA_ENVS = FILESERVER_PAIR_ENVS + (
    ("CLEARML__secure__http__session_secret__apiserver", "http_session_secret"),
    ("CLEARML__secure__credentials__webserver__user_key", "webserver_key"),
    ("CLEARML__secure__credentials__webserver__user_secret", "webserver_secret"),
    # the agent chart logs in with the services_agent pair (role admin in the server's defaults)
    ("CLEARML__secure__credentials__services_agent__user_key", "agentk8sglue_key"),
    ("CLEARML__secure__credentials__services_agent__user_secret", "agentk8sglue_secret"),
)

#: ingress-nginx: no limit on request bodies (artifact and model uploads go through files.)
UNLIMITED_BODY_ANNOTATIONS = {"nginx.ingress.kubernetes.io/proxy-body-size": "0"}
COMPONENT_HOSTS = {"apiserver": "api", "webserver": "app", "fileserver": "files"}
#: Deployments of the two releases that read the Secret (chart fullname = release name here)
SECRET_READERS = ("clearml-apiserver", "clearml-apiserver-asyncdelete", "clearml-fileserver", "clearml-agent")
DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class K8sOptions:
    """The flags of `inv k8s.values`."""

    existing_secret: str = ""
    storage_class: str = ""  # overrides CLEARML_K8S_STORAGE_CLASS when given
    external_stores: bool = False
    allow_open: bool = False
    agent_queues: str = DEFAULT_QUEUE


# --- checks -----------------------------------------------------------------------------------


def tls_on(settings: Settings) -> bool:
    """The public URLs are https (TLS at the ingress, or at a proxy in front of it)."""
    return settings["CLEARML_TLS"] != "off"


def tls_at_ingress(settings: Settings) -> bool:
    """The ingresses end TLS themselves and need a TLS Secret.

    ``CLEARML_TLS=external`` means a proxy or load balancer in front ends TLS (as the gateway's
    external mode on a single host): the ingresses then serve plain HTTP behind it and name no Secret,
    while URLs and cookies stay https/secure.
    """
    return settings["CLEARML_TLS"] in ("self-signed", "provided")


def storage_class(settings: Settings, options: K8sOptions) -> str:
    return options.storage_class or settings["CLEARML_K8S_STORAGE_CLASS"]


def parse_queues(value: str) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]``; every name checked (the agent chart joins them with commas)."""
    names = [q.strip() for q in value.split(",") if q.strip()]
    if not names:
        raise StackError("no agent queue given", f"set CLEARML_AGENT_QUEUES, e.g. {DEFAULT_QUEUE}")
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
            raise StackError(f"agent queue name {name!r} is not accepted",
                             "use letters, digits, '.', '_' or '-' (several queues separated by commas)")
    return names


def check_user(user: User) -> None:
    """A user from the users file, checked again: the file may have been edited by hand."""
    check_username(user.username)
    check_display_name(user.name)
    try:
        decoded = base64.b64decode(user.password_hash, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not (decoded.startswith((b"$2a$", b"$2b$", b"$2y$")) and len(decoded) == 60):
        raise StackError(f"user {user.username!r} has no valid password hash in the users file",
                         f"set a new password with `inv users.passwd {user.username}`")


def check_inputs(settings: Settings, users: list[User], options: K8sOptions) -> None:
    """Everything `inv k8s.values` refuses, before anything is rendered or written."""
    domain = settings.domain
    if not domain:
        raise StackError(
            "CLEARML_DOMAIN is not set: on Kubernetes the server is reached through ingresses on "
            "app./api./files.<domain>",
            "set it with `inv install --domain clearml.example.com` (or CLEARML_DOMAIN=...) and point those "
            "three names at your ingress controller",
        )
    reason = check_domain(domain)
    if reason:
        raise StackError(f"CLEARML_DOMAIN={domain!r} {reason}", "use a bare name like clearml.example.com")
    # the settings were checked when loaded; checked again because these names reach commands and manifests
    for key, check, example in (("CLEARML_K8S_NAMESPACE", kubenames.dns_label, "clearml"),
                                ("CLEARML_K8S_TLS_SECRET", kubenames.dns_subdomain, "clearml-tls"),
                                ("CLEARML_K8S_INGRESS_CLASS", kubenames.optional_dns_subdomain, "nginx"),
                                ("CLEARML_K8S_STORAGE_CLASS", kubenames.optional_dns_subdomain, "standard")):
        reason = check(settings[key])
        if reason:
            raise StackError(f"{key}={settings[key]!r} {reason}", f"use e.g. {example}")
    if options.storage_class and kubenames.dns_subdomain(options.storage_class):
        raise StackError(f"storage class {options.storage_class!r} {kubenames.dns_subdomain(options.storage_class)}",
                         "give the name `kubectl get storageclass` shows")
    if options.existing_secret:
        reason = kubenames.dns_subdomain(options.existing_secret)
        if reason:
            raise StackError(f"Secret name {options.existing_secret!r} {reason}", "use a name like clearml-secrets")
        if options.existing_secret == CHART_OWN_SECRET:
            raise StackError(f"Secret name {CHART_OWN_SECRET!r} is the one chart clearml {SERVER_CHART.version} "
                             "creates for itself", "use another name, e.g. clearml-secrets")
    missing = [k for k in SECRET_SOURCES.values() if not settings.values.get(k)]
    if missing:
        raise StackError(f"the settings lack generated secrets: {', '.join(sorted(set(missing)))}",
                         "run `inv install` (it fills in what is missing and keeps what is there)")
    if not users and not options.allow_open:
        raise StackError("no web login user: the Kubernetes deployment would let anyone who reaches "
                         f"app.{domain} sign up", "add one with `inv users.add NAME` (or pass --allow-open)")
    seen: set[str] = set()
    for user in users:
        check_user(user)
        if user.username in seen:
            raise StackError(f"user {user.username!r} appears twice in the users file (the server would not start)",
                             f"remove one with `inv users.remove {user.username}` and add it again")
        seen.add(user.username)
    parse_queues(options.agent_queues)
    if options.external_stores:
        needed = [k for k in ("CLEARML_EXTERNAL_MONGO_URI", "CLEARML_EXTERNAL_ELASTIC_HOSTS",
                              "CLEARML_EXTERNAL_REDIS_HOST") if not settings[k]]
        if needed:
            raise StackError(f"--external-stores needs {', '.join(needed)}",
                             "set them in .env, e.g. CLEARML_EXTERNAL_MONGO_URI=mongodb://mongo.example.com:27017, "
                             "CLEARML_EXTERNAL_ELASTIC_HOSTS=es.example.com:9200, "
                             "CLEARML_EXTERNAL_REDIS_HOST=redis.example.com")
        for key, check in (("CLEARML_EXTERNAL_MONGO_URI", kubenames.mongo_uri),
                           ("CLEARML_EXTERNAL_ELASTIC_HOSTS", kubenames.host_port_list),
                           ("CLEARML_EXTERNAL_REDIS_HOST", kubenames.host)):
            reason = check(settings[key])
            if reason:
                raise StackError(f"{key}={settings[key]!r} {reason}", f"fix {key} in .env")
        if options.existing_secret and kubenames.mongo_uri_has_password(settings["CLEARML_EXTERNAL_MONGO_URI"]):
            raise StackError(
                f"CLEARML_EXTERNAL_MONGO_URI holds a password, and chart clearml {SERVER_CHART.version} takes external "
                "Mongo connection strings only as plain values (externalServices.mongodbConnectionString*): "
                "with --existing-secret it would still end up in the values file",
                "drop --existing-secret for this deployment (the values file is written with mode 0600), "
                "or connect without a password in the URI",
            )


# --- values -----------------------------------------------------------------------------------


def public_urls(settings: Settings) -> ServerUrls:
    """The three URLs behind the ingresses (standard ports: the ingress controller listens on 80/443)."""
    scheme = "https" if tls_on(settings) else "http"
    d = settings.domain
    return ServerUrls(f"{scheme}://app.{d}", f"{scheme}://api.{d}", f"{scheme}://files.{d}")


def split_image(ref: str) -> tuple[str, str, str]:
    """``registry.local:5000/clearml/server:2.3.0`` -> ``("registry.local:5000", "clearml/server", "2.3.0")``.

    The registry part is empty for Docker Hub names; the charts join ``registry/repository:tag``.
    """
    if "@" in ref:
        raise StackError(f"image {ref!r} is pinned by digest; the Helm chart only takes repository and tag",
                         "set CLEARML_SERVER_IMAGE to name:tag")
    last = ref.rsplit("/", 1)[-1]
    name, tag = (ref.rsplit(":", 1) if ":" in last else (ref, "latest"))
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return "", name, tag


def image_values(settings: Settings) -> dict[str, str]:
    """The kit's server image for apiserver, fileserver and webserver: data written by this server
    version must not be opened by an older one (the chart's default image is older)."""
    registry, repository, tag = split_image(settings.image("server"))
    values = {"repository": repository, "tag": tag}
    if registry:
        values["registry"] = registry
    return values


def ingress_values(settings: Settings, component: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "enabled": True,
        "hostName": f"{COMPONENT_HOSTS[component]}.{settings.domain}",
        "annotations": dict(UNLIMITED_BODY_ANNOTATIONS),
    }
    if settings["CLEARML_K8S_INGRESS_CLASS"]:
        values["ingressClassName"] = settings["CLEARML_K8S_INGRESS_CLASS"]
    if tls_at_ingress(settings):
        values["tlsSecretName"] = settings["CLEARML_K8S_TLS_SECRET"]
    return values


def env_entries(settings: Settings, pairs: tuple[tuple[str, str], ...], existing_secret: str) -> list[dict]:
    """``extraEnvs`` items: a reference into the existing Secret, or the value itself."""
    entries = []
    for env_name, secret_key in pairs:
        if existing_secret:
            entries.append({"name": env_name,
                            "valueFrom": {"secretKeyRef": {"name": existing_secret, "key": secret_key}}})
        else:
            entries.append({"name": env_name, "value": settings.secret(SECRET_SOURCES[secret_key])})
    return entries


def apiserver_conf(settings: Settings, users: list[User]) -> str:
    """``apiserver.conf`` for ``apiserver.additionalConfigs``: web login (hashes only) and cookie flags.

    The cookie domain itself is set by the chart from ``clearml.cookieDomain``.
    """
    return (
        "# Written by `inv k8s.values` (clearml-lightning) from the kit's users file and settings.\n"
        "auth {\n"
        "    cookies {\n"
        "        httponly: true\n"
        f"        secure: {hocon.boolean(tls_on(settings))}\n"
        f"        samesite: {hocon.string('Lax')}\n"
        "    }\n"
        "    fixed_users {\n"
        f"        enabled: {hocon.boolean(bool(users))}\n"
        "        pass_hashed: true\n"
        f"        users: {fixed_users_block(users)}\n"
        "    }\n"
        "}\n"
    )


def services_conf(settings: Settings) -> str:
    """``services.conf`` for ``apiserver.additionalConfigs``: the non-responsive task watchdog."""
    return (
        "# Written by `inv k8s.values` (clearml-lightning) from CLEARML_WATCHDOG_*.\n"
        "tasks {\n"
        "    non_responsive_tasks_watchdog {\n"
        "        enabled: true\n"
        f"        threshold_sec: {hocon.integer(int(settings['CLEARML_WATCHDOG_THRESHOLD_SEC']))}\n"
        f"        watch_interval_sec: {hocon.integer(int(settings['CLEARML_WATCHDOG_INTERVAL_SEC']))}\n"
        "    }\n"
        "}\n"
    )


def _persistence(size: str, klass: str, class_key: str) -> dict[str, Any]:
    values: dict[str, Any] = {"size": size}
    if klass:
        values[class_key] = klass
    return values


def store_values(settings: Settings, options: K8sOptions) -> dict[str, Any]:
    """Bundled stores with sizes and storage class, or all three disabled and ``externalServices`` set."""
    if options.external_stores:
        uri = settings["CLEARML_EXTERNAL_MONGO_URI"]
        nodes = kubenames.parse_host_ports(settings["CLEARML_EXTERNAL_ELASTIC_HOSTS"])
        return {
            "mongodb": {"enabled": False},
            "elasticsearch": {"enabled": False},
            "redis": {"enabled": False},
            "externalServices": {
                "mongodbConnectionStringBackend": kubenames.mongo_uri_for(uri, "backend"),
                "mongodbConnectionStringAuth": kubenames.mongo_uri_for(uri, "auth"),
                "elasticsearchConnectionString": json.dumps([{"host": h, "port": p} for h, p in nodes]),
                "redisHost": settings["CLEARML_EXTERNAL_REDIS_HOST"],
                "redisPort": int(settings["CLEARML_EXTERNAL_REDIS_PORT"]),
            },
        }
    klass = storage_class(settings, options)
    elastic_claim: dict[str, Any] = {"resources": {"requests": {"storage": settings["CLEARML_K8S_ELASTIC_SIZE"]}}}
    if klass:
        elastic_claim["storageClassName"] = klass
    return {
        "mongodb": {"enabled": True,
                    "persistence": _persistence(settings["CLEARML_K8S_MONGO_SIZE"], klass, "storageClass")},
        "elasticsearch": {"enabled": True, "volumeClaimTemplate": elastic_claim},
        "redis": {"enabled": True, "master": {
            "persistence": _persistence(settings["CLEARML_K8S_REDIS_SIZE"], klass, "storageClass")}},
    }


def clearml_values(settings: Settings, users: list[User], options: K8sOptions) -> dict[str, Any]:
    """Values for chart ``clearml`` (:data:`SERVER_CHART`)."""
    urls = public_urls(settings)
    clearml: dict[str, Any] = {
        "cookieDomain": settings.domain,  # the chart sets the cookie domain to "." + this
        "clientConfigurationApiUrl": urls.api,
        "clientConfigurationFilesUrl": urls.files,
    }
    if options.existing_secret:
        clearml["existingSecret"] = options.existing_secret
    else:
        clearml.update({key: settings.secret(setting) for key, setting in CHART_SECRET_VALUES.items()})
    image = image_values(settings)
    klass = storage_class(settings, options)
    file_storage: dict[str, Any] = {"size": settings["CLEARML_K8S_FILESERVER_SIZE"]}
    if klass:
        file_storage["class"] = klass
    values: dict[str, Any] = {
        "clearml": clearml,
        "apiserver": {
            "image": dict(image),
            "ingress": ingress_values(settings, "apiserver"),
            "extraEnvs": env_entries(settings, APISERVER_EXTRA_ENVS, options.existing_secret),
            "additionalConfigs": {
                "apiserver.conf": apiserver_conf(settings, users),
                "services.conf": services_conf(settings),
            },
        },
        "fileserver": {
            "image": dict(image),
            "ingress": ingress_values(settings, "fileserver"),
            "extraEnvs": env_entries(settings, FILESERVER_PAIR_ENVS, options.existing_secret),
            "storage": {"enabled": True, "data": file_storage},
        },
        "webserver": {
            "image": dict(image),
            "ingress": ingress_values(settings, "webserver"),
        },
        **store_values(settings, options),
    }
    if settings["IMAGE_REGISTRY"]:
        # a private mirror for every image, as IMAGE_REGISTRY is for the compose stack
        values["global"] = {"imageRegistry": settings["IMAGE_REGISTRY"].rstrip("/")}
    return values


def agent_values(settings: Settings, options: K8sOptions) -> dict[str, Any]:
    """Values for chart ``clearml-agent`` (:data:`AGENT_CHART`): the three URLs, the agent pair, the queues."""
    urls = public_urls(settings)
    if options.existing_secret:
        clearml: dict[str, Any] = {"existingAgentk8sglueSecret": options.existing_secret}
    else:
        clearml = {"agentk8sglueKey": settings.secret("CLEARML_AGENT_ACCESS_KEY"),
                   "agentk8sglueSecret": settings.secret("CLEARML_AGENT_SECRET_KEY")}
    values: dict[str, Any] = {
        "clearml": clearml,
        "agentk8sglue": {
            "apiServerUrlReference": urls.api,
            "webServerUrlReference": urls.web,
            "fileServerUrlReference": urls.files,
            "queue": ",".join(parse_queues(options.agent_queues)),
            "createQueueIfNotExists": True,
            # a self-signed certificate cannot be verified by the agent
            "clearmlcheckCertificate": settings["CLEARML_TLS"] != "self-signed",
        },
    }
    if settings["IMAGE_REGISTRY"]:
        values["global"] = {"imageRegistry": settings["IMAGE_REGISTRY"].rstrip("/")}
    return values


def secret_manifest(settings: Settings, options: K8sOptions) -> dict[str, Any]:
    """The Kubernetes Secret both charts read with ``--existing-secret``: every key they and the extraEnvs need."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": options.existing_secret,
            "namespace": settings["CLEARML_K8S_NAMESPACE"],
            "labels": {"app.kubernetes.io/managed-by": "clearml-lightning"},
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(settings.secret(setting).encode()).decode("ascii")
                 for key, setting in SECRET_SOURCES.items()},
    }


# --- text -------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper; multi-line strings (the HOCON files) as literal blocks so they stay readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any, header: str = "") -> str:
    """YAML text of ``data`` through the safe dumper; ``header`` is a fixed comment (no user values)."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return header + body


def _header(chart: Chart) -> str:
    return (f"# Values for Helm chart {chart.name} {chart.version} ({HELM_REPO_URL}).\n"
            "# Written by `inv k8s.values` (clearml-lightning) from the kit's settings and users:\n"
            "# change those and run it again (with --force) rather than editing this file.\n")


def _resolve(settings: Settings, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (settings.base_dir / path))


def tls_steps(settings: Settings) -> list[str]:
    """Shell lines creating the ingress TLS Secret (provided certificates), or a comment saying what to do."""
    ns = settings["CLEARML_K8S_NAMESPACE"]
    name = settings["CLEARML_K8S_TLS_SECRET"]
    if settings["CLEARML_TLS"] == "provided" and settings["CLEARML_TLS_CERT"] and settings["CLEARML_TLS_KEY"]:
        cert, key = _resolve(settings, settings["CLEARML_TLS_CERT"]), _resolve(settings, settings["CLEARML_TLS_KEY"])
        return [shlex.join(["kubectl", "--namespace", ns, "create", "secret", "tls", name,
                            f"--cert={cert}", f"--key={key}"])]
    return [f"# create the TLS Secret {name} for app./api./files.{settings.domain} (cert-manager, or:)",
            f"# kubectl --namespace {ns} create secret tls {name} --cert=FULLCHAIN.pem --key=KEY.pem"]


def helm_commands(settings: Settings, options: K8sOptions, verb: str) -> list[str]:
    ns = settings["CLEARML_K8S_NAMESPACE"]
    return [
        shlex.join(["helm", verb, SERVER_RELEASE, f"{HELM_REPO_NAME}/{SERVER_CHART.name}", "--version",
                    SERVER_CHART.version, "--namespace", ns, "--values", VALUES_FILE]),
        shlex.join(["helm", verb, AGENT_RELEASE, f"{HELM_REPO_NAME}/{AGENT_CHART.name}", "--version",
                    AGENT_CHART.version, "--namespace", ns, "--values", AGENT_VALUES_FILE]),
    ]


def readme(settings: Settings, users: list[User], options: K8sOptions) -> str:
    """The README beside the values: the exact helm commands, in order, for this deployment."""
    ns = settings["CLEARML_K8S_NAMESPACE"]
    d = settings.domain
    urls = public_urls(settings)
    secret = options.existing_secret
    install = [
        shlex.join(["helm", "repo", "add", HELM_REPO_NAME, HELM_REPO_URL]),
        "helm repo update",
        shlex.join(["kubectl", "create", "namespace", ns]),
    ]
    if secret:
        install.append(shlex.join(["kubectl", "--namespace", ns, "apply", "-f", SECRET_FILE]))
    if tls_at_ingress(settings):
        install += tls_steps(settings)
    install += helm_commands(settings, options, "install")
    upgrade = []
    if secret:
        upgrade.append(shlex.join(["kubectl", "--namespace", ns, "apply", "-f", SECRET_FILE]))
    upgrade += helm_commands(settings, options, "upgrade")
    if secret:
        upgrade += ["# pods read the Secret when they start: restart the ones using it after changing it",
                    shlex.join(["kubectl", "--namespace", ns, "rollout", "restart", "deployment",
                                *SECRET_READERS])]
    files = [
        f"- `{VALUES_FILE}`: values for chart `{SERVER_CHART.name}` {SERVER_CHART.version} "
        + ("(refers to the Secret; holds the web users' password hashes)" if secret
           else "(holds the server's secrets: keep it private, mode 0600)"),
        f"- `{AGENT_VALUES_FILE}`: values for chart `{AGENT_CHART.name}` {AGENT_CHART.version} "
        + ("(refers to the Secret)" if secret else "(holds the agent credentials: keep it private)"),
    ]
    if secret:
        files.append(f"- `{SECRET_FILE}`: the Kubernetes Secret `{secret}` both charts read (mode 0600; "
                     "apply it, do not commit it)")
    stores = ("the external MongoDB, Elasticsearch and Redis named in the kit's CLEARML_EXTERNAL_* settings"
              if options.external_stores else
              "the charts' bundled MongoDB, Elasticsearch and Redis (fresh and empty)")
    login = (f"{len(users)} web login user(s) from the kit's users file (password hashes only)" if users
             else "no fixed users: the web UI is open for sign-up (--allow-open)")
    lines = [
        "# ClearML on Kubernetes",
        "",
        f"Generated by `inv k8s.values` (clearml-lightning) for namespace `{ns}` and domain `{d}`: the official",
        f"charts from {HELM_REPO_URL}, configured like the single-host deployment (same",
        "credentials, same web users, same watchdog) with " + stores + ".",
        "",
        *files,
        "- `README.md`: this file",
        "",
        "## 1. DNS",
        "",
        f"Point `app.{d}`, `api.{d}` and `files.{d}` at your ingress controller.",
        "",
        "## 2. Install",
        "",
        "```bash",
        *install,
        "```",
        "",
        "## 3. Check",
        "",
        "```bash",
        shlex.join(["kubectl", "--namespace", ns, "get", "pods"]),
        "```",
        "",
        f"Open {urls.web} and sign in: {login}. SDK clients and agents use",
        f"`api_server: {urls.api}`, `web_server: {urls.web}`, `files_server: {urls.files}`; existing",
        "access keys keep working because the server keeps the same secrets.",
        "",
        "## 4. After changing settings or users",
        "",
        "Run `inv k8s.values --force` again with the same flags, then, from this directory:",
        "",
        "```bash",
        *upgrade,
        "```",
        "",
        "Keep `--version` on upgrades: changing values and moving to a new chart version are separate steps.",
        "",
        "## Notes",
        "",
        f"- The server image is the kit's ({settings.image('server')}) instead of the chart's older default,",
        "  so data written by this server version is never opened by an older one.",
        "- Uploads: the ingresses carry `nginx.ingress.kubernetes.io/proxy-body-size: \"0\"` (ingress-nginx);",
        "  with another ingress controller, lift its request body limit the same way.",
        "- The fileserver's system credentials are passed as `CLEARML__secure__credentials__fileserver__*`",
        f"  on the API server and the file server (chart {SERVER_CHART.version} does not wire them).",
        f"- Agents: chart `{AGENT_CHART.name}` serves queue(s) `{','.join(parse_queues(options.agent_queues))}`,",
        "  starting one pod per task.",
        "- Moving the single-host data over: `inv k8s.export-data` (prints the steps and what they carry).",
    ]
    if not options.external_stores:
        lines += [
            f"- Bundled stores: chart {SERVER_CHART.version} bundles MongoDB 6.0 and Elasticsearch 7.17, while this",
            f"  server release runs with {settings.image('mongo')} and {settings.image('elastic')} on the single host;",
            "  the kit has not run the server on the older bundled stores. For the same versions, run the stores",
            "  yourself and use `inv k8s.values --external-stores`.",
            "- The bundled MongoDB and Redis images come from Bitnami's Docker Hub repositories; later chart",
            "  releases point them at `bitnamilegacy/...` (\"Bitnami registries workaround\"). If those pods",
            "  cannot pull their images, that is the cause.",
        ]
    if settings["CLEARML_TLS"] == "self-signed":
        lines.append("- TLS is self-signed: the agent chart is set not to verify certificates "
                     "(`clearmlcheckCertificate: false`).")
    if settings["CLEARML_TLS"] == "external":
        lines.append("- TLS is external (CLEARML_TLS=external): a proxy or load balancer in front of the ingress "
                     "controller ends it, so the ingresses name no TLS Secret and serve HTTP to it; the URLs "
                     "above stay https.")
    return "\n".join(lines) + "\n"


def render_bundle(settings: Settings, users: list[User], options: K8sOptions) -> dict[str, str]:
    """Every file `inv k8s.values` writes: name -> text. Refuses (StackError) before rendering anything bad."""
    check_inputs(settings, users, options)
    files = {
        VALUES_FILE: dump_yaml(clearml_values(settings, users, options), _header(SERVER_CHART)),
        AGENT_VALUES_FILE: dump_yaml(agent_values(settings, options), _header(AGENT_CHART)),
    }
    if options.existing_secret:
        files[SECRET_FILE] = dump_yaml(
            secret_manifest(settings, options),
            "# Kubernetes Secret for the clearml and clearml-agent charts, written by `inv k8s.values`.\n"
            "# Holds the server's generated secrets: apply it with kubectl, never commit it.\n")
    files[README_FILE] = readme(settings, users, options)
    return files
