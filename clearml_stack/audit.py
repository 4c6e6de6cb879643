"""The security audit: is this deployment closed, and does it stay closed?

Entry point for `inv doctor`: :func:`run` ``(settings) -> list[checks.Check]``. It gathers readings once
(:func:`gather`: the settings, file modes, every ``*.conf`` the server will read, the merged compose
config, the live published ports when the engine answers) and judges them with pure functions
(:func:`evaluate`), each finding a ``Check`` with status ``ok``/``warn``/``fail``, a detail naming what
was found and where, and the fix. Nothing here changes anything.

What fails:
- an effective value (the rendered config under ``<data>/config`` read the way the server reads it,
  then the ``CLEARML__``/``TRAINS__`` variables of each service in the merged compose config, plus the
  settings themselves) equals a public upstream default (:mod:`clearml_stack.public_defaults`), or a
  key whose server default is public is not set at all;
- ``.env``, the users file, or a rendered config holding secrets or hashes is accessible to group/others;
- Mongo, Elasticsearch or Redis is published beyond loopback (configured or live);
- login is open: no users, fixed users off, plain-text password mode, the guest login, or file server
  token checks off;
- the API server and the file server do not read the rendered config, or disagree on the file
  server's system pair.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import keys as keys_mod
from . import public_defaults
from .checks import Check
from .settings import SECRET_KEYS, Settings

CONFIG_MOUNT = "/opt/clearml/config"
#: the server applies environment overrides with both prefixes, CLEARML__ last (it wins)
ENV_PREFIXES = ("TRAINS__", "CLEARML__")
STORES = ("mongo", "elasticsearch", "redis")
SERVER_SERVICES = ("apiserver", "fileserver")
#: rendered files that hold secrets or password hashes
PRIVATE_CONFIG_FILES = ("secure.conf", "apiserver.conf")


# --- readings ----------------------------------------------------------------------------------


@dataclass
class Readings:
    """Everything the audit judges, as plain data (tests build these by hand)."""

    env_file: Path
    env_file_exists: bool
    settings_values: dict[str, str]
    overridden: frozenset[str]
    mode: str
    config_dir: Path
    users_file: Path
    users_count: int | None  # None: the users file cannot be read
    users_error: str = ""
    users_fix: str = ""
    file_modes: dict[str, tuple[Path, int | None]] = field(default_factory=dict)  # label -> (path, mode)
    config_files: dict[str, str] = field(default_factory=dict)  # path relative to config_dir -> text
    expected_config: dict[str, str] = field(default_factory=dict)  # what `inv install` would render now
    merged: dict | None = None  # `compose config --format json`
    merged_error: str = ""
    live: list[dict] | None = None  # `compose ps --format json` records; None when not readable


def gather(settings: Settings) -> Readings:
    """Read everything the audit needs. Reads only: no file is written, no container touched."""
    from . import compose
    from .errors import StackError
    from .render.server_config import render_all
    from .stack import Stack
    from .users import load_users

    users_count: int | None
    users_error = users_fix = ""
    users = []
    layer_users = None  # the users that decide the layers: checked ones, or the file as it is
    try:
        users = load_users(settings.users_file)
        users_count, layer_users = len(users), users
    except StackError as exc:
        users_count, users_error, users_fix = None, exc.message, exc.fix
        try:
            layer_users = load_users(settings.users_file, check=False)
        except StackError:
            pass
    readings = Readings(
        env_file=settings.env_file,
        env_file_exists=settings.env_file_exists,
        settings_values=dict(settings.values),
        overridden=settings.overridden,
        mode=settings.mode,
        config_dir=settings.config_dir,
        users_file=settings.users_file,
        users_count=users_count,
        users_error=users_error,
        users_fix=users_fix,
    )
    readings.file_modes["settings file"] = (settings.env_file, _mode(settings.env_file))
    readings.file_modes["users file"] = (settings.users_file, _mode(settings.users_file))
    for name in PRIVATE_CONFIG_FILES:
        path = settings.config_dir / name
        readings.file_modes[f"rendered {name}"] = (path, _mode(path))
    if settings.config_dir.is_dir():
        for path in sorted(settings.config_dir.rglob("*.conf")):
            try:
                readings.config_files[path.relative_to(settings.config_dir).as_posix()] = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                readings.config_files[path.relative_to(settings.config_dir).as_posix()] = f"\0unreadable: {exc}"
    if users_count is not None and not settings.missing_secrets:
        readings.expected_config = render_all(settings, users)
    try:
        stack = Stack(settings, users=layer_users)
        res = stack.compose("config", "--format", "json", capture=True, echo=False)
        readings.merged = json.loads(res.stdout)
    except (StackError, ValueError) as exc:
        readings.merged_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return readings
    try:
        res = stack.compose("ps", "--format", "json", capture=True, echo=False, check=False)
        if res.ok:
            readings.live = compose.ps_records(res.stdout)
    except (StackError, ValueError):
        readings.live = None
    return readings


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(Path(path).stat().st_mode)
    except OSError:
        return None


# --- effective configuration, the way the server builds it ---------------------------------------


@functools.lru_cache(maxsize=256)
def _parsed(text: str):
    from pyhocon import ConfigFactory

    return ConfigFactory.parse_string(text)


def parse(text: str):
    """A HOCON text as pyhocon (the server's parser) reads it; parsed once, copied on every use."""
    return copy.deepcopy(_parsed(text))


def config_tree(files: Mapping[str, str]):
    """Every ``*.conf`` text under the config dir merged with its relative path as key prefix.

    Raises ``ValueError`` naming the file when one cannot be parsed (the server would not start).
    """
    from pyhocon import ConfigTree

    tree = ConfigTree()
    for rel, text in sorted(files.items()):
        prefix = ".".join(Path(rel).with_suffix("").parts)
        if text.startswith("\0unreadable"):
            raise ValueError(f"{rel}: {text[1:]}")
        try:
            parsed = parse(text)
        except Exception as exc:  # pyparsing errors have no common public base
            raise ValueError(f"{rel} cannot be parsed ({type(exc).__name__}: {exc})") from exc
        overlay = ConfigTree()
        overlay.put(prefix, parsed)
        tree = ConfigTree.merge_configs(tree, overlay)
    return tree


def env_overrides(environment: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """(tree of the ``TRAINS__``/``CLEARML__`` overrides, config key -> variable name), as the server reads them."""
    from pyhocon import ConfigTree

    tree = ConfigTree()
    names: dict[str, str] = {}
    for prefix in ENV_PREFIXES:
        for name in sorted(k for k in environment if k.startswith(prefix)):
            value = environment[name]
            if value is None:
                continue
            key = name[len(prefix):].replace("__", ".").lower()
            try:
                parsed = parse(f"{key}: {value}")
            except Exception as exc:
                raise ValueError(f"environment variable {name} cannot be parsed ({exc})") from exc
            tree = ConfigTree.merge_configs(tree, parsed)
            names[key] = name
    return tree, names


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted key; list items by index (``users.0.password``)."""
    from pyhocon import ConfigTree

    out: dict[str, Any] = {}
    if isinstance(value, (ConfigTree, dict)):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{i}"))
    else:
        out[prefix] = value
    return out


def service_env(merged: Mapping | None, service: str) -> dict[str, Any]:
    if not merged:
        return {}
    env = ((merged.get("services") or {}).get(service) or {}).get("environment") or {}
    if isinstance(env, list):  # "KEY=VALUE" form
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


# --- pure checks -------------------------------------------------------------------------------


def _fix_for_setting(key: str, overridden: frozenset[str]) -> str:
    if key in overridden:
        return f"unset the environment variable {key} (it wins over .env), then `inv keys {keys_mod.rotate_flag(key)}`"
    return f"`inv keys {keys_mod.rotate_flag(key)}` (new values, applied in a safe restart order)"


def check_secrets_present(values: Mapping[str, str], env_file: Path, env_file_exists: bool) -> list[Check]:
    if not env_file_exists:
        return [Check("settings", "fail", f"no settings file at {env_file}: nothing is generated yet",
                      "run `inv install`")]
    missing = [k for k in SECRET_KEYS if not values.get(k)]
    if missing:
        return [Check("generated secrets", "fail", f"{env_file} lacks {', '.join(missing)}",
                      "run `inv install` (it generates what is missing and keeps the rest)")]
    return [Check("generated secrets", "ok", f"all {len(SECRET_KEYS)} generated credentials are set")]


def check_settings_values(values: Mapping[str, str], overridden: frozenset[str], env_file: Path) -> list[Check]:
    """A generated credential in the settings equal to a public default."""
    found = []
    for key in SECRET_KEYS:
        hit = public_defaults.match(values.get(key))
        if hit:
            where = f"environment variable {key}" if key in overridden else f"{key} in {env_file}"
            found.append(Check("public default", "fail",
                               f"{where} is a public default ({hit.path}, published in the {hit.source})",
                               _fix_for_setting(key, overridden)))
    return found


def check_config_values(files: Mapping[str, str], config_dir: Path, overridden: frozenset[str]) -> list[Check]:
    """Any value in any ``*.conf`` the server reads that equals a public default."""
    found = []
    for rel, text in sorted(files.items()):
        if text.startswith("\0unreadable"):
            continue
        prefix = ".".join(Path(rel).with_suffix("").parts)
        try:
            flat = flatten(parse(text), prefix)
        except Exception:
            continue  # reported by check_effective
        for key, value in flat.items():
            hit = public_defaults.match(value)
            if hit is None:
                continue
            setting = keys_mod.SETTING_OF_PATH.get(key)
            if rel in ("secure.conf", "apiserver.conf") and setting:
                fix = f"`inv install` renders {rel} from the settings ({setting}) again; `inv restart` applies it"
            elif rel == "apiserver.conf":
                fix = "`inv users.passwd NAME` for that user (its password is public)"
            else:
                fix = f"remove that value from {config_dir / rel} (the server reads every *.conf in {config_dir})"
            found.append(Check("public default", "fail",
                               f"{config_dir / rel}: {key} is a public default (published in the {hit.source})", fix))
    return found


def check_service_env(merged: Mapping | None) -> list[Check]:
    """Any environment value of any service in the merged compose config equal to a public default."""
    found = []
    for service, spec in sorted(((merged or {}).get("services") or {}).items()):
        for name, value in sorted(service_env(merged, service).items()):
            hit = public_defaults.match(value)
            if hit:
                found.append(Check("public default", "fail",
                                   f"service {service}: environment variable {name} is a public default "
                                   f"({hit.path}, published in the {hit.source})",
                                   f"remove {name} from that service's environment (compose/*.yml), or set it "
                                   "from a generated setting"))
    return found


def effective(files: Mapping[str, str], merged: Mapping | None, service: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(flat effective config of ``service``, config key -> overriding env var) from files and env."""
    from pyhocon import ConfigTree

    base = config_tree(files)
    env_tree, names = env_overrides(service_env(merged, service))
    return flatten(ConfigTree.merge_configs(base, env_tree)), names


def check_effective(files: Mapping[str, str], merged: Mapping | None, config_dir: Path) -> list[Check]:
    """Keys whose server default is public must be set, per service, to something else."""
    found: list[Check] = []
    wanted = {"apiserver": public_defaults.IN_EFFECT_WHEN_UNSET,
              "fileserver": public_defaults.FILESERVER_IN_EFFECT_WHEN_UNSET}
    views: dict[str, dict[str, Any]] = {}
    for service, paths in wanted.items():
        try:
            flat, _ = effective(files, merged, service)
        except ValueError as exc:
            return [Check("server config", "fail", f"{config_dir}/{exc}: the server would not start",
                          "`inv install` renders the kit's files again; fix or remove any file you added")]
        views[service] = flat
        for path in paths:
            value = flat.get(path)
            if value in (None, ""):
                setting = keys_mod.SETTING_OF_PATH.get(path, "")
                found.append(Check("public default", "fail",
                                   f"{service}: {path} is not set, so the server's public default is in effect",
                                   f"`inv install` renders {config_dir}/secure.conf with the generated "
                                   f"{setting or 'value'}; then `inv restart`"))
    pair = ("secure.credentials.fileserver.user_key", "secure.credentials.fileserver.user_secret")
    api_pair = tuple(views.get("apiserver", {}).get(p) for p in pair)
    files_pair = tuple(views.get("fileserver", {}).get(p) for p in pair)
    if merged and api_pair != files_pair:
        found.append(Check("fileserver credentials", "fail",
                           "the API server and the file server read different fileserver system credentials: "
                           "the file server cannot check login tokens",
                           "remove CLEARML__secure__credentials__fileserver__* overrides from one of them; both "
                           f"must read {config_dir}/secure.conf"))
    if not found:
        found.append(Check("server secrets", "ok",
                           "every key whose upstream default is public is set to a generated value"))
    return found


def check_agent_pair(files: Mapping[str, str], merged: Mapping | None) -> list[Check]:
    """Agents on this host must log in with the pair the API server knows as ``services_agent``."""
    if not merged:
        return []
    try:
        api, _ = effective(files, merged, "apiserver")
    except ValueError:
        return []
    known = (api.get("secure.credentials.services_agent.user_key"), api.get("secure.credentials.services_agent.user_secret"))
    found = []
    for service in sorted((merged.get("services") or {})):
        env = service_env(merged, service)
        if "CLEARML_API_ACCESS_KEY" not in env:
            continue
        if (env.get("CLEARML_API_ACCESS_KEY"), env.get("CLEARML_API_SECRET_KEY")) != known:
            found.append(Check("agent credentials", "warn",
                               f"service {service} logs in with a pair the API server does not know as services_agent",
                               "use CLEARML_AGENT_ACCESS_KEY/CLEARML_AGENT_SECRET_KEY for both (the kit's layers do)"))
    return found


def check_config_mounted(merged: Mapping | None, config_dir: Path) -> list[Check]:
    """The API server and file server must mount the rendered config where they read it."""
    if not merged:
        return []
    found = []
    for service in SERVER_SERVICES:
        spec = (merged.get("services") or {}).get(service)
        if spec is None:
            found.append(Check("server config", "fail", f"service {service} is missing from the compose config",
                               "use the kit's compose files (`inv config` shows the merged result)"))
            continue
        mounts = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
        if not any(v.get("target") == CONFIG_MOUNT and Path(str(v.get("source", ""))) == config_dir for v in mounts):
            found.append(Check("server config", "fail",
                               f"service {service} does not mount {config_dir} at {CONFIG_MOUNT}: it runs on the "
                               "public default secrets", "use the kit's compose files (base.yml mounts it)"))
    if not found:
        found.append(Check("server config", "ok", f"apiserver and fileserver both read {config_dir}"))
    return found


def check_file_modes(modes: Mapping[str, tuple[Path, int | None]]) -> list[Check]:
    """Secrets and hashes must be private to their owner (no group/other bits at all)."""
    found = []
    for label, (path, mode) in modes.items():
        if mode is None:
            continue  # absence is judged elsewhere (settings, login, server config)
        if mode & 0o077:
            readable = "readable" if mode & 0o044 else "accessible"
            found.append(Check(f"{label} mode", "fail",
                               f"{path} is {readable} by group/others (mode {mode:04o}); it holds secrets",
                               f"chmod 600 {path}   (or `inv doctor --fix`)"))
        else:
            found.append(Check(f"{label} mode", "ok", f"{path} is private (mode {mode:04o})"))
    return found


def is_loopback(host: str | None) -> bool:
    if not host:
        return False  # no address: every interface
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_store_ports(merged: Mapping | None) -> list[Check]:
    """Stores have no passwords: published at all, they must be on loopback only."""
    if not merged:
        return []
    found = []
    for store in STORES:
        spec = (merged.get("services") or {}).get(store) or {}
        if spec.get("network_mode") == "host":
            found.append(Check(f"{store} exposure", "fail",
                               f"{store} uses the host network: every port it opens is on every interface",
                               f"remove network_mode: host from {store}"))
            continue
        for port in spec.get("ports") or []:
            host, published = _port_entry(port)
            if not is_loopback(host):
                found.append(Check(f"{store} exposure", "fail",
                                   f"{store} is published on {host or 'every interface'}:{published} without a "
                                   "password (CLEARML_EXPOSE_STORES=all or a compose override)",
                                   "set CLEARML_EXPOSE_STORES=loopback (or no) and run `inv up`"))
    if not found:
        found.append(Check("store exposure", "ok", "Mongo, Elasticsearch and Redis are not published beyond loopback"))
    return found


def _port_entry(port: Any) -> tuple[str, str]:
    if isinstance(port, dict):
        return str(port.get("host_ip") or ""), str(port.get("published") or port.get("target") or "")
    text = str(port)  # short syntax: [HOST:]PUBLISHED:TARGET
    parts = text.rsplit(":", 2)
    return (parts[0] if len(parts) == 3 else ""), (parts[-2] if len(parts) >= 2 else parts[0])


def check_live_ports(records: Iterable[Mapping] | None) -> list[Check]:
    """What running store containers actually publish (a leftover of an earlier config counts)."""
    found = []
    for record in records or []:
        service = record.get("Service", "")
        if service not in STORES:
            continue
        for pub in record.get("Publishers") or []:
            if pub.get("PublishedPort") and not is_loopback(pub.get("URL")):
                found.append(Check(f"{service} exposure", "fail",
                                   f"running {service} container listens on {pub.get('URL') or 'every interface'}:"
                                   f"{pub.get('PublishedPort')}",
                                   "set CLEARML_EXPOSE_STORES=loopback (or no) and run `inv up` (it recreates it)"))
    return found


def check_login(users_count: int | None, users_error: str, files: Mapping[str, str], merged: Mapping | None,
                users_file: Path, users_fix: str = "") -> list[Check]:
    """Only the fixed users may log in, with hashed passwords; the file server asks for a token."""
    if users_count is None:
        return [Check("login", "fail", users_error or f"{users_file} cannot be read",
                      users_fix or "restore it from a backup, or add users again with `inv users.add`")]
    if users_count == 0:
        return [Check("login", "fail",
                      "no web login user: anyone who reaches the web UI can sign up and see everything",
                      "`inv users.add NAME`, then `inv up`")]
    try:
        api, _ = effective(files, merged, "apiserver")
        fs, _ = effective(files, merged, "fileserver")
    except ValueError:
        return []  # reported by check_effective
    found = []
    if api.get("apiserver.auth.fixed_users.enabled") is not True:
        found.append(Check("login", "fail", "fixed-user login is not enabled: the web UI offers open sign-up",
                           "`inv install` renders apiserver.conf again; `inv up` applies the auth layer"))
    elif not any(k.startswith("apiserver.auth.fixed_users.users.") for k in api):
        found.append(Check("login", "fail", "fixed-user login is on but the rendered config lists no user",
                           "`inv install` renders apiserver.conf from the users file again"))
    if api.get("apiserver.auth.fixed_users.pass_hashed") is not True:
        found.append(Check("login", "fail",
                           "pass_hashed is off: the stored hashes themselves work as passwords",
                           "`inv install` renders apiserver.conf again (pass_hashed: true)"))
    if api.get("services.auth.fixed_users.guest.enabled") is True:
        found.append(Check("login", "fail", "the guest login is enabled (its password is public)",
                           "remove CLEARML__services__auth__fixed_users__guest__enabled or set it to false"))
    if fs.get("fileserver.auth.enabled") is False:
        found.append(Check("file server auth", "fail", "the file server serves and accepts files without a token",
                           "remove CLEARML__fileserver__auth__enabled=false"))
    for cred in ("webserver", "tests"):
        if api.get(f"secure.credentials.{cred}.revoke_in_fixed_mode") is not True:
            found.append(Check("login", "warn", f"the {cred} credentials are not revoked in fixed-user mode",
                               "`inv install` renders secure.conf again (revoke_in_fixed_mode: true)"))
    if not found:
        found.append(Check("login", "ok", f"only the {users_count} fixed user(s) can log in; file server needs a token"))
    return found


def check_published_services(merged: Mapping | None, mode: str) -> list[Check]:
    """In tunnel mode nothing but loopback is expected; `ports` mode is public by choice."""
    if not merged:
        return []
    if mode == "ports":
        return [Check("exposure", "warn", "access mode 'ports': web UI, API and file server listen on all "
                      "interfaces (login and tokens still apply)",
                      "prefer tunnel or subdomains mode unless a firewall you control is in front")]
    if mode != "tunnel":
        return []
    found = []
    for service, spec in sorted((merged.get("services") or {}).items()):
        if service in STORES:
            continue
        for port in spec.get("ports") or []:
            host, published = _port_entry(port)
            if not is_loopback(host):
                found.append(Check(f"{service} exposure", "warn",
                                   f"{service} is published on {host or 'every interface'}:{published} in tunnel mode",
                                   "remove the override that publishes it; tunnel mode keeps everything on 127.0.0.1"))
    return found


def check_config_current(expected: Mapping[str, str], files: Mapping[str, str], config_dir: Path) -> list[Check]:
    """The rendered files match the settings and users (else the server runs on older values)."""
    stale = [name for name, text in expected.items() if files.get(name) != text]
    if not expected:
        return []
    if stale:
        return [Check("config current", "warn",
                      f"{', '.join(stale)} in {config_dir} {'differs' if len(stale) == 1 else 'differ'} from "
                      "what the settings and users give (the server may run on older values)",
                      "`inv up` (or `inv restart`) renders them again and applies them")]
    return [Check("config current", "ok", "the rendered config matches the settings and users")]


def evaluate(r: Readings) -> list[Check]:
    """Judge the readings: every finding with its fix (pure)."""
    found: list[Check] = []
    found += check_secrets_present(r.settings_values, r.env_file, r.env_file_exists)
    found += check_settings_values(r.settings_values, r.overridden, r.env_file)
    found += check_file_modes(r.file_modes)
    if r.merged is None:
        found.append(Check("compose config", "warn",
                           f"could not read the merged compose config ({r.merged_error}); environment and port "
                           "checks were skipped", "make sure Docker Compose v2 is installed (`inv config` shows it)"))
    if not r.config_files:
        found.append(Check("server config", "fail", f"no rendered config in {r.config_dir}: the server would run "
                           "on its public default secrets", "run `inv install`"))
    else:
        found += check_config_values(r.config_files, r.config_dir, r.overridden)
        found += check_effective(r.config_files, r.merged, r.config_dir)
        found += check_config_current(r.expected_config, r.config_files, r.config_dir)
    found += check_service_env(r.merged)
    found += check_config_mounted(r.merged, r.config_dir)
    if r.config_files:
        found += check_agent_pair(r.config_files, r.merged)
    found += check_login(r.users_count, r.users_error, r.config_files, r.merged, r.users_file, r.users_fix)
    found += check_store_ports(r.merged)
    found += check_live_ports(r.live)
    found += check_published_services(r.merged, r.mode)
    return found


def run(settings: Settings) -> list[Check]:
    """The security audit of one deployment (what `inv doctor` runs): read everything, judge it."""
    return evaluate(gather(settings))


def fix_modes(checks: Iterable[Check], readings: Readings) -> list[Path]:
    """chmod 600 every file a failed mode check named; returns the files changed."""
    import os

    changed = []
    failed = {c.name for c in checks if c.status == "fail" and c.name.endswith(" mode")}
    for label, (path, mode) in readings.file_modes.items():
        if f"{label} mode" in failed and mode is not None:
            os.chmod(path, 0o600)
            changed.append(path)
    return changed
