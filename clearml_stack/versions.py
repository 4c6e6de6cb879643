"""The server releases the kit knows: which images each one runs with.

One data table; settings, rendering and upgrades read it, nothing else hard-codes a tag.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    """One ClearML server release and the store images its official compose file pins."""

    version: str
    server_repo: str
    server_tag: str
    mongo_tag: str
    elastic_tag: str
    redis_tag: str


RELEASES: tuple[Release, ...] = (
    Release("2.3.0", "clearml/server", "2.3.0", "7.0.22", "8.17.0", "7.4.1"),
)

DEFAULT_VERSION = "2.3.0"

MONGO_REPO = "mongo"
ELASTIC_REPO = "elasticsearch"
REDIS_REPO = "redis"
NGINX_REPO = "nginx"
NGINX_TAG = "1.28.0"


def release(version: str) -> Release | None:
    """The table row for ``version``, or None when the kit does not know it."""
    return next((r for r in RELEASES if r.version == version), None)


def known_versions() -> list[str]:
    return [r.version for r in RELEASES]
