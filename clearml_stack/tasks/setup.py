"""Setting up a deployment: `inv install`."""

from __future__ import annotations

from pathlib import Path

from .. import ui
from .base import interactive, task


@task(
    auto_shortflags=False,  # long flags only: eight of them would otherwise get confusing letters (e.g. "-_")
    help={
        "mode": "access mode written to the settings file: tunnel (default), lightning-proxy, subdomains, ports",
        "domain": "public name: base domain in subdomains mode (app./api./files.<domain>), Studio host in "
                  "lightning-proxy mode (default on a Lightning Studio: derived from $LIGHTNING_CLOUDSPACE_HOST)",
        "tls": "TLS at the subdomain gateway: off, self-signed, provided, external (a proxy in front ends TLS)",
        "self_signed": "same as --tls self-signed: a private CA and a certificate for *.<domain>",
        "tls_cert": "certificate chain (PEM) for the gateway; implies --tls provided",
        "tls_key": "private key (PEM) of that certificate; implies --tls provided",
        "gateway_port": "host port of the subdomain gateway (default: 8000 on a Lightning Studio; elsewhere 443 "
                        "with TLS at the gateway, plus 80 redirecting to it, and 80 without)",
        "user": "also create this web login user (with --password-stdin when not interactive)",
        "password_stdin": "read the new user's password from one line of stdin",
    }
)
def install(c, mode="", domain="", tls="", self_signed=False, tls_cert="", tls_key="", gateway_port="", user="",
            password_stdin=False):
    """Create or complete .env, generate missing secrets, create the data layout, render config."""
    from ..install import install as do_install
    from .users import add_user_flow

    # the new user is checked (and its password read and checked) before anything is written
    password = _first_user_password(user, password_stdin) if user else None
    updates = access_updates(mode=mode, domain=domain, tls=tls, self_signed=self_signed, tls_cert=tls_cert,
                             tls_key=tls_key, gateway_port=gateway_port)
    settings, report = do_install(updates)
    for line in report.lines:
        ui.ok(line)
    if user and _user_exists(settings, user):
        ui.ok(f"user {user!r} exists already; kept as it is (`inv users.passwd {user}` changes the password)")
    elif user:
        add_user_flow(settings, user, name="", password_stdin=password_stdin, password=password)
    elif interactive() and not _has_users(settings):
        _offer_first_user(settings)
    if not report.lines and not user:
        ui.ok(f"nothing to do: {settings.env_file}, the data layout and the config are up to date")
    _lightning_hooks(settings)
    if not _has_users(settings):
        ui.note("no web login user yet: `inv users.add NAME` before `inv up` (the server would be open otherwise)")


def _offer_first_user(settings, attempts: int = 3) -> None:
    """Ask for the first web login user; a refused name or password is asked again (an empty name skips)."""
    from ..errors import StackError
    from .users import add_user_flow

    answer = input("No web login user yet. Create one now? [Y/n] ").strip().lower()
    if answer not in ("", "y", "yes"):
        return
    for attempt in range(attempts):
        name = input("user name (empty to skip): ").strip()
        if not name:
            return
        try:
            add_user_flow(settings, name, name="", password_stdin=False)
            return
        except StackError as exc:
            ui.error(exc.message, exc.fix if attempt + 1 == attempts else "try again")
    ui.note("no user was created")


def _first_user_password(user: str, password_stdin: bool) -> str | None:
    """The password for ``inv install --user``, read and checked before install writes anything.

    None when the user exists already (install keeps it and asks nothing). The name is checked first,
    so a bad name is refused without asking for a password.
    """
    from ..errors import StackError
    from ..settings import load
    from ..users import check_new_user, check_password, check_username, find, load_users
    from .users import read_password

    check_username(user)
    try:
        users = load_users(load().users_file)
    except StackError:
        users = []  # settings or users file install will complete or refuse; as far as we can tell, it is new
    if find(users, user) is not None:
        return None
    check_new_user(users, user, user)
    password = read_password(password_stdin)
    check_password(password)
    return password


def _user_exists(settings, username: str) -> bool:
    from ..users import find, load_users

    return find(load_users(settings.users_file), username) is not None


def _has_users(settings) -> bool:
    from ..users import load_users

    return bool(load_users(settings.users_file))


def access_updates(mode: str = "", domain: str = "", tls: str = "", self_signed: bool = False,
                   tls_cert: str = "", tls_key: str = "", gateway_port: str = "") -> dict[str, str]:
    """The settings the access flags write, plus the mode's default public name (asked on a terminal)."""
    import os

    from ..access import domain_updates, studio_host
    from ..envfile import parse_env
    from ..errors import StackError
    from ..settings import env_file_path, merge_sources

    updates: dict[str, str] = {}
    if mode:
        updates["CLEARML_ACCESS_MODE"] = mode
    if domain:
        updates["CLEARML_DOMAIN"] = domain
    if gateway_port:
        updates["CLEARML_GATEWAY_PORT"] = str(gateway_port)
    if self_signed and tls and tls != "self-signed":
        raise StackError(f"--self-signed and --tls {tls} disagree", "give one of them")
    if (tls_cert or tls_key) and (self_signed or tls not in ("", "provided")):
        raise StackError("--tls-cert/--tls-key are for --tls provided", "drop --self-signed / --tls, or the paths")
    if self_signed:
        updates["CLEARML_TLS"] = "self-signed"
    elif tls_cert or tls_key:
        updates["CLEARML_TLS"] = "provided"
    elif tls:
        updates["CLEARML_TLS"] = tls
    if tls_cert:
        updates["CLEARML_TLS_CERT"] = str(Path(tls_cert).expanduser().resolve())
    if tls_key:
        updates["CLEARML_TLS_KEY"] = str(Path(tls_key).expanduser().resolve())
    path = env_file_path()
    current = merge_sources(parse_env(path.read_text(), str(path)) if path.is_file() else {}, os.environ)
    ask = (lambda prompt: input(prompt)) if interactive() else None
    found = domain_updates(current, updates, os.environ, ask)
    on_studio = bool(studio_host(os.environ))
    for key, value in found.items():
        ui.note(f"{key}={value}" + (" (the default on this Lightning Studio; --domain/--tls choose another)"
                                    if on_studio else ""))
    return {**updates, **found, **gateway_ports(current, {**updates, **found})}


def gateway_ports(current, updates) -> dict[str, str]:
    """The gateway ports subdomains mode gets off a Lightning Studio (see access.gateway_port_updates), announced."""
    import os

    from ..access import GATEWAY_PORT_NOTE, gateway_port_updates

    ports = gateway_port_updates(current, updates, os.environ)
    for key, value in ports.items():
        ui.note(f"{key}={value or '(none)'}")
    if ports:
        ui.note(GATEWAY_PORT_NOTE)
    return ports


def _lightning_hooks(settings) -> None:
    from ..lightning import after_install

    done, notes = after_install(settings)
    for line in done:
        ui.ok(line)
    for line in notes:
        ui.note(line)
