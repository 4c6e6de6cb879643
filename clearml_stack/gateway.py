"""The gateway's files on disk: ``<data>/nginx/conf.d`` (config) and ``<data>/nginx/tls`` (certificate).

``<data>/tls`` keeps the self-signed CA (its key never enters the nginx container). Everything is
written only when its content changes; :func:`fingerprint` hashes what nginx will read so that compose
recreates the gateway container exactly when it changed (nginx does not re-read mounted files).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import tls as tls_mod
from .access import TLS_AT_GATEWAY
from .errors import StackError
from .fsutil import atomic_write, hash_files, write_if_changed
from .render.nginx import render_gateway
from .settings import Settings

CERT_NAME = "gateway.crt"
KEY_NAME = "gateway.key"


def nginx_dir(settings: Settings) -> Path:
    return settings.data_dir / "nginx"


def conf_dir(settings: Settings) -> Path:
    return nginx_dir(settings) / "conf.d"


def tls_dir(settings: Settings) -> Path:
    """The certificate and key nginx serves (mounted read-only into the container)."""
    return nginx_dir(settings) / "tls"


def ca_dir(settings: Settings) -> Path:
    return settings.data_dir / "tls"


def ca_cert_path(settings: Settings) -> Path:
    return ca_dir(settings) / "ca.crt"


@dataclass
class GatewayReport:
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    new_ca: bool = False


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_bytes_if_changed(path: Path, data: bytes, mode: int) -> bool:
    if _read(path) == data:
        if (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
        return False
    atomic_write(path, data, mode)
    return True


def ensure_self_signed(settings: Settings, report: GatewayReport, renew: bool = False,
                       new_ca: bool = False, now: dt.datetime | None = None) -> None:
    """Create the CA once, and the gateway certificate whenever it is missing, wrong or expiring."""
    ca_crt, ca_key = ca_cert_path(settings), ca_dir(settings) / "ca.key"
    ca_pem, ca_key_pem = _read(ca_crt), _read(ca_key)
    if new_ca or not ca_pem or not ca_key_pem:
        ca = tls_mod.new_ca(settings.domain, now)
        atomic_write(ca_key, ca.key_pem, 0o600)
        atomic_write(ca_crt, ca.cert_pem, 0o644)
        report.new_ca = True
        report.lines.append(f"created a private CA for the gateway: {ca_crt} (key beside it, mode 0600)")
    else:
        ca = tls_mod.Material(ca_pem, ca_key_pem)
    leaf_path = tls_dir(settings) / CERT_NAME
    reason = "you asked for a new one" if renew else tls_mod.leaf_problem(_read(leaf_path), ca.cert_pem,
                                                                         settings.domain, now)
    if report.new_ca and not reason:
        reason = "the CA is new"
    if reason:
        leaf = tls_mod.new_leaf(ca, settings.domain, now)
        atomic_write(tls_dir(settings) / KEY_NAME, leaf.key_pem, 0o600)
        atomic_write(leaf_path, leaf.cert_pem, 0o644)
        report.lines.append(f"made the gateway certificate for *.{settings.domain} ({reason}), "
                            f"valid until {tls_mod.not_after(leaf.cert_pem):%Y-%m-%d}")


@dataclass(frozen=True)
class Provided:
    cert_path: Path
    cert_pem: bytes
    key_path: Path
    key_pem: bytes
    warnings: tuple[str, ...]


def read_provided(settings: Settings, now: dt.datetime | None = None) -> Provided:
    """Read and check the given certificate and key (raises StackError naming the file and the fix)."""
    paths = {}
    for key in ("CLEARML_TLS_CERT", "CLEARML_TLS_KEY"):
        path = Path(settings[key]).expanduser()
        path = path if path.is_absolute() else (settings.base_dir / path)
        try:
            paths[key] = (path, path.read_bytes())
        except OSError as exc:
            raise StackError(f"{key}={settings[key]}: cannot read {path} ({exc.strerror})",
                             f"give a readable PEM file in {key} (run the command with a user that may read it)") from None
    (cert_path, cert_pem), (key_path, key_pem) = paths["CLEARML_TLS_CERT"], paths["CLEARML_TLS_KEY"]
    warnings = tls_mod.check_provided(cert_pem, key_pem, settings.domain, str(cert_path), str(key_path), now)
    return Provided(cert_path, cert_pem, key_path, key_pem, tuple(warnings))


def check(settings: Settings, now: dt.datetime | None = None) -> None:
    """What `inv install` verifies before writing anything: provided TLS files fit the new settings."""
    if settings.mode == "subdomains" and settings.tls == "provided":
        read_provided(settings, now)


def copy_provided(settings: Settings, report: GatewayReport, now: dt.datetime | None = None) -> None:
    """Check the given certificate and key, then copy them where the container reads them."""
    given = read_provided(settings, now)
    report.warnings += list(given.warnings)
    changed = _write_bytes_if_changed(tls_dir(settings) / KEY_NAME, given.key_pem, 0o600)
    changed = _write_bytes_if_changed(tls_dir(settings) / CERT_NAME, given.cert_pem, 0o644) or changed
    if changed:
        report.lines.append(f"copied the certificate {given.cert_path} and its key to {tls_dir(settings)}")


def remove_served_tls(settings: Settings, report: GatewayReport) -> None:
    """TLS is not at the gateway: take the served key out of nginx's directory (the CA stays)."""
    removed = False
    for name in (KEY_NAME, CERT_NAME):
        path = tls_dir(settings) / name
        if path.exists():
            path.unlink()
            removed = True
    if removed:
        report.lines.append(f"removed the gateway certificate from {tls_dir(settings)} (CLEARML_TLS={settings.tls})")


def render(settings: Settings, now: dt.datetime | None = None) -> GatewayReport:
    """Write everything the gateway needs for the current settings (subdomains mode only)."""
    report = GatewayReport()
    if settings.mode != "subdomains":
        return report
    tls_dir(settings).mkdir(parents=True, exist_ok=True)
    if settings.tls == "self-signed":
        ensure_self_signed(settings, report, now=now)
    elif settings.tls == "provided":
        copy_provided(settings, report, now)
    else:
        remove_served_tls(settings, report)
    try:
        files = render_gateway(settings)
    except ValueError as exc:
        raise StackError(f"cannot render the gateway configuration: {exc}", "fix CLEARML_DOMAIN") from None
    target = conf_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if write_if_changed(target / name, text, 0o644):
            report.lines.append(f"rendered the gateway configuration {target / name}")
    for stale in target.glob("*.conf"):
        if stale.name not in files:
            stale.unlink()
    return report


def fingerprint(settings: Settings) -> str:
    """A hash of the files nginx reads (config and served certificate); "none" outside subdomains mode."""
    if settings.mode != "subdomains":
        return "none"
    return hash_files([conf_dir(settings), tls_dir(settings)])


def tls_at_gateway(settings: Settings) -> bool:
    return settings.mode == "subdomains" and settings.tls in TLS_AT_GATEWAY
