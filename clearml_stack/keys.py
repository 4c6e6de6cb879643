"""The generated credentials: what each one is for, where the server reads it, and how it is rotated.

Pure functions only: `inv keys` (``clearml_stack.tasks.keys``) reads the settings, calls these, and
acts through the Stack.

Rotation replaces the system credentials and both signing secrets (``--rotate``), and the agent pair
on request (``--agent``). Users' own app credentials (created in the web UI, stored in MongoDB) are not
touched and stay valid; login tokens signed with the old secret do not, so users log in again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from . import secrets
from .errors import StackError
from .public_defaults import KNOWN_BAD_VALUES
from .settings import Settings

SYSTEM = "system"
AGENT = "agent"


@dataclass(frozen=True)
class Credential:
    label: str
    group: str  # SYSTEM (rotated by --rotate) or AGENT (rotated by --rotate --agent)
    settings: tuple[str, ...]  # setting keys in .env
    paths: tuple[str, ...]  # the configuration keys the server reads them as, same order
    what: str


CREDENTIALS: tuple[Credential, ...] = (
    Credential("token signing secret", SYSTEM, ("CLEARML_AUTH_TOKEN_SECRET",), ("secure.auth.token_secret",),
               "signs login tokens; whoever knows it can log in as anyone"),
    Credential("session secret", SYSTEM, ("CLEARML_SESSION_SECRET",), ("secure.http.session_secret.apiserver",),
               "the API server's session signing secret"),
    Credential("apiserver system pair", SYSTEM, ("CLEARML_APISERVER_KEY", "CLEARML_APISERVER_SECRET"),
               ("secure.credentials.apiserver.user_key", "secure.credentials.apiserver.user_secret"),
               "role system: the API server's own identity"),
    Credential("fileserver system pair", SYSTEM, ("CLEARML_FILESERVER_KEY", "CLEARML_FILESERVER_SECRET"),
               ("secure.credentials.fileserver.user_key", "secure.credentials.fileserver.user_secret"),
               "role system: the file server checks login tokens with it"),
    Credential("webserver system pair", SYSTEM, ("CLEARML_WEBSERVER_KEY", "CLEARML_WEBSERVER_SECRET"),
               ("secure.credentials.webserver.user_key", "secure.credentials.webserver.user_secret"),
               "role system; revoked while web login users exist"),
    Credential("tests user pair", SYSTEM, ("CLEARML_TESTS_KEY", "CLEARML_TESTS_SECRET"),
               ("secure.credentials.tests.user_key", "secure.credentials.tests.user_secret"),
               "the default user; revoked while web login users exist"),
    Credential("agent pair", AGENT, ("CLEARML_AGENT_ACCESS_KEY", "CLEARML_AGENT_SECRET_KEY"),
               ("secure.credentials.services_agent.user_key", "secure.credentials.services_agent.user_secret"),
               "role admin: the services agent and the agents `inv agents.up` starts"),
)

#: setting key -> the configuration key the server reads it as
PATH_OF_SETTING: dict[str, str] = {k: p for c in CREDENTIALS for k, p in zip(c.settings, c.paths)}
#: configuration key -> setting key
SETTING_OF_PATH: dict[str, str] = {p: k for k, p in PATH_OF_SETTING.items()}
GROUP_OF_SETTING: dict[str, str] = {k: c.group for c in CREDENTIALS for k in c.settings}

#: services that read the credentials at start, stopped consumers first (the reverse of start-up order)
STOP_ORDER: tuple[str, ...] = ("webserver", "async_delete", "apiserver", "fileserver")
#: the file server caches token checks in this Redis database; old answers must not outlive a rotation
TOKEN_CACHE_REDIS_DB = "8"


def keys_to_rotate(agent: bool = False, system: bool = True) -> tuple[str, ...]:
    """Setting keys a rotation replaces: the system group, plus the agent pair when asked."""
    groups = ({SYSTEM} if system else set()) | ({AGENT} if agent else set())
    return tuple(k for c in CREDENTIALS if c.group in groups for k in c.settings)


def rotate_flag(key: str) -> str:
    return "--rotate --agent" if GROUP_OF_SETTING.get(key) == AGENT else "--rotate"


def plan_rotation(settings: Settings, keys: Iterable[str]) -> dict[str, str]:
    """New values for ``keys``: each different from the old one and from every public default.

    Refuses keys set as environment variables: those win over ``.env``, so writing ``.env`` would
    change nothing (and the user would believe it had).
    """
    keys = tuple(keys)
    from_env = sorted(k for k in keys if k in settings.overridden)
    if from_env:
        raise StackError(
            f"{', '.join(from_env)} {'is' if len(from_env) == 1 else 'are'} set as environment "
            f"variable{'s' if len(from_env) > 1 else ''}, which win over {settings.env_file}: rotating in the file "
            "would change nothing",
            f"unset {' '.join(from_env)} (or change {'it' if len(from_env) == 1 else 'them'} where "
            f"{'it is' if len(from_env) == 1 else 'they are'} set) and run `inv keys --rotate` again",
        )
    new: dict[str, str] = {}
    for key in keys:
        value = secrets.generate_for(key)
        while value == settings.values.get(key) or value in KNOWN_BAD_VALUES:
            value = secrets.generate_for(key)
        new[key] = value
    return new


def rows(settings: Settings, show: bool = False) -> list[tuple[str, str, str, str, str]]:
    """(setting, what it is, where it comes from, how to rotate it, value masked unless ``show``)."""
    from . import ui

    table = []
    for cred in CREDENTIALS:
        for key in cred.settings:
            value = settings.values.get(key, "")
            source = "environment" if key in settings.overridden else (".env" if value else "missing")
            shown = value if (show and value) else ui.mask(value)
            table.append((key, cred.label, source, f"inv keys {rotate_flag(key)}", shown))
    return table


def restart_steps(running: Iterable[str], wait_timeout: int) -> list[tuple[str, ...]]:
    """Compose commands that apply rotated credentials to a running stack, in order (pure).

    1. stop every service that read the old values, consumers first, so none of them talks to an
       API server holding different system credentials;
    2. empty the file server's token-check cache (answers given under the old signing secret);
    3. ``up --wait``: compose starts fileserver, then apiserver (which resets each system user to the
       new pair at start-up), then webserver and async_delete, and recreates every container whose
       environment changed (the agents, after an agent pair rotation).
    """
    running = set(running)
    steps: list[tuple[str, ...]] = []
    stop = [s for s in STOP_ORDER if s in running]
    if stop:
        steps.append(("stop", *stop))
    if "redis" in running:
        steps.append(("exec", "-T", "redis", "redis-cli", "-n", TOKEN_CACHE_REDIS_DB, "FLUSHDB"))
    steps.append(("up", "-d", "--remove-orphans", "--wait", "--wait-timeout", str(int(wait_timeout))))
    return steps
