"""Kubernetes names, quantities and external store addresses: the checks the settings and `inv k8s.values` share.

Each check returns the reason a value is bad, or None (the settings table's convention). Pure, no imports
from the rest of the kit, so ``settings.py`` can use them without a cycle.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: RFC 1123 label (namespaces): lowercase letters, digits and '-', at most 63 characters
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: RFC 1123 subdomain (Secrets, storage and ingress classes): labels joined by '.', at most 253 characters
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
#: a resource quantity as PersistentVolumeClaims take it: a whole number with an optional unit
_QUANTITY = re.compile(r"[1-9][0-9]{0,5}(?:Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?")
_HOST = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_MONGO_URI = re.compile(r"mongodb(?:\+srv)?://[A-Za-z0-9._~%!&'()*+,;=:@/?\[\]-]+")


def dns_label(value: str) -> str | None:
    """A namespace name."""
    if _DNS_LABEL.fullmatch(value):
        return None
    return "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"


def dns_subdomain(value: str) -> str | None:
    """A Secret, storage class or ingress class name."""
    if _DNS_SUBDOMAIN.fullmatch(value):
        return None
    return "must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"


def optional_dns_subdomain(value: str) -> str | None:
    return None if value == "" else dns_subdomain(value)


def quantity(value: str) -> str | None:
    """A volume size such as 50Gi."""
    if _QUANTITY.fullmatch(value):
        return None
    return "must be a size like 50Gi, 500Mi or 1Ti"


def host(value: str) -> str | None:
    if _HOST.fullmatch(value):
        return None
    return "must be a host name or IPv4 address (letters, digits, '-' and '.')"


def optional_host(value: str) -> str | None:
    return None if value == "" else host(value)


def host_port_list(value: str) -> str | None:
    """``host:port[,host:port...]`` (external Elasticsearch nodes); empty is allowed."""
    if value == "":
        return None
    for item in value.split(","):
        name, sep, port = item.strip().rpartition(":")
        if not sep or host(name) or not port.isdigit() or not 1 <= int(port) <= 65535:
            return f"must be host:port pairs separated by commas, e.g. es1:9200,es2:9200 (bad: {item.strip()!r})"
    return None


def parse_host_ports(value: str) -> list[tuple[str, int]]:
    """``es1:9200,es2:9200`` -> ``[("es1", 9200), ("es2", 9200)]`` (call :func:`host_port_list` first)."""
    pairs = []
    for item in value.split(","):
        name, _, port = item.strip().rpartition(":")
        pairs.append((name, int(port)))
    return pairs


def mongo_uri(value: str) -> str | None:
    """A MongoDB connection URI without a database path (the kit adds ``/backend`` and ``/auth``)."""
    if value == "":
        return None
    if not _MONGO_URI.fullmatch(value):
        return "must be a URI like mongodb://user:password@mongo.example.com:27017 (no spaces, quotes or braces)"
    parts = urlsplit(value)
    if not parts.netloc or parts.netloc.endswith("@"):
        return "must name at least one host, e.g. mongodb://mongo.example.com:27017"
    if parts.path not in ("", "/"):
        return "must not name a database: the server uses two, and the kit adds /backend and /auth itself"
    return None


def mongo_uri_for(value: str, database: str) -> str:
    """The connection string for one database: ``mongodb://h:27017/?x=y`` -> ``mongodb://h:27017/backend?x=y``."""
    parts = urlsplit(value)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{database}{query}"


def mongo_uri_has_password(value: str) -> bool:
    userinfo, at, _ = urlsplit(value).netloc.rpartition("@")
    return bool(at) and ":" in userinfo
