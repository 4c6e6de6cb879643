"""The server's own configuration: ``<data>/config/{apiserver,services,secure}.conf``."""

from __future__ import annotations

from ..settings import Settings
from ..users import User
from . import hocon
from .template import fill_file

CONFIG_FILES = ("apiserver.conf", "services.conf", "secure.conf")


def fixed_users_block(users: list[User]) -> str:
    """The ``users`` array of ``auth.fixed_users``; every value HOCON-quoted."""
    return hocon.array(
        (
            hocon.obj(
                {"username": hocon.string(u.username), "password": hocon.string(u.password_hash),
                 "name": hocon.string(u.name or u.username)},
                indent=12,
            )
            for u in users
        ),
        indent=8,
    )


def cookie_domain(settings: Settings) -> str | None:
    """Subdomains mode shares the login cookie across app./api./files. of the base domain."""
    return f".{settings.domain}" if settings.mode == "subdomains" and settings.domain else None


def cookie_secure(settings: Settings) -> bool:
    return settings.values.get("CLEARML_TLS", "off") not in ("", "off")


def render_apiserver(settings: Settings, users: list[User]) -> str:
    return fill_file(
        "config/apiserver.conf.tmpl",
        {
            "cookie_secure": hocon.boolean(cookie_secure(settings)),
            "cookie_domain": hocon.null_or_string(cookie_domain(settings)),
            "fixed_users_enabled": hocon.boolean(bool(users)),
            "fixed_users": fixed_users_block(users),
        },
    )


def render_services(settings: Settings) -> str:
    return fill_file(
        "config/services.conf.tmpl",
        {
            "watchdog_threshold_sec": hocon.integer(int(settings["CLEARML_WATCHDOG_THRESHOLD_SEC"])),
            "watchdog_interval_sec": hocon.integer(int(settings["CLEARML_WATCHDOG_INTERVAL_SEC"])),
        },
    )


def render_secure(settings: Settings) -> str:
    s = settings.secret
    return fill_file(
        "config/secure.conf.tmpl",
        {
            "session_secret": hocon.string(s("CLEARML_SESSION_SECRET")),
            "token_secret": hocon.string(s("CLEARML_AUTH_TOKEN_SECRET")),
            "apiserver_key": hocon.string(s("CLEARML_APISERVER_KEY")),
            "apiserver_secret": hocon.string(s("CLEARML_APISERVER_SECRET")),
            "fileserver_key": hocon.string(s("CLEARML_FILESERVER_KEY")),
            "fileserver_secret": hocon.string(s("CLEARML_FILESERVER_SECRET")),
            "webserver_key": hocon.string(s("CLEARML_WEBSERVER_KEY")),
            "webserver_secret": hocon.string(s("CLEARML_WEBSERVER_SECRET")),
            "agent_key": hocon.string(s("CLEARML_AGENT_ACCESS_KEY")),
            "agent_secret": hocon.string(s("CLEARML_AGENT_SECRET_KEY")),
            "tests_key": hocon.string(s("CLEARML_TESTS_KEY")),
            "tests_secret": hocon.string(s("CLEARML_TESTS_SECRET")),
        },
    )


def render_all(settings: Settings, users: list[User]) -> dict[str, str]:
    """File name (under ``<data>/config``) -> text."""
    return {
        "apiserver.conf": render_apiserver(settings, users),
        "services.conf": render_services(settings),
        "secure.conf": render_secure(settings),
    }
