"""Web login users: `inv users.add/remove/list/passwd`."""

from __future__ import annotations

import getpass
import sys

from .. import ui
from ..errors import StackError
from .base import interactive, settings as load_settings, task


def read_password(password_stdin: bool) -> str:
    """One line from stdin, or a hidden prompt asked twice on a terminal."""
    if password_stdin:
        line = sys.stdin.readline()
        line = line[:-1] if line.endswith("\n") else line
        return line[:-1] if line.endswith("\r") else line
    if not interactive():
        raise StackError("no terminal to ask for a password", "pipe it in with --password-stdin")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("password again: "):
        raise StackError("the two passwords differ", "run the command again")
    return first


def apiserver_running(settings, users: list | None = None) -> bool:
    """Whether this deployment's API server container runs (False when the engine cannot tell).

    ``users`` (as read from the users file) spares reading and checking the file again: a file with a
    bad entry must not make a running server look stopped.
    """
    from ..stack import Stack

    try:
        return any(s.service == "apiserver" and s.state == "running"
                   for s in Stack(settings, users=users).states())
    except StackError:
        return False


def apply_users_change(settings, layers_change: bool = False) -> None:
    """Render the login config and apply it to a running server.

    The first user brings in the auth layer: `compose up` recreates the API server and file server
    with it. Any other change is only the API server's config: a restart of that one service.
    """
    from ..install import InstallReport, render_config
    from ..stack import Stack

    render_config(settings, InstallReport())
    if not apiserver_running(settings):
        ui.note("the change applies at the next `inv up`")
        return
    stack = Stack(settings)
    if layers_change:
        ui.note("the server is running: applying the auth layer (recreates the API server and file server)")
        stack.compose("up", "-d", "--remove-orphans", "--wait", "--wait-timeout", settings["CLEARML_WAIT_TIMEOUT"])
    else:
        ui.note("the server is running: applying the change (restart of the API server)")
        stack.restart("apiserver")
    ui.ok("the API server runs with the new login configuration")


def add_user_flow(settings, username: str, name: str, password_stdin: bool, password: str | None = None) -> None:
    """Add a user (asking for the password unless given), render and apply; refused before anything is written."""
    from ..users import add_user, check_new_user, load_users

    settings.require_installed()  # the login config needs the generated secrets
    users = load_users(settings.users_file)
    check_new_user(users, username, name or username)  # before asking for a password
    updated = add_user(settings, username, name, read_password(password_stdin) if password is None else password)
    ui.ok(f"added user {username!r} ({len(updated)} user(s) in {settings.users_file})")
    apply_users_change(settings, layers_change=not users)


@task(help={"username": "login name: 1-64 ASCII letters, digits, '.', '_', '@' or '-'",
            "name": "full name shown in the web UI (default: the user name)",
            "password_stdin": "read the password from one line of stdin instead of prompting"})
def add(c, username, name="", password_stdin=False):
    """Add a web login user (password stored only as a bcrypt hash)."""
    add_user_flow(load_settings(), username, name, password_stdin)


@task(help={"username": "the user to remove"})
def remove(c, username):
    """Remove a web login user."""
    from ..users import load_users, save_users, without_user

    settings = load_settings()
    # read without the per-entry checks: removing a bad entry is how a hand-edited file is repaired
    users = load_users(settings.users_file, check=False)
    updated = without_user(users, username)
    if not updated and apiserver_running(settings, users):
        raise StackError(
            f"{username!r} is the last web login user and the server is running: removing it would open the "
            "server to anyone who reaches it",
            "add another user first (`inv users.add NAME`), or stop the server (`inv down`) and remove it then",
        )
    save_users(settings.users_file, updated)
    ui.ok(f"removed user {username!r}")
    if not updated:
        ui.warn("no users left: `inv up` will refuse to start an open server until you add one")
    apply_users_change(settings)


@task(name="list")
def list_(c):
    """List web login users (names only, never hashes)."""
    from ..users import load_users

    users = load_users(load_settings().users_file)
    if not users:
        ui.note("no users yet: `inv users.add NAME`")
        return
    ui.out(ui.table(("USER", "NAME"), [(u.username, u.name) for u in users]))


@task(help={"username": "the user whose password changes",
            "password_stdin": "read the new password from one line of stdin instead of prompting"})
def passwd(c, username, password_stdin=False):
    """Change a web login user's password."""
    from ..users import change_password, check_password_change

    settings = load_settings()
    check_password_change(settings, username)  # before asking; a bad stored hash is what this replaces
    change_password(settings, username, read_password(password_stdin))
    ui.ok(f"changed the password of {username!r}")
    apply_users_change(settings)
