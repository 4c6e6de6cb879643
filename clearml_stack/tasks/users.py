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
        return line[:-1] if line.endswith("\n") else line
    if not interactive():
        raise StackError("no terminal to ask for a password", "pipe it in with --password-stdin")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("password again: "):
        raise StackError("the two passwords differ", "run the command again")
    return first


def apply_users_change(settings) -> None:
    """Render the login config and apply it to a running server (restart of the API server only)."""
    from ..install import InstallReport, render_config
    from ..stack import Stack

    render_config(settings, InstallReport())
    stack = Stack(settings)
    try:
        running = any(s.service == "apiserver" and s.state == "running" for s in stack.states())
    except StackError:
        running = False
    if running:
        ui.note("the server is running: applying the change (layers first, then a restart of the API server)")
        # a no-op unless the set of layers changed (first user added, last one removed)
        stack.compose("up", "-d", "--remove-orphans", "--wait", "--wait-timeout", settings["CLEARML_WAIT_TIMEOUT"])
        stack.restart("apiserver")
    else:
        ui.note("the change applies at the next `inv up`")


def add_user_flow(settings, username: str, name: str, password_stdin: bool) -> None:
    from ..users import User, check_display_name, check_username, hash_password, load_users, save_users, with_user

    check_username(username)
    check_display_name(name)
    users = load_users(settings.users_file)
    with_user(users, User(username, name, "x"))  # refuse a duplicate before asking for a password
    password = read_password(password_stdin)
    updated = with_user(users, User(username, name or username, hash_password(password)))
    save_users(settings.users_file, updated)
    ui.ok(f"added user {username!r} ({len(updated)} user(s) in {settings.users_file})")
    apply_users_change(settings)


@task(help={"name": "full name shown in the web UI (default: the user name)",
            "password_stdin": "read the password from one line of stdin instead of prompting"})
def add(c, username, name="", password_stdin=False):
    """Add a web login user (password stored only as a bcrypt hash)."""
    add_user_flow(load_settings(), username, name, password_stdin)


@task
def remove(c, username):
    """Remove a web login user."""
    from ..users import load_users, save_users, without_user

    settings = load_settings()
    updated = without_user(load_users(settings.users_file), username)
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


@task(help={"password_stdin": "read the new password from one line of stdin instead of prompting"})
def passwd(c, username, password_stdin=False):
    """Change a web login user's password."""
    from ..users import User, hash_password, load_users, save_users

    settings = load_settings()
    users = load_users(settings.users_file)
    match = [u for u in users if u.username == username]
    if not match:
        raise StackError(f"no user named {username!r}", "see `inv users.list`")
    new_hash = hash_password(read_password(password_stdin))
    save_users(settings.users_file,
               [User(u.username, u.name, new_hash) if u.username == username else u for u in users])
    ui.ok(f"changed the password of {username!r}")
    apply_users_change(settings)
