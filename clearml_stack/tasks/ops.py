"""Operations: `inv doctor/backup/restore/upgrade/fresh/repair`."""

from __future__ import annotations

from .. import ui
from ..errors import StackError
from .base import interactive, settings as load_settings, task


@task(help={"fix": "apply what can be fixed here: vm.max_map_count (set now and persisted, as root) and data "
                   "ownership (as root); otherwise print the commands",
            "json": "print the report as JSON (for scripts)"})
def doctor(c, fix=False, json=False):
    """Check the host and the stack: engine, kernel, RAM, disk, ownership, ports, settings, security, health."""
    from .. import doctor as doc

    readings = doc.collect()
    found = doc.evaluate(readings)
    fixed: list[str] = []
    if fix:
        fixed += doc.fix_max_map_count(readings.max_map_count)
        if readings.data_dir:
            fixed += doc.fix_ownership(readings.data_dir, found)
        fixed += doc.fix_audit(found)
        if fixed:
            readings = doc.collect()
            found = doc.evaluate(readings)
    if json:
        ui.out(doc.report_json(found, readings.skipped, fixed))
    else:
        for line in fixed:
            ui.ok(line) if not line.startswith("not root") else ui.note(line)
        ui.out(doc.report_text(found, readings.skipped))
    failed = [c for c in found if c.status == "fail"]
    if failed:
        raise StackError(f"doctor found {len(failed)} failing check(s): {', '.join(c.name for c in failed)}",
                         "apply the fixes listed above" + ("" if fix else " (`inv doctor --fix` applies some)"))


@task(help={"out": "directory for the archive (default: CLEARML_BACKUP_DIR, ./backups beside the settings file)"})
def backup(c, out=""):
    """Archive data, config, settings and users (stops the stack briefly for a consistent copy)."""
    from ..backup import create

    create(load_settings(), out_dir=out or None)


@task(help={"file": "the backup archive to restore (a .tar.gz `inv backup` wrote)",
            "no_start": "restore only; do not start the stack (the side copy of the previous state is then kept)",
            "keep_previous": "keep the side copy of the previous state even after the restored stack is healthy"})
def restore(c, file, no_start=False, keep_previous=False):
    """Restore a backup archive (refused while the stack runs; checksums verified first)."""
    from ..backup import restore as do_restore

    do_restore(file, start=not no_start, keep_previous=keep_previous)


@task(name="upgrade", help={
    "from_": "the release running now (default: CLEARML_SERVER_VERSION recorded in the settings file); name it "
             "to adopt a server installed by other means",
    "to": "the release to reach (default: the newest the kit knows)",
    "dry_run": "print the plan and change nothing",
    "out": "directory for the backup taken first (default: CLEARML_BACKUP_DIR)",
    "smoke": "after the last hop, prove the new release works: `inv smoke` with the kit's own key (as `inv up "
             "--smoke`); a failure names the backup and the rollback",
})
def upgrade(c, from_="", to="", dry_run=False, out="", smoke=False):
    """Upgrade the server through every release Mongo requires, with a backup first."""
    from .. import versions
    from ..upgrade import run

    settings = load_settings()
    start = from_ or settings["CLEARML_SERVER_VERSION"]
    target = to or max((r for r in versions.all_releases() if r.hop and r.verified),
                       key=lambda r: versions.version_key(r.version)).version
    check = None
    if smoke:
        from .examples import smoke_and_report

        check = smoke_and_report
    run(settings, start, target, dry_run=dry_run, out_dir=out or None, check=check)


@task(help={"yes": "do not ask for the project name (for scripts)",
            "all": "also remove the settings file (with its secrets) and the users file",
            "out": "directory for the backup taken first (default: CLEARML_BACKUP_DIR)"})
def fresh(c, yes=False, all=False, out=""):  # noqa: A002 - the flag is --all
    """Start over: back up, then remove containers, data and config (settings and users stay unless --all)."""
    from ..fresh import confirmed, run

    settings = load_settings()
    settings.require_installed()
    if not yes:
        if not interactive():
            raise StackError("`inv fresh` deletes the server's data and needs a confirmation",
                             "run it in a terminal, or pass --yes")
        what = "data, config, settings and users" if all else "data and config (settings and users stay)"
        ui.warn(f"this removes the containers and the {what} of {settings.project!r} after a backup")
        if not confirmed(input(f"type the project name ({settings.project}) to continue: "), settings.project):
            raise StackError("not confirmed: nothing was changed", "type the project name exactly, or pass --yes")
    run(settings, everything=all, out_dir=out or None)


@task(help={"out": "directory for the backup taken first (default: CLEARML_BACKUP_DIR)"})
def repair(c, out=""):
    """Run MongoDB's repair on the stopped store (after a backup), then start again what ran."""
    from ..repair import run

    run(load_settings(), out_dir=out or None)
