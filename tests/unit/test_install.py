"""`inv install`: creates or completes settings, secrets, data layout and config; idempotent; atomic on error."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from clearml_stack.envfile import parse_env, set_values
from clearml_stack.secrets import fill_missing
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


# --- completing an existing settings file from the template ---------------------------------------


def test_complete_from_template_appends_missing_keys_with_their_comments():
    from clearml_stack.install import complete_from_template

    template = "# head\n\n# === Group A\n# a one\nA=1\n# b one\nB='x y'\n\n# c one\n# c two\nC=\n"
    current = "# mine\nB=kept\nD=extra"
    text, added = complete_from_template(template, current)
    assert added == ["A", "C"]
    assert text == "# mine\nB=kept\nD=extra\n\n# === Group A\n# a one\nA=1\n# c one\n# c two\nC=\n"
    assert parse_env(text) == {"A": "1", "B": "kept", "C": "", "D": "extra"}
    assert complete_from_template(template, text) == (text, [])


def test_plan_completes_an_old_file_never_touching_its_values():
    from clearml_stack.install import TEMPLATE, plan_env

    template = TEMPLATE.read_text()
    dropped = {"CLEARML_WATCHDOG_THRESHOLD_SEC", "CLEARML_AGENT_VERSION", "CLEARML_K8S_NAMESPACE"}
    kept_lines = [line for line in template.splitlines(keepends=True) if line.split("=", 1)[0] not in dropped]
    current = "".join(kept_lines).replace("CLEARML_WEB_PORT=8080", "CLEARML_WEB_PORT=9090")
    current = set_values(current, fill_missing({}))  # an installed file: its secrets are there
    plan = plan_env(template, current, {}, {})
    assert sorted(plan.added) == sorted(dropped) and plan.changed and not plan.created
    assert plan.text.startswith(current), "the existing text is kept as it is"
    values = parse_env(plan.text)
    assert values["CLEARML_WEB_PORT"] == "9090" and values["CLEARML_AGENT_VERSION"] == "3.0.3"
    lines = plan.text.splitlines()
    for key in dropped:
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
        assert lines[at - 1].startswith("# "), f"{key} is added with its comment"
    again = plan_env(template, plan.text, {}, {})
    assert (again.text, again.added, again.generated, again.changed) == (plan.text, [], [], False)


def test_install_completes_an_existing_settings_file_and_reports_it(kit):
    kit.inv("install")
    old = [line for line in kit.env_file.read_text().splitlines(keepends=True)
           if not line.startswith(("CLEARML_WATCHDOG_INTERVAL_SEC=", "CLEARML_AGENT_QUEUES=", "CLEARML_TESTS_KEY="))]
    old_text = "".join(old).replace("CLEARML_FILES_PORT=8081", "CLEARML_FILES_PORT=9181")
    kit.env_file.write_text(old_text)
    before = parse_env(old_text)
    proc = kit.inv("install")
    assert "added 3 settings missing from" in proc.stderr
    for key in ("CLEARML_WATCHDOG_INTERVAL_SEC", "CLEARML_AGENT_QUEUES", "CLEARML_TESTS_KEY"):
        assert key in proc.stderr
    text = kit.env_file.read_text()
    values = parse_env(text)
    assert text.startswith(old_text)
    assert {k: values[k] for k in before} == before, "no existing value changes"
    assert values["CLEARML_WATCHDOG_INTERVAL_SEC"] == "900" and values["CLEARML_AGENT_QUEUES"] == "default"
    assert values["CLEARML_TESTS_KEY"], "the secret the file lacked is generated"
    assert "# How often the server's task watchdog runs\nCLEARML_WATCHDOG_INTERVAL_SEC=900\n" in text
    assert mode(kit.env_file) == 0o600
    state = tree(kit.dir)
    second = kit.inv("install")
    assert "nothing to do" in second.stderr and "added" not in second.stderr
    assert tree(kit.dir) == state
