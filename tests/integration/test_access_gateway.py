"""Access modes on the real engine with the stand-in images; every request goes to 127.0.0.1.

One subdomains deployment serves the module: first plain HTTP (routing by Host, 404 for unknown names,
a 50 MB upload through files., the login cookie shared by app./api./files.), then the same deployment
switched to `--self-signed` TLS (handshakes verified against the generated CA for the three names,
HTTP redirected to HTTPS, the Secure cookie). A second, smaller test starts the web server alone in
lightning-proxy mode and reads its configuration.json.
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import json
import os
import socket
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass

import pytest

from tests.conftest import remove_project, stand_in_kit
from tests.kit import Kit, free_port

pytestmark = pytest.mark.integration

DOMAIN = "clearml.test"
APP, API, FILES = f"app.{DOMAIN}", f"api.{DOMAIN}", f"files.{DOMAIN}"
PASSWORD = "gateway pass 1"
STUDIO = "01hx7example.cloudspaces.litng.ai"


@dataclass
class Reply:
    status: int
    body: bytes
    headers: http.client.HTTPMessage
    tls_version: str | None = None

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


def call(port: int, host: str, path: str = "/", method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None, sni: str | None = None,
         timeout: float = 120) -> Reply:
    """One request to 127.0.0.1:port with the given Host (and, over TLS, the given SNI name); no redirects."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    version = None
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname=sni or host)
        version = sock.version()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.sock = sock
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), resp.headers, version)
    finally:
        conn.close()


def basic(user: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def multipart(path: str, content: bytes) -> tuple[bytes, str]:
    boundary = "clearmlgatewaytest" + hashlib.sha256(path.encode()).hexdigest()[:12]
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{path}\"; filename=\"{path.rsplit('/', 1)[-1]}\""
            "\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, test_images) -> Kit:
    k = stand_in_kit(tmp_path_factory.mktemp("gateway"), test_images)
    k.env["CLEARML_WAIT_TIMEOUT"] = "600"  # a shared, busy test engine can take minutes to start the stand-ins
    k.inv("install", "--mode", "subdomains", "--domain", DOMAIN, "--user", "alice", "--password-stdin",
          input=PASSWORD + "\n")
    k.up = k.inv("up")
    yield k
    remove_project(k)


def gw_port(k: Kit) -> int:
    return k.settings().port("gateway")


def test_up_reports_the_gateway_urls(gateway):
    port = gw_port(gateway)
    assert f"web UI:      http://{APP}:{port}" in gateway.up.stdout
    assert f"file server: http://{FILES}:{port}" in gateway.up.stdout
    published = json.loads(gateway.inv("status", "--json").stdout)
    nginx = [s for s in published["services"] if s["service"] == "nginx"]
    assert nginx and nginx[0]["health"] == "healthy"
    assert f"127.0.0.1:{port}->80" in nginx[0]["ports"]


def test_each_name_reaches_its_own_service_and_only_it(gateway):
    port = gw_port(gateway)
    web = call(port, APP, "/")
    assert web.status == 200 and b"ClearML web UI" in web.body
    assert call(port, APP, "/configuration.json").status == 200
    ping = call(port, API, "/debug.ping", "POST", b"{}", {"Content-Type": "application/json"})
    assert ping.status == 200 and ping.body and json.loads(ping.body)["meta"]["endpoint"]["name"] == "debug.ping"
    files = call(port, FILES, "/")
    assert files.status == 200 and files.body == b"OK"
    # the same paths on the wrong name are not served by that service
    assert call(port, API, "/configuration.json").status != 200
    assert b"ClearML web UI" not in call(port, FILES, "/").body


@pytest.mark.parametrize("host", ["evil.example", DOMAIN, f"app.{DOMAIN}.evil.example", f"www.{DOMAIN}", "127.0.0.1"])
def test_unknown_names_get_404_with_a_hint(gateway, host):
    reply = call(gw_port(gateway), host, "/")
    assert reply.status == 404
    assert f"Open http://{APP}:{gw_port(gateway)}/" in reply.body.decode()
    assert b"ClearML web UI" not in reply.body


def login(port: int, tls: ssl.SSLContext | None = None) -> Reply:
    reply = call(port, API, "/auth.login", "POST", b"{}",
                 {**basic("alice", PASSWORD), "Content-Type": "application/json"}, tls=tls)
    assert reply.status == 200, reply.body[:300]
    return reply


def test_fifty_megabyte_upload_through_files_with_a_login_token(gateway):
    port = gw_port(gateway)
    token = json.loads(login(port).body)["data"]["token"]
    content = os.urandom(1024 * 1024) * 50
    body, ctype = multipart("gateway/big.bin", content)
    refused = call(port, FILES, "/", "POST", body[: 1024 * 1024], {"Content-Type": ctype})
    assert refused.status == 401  # fileserver auth is on once a user exists
    reply = call(port, FILES, "/", "POST", body, {"Content-Type": ctype, "Authorization": f"Bearer {token}"})
    assert reply.status == 200, reply.body[:300]
    back = call(port, FILES, "/gateway/big.bin", headers={"Authorization": f"Bearer {token}"})
    assert back.status == 200 and len(back.body) == len(content)
    assert hashlib.sha256(back.body).digest() == hashlib.sha256(content).digest()


class _Response:
    """What http.cookiejar needs from a response."""

    def __init__(self, headers: http.client.HTTPMessage) -> None:
        self._headers = headers

    def info(self) -> http.client.HTTPMessage:
        return self._headers


def test_login_through_api_sets_a_cookie_that_app_and_files_receive(gateway):
    port = gw_port(gateway)
    reply = login(port)
    set_cookie = reply.headers.get_all("Set-Cookie")
    assert any(c.startswith("clearml_token_basic=") and f"Domain=.{DOMAIN}" in c for c in set_cookie), set_cookie
    jar = http.cookiejar.CookieJar()
    jar.extract_cookies(_Response(reply.headers), urllib.request.Request(f"http://{API}:{port}/auth.login"))
    for host in (APP, FILES):
        req = urllib.request.Request(f"http://{host}:{port}/")
        jar.add_cookie_header(req)
        assert "clearml_token_basic=" in req.get_header("Cookie", ""), host
    # the browser's way: the cookie alone opens files. (no Authorization header)
    token = json.loads(reply.body)["data"]["token"]
    body, ctype = multipart("gateway/cookie.txt", b"by cookie")
    up = call(port, FILES, "/", "POST", body, {"Content-Type": ctype, "Cookie": f"clearml_token_basic={token}"})
    assert up.status == 200, up.body[:200]
    assert call(port, FILES, "/gateway/cookie.txt", headers={"Cookie": f"clearml_token_basic={token}"}).body == b"by cookie"


# --- the same deployment with self-signed TLS ---------------------------------------------------------


@pytest.fixture(scope="module")
def with_tls(gateway) -> Kit:
    gateway.env["CLEARML_GATEWAY_HTTP_PORT"] = str(free_port())
    install = gateway.inv("install", "--self-signed")
    assert "created a private CA" in install.stderr and "update-ca-certificates" in install.stderr
    gateway.up = gateway.inv("up")
    return gateway


def verifying_context(k: Kit) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(k.data_dir / "tls" / "ca.crt"))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    return ctx


@pytest.mark.parametrize("name", [APP, API, FILES])
def test_tls_handshake_verifies_against_the_generated_ca(with_tls, name):
    port = gw_port(with_tls)
    reply = call(port, name, "/", tls=verifying_context(with_tls))
    assert reply.tls_version in ("TLSv1.2", "TLSv1.3")
    assert reply.status in (200, 400)  # each service's own answer to GET /, not the gateway's 404
    assert b"No ClearML service" not in reply.body


def test_tls_is_not_trusted_without_the_ca_nor_for_other_names(with_tls):
    port = gw_port(with_tls)
    with pytest.raises(ssl.SSLCertVerificationError):
        call(port, APP, "/", tls=ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        call(port, "other.example", "/", tls=verifying_context(with_tls))


def test_tls_1_2_is_still_accepted_for_older_clients(with_tls):
    ctx = verifying_context(with_tls)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    assert call(gw_port(with_tls), API, "/debug.ping", tls=ctx).tls_version == "TLSv1.2"


def test_plain_http_redirects_to_https(with_tls):
    port = gw_port(with_tls)
    http_port = int(with_tls.env["CLEARML_GATEWAY_HTTP_PORT"])
    on_http_port = call(http_port, APP, "/projects?x=1")
    assert on_http_port.status == 301
    assert on_http_port.header("Location") == f"https://{APP}:{port}/projects?x=1"
    on_tls_port = call(port, FILES, "/a/b.txt")  # plain HTTP sent to the HTTPS port
    assert on_tls_port.status == 301 and on_tls_port.header("Location") == f"https://{FILES}:{port}/a/b.txt"
    assert call(http_port, "evil.example", "/").status == 404


def test_over_tls_the_login_cookie_is_secure_and_shared(with_tls):
    reply = login(gw_port(with_tls), tls=verifying_context(with_tls))
    (cookie,) = [c for c in reply.headers.get_all("Set-Cookie") if c.startswith("clearml_token_basic=")]
    assert f"Domain=.{DOMAIN}" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert f"web UI:      https://{APP}:{gw_port(with_tls)}" in with_tls.up.stdout


def test_upload_over_tls(with_tls):
    ctx = verifying_context(with_tls)
    port = gw_port(with_tls)
    token = json.loads(login(port, tls=ctx).body)["data"]["token"]
    content = os.urandom(4 * 1024 * 1024)
    body, ctype = multipart("gateway/tls.bin", content)
    assert call(port, FILES, "/", "POST", body, {"Content-Type": ctype, "Authorization": f"Bearer {token}"},
                tls=ctx).status == 200
    assert call(port, FILES, "/gateway/tls.bin", headers={"Authorization": f"Bearer {token}"}, tls=ctx).body == content


# --- lightning-proxy: what the web UI is told ----------------------------------------------------------


def test_lightning_proxy_web_ui_configuration_carries_the_three_urls(stack_kit):
    k = stack_kit
    k.inv("install", "--mode", "lightning-proxy", extra_env={"LIGHTNING_CLOUDSPACE_HOST": STUDIO})
    # the web server alone is enough to read what it serves the browser
    k.inv("compose", "--", "up", "-d", "--no-deps", "--wait", "--wait-timeout", "120", "webserver")
    s = k.settings()
    web, api, files = s.port("web"), s.port("api"), s.port("files")  # Lightning names hosts by the host port
    reply = call(web, f"{web}-{STUDIO}", "/configuration.json")
    assert reply.status == 200
    config = json.loads(reply.body)
    assert config["apiBaseUrl"] == f"https://{api}-{STUDIO}"
    assert config["fileBaseUrl"] == f"https://{files}-{STUDIO}"
    assert config["displayedServerUrls"] == {"apiServer": f"https://{api}-{STUDIO}",
                                             "filesServer": f"https://{files}-{STUDIO}"}


# --- ports: the warning at every `inv up` --------------------------------------------------------------


def test_ports_mode_warns_at_every_up(kit, docker_engine):
    """Each `inv up` in ports mode prints the warning before anything starts (here the start is then
    refused by a busy port, so no container is created: tests publish nothing beyond 127.0.0.1)."""
    kit.env.update(CLEARML_PUBLIC_BIND="127.0.0.1", CLEARML_WEB_PORT=str(free_port()))
    kit.inv("install", "--mode", "ports", "--domain", "ml.example.com", "--user", "alice", "--password-stdin",
            input=PASSWORD + "\n")
    holder = socket.socket()
    holder.bind(("127.0.0.1", kit.settings().port("web")))
    holder.listen()
    warning = "warning: access mode 'ports': the web UI, API and file server listen on 127.0.0.1"
    try:
        for _ in range(2):
            proc = kit.inv("up", check=False)
            assert proc.returncode != 0 and "already in use" in proc.stderr
            assert warning in proc.stderr
        kit.inv("install", "--mode", "tunnel")
        proc = kit.inv("up", check=False)
        assert proc.returncode != 0 and "already in use" in proc.stderr and "access mode 'ports'" not in proc.stderr
    finally:
        holder.close()
    assert subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={kit.project}"],
                          capture_output=True, text=True).stdout.split() == []
