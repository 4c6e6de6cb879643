"""Lightning Studio hooks: `inv lightning.install` and `inv lightning.uninstall`."""

from __future__ import annotations

from .. import ui
from .base import settings as load_settings, task


@task
def install(c):
    """Place the on_start/on_stop hooks in ~/.lightning_studio/ (done by `inv install` on a Studio)."""
    from ..lightning import after_install

    done, notes = after_install(load_settings())
    for line in done:
        ui.ok(line)
    for line in notes:
        ui.note(line)


@task
def uninstall(c):
    """Remove the kit's blocks from ~/.lightning_studio/on_start.sh and on_stop.sh (your lines stay)."""
    from ..lightning import hooks_dir, remove

    done = remove()
    for line in done:
        ui.ok(line)
    if not done:
        ui.note(f"no clearml-lightning hooks in {hooks_dir()}: nothing to remove")
