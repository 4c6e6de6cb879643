"""Setting up a deployment: `inv install`."""

from __future__ import annotations

from .. import ui
from .base import interactive, task


@task(
    help={
        "mode": "access mode written to the settings file: tunnel (default), lightning-proxy, subdomains, ports",
        "domain": "base domain for subdomains mode (app./api./files.<domain>)",
        "user": "also create this web login user (with --password-stdin when not interactive)",
        "password_stdin": "read the new user's password from one line of stdin",
    }
)
def install(c, mode="", domain="", user="", password_stdin=False):
    """Create or complete .env, generate missing secrets, create the data layout, render config."""
    from ..install import install as do_install
    from .users import add_user_flow

    updates = {}
    if mode:
        updates["CLEARML_ACCESS_MODE"] = mode
    if domain:
        updates["CLEARML_DOMAIN"] = domain
    if (mode == "subdomains" or not mode) and not domain and interactive():
        updates.update(_ask_domain_if_needed(updates))
    settings, report = do_install(updates)
    for line in report.lines:
        ui.ok(line)
    if user:
        add_user_flow(settings, user, name="", password_stdin=password_stdin)
    elif interactive() and not _has_users(settings):
        answer = input("No web login user yet. Create one now? [Y/n] ").strip().lower()
        if answer in ("", "y", "yes"):
            name = input("user name: ").strip()
            add_user_flow(settings, name, name="", password_stdin=False)
    if not report.lines and not user:
        ui.ok(f"nothing to do: {settings.env_file}, the data layout and the config are up to date")
    _lightning_hooks(settings)
    if not _has_users(settings):
        ui.note("no web login user yet: `inv users.add NAME` before `inv up` (the server would be open otherwise)")


def _has_users(settings) -> bool:
    from ..users import load_users

    return bool(load_users(settings.users_file))


def _ask_domain_if_needed(updates: dict) -> dict:
    from ..envfile import parse_env
    from ..settings import env_file_path

    path = env_file_path()
    current = parse_env(path.read_text()) if path.is_file() else {}
    mode = updates.get("CLEARML_ACCESS_MODE") or current.get("CLEARML_ACCESS_MODE", "tunnel")
    if mode != "subdomains" or current.get("CLEARML_DOMAIN"):
        return {}
    domain = input("Base domain for subdomains mode (app./api./files.<domain>): ").strip()
    return {"CLEARML_DOMAIN": domain} if domain else {}


def _lightning_hooks(settings) -> None:
    from ..lightning import after_install

    done, notes = after_install(settings)
    for line in done:
        ui.ok(line)
    for line in notes:
        ui.note(line)
