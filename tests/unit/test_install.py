"""`inv install`: creates or completes settings, secrets, data layout and config; idempotent; atomic on error."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from clearml_stack.envfile import parse_env
from clearml_stack.install import DATA_LAYOUT
from clearml_stack.settings import SECRET_KEYS


def tree(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` with a content hash (directories map to 'dir')."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_fresh_install_creates_everything(kit):
    proc = kit.inv("install")
    values = parse_env(kit.env_file.read_text())
    assert mode(kit.env_file) == 0o600
    for key in SECRET_KEYS:
        assert values[key] and values[key].isalnum(), key
    for rel in DATA_LAYOUT:
        assert (kit.data_dir / rel).is_dir(), rel
    for name in ("apiserver.conf", "services.conf", "secure.conf"):
        assert mode(kit.data_dir / "config" / name) == 0o600
    if os.geteuid() == 0:
        assert (kit.data_dir / "data" / "elastic_7").stat().st_uid == 1000
    assert "created" in proc.stderr and "generated 12 secrets" in proc.stderr
    for key in SECRET_KEYS:  # names of secrets may be shown, values never
        assert values[key] not in proc.stderr + proc.stdout


def test_second_install_changes_nothing_and_says_so(kit):
    kit.inv("install")
    before = tree(kit.dir)
    proc = kit.inv("install")
    assert tree(kit.dir) == before
    assert "nothing to do" in proc.stderr


def test_existing_values_and_secrets_are_kept_missing_ones_completed(kit):
    kit.env_file.write_text("# mine\nCLEARML_WEB_PORT=9090\nCLEARML_AUTH_TOKEN_SECRET=MySecretValue0123456789abcdefghijklmn\n")
    kit.inv("install")
    text = kit.env_file.read_text()
    values = parse_env(text)
    assert text.startswith("# mine\nCLEARML_WEB_PORT=9090\n")
    assert values["CLEARML_AUTH_TOKEN_SECRET"] == "MySecretValue0123456789abcdefghijklmn"
    assert all(values[k] for k in SECRET_KEYS)
    assert '"MySecretValue0123456789abcdefghijklmn"' in (kit.data_dir / "config" / "secure.conf").read_text()


def test_flags_are_written_into_settings(kit):
    kit.inv("install", "--mode", "subdomains", "--domain", "ml.example.com")
    values = parse_env(kit.env_file.read_text())
    assert values["CLEARML_ACCESS_MODE"] == "subdomains" and values["CLEARML_DOMAIN"] == "ml.example.com"
    assert 'domain: ".ml.example.com"' in (kit.data_dir / "config" / "apiserver.conf").read_text()


def test_bad_flag_fails_clearly_and_writes_nothing(kit):
    kit.inv("install")
    before = tree(kit.dir)
    proc = kit.inv("install", "--mode", "subdomains", "--domain", "evil.com; rm -rf /", check=False)
    assert proc.returncode != 0
    assert "CLEARML_DOMAIN='evil.com; rm -rf /'" in proc.stderr and "fix:" in proc.stderr
    assert tree(kit.dir) == before


def test_bad_flag_on_fresh_machine_creates_no_file(kit):
    proc = kit.inv("install", "--mode", "sideways", check=False)
    assert proc.returncode != 0 and "CLEARML_ACCESS_MODE='sideways'" in proc.stderr
    assert list(kit.dir.iterdir()) == []


def test_malformed_settings_file_is_reported_and_left_alone(kit):
    kit.env_file.write_text("CLEARML_WEB_PORT=8080\nnot a line\n")
    proc = kit.inv("install", check=False)
    assert proc.returncode != 0 and "line 2" in proc.stderr
    assert kit.env_file.read_text() == "CLEARML_WEB_PORT=8080\nnot a line\n"
    assert not kit.data_dir.exists()


def test_environment_value_wins_and_is_not_written(kit):
    kit.env["CLEARML_WEB_PORT"] = "9191"
    kit.inv("install")
    assert parse_env(kit.env_file.read_text())["CLEARML_WEB_PORT"] == "8080"
    assert kit.settings().port("web") == 9191


def test_nothing_is_asked_without_a_terminal(kit):
    proc = kit.inv("install")  # stdin is /dev/null: must not block or prompt
    assert "?" not in proc.stderr.replace("nothing to do", "")
