"""`inv install`: complete the settings file, create the data layout, render the server config.

Plan first (pure), validate the result, and only then write; a second run changes nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from . import secrets, settings as settings_mod
from .envfile import parse_env, set_values
from .errors import StackError
from .fsutil import atomic_write, give_to_service_user, write_if_changed
from .render.server_config import render_all
from .settings import KIT_ROOT, Settings
from .users import load_users

TEMPLATE = KIT_ROOT / ".env.template"

#: the official host layout; these legacy names are what upgrades and backups expect
DATA_LAYOUT = (
    "logs",
    "config",
    "data/fileserver",
    "data/elastic_7",
    "data/mongo_4/db",
    "data/mongo_4/configdb",
    "data/redis",
    "agent",
    "agent/slots",  # worker agents' id slots (locks), shared by the replicas on this host
)


@dataclass
class EnvPlan:
    text: str
    created: bool
    generated: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # template keys the file lacked, added with their defaults

    @property
    def changed(self) -> bool:
        return self.created or bool(self.generated or self.updated or self.added)


_KEY_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def template_blocks(template: str) -> list[tuple[str, str]]:
    """``(key, text)`` for each setting of the template, in order: its line and the comment lines right
    above it (pure)."""
    lines = template.splitlines(keepends=True)
    blocks: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        match = _KEY_LINE.match(line)
        if not match:
            continue
        start = i
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        text = "".join(lines[start:i + 1])
        blocks.append((match.group(1), text if text.endswith("\n") else text + "\n"))
    return blocks


def complete_from_template(template: str, current: str) -> tuple[str, list[str]]:
    """``current`` with every template setting it lacks appended with its comment lines and default (pure).

    Lines already in ``current`` are kept exactly, values included. Returns the text and the added keys.
    """
    present = set(parse_env(current))
    missing = [(key, text) for key, text in template_blocks(template) if key not in present]
    if not missing:
        return current, []
    head = current if current.endswith("\n") or not current else current + "\n"
    if head and not head.endswith("\n\n"):
        head += "\n"
    return head + "".join(text for _, text in missing), [key for key, _ in missing]


def plan_env(template: str, current: str | None, environ: Mapping[str, str],
             updates: Mapping[str, str]) -> EnvPlan:
    """The new settings text (pure): the template if there is no file, else the file completed from the
    template; flags applied, missing secrets generated.

    Values already in the file are kept; a secret set in the environment is not generated.
    """
    text, added = (template, []) if current is None else complete_from_template(template, current)
    values = parse_env(text)
    changes = {k: v for k, v in updates.items() if values.get(k) != v}
    present = {**values, **{k: environ[k] for k in settings_mod.SECRET_KEYS if environ.get(k)}}
    generated = secrets.fill_missing(present)
    new_text = set_values(text, {**changes, **generated}) if (changes or generated) else text
    return EnvPlan(new_text, created=current is None, generated=sorted(generated), updated=sorted(changes),
                   added=added)


@dataclass
class InstallReport:
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


def data_dirs(data_dir: Path) -> list[Path]:
    return [data_dir / d for d in DATA_LAYOUT]


def apply_env(plan: EnvPlan, env_file: Path, report: InstallReport) -> None:
    if plan.changed:
        atomic_write(env_file, plan.text, 0o600)
        if plan.created:
            report.add(f"created {env_file} from .env.template (mode 0600)")
        if plan.added:
            report.add(f"added {len(plan.added)} settings missing from {env_file}, with their comments and "
                       f"defaults from .env.template: {', '.join(plan.added)}")
        if plan.generated:
            report.add(f"generated {len(plan.generated)} secrets: {', '.join(plan.generated)}")
        if plan.updated:
            report.add(f"set {', '.join(plan.updated)} in {env_file}")
    elif (env_file.stat().st_mode & 0o777) != 0o600:
        os.chmod(env_file, 0o600)
        report.add(f"made {env_file} private (mode 0600)")


def create_layout(data_dir: Path, report: InstallReport) -> list[Path]:
    created: list[Path] = []
    for target in [data_dir, *data_dirs(data_dir)]:
        missing = [p for p in [*reversed(target.parents), target] if not p.exists()]
        for path in missing:
            path.mkdir()
            created.append(path)
    for path in created:
        give_to_service_user(path)
    if created:
        report.add(f"created the data layout under {data_dir} ({len(created)} directories)")
    return created


def render_config(settings: Settings, report: InstallReport) -> list[str]:
    """Write ``<data>/config/*.conf`` where their text changed; mode 0600, owned by uid 1000 when root.

    Refuses (writing nothing) while generated secrets are missing: the config would carry empty ones.
    """
    if settings.missing_secrets:
        raise StackError(
            f"{settings.env_file} lacks generated secrets ({', '.join(settings.missing_secrets)}): the server "
            "config cannot be rendered without them",
            "run `inv install` first (it generates them and keeps what is there)",
        )
    users = load_users(settings.users_file)
    changed = []
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_all(settings, users).items():
        path = settings.config_dir / name
        if write_if_changed(path, text, 0o600):
            changed.append(name)
        give_to_service_user(path)
    if changed:
        report.add(f"rendered {', '.join(changed)} in {settings.config_dir}")
    render_gateway_files(settings, report)
    return changed


def render_gateway_files(settings: Settings, report: InstallReport) -> None:
    """The nginx gateway's config and certificate (subdomains mode; nothing in other modes)."""
    from . import gateway, tls, ui

    done = gateway.render(settings)
    for line in done.lines:
        report.add(line)
    for warning in done.warnings:
        ui.warn(warning)
    if done.new_ca:
        for line in tls.trust_instructions(str(gateway.ca_cert_path(settings))):
            ui.note(line)


def install(updates: Mapping[str, str], environ: Mapping[str, str] | None = None) -> tuple[Settings, InstallReport]:
    """Create or complete the settings file, the data layout and the config; report what changed."""
    environ = os.environ if environ is None else environ
    env_file = settings_mod.env_file_path(environ)
    current = env_file.read_text() if env_file.is_file() else None
    plan = plan_env(TEMPLATE.read_text(), current, environ, updates)
    # validate what we are about to write, before writing anything
    new_values = settings_mod.merge_sources(parse_env(plan.text, str(env_file)), environ)
    found = settings_mod.problems(new_values) + settings_mod.location_problems(new_values, env_file.parent)
    if found:
        raise StackError("invalid settings, nothing was written:\n  " + "\n  ".join(found),
                         f"fix the value in {env_file}, the environment or the flag, and run `inv install` again")
    from .gateway import check as check_gateway  # provided TLS files must fit before anything is written

    check_gateway(Settings(values=new_values, env_file=env_file))
    report = InstallReport()
    apply_env(plan, env_file, report)
    settings = settings_mod.load(environ)
    create_layout(settings.data_dir, report)
    render_config(settings, report)
    return settings, report
