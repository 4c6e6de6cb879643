"""Generated credentials: `inv keys` (list masked, --show, --rotate [--agent])."""

from __future__ import annotations

import os

from .. import ui
from ..errors import StackError
from .base import settings as load_settings, task


@task(
    name="keys",
    help={
        "show": "print the values themselves (they are secrets: mind who is looking and where output goes)",
        "rotate": "replace the system credentials and both signing secrets, then restart in a safe order "
                  "(users log in again; app credentials they created stay valid)",
        "agent": "with --rotate: also replace the agent pair (agents on this host are recreated with it)",
    },
)
def keys(c, show=False, rotate=False, agent=False):
    """Show which generated credentials exist (masked) or rotate them."""
    from .. import keys as keys_mod

    settings = load_settings()
    if agent and not rotate:
        raise StackError("--agent only says what --rotate replaces", "run `inv keys --rotate --agent`")
    if rotate:
        settings = rotate_flow(settings, agent)
    settings.require_installed()
    ui.out(ui.table(("SETTING", "CREDENTIAL", "FROM", "ROTATE WITH", "VALUE"), keys_mod.rows(settings, show=show)))
    if not show:
        ui.note("values are masked; `inv keys --show` prints them")


def rotate_flow(settings, agent: bool):
    """Write new values to .env, render the config, and restart what reads them in order."""
    from .. import keys as keys_mod, settings as settings_mod
    from ..envfile import parse_env, set_values
    from ..fsutil import atomic_write
    from ..install import InstallReport, render_config
    from ..stack import Stack

    settings.require_installed()
    rotated = keys_mod.keys_to_rotate(agent=agent)
    new_values = keys_mod.plan_rotation(settings, rotated)
    stack = Stack(settings)
    try:
        running = {s.service for s in stack.states() if s.state == "running"}
    except StackError:
        running = set()
    text = set_values(settings.env_file.read_text(), new_values)
    found = settings_mod.problems(settings_mod.merge_sources(parse_env(text, str(settings.env_file)), os.environ))
    if found:  # cannot happen with generated values; refuse rather than write a file `inv` would reject
        raise StackError("rotation would produce invalid settings, nothing was written:\n  " + "\n  ".join(found),
                         "report this as a bug")
    atomic_write(settings.env_file, text, 0o600)
    ui.ok(f"wrote {len(new_values)} new values to {settings.env_file}: {', '.join(rotated)}")
    settings = settings_mod.load()
    render_config(settings, InstallReport())
    if not running & set(keys_mod.STOP_ORDER):
        ui.note("the server is not running: the new values apply at the next `inv up`")
    else:
        stack = Stack(settings)
        ui.note("applying: stop what holds the old values (consumers first), clear the file server's token cache, "
                "start in dependency order")
        steps = keys_mod.restart_steps(running, int(settings["CLEARML_WAIT_TIMEOUT"]))
        for step in steps[:-1]:
            stack.compose(*step)
        res = stack.compose(*steps[-1], check=False)
        if not res.ok:
            stack.explain_failure()
        ui.ok("the stack runs with the new credentials; everyone logs in again (app credentials stay valid)")
    if agent:
        ui.note("agents on other machines use the old pair until they get the new one: run `inv agents.bundle` "
                "again and redeploy it there")
    return settings
