"""The nginx gateway configuration: snapshots per TLS choice, escaping, and what each choice must contain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from clearml_stack.render import nginx
from clearml_stack.settings import Settings, check_domain, defaults
from tests.snapshots import assert_snapshot

CASES = {
    "http-8000": {"CLEARML_DOMAIN": "ml.example.com"},
    "self-signed-443": {"CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": "self-signed", "CLEARML_GATEWAY_PORT": "443",
                        "CLEARML_GATEWAY_HTTP_PORT": "80"},
    "provided-8443": {"CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": "provided", "CLEARML_GATEWAY_PORT": "8443"},
    "external-lightning": {"CLEARML_DOMAIN": "8000-01hx7example.cloudspaces.litng.ai", "CLEARML_TLS": "external"},
}


def make(**over: str) -> Settings:
    return Settings(values={**defaults(), "CLEARML_ACCESS_MODE": "subdomains", **over}, env_file=Path("/tmp/x/.env"))


def conf(**over: str) -> str:
    return nginx.render_gateway(make(**over))[nginx.CONF_NAME]


def servers(text: str) -> list[str]:
    """Each top-level ``server { ... }`` block."""
    blocks, depth, current = [], 0, []
    for line in text.splitlines():
        if depth == 0 and line.startswith("server {"):
            current = []
        if depth or line.startswith("server {"):
            current.append(line)
        depth += line.count("{") - line.count("}")
        if current and depth == 0 and line.startswith("}"):
            blocks.append("\n".join(current))
            current = []
    return blocks


@pytest.mark.parametrize("case", CASES)
def test_snapshot(case):
    assert_snapshot(f"gateway-{case}.conf", conf(**CASES[case]))


@pytest.mark.parametrize("case", CASES)
def test_each_service_name_routes_to_its_service_with_the_proxy_essentials(case):
    text = conf(**CASES[case])
    domain = CASES[case]["CLEARML_DOMAIN"]
    for label, upstream in (("app", "webserver:80"), ("api", "apiserver:8008"), ("files", "fileserver:8081")):
        (block,) = [b for b in servers(text) if f"server_name {label}.{domain};" in b]
        assert f"set $clearml_upstream http://{upstream};" in block
        for line in ("proxy_http_version 1.1;", "proxy_set_header Host $http_host;",
                     "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $clearml_connection;",
                     "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "client_max_body_size 0;",
                     "proxy_buffering off;", "proxy_request_buffering off;", "proxy_read_timeout 3600s;"):
            assert line in block, (label, line)
    assert "http2" not in text  # HTTP/2 in front breaks console-log streaming


def test_unknown_names_get_a_404_hint_and_the_healthcheck_lives_on_port_80():
    text = conf(**CASES["self-signed-443"])
    defaults_ = [b for b in servers(text) if "default_server" in b]
    assert len(defaults_) == 2  # plain and TLS listeners each have one
    for block in defaults_:
        assert 'return 404 "No ClearML service answers to this host name. Open https://app.ml.example.com/' in block
    (plain,) = [b for b in defaults_ if "listen 80 default_server;" in b]
    assert "location = /healthz" in plain


def test_tls_at_the_gateway_is_modern_and_plain_http_redirects():
    text = conf(**CASES["provided-8443"])
    tls_blocks = [b for b in servers(text) if "listen 443 ssl" in b]
    assert len(tls_blocks) == 4
    for block in tls_blocks:
        assert "ssl_protocols TLSv1.2 TLSv1.3;" in block
        assert "ssl_certificate /etc/nginx/tls/gateway.crt;" in block
        assert "error_page 497 =301 https://$host:8443$request_uri;" in block
    (redirect,) = [b for b in servers(text) if "return 301" in b]
    assert "server_name app.ml.example.com api.ml.example.com files.ml.example.com;" in redirect
    assert "return 301 https://$host:8443$request_uri;" in redirect
    assert "TLSv1 " not in text and "TLSv1.1" not in text and "SSLv3" not in text


def test_behind_a_tls_proxy_the_gateway_is_plain_but_tells_upstreams_https():
    text = conf(**CASES["external-lightning"])
    assert "ssl" not in text.replace("ssl_", "") and "listen 443" not in text
    assert "proxy_set_header X-Forwarded-Proto https;" in text
    assert "proxy_set_header X-Forwarded-Port 443;" in text


def test_plain_http_passes_the_real_scheme():
    text = conf(**CASES["http-8000"])
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text and "proxy_set_header X-Forwarded-Port 8000;" in text
    assert nginx.container_port(make(**CASES["http-8000"])) == 80
    assert nginx.container_port(make(**CASES["provided-8443"])) == 443


@pytest.mark.parametrize("bad", ["a b", "a;b", "a{b", "a}b", 'a"b', "a'b", "$host", "a\nb", "a\\b", "", "-a", "é.com"])
def test_words_refuse_nginx_syntax(bad):
    with pytest.raises(ValueError):
        nginx.word(bad)


def test_strings_escape_quotes_and_refuse_variables():
    assert nginx.string('say "hi" \\ now\n') == '"say \\"hi\\" \\\\ now\\n"'
    for bad in ("cost $5", "bell\a", "tab\tx"):
        with pytest.raises(ValueError):
            nginx.string(bad)


def test_a_domain_that_slipped_past_the_settings_check_is_refused_by_the_renderer():
    with pytest.raises(ValueError):
        conf(CLEARML_DOMAIN="a.com; include /etc/passwd")


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@hsettings(max_examples=60, deadline=None)
@given(labels=st.lists(_label, min_size=1, max_size=4), tls=st.sampled_from(["off", "self-signed", "external"]),
       port=st.integers(1, 65535))
def test_any_accepted_domain_renders_balanced_config_with_only_its_names(labels, tls, port):
    domain = ".".join(labels)
    if check_domain(domain):
        return
    text = conf(CLEARML_DOMAIN=domain, CLEARML_TLS=tls, CLEARML_GATEWAY_PORT=str(port))
    assert text.count("{") == text.count("}")
    names = set(re.findall(r"server_name ([^;]+);", text))
    assert names <= {"_", f"app.{domain}", f"api.{domain}", f"files.{domain}",
                     f"app.{domain} api.{domain} files.{domain}"}
    for line in text.splitlines():
        stripped = line.strip()
        assert not stripped or stripped.startswith("#") or stripped[-1] in ";{}", line
