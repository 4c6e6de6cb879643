"""The stack's lifecycle on the real Docker engine: with the stand-in images, and with the real pinned ones.

One deployment serves the module per variant: install with a first user, up, status, data written and
kept across down/up, restart of one service, the web UI's own /api/ and /files/ proxying, a second
install that changes nothing, and no public default in effect. The ``real`` variant (marker
real_images) runs the same tests on the release's images where they are present or can be pulled, and
is skipped with the same reason as tests/e2e elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest

from clearml_stack.envfile import parse_env
from clearml_stack.public_defaults import PUBLIC_DEFAULTS, bad_values
from tests import real_images
from tests.conftest import remove_project, stand_in_kit
from tests.http import download, login, request, token_of, upload
from tests.integration.ops_helpers import health, project_volumes, started_at
from tests.kit import Kit

pytestmark = pytest.mark.integration

PASSWORD = "pass #1 ;:{word} %s & ~"  # punctuation that is accepted (quotes, $, \\ and non-ASCII are refused)
SERVICES = {"apiserver", "fileserver", "webserver", "async_delete", "mongo", "elasticsearch", "redis"}


@pytest.fixture(scope="module", params=["stand-in", pytest.param("real", marks=pytest.mark.real_images)])
def running(request, tmp_path_factory) -> Kit:
    directory = tmp_path_factory.mktemp(f"lifecycle-{request.param}")
    if request.param == "real":
        request.getfixturevalue("docker_engine")
        real_images.require(directory)
        k = real_images.real_kit(directory)
    else:
        k = stand_in_kit(directory, request.getfixturevalue("test_images"))
    k.variant = request.param
    try:
        k.inv("install", "--user", "alice", "--password-stdin", input=PASSWORD + "\n")
        k.up = k.inv("up", timeout=900)
        yield k
    finally:
        remove_project(k)


def urls(k: Kit) -> tuple[str, str, str]:
    s = k.settings()
    return (f"http://127.0.0.1:{s.port('web')}", f"http://127.0.0.1:{s.port('api')}",
            f"http://127.0.0.1:{s.port('files')}")


def mongo_put(k: Kit, doc_id: str, name: str) -> None:
    if k.variant == "stand-in":
        k.inv("compose", "--", "exec", "-T", "mongo", "standin-store", "put", "tasks", doc_id, json.dumps({"name": name}))
    else:
        k.inv("compose", "--", "exec", "-T", "mongo", "mongosh", "--quiet", "--eval",
              f"db.getSiblingDB('lifecycle').tasks.replaceOne({{_id: '{doc_id}'}}, {{name: '{name}'}}, {{upsert: true}})")


def mongo_get(k: Kit, doc_id: str) -> dict:
    if k.variant == "stand-in":
        out = k.inv("compose", "--", "exec", "-T", "mongo", "standin-store", "get", "tasks", doc_id).stdout
    else:
        out = k.inv("compose", "--", "exec", "-T", "mongo", "mongosh", "--quiet", "--eval",
                    f"JSON.stringify(db.getSiblingDB('lifecycle').tasks.findOne({{_id: '{doc_id}'}}, {{_id: 0}}))").stdout
    return json.loads(out)


def test_up_prints_where_to_go_next(running):
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
    mongo_put(running, "t1", "kept")
    running.inv("compose", "--", "exec", "-T", "redis", "redis-cli", "set", "persist-key", "kept-value")
    volumes = project_volumes(running)
    assert volumes == [f"{running.project}_elastic_logs"]  # no anonymous volume: nothing to orphan

    running.inv("down")
    assert json.loads(running.inv("status", "--json").stdout)["services"] == []
    running.inv("up", timeout=900)
    assert project_volumes(running) == volumes  # the same volume, reused

    token = token_of(login(api, "alice", PASSWORD))
    got = download(files, "persist/artifact.bin", token)
    assert got.status == 200 and got.body == payload
    assert mongo_get(running, "t1") == {"name": "kept"}
    value = running.inv("compose", "--", "exec", "-T", "redis", "redis-cli", "get", "persist-key").stdout
    assert value.strip() == "kept-value"


def test_restart_of_one_service_recovers(running):
    before = started_at(running, "apiserver")
    others = {name: started_at(running, name) for name in ("fileserver", "mongo")}
    running.inv("restart", "--service", "apiserver", timeout=900)
    assert started_at(running, "apiserver") != before, "the apiserver container was not restarted"
    assert {name: started_at(running, name) for name in others} == others  # only the one service
    assert health(running, "apiserver") == "healthy"
    report = json.loads(running.inv("status", "--json").stdout)
    assert report["healthy"] is True and report["api"]["answers"] is True


def test_web_ui_proxies_the_api_and_the_files(running):
    """What the browser does: log in through the web port's /api/, then upload, fetch and delete through /files/."""
    web, _, _ = urls(running)
    token = token_of(login(f"{web}/api", "alice", PASSWORD))
    path = f"proxied/{uuid.uuid4().hex}.bin"
    payload = uuid.uuid4().bytes * 1000
    reply = upload(f"{web}/files", path, payload, token)
    assert reply.status == 200, (reply.status, reply.body[:300])
    got = download(f"{web}/files", path, token)
    assert got.status == 200 and got.body == payload
    assert download(f"{web}/files", path).status in (401, 403)  # the proxy does not open the files

    bearer = {"Authorization": f"Bearer {token}"}
    deleted = request(f"{web}/files/{path}", "DELETE", headers=bearer)
    assert deleted.status == 200, (deleted.status, deleted.body[:300])
    assert download(f"{web}/files", path, token).status == 404
    assert request(f"{web}/files/{path}", "DELETE", headers=bearer).status == 404


def test_second_install_changes_nothing(running):
    def snapshot() -> dict[str, str]:
        files = [running.env_file, *sorted((running.data_dir / "config").glob("*.conf"))]
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    before = snapshot()
    proc = running.inv("install")
    assert "nothing to do" in proc.stderr and snapshot() == before


def b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def signed_with(token: str, secret: str) -> bool:
    """The login token is an HS256 JWT: does ``secret`` sign it?"""
    header, payload, signature = token.split(".")
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(expected, b64url(signature))


def public_pairs() -> list[tuple[str, str, str]]:
    """(who, key, secret) for every published default credential pair."""
    keys = {(d.path.rsplit(".", 1)[0], d.source): d.value for d in PUBLIC_DEFAULTS if d.path.endswith(".user_key")}
    secrets = {(d.path.rsplit(".", 1)[0], d.source): d.value for d in PUBLIC_DEFAULTS if d.path.endswith(".user_secret")}
    return [(f"{who[0]} ({who[1]})", key, secrets[who]) for who, key in keys.items() if who in secrets]


def test_the_server_runs_on_the_generated_secrets_not_the_public_defaults(running):
    _, api, _ = urls(running)
    values = parse_env(running.env_file.read_text())
    token = token_of(login(api, "alice", PASSWORD))
    assert signed_with(token, values["CLEARML_AUTH_TOKEN_SECRET"])
    for d in PUBLIC_DEFAULTS:
        if d.path == "secure.auth.token_secret":
            assert not signed_with(token, d.value), f"tokens are signed with the public default ({d.source})"
    token_of(login(api, values["CLEARML_AGENT_ACCESS_KEY"], values["CLEARML_AGENT_SECRET_KEY"]))
    pairs = public_pairs()
    assert len(pairs) >= 4
    for who, key, secret in pairs:
        assert login(api, key, secret).status in (400, 401, 403), f"the public default pair of {who} logs in"


def test_effective_config_shows_the_generated_secrets_and_no_public_default(running):
    if running.variant != "stand-in":
        pytest.skip("real_images variant: the effective configuration is reported by the stand-in only; "
                    "the test above judges the real server")
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
