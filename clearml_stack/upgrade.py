"""`inv upgrade`: plan the release hops Mongo requires (pure), then walk them with a backup first.

A mongod opens data of its own series or of the series just before it, and the server raises the
feature compatibility version at its first clean start; so going from a release on Mongo 4.4 to one
on 7.0 needs one clean start on a 5.0 release, then on a 6.0 release, then the target. The planner
picks, for every series between the start and the target, the newest release of that series the
kit knows (preferring verified rows), and ends with the target itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from . import ui
from .errors import StackError
from .versions import Release, version_key

if TYPE_CHECKING:
    from .settings import Settings

SERIES = ("3.6", "4.0", "4.2", "4.4", "5.0", "6.0", "7.0", "8.0")  # Mongo's upgrade order


@dataclass(frozen=True)
class Hop:
    release: Release
    why: str


@dataclass(frozen=True)
class Plan:
    start: Release
    target: Release
    hops: tuple[Hop, ...] = field(default_factory=tuple)

    @property
    def versions(self) -> list[str]:
        return [h.release.version for h in self.hops]


def _series_index(series: str) -> int:
    if series not in SERIES:
        raise StackError(f"Mongo series {series!r} is not one the kit can plan for",
                         f"known series: {', '.join(SERIES)}")
    return SERIES.index(series)


def unknown_hint(version: str, table: Sequence[Release], role: str) -> str:
    """What to name instead of a release the table lacks (pure): the row running the same Mongo series."""
    from .versions import documented_series

    rows = "; ".join(f"{', '.join(r.version for r in table if r.series == s)} run Mongo {s}"
                     for s in dict.fromkeys(r.series for r in table))
    if role != "starting":
        return f"name a release of that list ({rows})"
    series = documented_series(version)
    if series and table and version_key(version) > max(version_key(r.version) for r in table):
        return (f"{version} is newer than every release the kit knows ({rows}): naming an older one would run an "
                "older server on its data; use a kit version that knows it")
    same = [r for r in table if r.series == series] if series else []
    if same:
        row = max(same, key=lambda r: (r.hop, version_key(r.version)))
        return (f"{version} runs Mongo {series} (upgrade docs), as does {row.version}: adopt it with "
                f"`--from {row.version}` ({rows})")
    return (f"name the release of that list that runs the same Mongo series as your server ({rows}); the "
            "tag of the mongo image it runs tells the series (`docker ps` shows it)")


def _find(version: str, table: Sequence[Release], role: str) -> Release:
    found = next((r for r in table if r.version == version), None)
    if found is None:
        raise StackError(
            f"unknown {role} release {version!r}: the kit knows {', '.join(r.version for r in table)}",
            unknown_hint(version, table, role),
        )
    return found


def plan(start: str, target: str, table: Sequence[Release]) -> Plan:
    """The hops from ``start`` to ``target`` (pure). Refuses unknown versions and downgrades."""
    src, dst = _find(start, table, "starting"), _find(target, table, "target")
    if version_key(dst.version) < version_key(src.version):
        raise StackError(
            f"{src.version} -> {dst.version} is a downgrade: Mongo cannot open data after a newer release raised "
            "its feature compatibility version",
            "to go back, restore the backup taken before the upgrade (`inv restore FILE`)",
        )
    if not dst.hop:
        raise StackError(f"{dst.version} is known only as a starting point for upgrades, not as a target",
                         f"upgrade to one of: {', '.join(r.version for r in table if r.hop)}")
    if dst.version == src.version:
        return Plan(src, dst, ())
    lo, hi = _series_index(src.series), _series_index(dst.series)
    if hi < lo:
        raise StackError(f"{dst.version} runs Mongo {dst.series}, older than {src.version}'s {src.series}",
                         "the release table is inconsistent; pick another target")
    hops: list[Hop] = []
    for series in SERIES[lo + 1:hi]:
        candidates = [r for r in table if r.series == series and r.hop
                      and version_key(src.version) < version_key(r.version) < version_key(dst.version)]
        if not candidates:
            raise StackError(
                f"no release on Mongo {series} between {src.version} and {dst.version} in the kit's table: "
                "Mongo cannot skip a series",
                "upgrade the kit, or add the missing release (CLEARML_EXTRA_RELEASES)",
            )
        best = max(candidates, key=lambda r: (r.verified, version_key(r.version)))
        hops.append(Hop(best, f"Mongo {series}: one clean start raises the data to {series}"))
    why = f"the target, Mongo {dst.series}"
    hops.append(Hop(dst, why))
    return Plan(src, dst, tuple(hops))


def describe(p: Plan, settings_file: Path | str = ".env") -> list[str]:
    """The plan as lines a person reads before agreeing to it (pure)."""
    if not p.hops:
        return [f"already at {p.target.version}: nothing to do"]
    lines = [f"upgrade {p.start.version} (Mongo {p.start.series}) -> {p.target.version} "
             f"(Mongo {p.target.series}) in {len(p.hops)} hop(s):",
             "  0. back up data, config, settings and users (`inv backup`); its path is printed"]
    for i, hop in enumerate(p.hops, 1):
        r = hop.release
        flag = "" if r.verified else "  [some tags unverified]"
        lines.append(f"  {i}. {r.version}: {r.server_repo}:{r.server_tag}, mongo:{r.mongo_tag}, "
                     f"elasticsearch:{r.elastic_tag}, redis:{r.redis_tag}{flag}")
        lines.append(f"     set CLEARML_SERVER_VERSION={r.version} in {settings_file}, start, wait until healthy, "
                     f"stop ({hop.why})")
    lines.append("  on the first failure: stop there, print the backup and the rollback command")
    return lines


# --- acting ------------------------------------------------------------------------------------


def pinned_images(settings) -> list[str]:
    """Image settings that carry their own tag: an upgrade could not change what they run."""
    keys = ("CLEARML_SERVER_IMAGE", "MONGO_IMAGE", "ELASTIC_IMAGE", "REDIS_IMAGE")
    return [k for k in keys if (v := settings.values.get(k, "")) and ("@" in v or ":" in v.rsplit("/", 1)[-1])]


def record_version(env_file: Path, version: str) -> None:
    """Write CLEARML_SERVER_VERSION into the settings file (atomically, mode 0600)."""
    from .envfile import set_values
    from .fsutil import atomic_write

    atomic_write(env_file, set_values(env_file.read_text(), {"CLEARML_SERVER_VERSION": version}), 0o600)


def run(settings, start: str, target: str, dry_run: bool = False, out_dir: Path | None = None,
        timeout: int | None = None, check: Callable[[Settings], None] | None = None) -> Plan:
    """Back up, then walk the hops: set the version, start, wait healthy, stop. Raises at the first failure.

    ``start`` other than the recorded version adopts a server installed by other means: it is recorded
    first, so the backup, its manifest and the printed rollback name the release the data belongs to.
    ``check`` (e.g. the smoke test) runs after the last hop while the target release is up; its failure
    is reported like a failed hop.
    """
    from . import backup, versions
    from .install import InstallReport, render_config
    from .settings import load
    from .stack import Stack

    table = versions.all_releases()
    p = plan(start, target, table)
    for line in describe(p, settings.env_file):
        ui.out(line)
    if dry_run or not p.hops:
        return p
    settings.require_installed()
    if "CLEARML_SERVER_VERSION" in settings.overridden:
        raise StackError("CLEARML_SERVER_VERSION is set in the environment, so the recorded version cannot change",
                         "unset the environment variable and run `inv upgrade` again")
    pinned = pinned_images(settings)
    if pinned:
        raise StackError(
            f"{', '.join(pinned)} pin(s) an image tag, so the hops could not change what runs",
            "give the image name without a tag (the release's tag is then used), or empty it, and run again",
        )
    recorded = settings["CLEARML_SERVER_VERSION"]
    if recorded != p.start.version:
        ui.note(f"adopting a server at {p.start.version}: the settings file said {recorded}; recording "
                f"{p.start.version} before the backup so that the backup is labelled with its data's release")
        record_version(settings.env_file, p.start.version)
        settings = load()
        recorded = p.start.version
    stack = Stack(settings)
    was_running = any(s.state == "running" for s in stack.states())
    archive = backup.create(settings, out_dir=out_dir, restart=False)
    rollback = f"inv down && inv restore {archive}"
    wait = timeout or int(settings["CLEARML_WAIT_TIMEOUT"])
    for i, hop in enumerate(p.hops, 1):
        version = hop.release.version
        last = i == len(p.hops)
        ui.say(ui.paint(f"=== hop {i}/{len(p.hops)}: {version} ({hop.why})", "bold"))
        started = time.monotonic()
        try:
            if i == 1:
                stack.compose("stop")
            record_version(settings.env_file, version)
            recorded = version
            hop_settings = load()
            hop_stack = Stack(hop_settings)
            render_config(hop_settings, InstallReport())
            res = hop_stack.compose("up", "-d", "--remove-orphans", "--wait", "--wait-timeout", str(wait), check=False)
            if not res.ok:
                hop_stack.explain_failure()
            ui.ok(f"hop {i}: {version} healthy after {time.monotonic() - started:.0f}s")
            if last and check is not None:
                check(hop_settings)
            if not (last and was_running):
                hop_stack.compose("stop")
        except (StackError, OSError) as exc:
            previous = p.start.version if i == 1 else p.hops[i - 2].release.version
            why = exc.message if isinstance(exc, StackError) else f"{exc.strerror or exc} ({exc.filename or ''})"
            raise StackError(
                f"upgrade stopped at hop {i}/{len(p.hops)} ({version}): {why}\n"
                f"  the settings file records {recorded}; the backup taken before the upgrade is {archive}",
                f"roll back with `{rollback}`, or fix the cause and run `inv upgrade --from {previous} "
                f"--to {p.target.version}` to retry this hop (the data is at least at {previous})",
            ) from None
    ui.ok(f"upgraded to {p.target.version}; backup of the previous state: {archive}")
    ui.note("start it with `inv up`" if not was_running else "the server is running the new release")
    return p
