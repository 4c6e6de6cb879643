"""Every compose command the kit runs is printed on stderr exactly as run, readings included (`inv status`,
`inv config`, the running-port probe); stdout keeps only the data. A fake compose records what it ran."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.kit import free_port

FAKE_COMPOSE = r"""#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
if args[:2] == ["version", "--short"]:
    print("2.30.0"); sys.exit(0)
with open(os.environ["FAKE_CALLS"], "a") as log:
    log.write(json.dumps([sys.argv[0], *args]) + "\n")
if "ps" in args:
    print(json.dumps({"Service": "apiserver", "Name": "x-apiserver-1", "State": "running", "Health": "healthy",
                      "Publishers": [{"URL": "127.0.0.1", "PublishedPort": 18008, "TargetPort": 8008}]}))
elif "config" in args:
    print("services:\n  apiserver:\n    image: clearml/server:2.3.0")
"""


@pytest.fixture
def fake_compose(tmp_path) -> tuple[Path, Path]:
    fake = tmp_path / "fake-compose"
    fake.write_text(FAKE_COMPOSE)
    fake.chmod(0o755)
    return fake, tmp_path / "calls.jsonl"


def recorded(calls: Path) -> list[list[str]]:
    return [json.loads(line) for line in calls.read_text().splitlines()]


def echoed(stderr: str) -> list[str]:
    return [line[2:] for line in stderr.splitlines() if line.startswith("$ ")]


def test_status_json_prints_the_command_on_stderr_and_only_json_on_stdout(kit, fake_compose):
    fake, calls = fake_compose
    kit.inv("install")
    env = {"CLEARML_COMPOSE": str(fake), "FAKE_CALLS": str(calls), "CLEARML_API_PORT": str(free_port())}
    proc = kit.inv("status", "--json", extra_env=env)
    report = json.loads(proc.stdout)  # nothing but the report on stdout
    assert [s["service"] for s in report["services"]] == ["apiserver"]
    ran = recorded(calls)
    assert [c for c in ran if "ps" in c], ran
    assert echoed(proc.stderr) == [shlex.join(c) for c in ran], "each command printed exactly as run"
    assert "--env-file" in echoed(proc.stderr)[0] and "ps -a --format json" in echoed(proc.stderr)[0]


def test_config_prints_the_command_on_stderr_and_the_file_on_stdout(kit, fake_compose):
    fake, calls = fake_compose
    kit.inv("install")
    proc = kit.inv("config", extra_env={"CLEARML_COMPOSE": str(fake), "FAKE_CALLS": str(calls)})
    assert proc.stdout.startswith("services:\n  apiserver:")
    ran = recorded(calls)
    assert ran and ran[-1][-1] == "config"
    assert echoed(proc.stderr) == [shlex.join(c) for c in ran]


def test_running_port_probe_is_printed(kit, fake_compose, monkeypatch, capsys):
    from clearml_stack import compose
    from clearml_stack.stack import Stack

    fake, calls = fake_compose
    kit.inv("install")
    monkeypatch.setenv("CLEARML_COMPOSE", str(fake))
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    monkeypatch.setenv("NO_COLOR", "1")
    compose.find.cache_clear()
    try:
        ports = Stack(kit.settings()).running_ports()
    finally:
        compose.find.cache_clear()
    assert ports == {18008}
    ran = recorded(calls)
    assert len(ran) == 1 and ran[0][-3:] == ["ps", "--format", "json"]
    assert echoed(capsys.readouterr().err) == [shlex.join(ran[0])]
