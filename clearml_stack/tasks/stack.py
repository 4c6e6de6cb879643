"""Running the server: `inv up/down/restart/status/logs/config/compose`."""

from __future__ import annotations

import shlex
import sys

from invoke import Exit

from .. import ui
from .base import settings as load_settings, task


def _stack():
    from ..stack import Stack

    return Stack(load_settings())


@task(help={"allow_open": "start even with no web login user (anyone who reaches the UI can sign up)",
            "timeout": "seconds to wait for every service to be healthy (default: CLEARML_WAIT_TIMEOUT)",
            "smoke": "then prove it works: `inv smoke` with the kit's own key"})
def up(c, allow_open=False, timeout=0, smoke=False):
    """Render config, check the host, start every service and wait until healthy."""
    stack = _stack()
    stack.up(allow_open=allow_open, timeout=timeout or None)
    if smoke:
        from .examples import smoke_and_report

        smoke_and_report(stack.settings)


@task
def down(c):
    """Stop and remove the containers; data and settings are kept."""
    _stack().down()


@task(help={"service": "restart only this service (e.g. apiserver); default: all"})
def restart(c, service=""):
    """Restart services and wait until they are healthy again."""
    _stack().restart(service)


@task(help={"json": "print the report as JSON (for scripts)"})
def status(c, json=False):
    """Show each service's state, health and ports, and whether the API answers."""
    from ..stack import status_json, status_table

    report = _stack().status()
    ui.out(status_json(report) if json else status_table(report))
    if not report["healthy"] and not json:
        ui.note("not everything is healthy: `inv logs --service NAME`, `inv doctor`")


@task(help={"service": "only this service", "follow": "keep printing new lines", "tail": "lines to show first"})
def logs(c, service="", follow=False, tail=200):
    """Show container logs."""
    _stack().logs(service, follow, int(tail))


@task(help={"show_secrets": "print secret values instead of masking them"})
def config(c, show_secrets=False):
    """Print the merged compose file for the current settings (secrets masked)."""
    ui.out(_stack().merged_config(show_secrets))


@task
def compose(c):
    """Run any docker compose command on this stack: inv compose -- ARGS."""
    if not c.remainder.strip():
        ui.error("nothing to run", "give compose arguments after --, e.g. `inv compose -- ps -a`")
        raise Exit(code=2)
    # invoke joins the remainder into one string and loses its quoting: take the words from argv
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else shlex.split(c.remainder)
    code = _stack().passthrough(argv)
    if code:
        raise Exit(code=code)
