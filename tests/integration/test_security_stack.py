"""Hardening on the real Docker engine with the stand-in server (which checks logins the documented way):
web login with users added by `inv users.add`, the file server's token check, `inv keys --rotate`,
the stores on loopback, and the audit on a running deployment. One stack for the whole module."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
import uuid

import pytest

from clearml_stack.settings import SECRET_KEYS
from tests.conftest import remove_project, stand_in_kit
from tests.kit import Kit, free_port

pytestmark = pytest.mark.integration

ALICE_PW = "alice pass 1"
PUBLIC_APISERVER_PAIR = ("62T8CP7HGBC6647XF9314C2VY67RJO",
                         "gaOfhDX2-bpkeI7-cwEcaMuGijxaG2UG3jbIvg4DxmVGF0LNI7rgvCb1-ne38IlBo1w")
PUBLIC_TESTS_PAIR = ("EGRTCO8JMSIGI6S39GTP43NFWXDQOW", "LPEJbGJ6bK4tujQcmrD3i1dbMBDdwUwelVa-LG0K0FFmY9bzH_H0Sw")


@pytest.fixture(scope="module")
def secured(tmp_path_factory, test_images) -> Kit:
    """Installed with user alice, stores published on loopback, started and healthy."""
    k = stand_in_kit(
        tmp_path_factory.mktemp("secured"), test_images,
        CLEARML_MONGO_PORT=str(free_port()), CLEARML_ELASTIC_PORT=str(free_port()),
        CLEARML_REDIS_PORT=str(free_port()), CLEARML_EXPOSE_STORES="loopback", CLEARML_WAIT_TIMEOUT="300",
    )
    # the kit's stand-in for /proc/sys/vm/max_map_count (tests never read or change the host's): a good host
    (k.dir / ".test-max_map_count").write_text("524288\n")
    try:
        k.inv("install", "--user", "alice", "--password-stdin", input=ALICE_PW + "\n")
        k.inv("up")
        yield k
    finally:
        remove_project(k)


# --- HTTP helpers (127.0.0.1 only) ---------------------------------------------------------------


def call(url: str, data: bytes | None = None, headers: dict[str, str] | None = None, method: str = "POST"):
    req = urllib.request.Request(url, data=data if data is not None else (b"{}" if method == "POST" else None),
                                 headers={"Content-Type": "application/json", **(headers or {})}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:  # generous: CI engines are shared
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def login(kit: Kit, key: str, secret: str):
    """auth.login with HTTP Basic, as the web UI and the SDK do: (status, token or None, Set-Cookie)."""
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
    status, body, headers = call(f"http://127.0.0.1:{kit.env['CLEARML_API_PORT']}/auth.login",
                                 headers={"Authorization": f"Basic {basic}"})
    token = json.loads(body)["data"].get("token") if status == 200 else None
    return status, token, headers.get_all("Set-Cookie") or []


def create_credentials(kit: Kit, token: str) -> tuple[str, str]:
    """auth.create_credentials as the logged-in user: (access key, secret key)."""
    status, body, _ = call(f"http://127.0.0.1:{kit.env['CLEARML_API_PORT']}/auth.create_credentials",
                           headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    creds = json.loads(body)["data"]["credentials"]
    return creds["access_key"], creds["secret_key"]


def upload(kit: Kit, name: str, content: bytes, token: str | None = None, cookie: bool = False):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name.rsplit('/', 1)[-1]}\""
            f"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if token and cookie:
        headers["Cookie"] = f"clearml_token_basic={token}"
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return call(f"http://127.0.0.1:{kit.env['CLEARML_FILES_PORT']}/", body, headers)[0]


def download(kit: Kit, name: str, token: str) -> tuple[int, bytes]:
    status, body, _ = call(f"http://127.0.0.1:{kit.env['CLEARML_FILES_PORT']}/{name}",
                           headers={"Cookie": f"clearml_token_basic={token}"}, method="GET")
    return status, body


def doctor(kit: Kit):
    return kit.inv("doctor", check=False)


def healthy(kit: Kit) -> bool:
    return json.loads(kit.inv("status", "--json").stdout)["healthy"]


# --- the tests, in the order a deployment lives them ---------------------------------------------


def test_fresh_secured_stack_passes_the_audit(secured):
    res = doctor(secured)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "result: ok" in res.stdout, res.stdout


def test_public_default_credentials_do_not_work(secured):
    assert login(secured, *PUBLIC_APISERVER_PAIR)[0] == 401
    assert login(secured, *PUBLIC_TESTS_PAIR)[0] == 401
    s = secured.settings()
    # generated webserver and tests pairs are revoked in fixed-user mode; the generated system pair works
    assert login(secured, s.secret("CLEARML_TESTS_KEY"), s.secret("CLEARML_TESTS_SECRET"))[0] == 401
    assert login(secured, s.secret("CLEARML_WEBSERVER_KEY"), s.secret("CLEARML_WEBSERVER_SECRET"))[0] == 401
    assert login(secured, s.secret("CLEARML_APISERVER_KEY"), s.secret("CLEARML_APISERVER_SECRET"))[0] == 200


def test_stores_on_loopback_answer_on_their_configured_ports(secured):
    with socket.create_connection(("127.0.0.1", int(secured.env["CLEARML_REDIS_PORT"])), timeout=10) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(64).startswith(b"+PONG")


def test_user_added_while_running_logs_in_with_http_basic(secured):
    res = secured.inv("users.add", "bob", "--name", "Bob \"B\" O'Neil", "--password-stdin", input="bob pass 2\n")
    assert "applying the change" in res.stderr
    status, token, cookies = login(secured, "bob", "bob pass 2")
    assert status == 200 and token
    assert any(c.startswith(f"clearml_token_basic={token}") and "HttpOnly" in c for c in cookies)
    assert login(secured, "bob", "bob pass 3")[0] == 401
    assert login(secured, "carol", "bob pass 2")[0] == 401
    assert login(secured, "alice", ALICE_PW)[0] == 200
    assert "Fixed users mode is enabled" in secured.inv("logs", "--service", "apiserver").stdout


def test_fileserver_needs_the_login_token(secured):
    status, token, _ = login(secured, "alice", ALICE_PW)
    assert status == 200
    assert upload(secured, "security/no-token.bin", b"x") == 401
    assert upload(secured, "security/bad-token.bin", b"x", token="not.a.token") == 401
    assert upload(secured, "security/with-token.bin", b"payload 1", token=token) == 200
    assert upload(secured, "security/with-cookie.bin", b"payload 2", token=token, cookie=True) == 200
    assert download(secured, "security/with-token.bin", token) == (200, b"payload 1")
    assert call(f"http://127.0.0.1:{secured.env['CLEARML_FILES_PORT']}/security/with-token.bin", method="GET")[0] == 401


def test_removed_user_is_refused(secured):
    assert login(secured, "bob", "bob pass 2")[0] == 200
    secured.inv("users.remove", "bob")
    assert login(secured, "bob", "bob pass 2")[0] == 401
    assert login(secured, "alice", ALICE_PW)[0] == 200


def test_the_last_user_cannot_be_removed_from_a_running_server(secured):
    before = secured.settings().users_file.read_bytes()
    res = secured.inv("users.remove", "alice", check=False)
    assert res.returncode != 0 and "would open the server" in res.stderr
    assert secured.settings().users_file.read_bytes() == before
    assert login(secured, "alice", ALICE_PW)[0] == 200


def test_rotation_refuses_old_credentials_and_keeps_the_stack_healthy(secured):
    old = secured.settings()
    old_system = (old.secret("CLEARML_APISERVER_KEY"), old.secret("CLEARML_APISERVER_SECRET"))
    old_agent = (old.secret("CLEARML_AGENT_ACCESS_KEY"), old.secret("CLEARML_AGENT_SECRET_KEY"))
    _, old_token, _ = login(secured, "alice", ALICE_PW)
    assert login(secured, *old_agent)[0] == 200
    # an app credential alice creates (what the web UI's "Create new credentials" does), kept by the server
    app_key, app_secret = create_credentials(secured, old_token)
    assert login(secured, app_key, app_secret)[0] == 200

    res = secured.inv("keys", "--rotate")
    output = res.stdout + res.stderr
    new = secured.settings()
    assert not [k for k in SECRET_KEYS if new.secret(k) in output or old.secret(k) in output], "a secret was printed"
    assert new.secret("CLEARML_AUTH_TOKEN_SECRET") != old.secret("CLEARML_AUTH_TOKEN_SECRET")
    assert "FLUSHDB" in output  # the file server's token cache was emptied

    assert login(secured, *old_system)[0] == 401
    assert login(secured, new.secret("CLEARML_APISERVER_KEY"), new.secret("CLEARML_APISERVER_SECRET"))[0] == 200
    assert login(secured, *old_agent)[0] == 200  # the agent pair was not part of this rotation
    assert login(secured, app_key, app_secret)[0] == 200  # users' app credentials stay valid
    assert login(secured, app_key, app_secret + "x")[0] == 401
    # users log in again: the old token is refused by the file server, a new one works (the file server
    # checks it with its own, rotated, system pair)
    assert upload(secured, "security/old-token.bin", b"x", token=old_token) == 401
    status, token, _ = login(secured, "alice", ALICE_PW)
    assert status == 200 and upload(secured, "security/after-rotation.bin", b"y", token=token) == 200
    assert healthy(secured)
    assert doctor(secured).returncode == 0


def test_audit_fails_on_the_running_stack_when_a_store_is_public(secured):
    res = secured.inv("doctor", check=False, extra_env={"CLEARML_EXPOSE_STORES": "all"})
    assert res.returncode == 1
    assert "mongo is published on 0.0.0.0" in res.stdout


# --- a server started open gets the auth layer with its first user -------------------------------


@pytest.fixture
def open_server(tmp_path, test_images) -> Kit:
    """Installed without a user and started with --allow-open."""
    k = stand_in_kit(tmp_path, test_images, CLEARML_WAIT_TIMEOUT="300")
    (k.dir / ".test-max_map_count").write_text("524288\n")
    try:
        k.inv("install")
        k.inv("up", "--allow-open")
        yield k
    finally:
        remove_project(k)


def test_first_user_on_an_open_server_applies_the_auth_layer(open_server):
    s = open_server.settings()
    # open: the web UI lets anyone in through the webserver pair, and the default user logs in
    anyone = [(s.secret("CLEARML_WEBSERVER_KEY"), s.secret("CLEARML_WEBSERVER_SECRET")),
              (s.secret("CLEARML_TESTS_KEY"), s.secret("CLEARML_TESTS_SECRET"))]
    assert [login(open_server, *pair)[0] for pair in anyone] == [200, 200]
    assert "Fixed users mode is enabled" not in open_server.inv("logs", "--service", "apiserver").stdout

    res = open_server.inv("users.add", "carol", "--password-stdin", input="carol pass 1\n")
    assert "applying the auth layer" in res.stderr
    assert healthy(open_server)
    assert "Fixed users mode is enabled" in open_server.inv("logs", "--service", "apiserver").stdout

    assert [login(open_server, *pair)[0] for pair in anyone] == [401, 401]  # revoked in fixed-user mode
    assert upload(open_server, "open/anonymous.bin", b"x") == 401
    assert login(open_server, "carol", "carol pass 2")[0] == 401
    status, token, _ = login(open_server, "carol", "carol pass 1")
    assert status == 200 and upload(open_server, "open/with-token.bin", b"y", token=token) == 200
    assert doctor(open_server).returncode == 0
