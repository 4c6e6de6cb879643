"""`inv fresh`: start over, but never without a copy: back up, then remove containers, data and config.

The settings file (with its generated secrets) and the users file stay unless ``--all``; the backup
archive is written outside the data directory and is never removed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from . import ui
from .errors import StackError


@dataclass(frozen=True)
class FreshPlan:
    remove: tuple[Path, ...]
    keep: tuple[Path, ...]


def plan(data_dir: Path, env_file: Path, users_file: Path, backup_dir: Path, everything: bool,
         kit_root: Path | None = None) -> FreshPlan:
    """What goes and what stays (pure). The backup directory and the kit itself are never removed."""
    remove = [data_dir]
    keep = [backup_dir]
    (remove if everything else keep).extend([env_file, users_file])
    if kit_root is not None and kit_root.is_relative_to(data_dir):
        raise StackError(f"the data directory {data_dir} contains the kit itself ({kit_root})",
                         "set CLEARML_DATA_DIR to a directory of its own (e.g. ./data)")
    for path in keep:
        if path.is_relative_to(data_dir):
            raise StackError(f"{path} is inside the data directory {data_dir}, which `inv fresh` removes",
                             "keep the settings, users and backup files outside it (CLEARML_BACKUP_DIR, --out, "
                             "CLEARML_USERS_FILE)")
    return FreshPlan(tuple(remove), tuple(keep))


def confirmed(answer: str, project: str) -> bool:
    return answer.strip() == project


def run(settings, everything: bool = False, out_dir: Path | None = None) -> Path:
    """Back up, remove the stack's containers, networks and volumes, then the files in the plan."""
    from . import backup
    from .install import InstallReport, create_layout
    from .stack import Stack

    backup_dir = Path(out_dir).expanduser().resolve() if out_dir else backup.default_out_dir(settings)
    p = plan(settings.data_dir, settings.env_file, settings.users_file, backup_dir, everything, settings.kit_root)
    archive = backup.create(settings, out_dir=backup_dir, restart=False)
    Stack(settings).compose("down", "--remove-orphans", "--volumes")
    for path in p.remove:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        except PermissionError as exc:
            raise StackError(f"cannot remove {exc.filename}: permission denied (the containers' users own it)",
                             f"run as root: `sudo rm -rf {path}`; the backup is {archive}") from exc
        ui.ok(f"removed {path}")
    if not everything:
        report = InstallReport()
        create_layout(settings.data_dir, report)
        ui.ok(f"kept {settings.env_file} and {settings.users_file}; empty data layout ready: `inv up` starts a new server")
    else:
        ui.ok("removed the settings and users files too: `inv install` starts over")
    ui.note(f"the backup of what was removed: {archive} (`inv restore {archive}` brings it back)")
    return archive
