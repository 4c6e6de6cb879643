"""`inv repair`: MongoDB's own repair (``mongod --repair``) on the stopped store, after a backup.

For a Mongo that will not start after a crash or a full disk: the stack is stopped, a backup is taken,
then a one-off container of the stack's own mongo image (same volumes) runs
``mongod --repair --dbpath /data/db`` and exits; what was running before is started again.
"""

from __future__ import annotations

from . import ui
from .errors import StackError

REPAIR_COMMAND = ("mongod", "--repair", "--dbpath", "/data/db")


def compose_args() -> list[str]:
    """The compose arguments of the one-off repair container (pure).

    The image's own entrypoint stays: the official one runs mongod as user mongodb after giving it
    the data, so the repaired files keep the owner the next start expects.
    """
    return ["run", "--rm", "--no-deps", "-T", "mongo", *REPAIR_COMMAND]


def run(settings, out_dir=None) -> str:
    from . import backup
    from .stack import Stack

    settings.require_installed()
    stack = Stack(settings)
    running = sorted({s.service for s in stack.states() if s.state in ("running", "restarting")})
    if running:
        ui.note(f"stopping the stack for the repair: {', '.join(running)}")
        stack.compose("stop")
    archive = backup.create(settings, out_dir=out_dir, restart=False)
    ui.note(f"repairing the Mongo data in {settings.data_dir / 'data/mongo_4/db'} with {settings.image('mongo')}")
    res = stack.compose(*compose_args(), check=False)
    if not res.ok:
        raise StackError(f"`mongod --repair` failed with exit code {res.returncode} (its output is above)",
                         f"nothing else was changed; the backup taken before is {archive}. Read mongod's message; "
                         "`inv restore` that backup if the store is beyond repair")
    ui.ok("mongod --repair finished")
    if running:
        ui.note(f"starting again: {', '.join(running)}")
        stack.up(allow_open=not stack.users)
    else:
        ui.note("start the server with `inv up`")
    return str(archive)
