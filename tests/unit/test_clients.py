"""Client machines (pure): SSH targets, local ports, client URLs per mode, credentials, storage options,
the rendered connect.sh and clearml.conf (snapshots), and what `inv host` prints."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from pyhocon import ConfigFactory

from clearml_stack import clients as C
from clearml_stack import settings as S
from clearml_stack import urls
from clearml_stack.errors import StackError
from clearml_stack.render.client_config import render_client_config
from clearml_stack.render.connect_script import render_connect_script
from clearml_stack.settings import Settings, defaults
from tests.snapshots import assert_snapshot

CREDS = C.Credentials("AKIAEXAMPLEKEY0123456789", "s3cr3t-Secret_Value.with~signs+/=")


def make(**over: str) -> Settings:
    return Settings(values={**defaults(), **over}, env_file=Path("/srv/clearml/.env"))


# --- SSH target ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,user,host,port",
    [
        ("s_01hq3abc@ssh.lightning.ai", "s_01hq3abc", "ssh.lightning.ai", None),
        ("alice@10.0.0.5:2222", "alice", "10.0.0.5", 2222),
        ("ml-ops.bot@clearml.example.com:22", "ml-ops.bot", "clearml.example.com", 22),
    ],
)
def test_parse_target_accepts_user_host_port(text, user, host, port):
    target = C.parse_target(text)
    assert (target.user, target.host, target.port) == (user, host, port)
    assert str(target) == text
    assert target.destination == f"{user}@{host}"


@pytest.mark.parametrize(
    "text",
    ["host.only", "@host", "a@", "a@b@c", "a b@host", "a@host;rm -rf ~", "a@$(id)", "a@`id`", "a@host:0",
     "a@host:70000", "a@host:22x", "-oProxyCommand=x@host", "a@-oProxyCommand=id", "a@host name", "a@[::1]",
     "a@host\nb", "a'b@host"],
)
def test_parse_target_refuses_anything_else_naming_the_value(text):
    with pytest.raises(StackError) as err:
        C.parse_target(text)
    assert repr(text) in err.value.message
    assert "USER@HOST" in err.value.fix


def test_settings_check_the_ssh_target():
    assert S.problems({**defaults(), "CLEARML_SSH_TARGET": "alice@host:2222"}) == []
    found = S.problems({**defaults(), "CLEARML_SSH_TARGET": "alice@host;id"})
    assert len(found) == 1 and found[0].startswith("CLEARML_SSH_TARGET='alice@host;id'") and "fix:" in found[0]


def test_lightning_default_target_from_the_studio_id():
    assert str(C.lightning_target({"LIGHTNING_CLOUD_SPACE_ID": "01hq3abc"})) == "s_01hq3abc@ssh.lightning.ai"
    assert C.lightning_target({}) is None
    assert C.lightning_target({"LIGHTNING_CLOUD_SPACE_ID": "x;id"}) is None


def test_resolve_target_precedence_and_the_error_elsewhere():
    studio = {"LIGHTNING_CLOUD_SPACE_ID": "01hq"}
    assert str(C.resolve_target("bob@h:2", make(CLEARML_SSH_TARGET="al@g"), studio)) == "bob@h:2"
    assert str(C.resolve_target("", make(CLEARML_SSH_TARGET="al@g"), studio)) == "al@g"
    assert str(C.resolve_target("", make(), studio)) == "s_01hq@ssh.lightning.ai"
    with pytest.raises(StackError) as err:
        C.resolve_target("", make(), {})
    assert "not a Lightning Studio" in err.value.message
    assert "--target USER@HOST[:PORT]" in err.value.fix


# --- local ports and URLs ------------------------------------------------------------------------


def test_parse_local_ports():
    assert C.parse_local_ports("18080, 18008,18081").as_tuple() == (18080, 18008, 18081)
    for bad, words in [("1,2", "exactly three"), ("80,8008,8081", "1024 to 65535"), ("8080,8080,8081", "differ"),
                       ("a,b,c", "1024 to 65535"), ("8080,8008,99999", "1024 to 65535")]:
        with pytest.raises(StackError) as err:
            C.parse_local_ports(bad)
        assert words in err.value.message and repr(bad) in err.value.message


def test_tunnel_urls_use_the_local_ports_and_keep_the_canonical_files_url():
    s = make()
    same = C.client_urls(s)
    assert (same.web, same.api, same.files, same.substitution) == (
        "http://localhost:8080", "http://localhost:8008", "http://localhost:8081", None)
    moved = C.client_urls(s, C.LocalPorts(18080, 18008, 18081))
    assert (moved.web, moved.api) == ("http://localhost:18080", "http://localhost:18008")
    assert moved.files == urls.public_urls(s).files == "http://localhost:8081"
    assert moved.substitution == ("http://localhost:8081", "http://localhost:18081")
    assert moved.files_local == "http://localhost:18081"


@pytest.mark.parametrize("over", [
    {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com"},
    {"CLEARML_ACCESS_MODE": "ports", "CLEARML_DOMAIN": "server.example.com"},
    {"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": "abc.cloudspaces.litng.ai"},
])
def test_other_modes_use_the_public_urls_without_substitution(over, monkeypatch):
    monkeypatch.setenv("LIGHTNING_CLOUDSPACE_HOST", "abc.cloudspaces.litng.ai")
    s = make(**over)
    found = C.client_urls(s, C.LocalPorts(18080, 18008, 18081))
    public = urls.public_urls(s)
    assert (found.web, found.api, found.files, found.substitution) == (public.web, public.api, public.files, None)


def test_client_environment_names_the_sdk_variables():
    env = C.client_environment(make(), CREDS, C.LocalPorts(18080, 18008, 18081))
    assert env == {"CLEARML_WEB_HOST": "http://localhost:18080", "CLEARML_API_HOST": "http://localhost:18008",
                   "CLEARML_FILES_HOST": "http://localhost:18081", "CLEARML_API_ACCESS_KEY": CREDS.access_key,
                   "CLEARML_API_SECRET_KEY": CREDS.secret_key}


# --- credentials and storage ---------------------------------------------------------------------

UI_SNIPPET = """api {
  web_server: http://localhost:8080/
  api_server: http://localhost:8008
  files_server: http://localhost:8081
  credentials {
    "access_key" = "K2X5J8EXAMPLE0ACCESSKEY"
    "secret_key"  = "sEcReT_from-the-UI.0123456789abcdefghij"
  }
}
"""


def test_credentials_from_the_web_ui_snippet_or_two_words():
    got = C.parse_credentials_text(UI_SNIPPET)
    assert (got.access_key, got.secret_key) == ("K2X5J8EXAMPLE0ACCESSKEY", "sEcReT_from-the-UI.0123456789abcdefghij")
    assert C.parse_credentials_text("AKEY12345678\nSECRET12345678\n") == C.Credentials("AKEY12345678", "SECRET12345678")
    assert C.parse_credentials_text("  AKEY12345678 SECRET12345678") == C.Credentials("AKEY12345678", "SECRET12345678")


@pytest.mark.parametrize("text,words", [
    ("", "0 words"), ("onlyone12345", "1 words"), ("a b c", "3 words"),
    ('"access_key" = "K2X5J8EXAMPLE0ACCESSKEY"', "secret key is missing"),
    ("SHORT SECRET12345678", "shorter than 8"), ('AKEY12345678 SECRET"1234567', "characters"),
])
def test_bad_credentials_are_refused_without_echoing_them(text, words):
    with pytest.raises(StackError) as err:
        C.parse_credentials_text(text)
    assert words in err.value.message
    assert "SECRET12345678" not in err.value.message and "1234567" not in err.value.message


def test_credentials_repr_hides_the_secret():
    assert CREDS.secret_key not in repr(CREDS) and CREDS.access_key in repr(CREDS)


def test_output_uri_and_s3_endpoint_checks():
    assert C.check_output_uri("s3://minio.local:9000/bucket/models") == "s3://minio.local:9000/bucket/models"
    assert C.check_output_uri("") == ""
    for bad in ("ftp://x/y", "bucket/path", 's3://b/"x', "s3://b/x y", "s3://b/${HOME}"):
        with pytest.raises(StackError):
            C.check_output_uri(bad)
    assert C.parse_s3_endpoint("minio.local:9000", no_tls=True) == C.S3Endpoint("minio.local:9000", False, False)
    assert C.parse_s3_endpoint("10.0.0.9:9000", no_verify=True) == C.S3Endpoint("10.0.0.9:9000", True, False)
    assert C.parse_s3_endpoint("s3.example.com") == C.S3Endpoint("s3.example.com", True, True)
    with pytest.raises(StackError) as err:
        C.parse_s3_endpoint("http://minio.local:9000/")
    assert err.value.fix == "use --s3-endpoint minio.local:9000 --s3-no-tls"
    for bad in ("minio local", "minio:99999", "minio:x", "a@b"):
        with pytest.raises(StackError):
            C.parse_s3_endpoint(bad)


# --- connect.sh ----------------------------------------------------------------------------------

LIGHTNING = C.SshTarget("s_01hq3abc", "ssh.lightning.ai")
CUSTOM = C.SshTarget("alice", "10.0.0.5", 2222)


def test_connect_script_snapshots():
    assert_snapshot("connect-tunnel-lightning.sh", render_connect_script(make(), LIGHTNING))
    assert_snapshot("connect-tunnel-custom-ports.sh",
                    render_connect_script(make(CLEARML_WEB_PORT="9080", CLEARML_API_PORT="9008",
                                               CLEARML_FILES_PORT="9081"),
                                          CUSTOM, C.LocalPorts(18080, 18008, 18081)))


def _assignments(text: str) -> dict[str, str]:
    """What bash makes of the script's variable assignments (the lines before the first function)."""
    head = text.split("\nsay()", 1)[0]
    code = head + '\nprintf "%s\\0" "$TARGET" "$SSH_PORT" "${LOCAL_PORTS[*]}" "${REMOTE_PORTS[*]}" "$SERVER_FILES_URL"'
    out = subprocess.run(["bash", "-c", code], capture_output=True, text=True, check=True).stdout.split("\0")
    return dict(zip(("target", "ssh_port", "local", "remote", "files_url"), out))


def test_connect_script_bakes_in_target_and_ports():
    text = render_connect_script(make(CLEARML_API_PORT="9008"), CUSTOM, C.LocalPorts(18080, 18008, 18081))
    assert _assignments(text) == {"target": "alice@10.0.0.5", "ssh_port": "2222", "local": "18080 18008 18081",
                                  "remote": "8080 9008 8081", "files_url": "http://localhost:8081"}
    plain = _assignments(render_connect_script(make(), LIGHTNING))
    assert plain["ssh_port"] == "" and plain["local"] == plain["remote"] == "8080 8008 8081"


def test_connect_script_quotes_values_even_past_validation():
    """The renderer escapes for bash by itself: a target that skipped parse_target stays one inert word."""
    evil = C.SshTarget("a'b$(touch /tmp/pwned)", "h`id`;x")
    text = render_connect_script(make(), evil)
    assert _assignments(text)["target"] == "a'b$(touch /tmp/pwned)@h`id`;x"
    assert shlex.quote("a'b$(touch /tmp/pwned)@h`id`;x") in text


def test_connect_script_has_no_unfilled_placeholders_and_keeps_safety_options():
    text = render_connect_script(make(), LIGHTNING)
    assert "{{" not in text and "}}" not in text
    for option in ("ExitOnForwardFailure=yes", "ServerAliveInterval=", "autossh -M 0", "BatchMode=yes",
                   "ControlPath=none", '-L "127.0.0.1:'):
        assert option in text
    assert "AUTOSSH_PORT" not in text and not re.search(r"-M [1-9]", text), "no fixed monitor port"


# --- clearml.conf --------------------------------------------------------------------------------


def test_client_config_snapshots():
    assert_snapshot("clientconf-tunnel.conf", render_client_config(make(), CREDS))
    assert_snapshot("clientconf-tunnel-custom-ports-s3.conf",
                    render_client_config(make(), CREDS, local_ports=C.LocalPorts(18080, 18008, 18081),
                                         output_uri="s3://minio.local:9000/clearml/models",
                                         s3=C.S3Endpoint("minio.local:9000", secure=False, verify=False)))
    assert_snapshot("clientconf-subdomains.conf",
                    render_client_config(make(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com"),
                                         CREDS, verify_certificate=False))


def test_lightning_proxy_snapshots(monkeypatch):
    studio = "abc123.cloudspaces.litng.ai"
    monkeypatch.setenv("LIGHTNING_CLOUDSPACE_HOST", studio)
    s = make(CLEARML_ACCESS_MODE="lightning-proxy", CLEARML_DOMAIN=studio)
    assert_snapshot("clientconf-lightning-proxy.conf", render_client_config(s, CREDS))
    assert_snapshot("connect-lightning-proxy.sh", render_connect_script(s, LIGHTNING))


def test_ports_and_subdomains_snapshots():
    """connect.sh is still written in these modes (it tunnels to the server's loopback ports)."""
    ports = make(CLEARML_ACCESS_MODE="ports", CLEARML_DOMAIN="srv.example.com")
    sub = make(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com", CLEARML_TLS="self-signed",
               CLEARML_GATEWAY_PORT="443", CLEARML_GATEWAY_HTTP_PORT="80")
    assert_snapshot("connect-ports.sh", render_connect_script(ports, CUSTOM))
    assert_snapshot("connect-subdomains.sh", render_connect_script(sub, CUSTOM, C.LocalPorts(28080, 28008, 28081)))
    assert_snapshot("clientconf-ports.conf", render_client_config(ports, CREDS))


def test_client_config_storage_option_snapshots():
    no_verify = C.parse_s3_endpoint("minio.example.com:9000", no_verify=True)
    assert (no_verify.secure, no_verify.verify) == (True, False)
    assert_snapshot("clientconf-s3-no-verify.conf", render_client_config(make(), CREDS, s3=no_verify))
    assert_snapshot("clientconf-output-uri.conf",
                    render_client_config(make(), CREDS, output_uri=C.check_output_uri("gs://ml-bucket/models")))


def test_client_config_takes_explicit_urls_for_agents():
    chosen = C.ClientUrls("http://10.0.0.2:8080", "http://10.0.0.2:8008", "http://10.0.0.2:8081")
    conf = ConfigFactory.parse_string(render_client_config(make(), CREDS, urls=chosen))
    assert (conf["api.web_server"], conf["api.api_server"], conf["api.files_server"]) == (
        chosen.web, chosen.api, chosen.files)


def test_client_config_parses_with_the_values_written():
    s = make()
    text = render_client_config(s, C.Credentials('Q"uote\\back', "x${HOME}#not-a-comment"),
                                local_ports=C.LocalPorts(18080, 18008, 18081), output_uri="file:///data/out",
                                s3=C.S3Endpoint("s3.local", secure=True, verify=False))
    conf = ConfigFactory.parse_string(text)
    assert conf["api.credentials.access_key"] == 'Q"uote\\back'
    assert conf["api.credentials.secret_key"] == "x${HOME}#not-a-comment"
    assert conf["api.api_server"] == "http://localhost:18008"
    assert conf["api.files_server"] == "http://localhost:8081"
    assert conf["sdk.storage.path_substitution"][0]["local_prefix"] == "http://localhost:18081"
    assert conf["sdk.development.default_output_uri"] == "file:///data/out"
    s3 = conf["sdk.aws.s3.credentials"][0]
    assert (s3["host"], s3["use_credentials_chain"], s3["secure"], s3["verify"]) == ("s3.local", True, True, False)
    assert "sdk" not in ConfigFactory.parse_string(render_client_config(s, CREDS)), "no empty sdk section"


# --- inv host ------------------------------------------------------------------------------------


def test_guide_tunnel_mode_with_a_target_gives_the_exact_commands():
    text = C.connection_guide(make(), CUSTOM, "/srv/clearml/connect.sh", "/srv/clearml/clearml.conf")
    assert "scp -P 2222 alice@10.0.0.5:/srv/clearml/connect.sh ." in text
    assert "bash connect.sh\n" in text and "bash connect.sh --check" in text
    assert "scp -P 2222 alice@10.0.0.5:/srv/clearml/clearml.conf ~/clearml.conf" in text
    assert "http://localhost:8080" in text and "Settings > Workspace" in text
    assert "inv client-config --credentials-stdin" in text


def test_guide_tunnel_mode_without_a_target_says_how_to_give_one():
    text = C.connection_guide(make(), None, "/srv/clearml/connect.sh", "/srv/clearml/clearml.conf")
    assert "inv connect-script --target USER@HOST[:PORT]" in text and "CLEARML_SSH_TARGET" in text
    assert "scp" not in text


def test_guide_other_modes_need_no_tunnel():
    s = make(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com")
    text = C.connection_guide(s, CUSTOM, "/srv/clearml/connect.sh", "/srv/clearml/clearml.conf")
    assert "no tunnel needed" in text and "connect.sh" not in text
    assert urls.public_urls(s).api in text


def _guide(**over: str) -> str:
    return C.connection_guide(make(**over), None, "/srv/clearml/connect.sh", "/srv/clearml/clearml.conf")


def test_guide_subdomains_with_self_signed_tls_says_how_clients_resolve_and_trust_it():
    text = _guide(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com", CLEARML_TLS="self-signed",
                  CLEARML_GATEWAY_PORT="443", CLEARML_GATEWAY_HTTP_PORT="80")
    assert "https://app.ml.example.com\n" in text
    assert "<this host's IP> app.ml.example.com api.ml.example.com files.ml.example.com" in text
    assert "/etc/hosts" in text and "DNS" in text and "port 443" in text
    assert "/srv/clearml/data/tls/ca.crt" in text and "`inv tls.show`" in text
    next_steps = text.split("Next steps:", 1)[1]
    assert next_steps.index("ca.crt") < next_steps.index("Create new credentials"), "trust first, then sign in"


def test_guide_subdomains_without_tls_needs_no_ca_and_behind_a_proxy_no_hosts_line():
    plain = _guide(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com", CLEARML_GATEWAY_PORT="80")
    assert "/etc/hosts" in plain and "ca.crt" not in plain and "tls.show" not in plain
    proxied = _guide(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com", CLEARML_TLS="external")
    assert "TLS proxy in front" in proxied and "/etc/hosts" not in proxied and "ca.crt" not in proxied


def test_guide_lightning_proxy_names_the_ports_to_expose_and_the_limits():
    text = _guide(CLEARML_ACCESS_MODE="lightning-proxy", CLEARML_DOMAIN="abc.cloudspaces.litng.ai",
                  CLEARML_API_PORT="9008")
    assert "ports 8080, 9008, 8081 must be exposed on the Studio" in text
    assert "the three ports are public" in text and "cookie" in text and "README" in text
    assert "/etc/hosts" not in text and "ca.crt" not in text


def test_guide_ports_mode_names_the_ports_for_the_firewall():
    text = _guide(CLEARML_ACCESS_MODE="ports", CLEARML_DOMAIN="srv.example.com", CLEARML_FILES_PORT="9081")
    assert "http://srv.example.com:9081" in text
    assert "ports 8080, 8008, 9081 of this host must be reachable from the clients" in text and "firewall" in text


def test_guide_tunnel_mode_has_no_access_prerequisites():
    text = _guide()
    assert "firewall" not in text and "/etc/hosts" not in text and "exposed on the Studio" not in text
