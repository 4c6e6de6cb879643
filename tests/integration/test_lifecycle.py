"""The stack's lifecycle on the real Docker engine, with the stand-in images.

One stand-in deployment serves the module: install with a first user, up, status, data written and
kept across down/up, restart of one service, a second install that changes nothing.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from clearml_stack.envfile import parse_env
from clearml_stack.public_defaults import bad_values
from tests.conftest import remove_project, stand_in_kit
from tests.http import download, login, request, token_of, upload
from tests.kit import Kit

pytestmark = pytest.mark.integration

PASSWORD = "pass #1 ;:{word} %s & ~"  # punctuation that is accepted (quotes, $, \\ and non-ASCII are refused)
SERVICES = {"apiserver", "fileserver", "webserver", "async_delete", "mongo", "elasticsearch", "redis"}


@pytest.fixture(scope="module")
def running(tmp_path_factory, test_images) -> Kit:
    k = stand_in_kit(tmp_path_factory.mktemp("lifecycle"), test_images)
    try:
        k.inv("install", "--user", "alice", "--password-stdin", input=PASSWORD + "\n")
        k.up = k.inv("up")
        yield k
    finally:
        remove_project(k)


def urls(k: Kit) -> tuple[str, str, str]:
    s = k.settings()
    return (f"http://127.0.0.1:{s.port('web')}", f"http://127.0.0.1:{s.port('api')}",
            f"http://127.0.0.1:{s.port('files')}")


def test_up_prints_where_to_go_next(running):
    web, _, _ = urls(running)
    assert f"http://localhost:{running.settings().port('web')}" in running.up.stdout
    assert "inv client-config" in running.up.stderr or "inv client-config" in running.up.stdout


def test_status_reports_every_service_healthy(running):
    table = running.inv("status").stdout
    for name in SERVICES:
        assert any(line.split()[:3] == [name, "running", "healthy"] for line in table.splitlines()), (name, table)
    assert "answers" in table
    report = json.loads(running.inv("status", "--json").stdout)
    assert report["healthy"] is True and report["api"]["answers"] is True
    assert {s["service"] for s in report["services"]} == SERVICES
    assert report["layers"] == ["base", "auth"]


def test_data_survives_down_and_up(running):
    _, api, files = urls(running)
    token = token_of(login(api, "alice", PASSWORD))
    payload = hashlib.sha256(b"clearml-lightning").hexdigest().encode() * 100
    assert upload(files, "persist/artifact.bin", payload, token).status == 200
    running.inv("compose", "--", "exec", "-T", "mongo", "standin-store", "put", "tasks", "t1", '{"name": "kept"}')
    running.inv("compose", "--", "exec", "-T", "redis", "redis-cli", "set", "persist-key", "kept-value")

    running.inv("down")
    assert json.loads(running.inv("status", "--json").stdout)["services"] == []
    running.inv("up")

    token = token_of(login(api, "alice", PASSWORD))
    got = download(files, "persist/artifact.bin", token)
    assert got.status == 200 and got.body == payload
    record = running.inv("compose", "--", "exec", "-T", "mongo", "standin-store", "get", "tasks", "t1").stdout
    assert json.loads(record) == {"name": "kept"}
    value = running.inv("compose", "--", "exec", "-T", "redis", "redis-cli", "get", "persist-key").stdout
    assert value.strip() == "kept-value"


def test_restart_of_one_service_recovers(running):
    running.inv("restart", "--service", "apiserver")
    report = json.loads(running.inv("status", "--json").stdout)
    assert report["healthy"] is True


def test_second_install_changes_nothing_and_containers_see_generated_secrets(running):
    def snapshot() -> dict[str, str]:
        files = [running.env_file, *sorted((running.data_dir / "config").glob("*.conf"))]
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    before = snapshot()
    proc = running.inv("install")
    assert "nothing to do" in proc.stderr and snapshot() == before

    _, api, _ = urls(running)
    effective = request(f"{api}/standin.effective_config").json()["data"]
    values = parse_env(running.env_file.read_text())
    secure = effective["secure"]
    assert secure["auth"]["token_secret"] == values["CLEARML_AUTH_TOKEN_SECRET"]
    assert secure["http"]["session_secret"]["apiserver"] == values["CLEARML_SESSION_SECRET"]
    assert secure["credentials"]["fileserver"]["user_key"] == values["CLEARML_FILESERVER_KEY"]
    assert secure["credentials"]["services_agent"]["user_key"] == values["CLEARML_AGENT_ACCESS_KEY"]
    assert effective["apiserver"]["auth"]["fixed_users"]["enabled"] is True
    leaves = list(flatten(effective))
    assert len(leaves) > 20
    assert bad_values(leaves) == [], "a public default is in effect in the running server"


def flatten(tree, prefix: str = ""):
    """(dotted path, value) for every leaf of a nested config dict."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from flatten(value, f"{prefix}{key}.")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from flatten(value, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), tree
