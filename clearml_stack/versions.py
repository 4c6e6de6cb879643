"""The server releases the kit knows: which images each one runs with.

One data table; settings, rendering and upgrades read it, nothing else hard-codes a tag.

Where the rows come from (``source`` says it per row; ``verified=False`` marks a row some of whose
tags were not read from a pinned upstream file):

- 2.3.0: the official ``docker/docker-compose.yml`` of server 2.3 (mongo 7.0.22, elasticsearch
  8.17.0, redis 7.4.1); the image moved to ``clearml/server`` in mid 2025.
- 2.0.0: server tag ``2.0.0-613`` from the official Helm chart values (7.14, appVersion 2.0); the 2.0
  release notes say Mongo went to 6.x. The store tags (mongo 6.0.19, elasticsearch 8.17.0, redis
  7.4.1) are those of the official compose revision that ran Mongo 6.0, whose exact release is not
  pinned in it: unverified.
- 1.17.1: the official upgrade compose ``upgrade/1_17_to_2_0/docker-compose.yml`` (server
  ``allegroai/clearml:1.17.1-554``, mongo 5.0.26, elasticsearch 8.15.3, redis 6.2).
- 1.16.2: only its Mongo series (4.4, "older than v1.17 where MongoDB v5.x was first used", upgrade
  docs) is sourced; it is a starting point for upgrades (``inv upgrade --from 1.16.2``), its image
  tags are unverified and the kit never starts it as a hop.

Mongo's upgrade rule: a mongod opens data of its own series or of the series just before it, and a
clean start with the server raises the feature compatibility version; so an upgrade walks one
release per Mongo series (4.4 -> 5.0 via 1.17, -> 6.0 via 2.0-2.2, -> 7.0 via 2.3+). The planner
lives in :mod:`clearml_stack.upgrade`.

``CLEARML_EXTRA_RELEASES`` may name a JSON file with more rows (a list of objects with the fields
below) for private builds and for tests; rows there may not reuse a version of this table.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import StackError


@dataclass(frozen=True)
class Release:
    """One ClearML server release and the store images its official compose file pins."""

    version: str
    server_repo: str
    server_tag: str
    mongo_tag: str
    elastic_tag: str
    redis_tag: str
    mongo_series: str = ""  # major.minor of the Mongo data format; empty: from mongo_tag
    verified: bool = True  # False: some tags were not read from a pinned upstream file
    hop: bool = True  # False: only a starting point, never started by an upgrade
    source: str = ""

    @property
    def series(self) -> str:
        """The Mongo series (e.g. ``6.0``) this release's data is written in."""
        return self.mongo_series or ".".join(self.mongo_tag.split(".")[:2])


RELEASES: tuple[Release, ...] = (
    Release("1.16.2", "allegroai/clearml", "1.16.2", "4.4.29", "8.11.3", "6.2", mongo_series="4.4",
            verified=False, hop=False, source="Mongo series from the upgrade docs; image tags unverified"),
    Release("1.17.1", "allegroai/clearml", "1.17.1-554", "5.0.26", "8.15.3", "6.2",
            source="official upgrade/1_17_to_2_0/docker-compose.yml"),
    Release("2.0.0", "allegroai/clearml", "2.0.0-613", "6.0.19", "8.17.0", "7.4.1", verified=False,
            source="server tag from the Helm values; store tags from a Mongo 6.0 compose revision (unverified)"),
    Release("2.3.0", "clearml/server", "2.3.0", "7.0.22", "8.17.0", "7.4.1",
            source="official docker/docker-compose.yml of server 2.3"),
)

#: The Mongo series each server release line runs (upgrade docs: 4.4 up to 1.16, 5.0 from 1.17, 6.0 from
#: 2.0, 7.0 from 2.3), for releases the table does not hold. Lines before 1.17 are not inferred: the docs
#: pin only "older than 1.17" and the oldest servers ran an older Mongo.
MONGO_SERIES_SINCE: tuple[tuple[str, str], ...] = (("1.17.0", "5.0"), ("2.0.0", "6.0"), ("2.3.0", "7.0"))

DEFAULT_VERSION = "2.3.0"
EXTRA_RELEASES_ENV = "CLEARML_EXTRA_RELEASES"

MONGO_REPO = "mongo"
ELASTIC_REPO = "elasticsearch"
REDIS_REPO = "redis"
NGINX_REPO = "nginx"
NGINX_TAG = "1.28.0"

_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-(\d+))?")


def version_key(version: str) -> tuple[int, int, int, int]:
    """Sort key of ``X.Y.Z`` or ``X.Y.Z-BUILD``; raises ValueError on anything else."""
    match = _VERSION_RE.fullmatch(version.strip())
    if not match:
        raise ValueError(f"not a release number: {version!r}")
    major, minor, patch, build = match.groups()
    return int(major), int(minor), int(patch), int(build or 0)


def parse_extra(text: str, source: str = EXTRA_RELEASES_ENV) -> tuple[Release, ...]:
    """Release rows from JSON text (pure): a list of objects with Release's fields."""
    try:
        rows = json.loads(text)
    except ValueError as exc:
        raise StackError(f"{source}: not valid JSON ({exc})", "fix the file or unset the variable") from exc
    names = {f.name for f in fields(Release)}
    found = []
    for row in rows if isinstance(rows, list) else [None]:
        if not isinstance(row, dict) or not {"version", "server_repo", "server_tag", "mongo_tag", "elastic_tag",
                                             "redis_tag"} <= set(row) or set(row) - names:
            raise StackError(f"{source}: each release must be an object with the fields {sorted(names)}",
                             "fix the file or unset the variable")
        try:
            version_key(row["version"])
        except ValueError as exc:
            raise StackError(f"{source}: {exc}", "use release numbers like 2.3.0") from exc
        found.append(Release(**row))
    return tuple(found)


def extra_releases(environ: dict[str, str] | None = None) -> tuple[Release, ...]:
    environ = dict(os.environ) if environ is None else environ
    path = environ.get(EXTRA_RELEASES_ENV)
    if not path:
        return ()
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise StackError(f"{EXTRA_RELEASES_ENV}={path}: cannot read it ({exc.strerror})",
                         "point it at a readable JSON file, or unset it") from exc
    return parse_extra(text, f"{EXTRA_RELEASES_ENV}={path}")


def all_releases(environ: dict[str, str] | None = None) -> tuple[Release, ...]:
    """The table plus any extra rows, sorted by version."""
    extra = extra_releases(environ)
    clash = {r.version for r in extra} & {r.version for r in RELEASES}
    if clash:
        raise StackError(f"{EXTRA_RELEASES_ENV} repeats releases of the kit's table: {', '.join(sorted(clash))}",
                         "give extra rows versions of their own")
    return tuple(sorted(RELEASES + extra, key=lambda r: version_key(r.version)))


def documented_series(version: str) -> str | None:
    """The Mongo series a server release line runs by the upgrade docs, or None when they do not say (pure)."""
    try:
        key = version_key(version)
    except ValueError:
        return None
    found = None
    for since, series in MONGO_SERIES_SINCE:
        if key >= version_key(since):
            found = series
    return found


def release(version: str) -> Release | None:
    """The table row for ``version``, or None when the kit does not know it."""
    return next((r for r in all_releases() if r.version == version), None)


def known_versions() -> list[str]:
    return [r.version for r in all_releases()]
