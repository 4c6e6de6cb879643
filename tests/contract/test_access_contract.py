"""Real tools judge the access modes: `docker compose config` per mode through the `inv` CLI, refused
domains leave everything as it was, and install's defaults on a Lightning Studio.

(`nginx -t` on the rendered gateway runs in tests/contract/test_gateway_nginx.py: it needs the engine.)
"""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
import yaml

from clearml_stack.envfile import parse_env
from tests.kit import Kit

pytestmark = pytest.mark.contract

STUDIO = "01hx7example.cloudspaces.litng.ai"


def merged(k: Kit) -> dict:
    return yaml.safe_load(k.inv("config", "--show-secrets").stdout)


def tree(k: Kit) -> dict[str, tuple[str, int]]:
    """Every file and directory under the kit with its content hash and mode."""
    found = {}
    for path in sorted(k.dir.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir", mode)
    return found


def installed(k: Kit, *flags: str) -> Kit:
    k.inv("install", *flags, "--user", "alice", "--password-stdin", input="correct horse battery\n")
    return k


def env_values(k: Kit) -> dict[str, str]:
    return parse_env(k.env_file.read_text())


# --- docker compose config per mode -----------------------------------------------------------------


def test_tunnel_and_ports_have_no_gateway_and_no_ui_overrides(kit):
    k = installed(kit)
    cfg = merged(k)
    assert "nginx" not in cfg["services"]
    assert not any(key.startswith("WEBSERVER__") for key in cfg["services"]["webserver"].get("environment", {}))
    k.inv("install", "--mode", "ports", "--domain", "10.1.2.3")
    cfg = merged(k)
    assert "nginx" not in cfg["services"]
    assert cfg["services"]["webserver"]["ports"][0]["host_ip"] == "0.0.0.0"
    asyncdel = cfg["services"]["async_delete"]["environment"]
    assert asyncdel["CLEARML__services__async_urls_delete__fileserver__url_prefixes"] == "[http://10.1.2.3:8081]"


def test_lightning_proxy_tells_the_web_ui_the_three_urls(kit):
    k = installed(kit)
    k.inv("install", "--mode", "lightning-proxy", extra_env={"LIGHTNING_CLOUDSPACE_HOST": STUDIO})
    assert env_values(k)["CLEARML_DOMAIN"] == STUDIO
    web = merged(k)["services"]["webserver"]
    env = web["environment"]
    assert env["WEBSERVER__apiBaseUrl"] == f"https://8008-{STUDIO}"
    assert env["WEBSERVER__fileBaseUrl"] == f"https://8081-{STUDIO}"
    assert json.loads(env["WEBSERVER__displayedServerUrls"]) == {
        "apiServer": f"https://8008-{STUDIO}", "filesServer": f"https://8081-{STUDIO}"}
    # Lightning's proxy reaches the three ports from outside: all interfaces unless told otherwise
    assert [p["host_ip"] for p in web["ports"]] == ["0.0.0.0"]


def test_subdomains_gateway_service(kit):
    kit.env["LIGHTNING_CLOUDSPACE_HOST"] = ""  # elsewhere: plain HTTP on the scheme's own port
    k = installed(kit, "--mode", "subdomains", "--domain", "ml.example.com")
    cfg = merged(k)
    nginx = cfg["services"]["nginx"]
    assert [(p["host_ip"], p["published"], p["target"]) for p in nginx["ports"]] == [("0.0.0.0", "80", 80)]
    mounts = {v["target"]: (v["source"], v.get("read_only")) for v in nginx["volumes"]}
    assert mounts["/etc/nginx/conf.d"] == (str(k.data_dir / "nginx" / "conf.d"), True)
    assert mounts["/etc/nginx/tls"] == (str(k.data_dir / "nginx" / "tls"), True)
    assert (k.data_dir / "nginx" / "conf.d" / "clearml-gateway.conf").is_file()
    assert set(nginx["depends_on"]) == {"webserver", "apiserver", "fileserver"}
    assert nginx["healthcheck"]["test"][0] == "CMD" and "healthz" in nginx["healthcheck"]["test"][-1]
    assert nginx["networks"] == {"frontend": None}
    # the three services stay on loopback: the gateway is the only public door
    for name in ("webserver", "apiserver", "fileserver"):
        assert [p["host_ip"] for p in cfg["services"][name]["ports"]] == ["127.0.0.1"], name
    label = nginx["labels"]["org.clearml-lightning.gateway-config"]
    server_label = cfg["services"]["apiserver"]["labels"]["org.clearml-lightning.server-config"]
    assert server_label != "none"
    k.inv("install", "--domain", "other.example.com")
    after = merged(k)["services"]
    assert after["nginx"]["labels"]["org.clearml-lightning.gateway-config"] != label
    # the apiserver reads its config (the cookie domain) only at start: a new label makes `inv up` recreate it
    assert after["apiserver"]["labels"]["org.clearml-lightning.server-config"] != server_label
    assert 'domain: ".other.example.com"' in (k.data_dir / "config" / "apiserver.conf").read_text()


def test_subdomains_with_tls_publishes_443_and_the_optional_redirect_port(kit):
    k = installed(kit, "--mode", "subdomains", "--domain", "ml.example.com", "--self-signed")
    k.env.update(CLEARML_GATEWAY_PORT="8443", CLEARML_GATEWAY_HTTP_PORT="8088", CLEARML_PUBLIC_BIND="127.0.0.1")
    nginx = merged(k)["services"]["nginx"]
    assert sorted((p["host_ip"], p["published"], p["target"]) for p in nginx["ports"]) == [
        ("127.0.0.1", "8088", 80), ("127.0.0.1", "8443", 443)]
    assert sorted(p.name for p in (k.data_dir / "nginx" / "tls").iterdir()) == ["gateway.crt", "gateway.key"]
    assert (k.data_dir / "tls" / "ca.crt").is_file()


# --- refused domains change nothing ---------------------------------------------------------------

BAD_DOMAINS = ["my domain.com", "ex{ample}.com", "a.com;evil", "https://a.com", "a.com/path", "a.com:8000",
               "$HOSTNAME", "a\"b.com", "é.example.com", "-a.com", "a..com", "x" * 64 + ".com"]


@pytest.mark.parametrize("bad", BAD_DOMAINS)
def test_a_refused_domain_on_a_fresh_kit_writes_nothing(kit, bad):
    before = tree(kit)
    proc = kit.inv("install", "--mode", "subdomains", "--domain", bad, check=False)
    assert proc.returncode != 0
    assert "CLEARML_DOMAIN=" in proc.stderr and repr(bad) in proc.stderr and "fix:" in proc.stderr
    assert tree(kit) == before


def test_a_refused_domain_on_an_installed_kit_changes_nothing(kit):
    k = installed(kit, "--mode", "subdomains", "--domain", "ml.example.com", "--self-signed")
    before = tree(k)
    for bad in ["a.com;evil", "https://a.com", "ex{ample}.com", "$HOSTNAME", "10.0.0.1"]:  # every case: above
        proc = k.inv("install", "--domain", bad, check=False)
        assert proc.returncode != 0 and "fix:" in proc.stderr, bad
        proc = k.inv("config", check=False, extra_env={"CLEARML_DOMAIN": bad})
        assert proc.returncode != 0 and "CLEARML_DOMAIN=" in proc.stderr, bad
        assert tree(k) == before, bad


# --- install's defaults ------------------------------------------------------------------------------


def test_on_a_studio_subdomains_install_needs_no_flags(kit):
    proc = kit.inv("install", "--mode", "subdomains", extra_env={"LIGHTNING_CLOUDSPACE_HOST": STUDIO})
    values = env_values(kit)
    assert values["CLEARML_DOMAIN"] == f"8000-{STUDIO}" and values["CLEARML_TLS"] == "external"
    assert "default on this Lightning Studio" in proc.stderr
    conf = (kit.data_dir / "nginx" / "conf.d" / "clearml-gateway.conf").read_text()
    assert f"server_name app.8000-{STUDIO};" in conf


def test_elsewhere_subdomains_install_uses_the_schemes_own_port_and_says_so(kit):
    elsewhere = {"LIGHTNING_CLOUDSPACE_HOST": ""}  # even when the tests run on a Studio
    proc = kit.inv("install", "--mode", "subdomains", "--domain", "ml.example.com", extra_env=elsewhere)
    values = env_values(kit)
    assert (values["CLEARML_GATEWAY_PORT"], values["CLEARML_GATEWAY_HTTP_PORT"]) == ("80", "")
    assert "CLEARML_GATEWAY_PORT=80" in proc.stderr and "443 (and 80 redirecting to it)" in proc.stderr
    proc = kit.inv("tls.self-signed", extra_env=elsewhere)
    values = env_values(kit)
    assert (values["CLEARML_GATEWAY_PORT"], values["CLEARML_GATEWAY_HTTP_PORT"]) == ("443", "80")
    assert "CLEARML_GATEWAY_PORT=443" in proc.stderr and "CLEARML_GATEWAY_HTTP_PORT=80" in proc.stderr
    nginx = merged(kit)["services"]["nginx"]
    assert sorted((p["published"], p["target"]) for p in nginx["ports"]) == [("443", 443), ("80", 80)]
    again = kit.inv("install", extra_env=elsewhere)
    assert "CLEARML_GATEWAY_PORT" not in again.stderr and env_values(kit) == values
    kit.inv("install", "--tls", "off", "--gateway-port", "8088", extra_env=elsewhere)
    values = env_values(kit)
    assert (values["CLEARML_GATEWAY_PORT"], values["CLEARML_GATEWAY_HTTP_PORT"]) == ("8088", "")


def test_elsewhere_without_a_terminal_a_missing_domain_fails_clearly_and_writes_nothing(kit):
    elsewhere = {"LIGHTNING_CLOUDSPACE_HOST": ""}  # even when the tests run on a Studio
    before = tree(kit)
    proc = kit.inv("install", "--mode", "subdomains", check=False, extra_env=elsewhere)
    assert proc.returncode != 0
    assert "subdomains mode needs a base domain" in proc.stderr and "inv install --domain" in proc.stderr
    assert tree(kit) == before
    proc = kit.inv("install", "--mode", "lightning-proxy", check=False, extra_env=elsewhere)
    assert proc.returncode != 0 and "needs the Studio host" in proc.stderr
    assert tree(kit) == before


def test_provided_tls_flags_write_absolute_paths_and_check_the_files(kit, tmp_path):
    from clearml_stack import tls

    ca = tls.new_ca("ml.example.com")
    leaf = tls.new_leaf(ca, "ml.example.com")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "full.pem").write_bytes(leaf.cert_pem + ca.cert_pem)
    (tmp_path / "certs" / "key.pem").write_bytes(leaf.key_pem)
    k = installed(kit, "--mode", "subdomains", "--domain", "ml.example.com", "--tls-cert",
                  str(tmp_path / "certs" / "full.pem"), "--tls-key", str(tmp_path / "certs" / "key.pem"))
    values = env_values(k)
    assert values["CLEARML_TLS"] == "provided" and values["CLEARML_TLS_KEY"] == str(tmp_path / "certs" / "key.pem")
    assert (k.data_dir / "nginx" / "tls" / "gateway.key").read_bytes() == leaf.key_pem
    before = tree(k)
    proc = k.inv("install", "--domain", "other.example.org", check=False)
    assert proc.returncode != 0 and "does not cover app.other.example.org" in proc.stderr
    assert tree(k) == before


# --- tls.* and tunnel.cloudflare through the CLI ---------------------------------------------------


def test_tls_self_signed_switches_on_renews_from_the_same_ca_and_shows_how_to_trust(kit):
    k = installed(kit, "--mode", "subdomains", "--domain", "ml.example.com")
    first = k.inv("tls.self-signed")
    assert env_values(k)["CLEARML_TLS"] == "self-signed"
    ca = k.data_dir / "tls" / "ca.crt"
    assert f"CA certificate: {ca}" in first.stdout and "update-ca-certificates" in first.stderr
    ca_pem, leaf_pem = ca.read_bytes(), (k.data_dir / "nginx" / "tls" / "gateway.crt").read_bytes()
    k.inv("tls.self-signed", "--renew")
    assert ca.read_bytes() == ca_pem and (k.data_dir / "nginx" / "tls" / "gateway.crt").read_bytes() != leaf_pem
    shown = k.inv("tls.show").stdout
    assert "*.ml.example.com" in shown and "SHA-256" in shown and str(ca) in shown
    assert "REQUESTS_CA_BUNDLE" in shown


def test_tls_self_signed_outside_subdomains_mode_is_refused_and_writes_nothing(kit):
    k = installed(kit)
    before = tree(k)
    proc = k.inv("tls.self-signed", check=False)
    assert proc.returncode != 0 and "subdomains mode" in proc.stderr and "--mode subdomains" in proc.stderr
    assert tree(k) == before


def test_tunnel_cloudflare_writes_the_config_and_prints_the_commands(kit):
    k = installed(kit, "--mode", "subdomains", "--domain", "example.com", "--tls", "external")
    proc = k.inv("tunnel.cloudflare", "--tunnel", "clearml-team", extra_env={"CLEARML_PUBLIC_BIND": "127.0.0.1"})
    path = k.data_dir / "cloudflared" / "config.yml"
    doc = yaml.safe_load(path.read_text())
    assert [r.get("hostname") for r in doc["ingress"]] == ["app.example.com", "api.example.com",
                                                           "files.example.com", None]
    gateway = k.settings().port("gateway")
    assert doc["ingress"][0]["service"] == f"http://127.0.0.1:{gateway}"
    assert proc.stdout.splitlines()[-1] == f"cloudflared tunnel --config {path} run clearml-team"
    assert "cloudflared tunnel route dns clearml-team files.example.com" in proc.stdout
    assert "warning" not in proc.stderr
    loud = k.inv("tunnel.cloudflare", "--tunnel", "clearml-team")  # gateway on all interfaces
    assert "bypasses Cloudflare" in loud.stderr


def test_tunnel_cloudflare_refuses_a_gateway_with_its_own_tls(kit):
    k = installed(kit, "--mode", "subdomains", "--domain", "example.com", "--self-signed")
    proc = k.inv("tunnel.cloudflare", check=False)
    assert proc.returncode != 0 and "inv install --tls external" in proc.stderr
    assert not (k.data_dir / "cloudflared").exists()
