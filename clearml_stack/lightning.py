"""Lightning Studio lifecycle: on_start/on_stop hooks in ``~/.lightning_studio/``.

A Studio keeps its home directory across restarts but not kernel settings or running containers.
``inv install`` on a Studio adds a marked block to ``on_start.sh`` (re-apply ``vm.max_map_count``,
start the stack and agents) and to ``on_stop.sh`` (stop them cleanly); the user's own lines in those
files are kept. ``inv lightning.uninstall`` removes only the blocks. Off a Studio nothing is placed.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .checks import MIN_MAX_MAP_COUNT
from .fsutil import atomic_write
from .render.template import fill_file

#: environment variables a Studio sets; any one of them marks a Studio
STUDIO_ENV = ("LIGHTNING_CLOUDSPACE_HOST", "LIGHTNING_CLOUD_SPACE_ID", "LIGHTNING_CLOUD_PROJECT_ID")
HOOKS = ("on_start", "on_stop")
BEGIN = "# >>> clearml-lightning >>>"
END = "# <<< clearml-lightning <<<"
SHEBANG = "#!/usr/bin/env bash\n"
_BLOCK = re.compile(rf"^{re.escape(BEGIN)}.*?^{re.escape(END)}[^\n]*\n?", re.S | re.M)


def is_studio(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return any(environ.get(k) for k in STUDIO_ENV)


def hooks_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("HOME") or Path.home()) / ".lightning_studio"


@dataclass(frozen=True)
class HookValues:
    kit_root: Path
    env_file: Path
    inv: Path
    log_file: Path

    def rendered(self) -> dict[str, str]:
        q = lambda p: shlex.quote(str(p))  # noqa: E731
        return {"kit_root": q(self.kit_root), "env_file": q(self.env_file), "inv": q(self.inv),
                "log_file": q(self.log_file), "min_map_count": str(MIN_MAX_MAP_COUNT)}


def render_block(hook: str, values: HookValues) -> str:
    """The marked block for ``on_start`` or ``on_stop`` (pure apart from reading the template)."""
    fields = values.rendered()
    if hook == "on_stop":
        fields.pop("min_map_count")
    return fill_file(f"scripts/lightning/{hook}.sh", fields)


def with_block(existing: str | None, block: str) -> str:
    """The hook text with our block in place: replaced where it was, else appended (pure)."""
    if existing is None or not existing.strip():
        return SHEBANG + "\n" + block
    if _BLOCK.search(existing):
        return _BLOCK.sub(lambda _: block, existing, count=1)
    sep = "" if existing.endswith("\n") else "\n"
    return existing + sep + "\n" + block


def without_block(existing: str) -> str | None:
    """The hook text without our block; None when nothing of the user's would remain (pure)."""
    text = _BLOCK.sub("", existing)
    rest = [line for line in text.splitlines() if line.strip() and line.strip() != SHEBANG.strip()]
    if not rest:
        return None
    return text.rstrip("\n") + "\n" if text.endswith("\n\n") else text


def default_values(settings) -> HookValues:
    return HookValues(kit_root=settings.kit_root, env_file=settings.env_file,
                      inv=Path(sys.executable).parent / "inv",
                      log_file=hooks_dir() / "clearml-lightning.log")


def place(settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Write both hooks (our block only); returns what was done."""
    directory = hooks_dir(environ)
    directory.mkdir(parents=True, exist_ok=True)
    values = default_values(settings)
    done = []
    for hook in HOOKS:
        path = directory / f"{hook}.sh"
        existing = path.read_text() if path.is_file() else None
        new = with_block(existing, render_block(hook, values))
        mode = (_mode(path) if existing is not None else 0) | 0o755  # the Studio runs it: executable
        if new != existing:
            atomic_write(path, new, mode)  # the user's own lines are never left half-written
            done.append(f"{'updated' if existing else 'created'} {path}")
        elif _mode(path) != mode:
            os.chmod(path, mode)
    return done


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def remove(environ: Mapping[str, str] | None = None) -> list[str]:
    done = []
    for hook in HOOKS:
        path = hooks_dir(environ) / f"{hook}.sh"
        if not path.is_file():
            continue
        text = path.read_text()
        if not _BLOCK.search(text):
            continue
        rest = without_block(text)
        if rest is None:
            path.unlink()
            done.append(f"removed {path}")
        else:
            atomic_write(path, rest, _mode(path))
            done.append(f"removed the clearml-lightning block from {path} (your lines are kept)")
    return done


def data_warning(settings, environ: Mapping[str, str] | None = None) -> str | None:
    """A Studio keeps only the home directory: say so when the data lives elsewhere."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME") or Path.home()).resolve()
    if not settings.data_dir.resolve().is_relative_to(home):
        return (f"CLEARML_DATA_DIR={settings.data_dir} is outside the home directory {home}: the Studio does not keep "
                "it across restarts; set CLEARML_DATA_DIR under your home (e.g. ./data in the kit) before `inv up`")
    return None


def after_install(settings, environ: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(done, notes) for `inv install`: place the hooks on a Studio, note the skip elsewhere."""
    if not is_studio(environ):
        return [], ["not a Lightning Studio (no LIGHTNING_CLOUDSPACE_HOST...): no on_start/on_stop hooks placed"]
    done = place(settings, environ)
    notes = [f"Lightning Studio: hooks in {hooks_dir(environ)} re-apply vm.max_map_count and start the server at "
             "Studio start, stop it at Studio stop (`inv lightning.uninstall` removes them)"]
    warning = data_warning(settings, environ)
    if warning:
        notes.append(warning)
    return done, notes
