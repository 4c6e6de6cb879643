"""Access modes: settings checks, public URLs, cookies, layers and compose values for every mode (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyhocon import ConfigFactory

from clearml_stack import access, compose, layers
from clearml_stack import settings as S
from clearml_stack.render.server_config import render_apiserver
from clearml_stack.settings import Settings, defaults
from clearml_stack.urls import ServerUrls, public_urls

STUDIO = "01hx7example.cloudspaces.litng.ai"


def make(**over: str) -> Settings:
    return Settings(values={**defaults(), **over}, env_file=Path("/tmp/x/.env"))


def values(**over: str) -> dict[str, str]:
    return {**defaults(), **over}


# --- public URLs, the one answer every other feature uses --------------------------------------


@pytest.mark.parametrize("over, expected", [
    ({}, ServerUrls("http://localhost:8080", "http://localhost:8008", "http://localhost:8081")),
    ({"CLEARML_ACCESS_MODE": "ports", "CLEARML_DOMAIN": "ml.example.com"},
     ServerUrls("http://ml.example.com:8080", "http://ml.example.com:8008", "http://ml.example.com:8081")),
    ({"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": STUDIO},
     ServerUrls(f"https://8080-{STUDIO}", f"https://8008-{STUDIO}", f"https://8081-{STUDIO}")),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com"},
     ServerUrls("http://app.ml.example.com:8000", "http://api.ml.example.com:8000",
                "http://files.ml.example.com:8000")),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com", "CLEARML_GATEWAY_PORT": "80"},
     ServerUrls("http://app.ml.example.com", "http://api.ml.example.com", "http://files.ml.example.com")),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": "self-signed",
      "CLEARML_GATEWAY_PORT": "443"},
     ServerUrls("https://app.ml.example.com", "https://api.ml.example.com", "https://files.ml.example.com")),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": "provided",
      "CLEARML_GATEWAY_PORT": "8443"},
     ServerUrls("https://app.ml.example.com:8443", "https://api.ml.example.com:8443",
                "https://files.ml.example.com:8443")),
    # Lightning's proxy or Cloudflare end TLS on 443 whatever port the gateway listens on
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": f"8000-{STUDIO}", "CLEARML_TLS": "external"},
     ServerUrls(f"https://app.8000-{STUDIO}", f"https://api.8000-{STUDIO}", f"https://files.8000-{STUDIO}")),
], ids=["tunnel", "ports", "lightning-proxy", "subdomains-8000", "subdomains-80", "self-signed-443",
        "provided-8443", "external"])
def test_public_urls_per_mode(over, expected):
    assert public_urls(make(**over)) == expected


def test_ports_mode_without_a_name_uses_the_host_name():
    assert public_urls(make(CLEARML_ACCESS_MODE="ports"), hostname="gpu-box").web == "http://gpu-box:8080"


def test_public_urls_do_not_depend_on_the_environment(monkeypatch):
    s = make(CLEARML_ACCESS_MODE="lightning-proxy", CLEARML_DOMAIN=STUDIO)
    before = public_urls(s)
    monkeypatch.setenv("LIGHTNING_CLOUDSPACE_HOST", "other.cloudspaces.litng.ai")
    assert public_urls(s) == before


def test_async_delete_matches_the_files_url_clients_store():
    s = make(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com")
    assert compose.files_url(s) == "http://files.ml.example.com:8000" == public_urls(s).files


# --- cookies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("over, domain, secure", [
    ({}, None, False),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com"}, ".ml.example.com", False),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": "self-signed"},
     ".ml.example.com", True),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": "external"},
     ".ml.example.com", True),
    ({"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": STUDIO}, None, True),
    # a TLS setting left over from subdomains mode must not make plain-http logins loop
    ({"CLEARML_ACCESS_MODE": "ports", "CLEARML_TLS": "self-signed"}, None, False),
], ids=["tunnel", "subdomains-http", "subdomains-tls", "subdomains-external", "lightning-proxy", "ports-leftover"])
def test_cookie_domain_and_secure_follow_how_browsers_reach_it(over, domain, secure):
    cookies = ConfigFactory.parse_string(render_apiserver(make(**over), []))["auth.cookies"]
    assert cookies["domain"] == domain and cookies["secure"] is secure and cookies["httponly"] is True


# --- layers and compose values ---------------------------------------------------------------------


@pytest.mark.parametrize("over, expected", [
    ({}, ["base", "auth"]),
    ({"CLEARML_ACCESS_MODE": "ports"}, ["base", "auth"]),
    ({"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": STUDIO}, ["base", "auth", "web-urls"]),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example"}, ["base", "auth", "nginx"]),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example", "CLEARML_GATEWAY_HTTP_PORT": "80",
      "CLEARML_TLS": "self-signed"}, ["base", "auth", "nginx", "nginx-http"]),
])
def test_layers_per_mode(over, expected):
    assert layers.select(make(CLEARML_SERVICES_AGENT="false", **over), has_users=True) == expected


def test_compose_values_per_mode(tmp_path):
    sub = Settings(values={**defaults(), "CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example",
                           "CLEARML_TLS": "self-signed", "CLEARML_PUBLIC_BIND": "127.0.0.1"},
                   env_file=tmp_path / ".env")
    env = compose.environment(sub)
    assert env["STACK_BIND"] == "127.0.0.1" and env["STACK_PUBLIC_BIND"] == "127.0.0.1"
    assert env["STACK_GATEWAY_TARGET"] == "443" and env["STACK_GATEWAY_PORT"] == "8000"
    lp = compose.environment(Settings(values={**defaults(), "CLEARML_ACCESS_MODE": "lightning-proxy",
                                              "CLEARML_DOMAIN": STUDIO}, env_file=tmp_path / ".env"))
    assert lp["STACK_BIND"] == "0.0.0.0" and lp["STACK_GATEWAY_TARGET"] == "80"
    assert lp["STACK_PUBLIC_API_URL"] == f"https://8008-{STUDIO}"
    assert lp["STACK_PUBLIC_FILES_URL"] == f"https://8081-{STUDIO}"


# --- settings checks --------------------------------------------------------------------------


@pytest.mark.parametrize("over, fragment", [
    ({"CLEARML_ACCESS_MODE": "subdomains"}, "subdomains mode needs a base domain"),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "10.0.0.5"}, "10.0.0.5.nip.io"),
    ({"CLEARML_ACCESS_MODE": "lightning-proxy"}, "needs the Studio host"),
    ({"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": f"8080-{STUDIO}"}, f"CLEARML_DOMAIN={STUDIO}"),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example", "CLEARML_TLS": "provided"},
     "CLEARML_TLS_CERT=''"),
    ({"CLEARML_TLS": "tls1"}, "must be one of off, self-signed, provided, external"),
    ({"CLEARML_PUBLIC_BIND": "localhost"}, "must be an IPv4 address"),
    ({"CLEARML_PUBLIC_BIND": "1.2.3.256"}, "must be an IPv4 address"),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example", "CLEARML_GATEWAY_HTTP_PORT": "80"},
     "only used to redirect to HTTPS"),
    ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example", "CLEARML_TLS": "self-signed",
      "CLEARML_GATEWAY_HTTP_PORT": "8000"}, "same port as CLEARML_GATEWAY_PORT"),
])
def test_access_settings_are_checked_with_a_fix(over, fragment):
    found = S.problems(values(**over))
    assert any(fragment in p for p in found), found
    assert all("fix:" in p for p in found), found


@pytest.mark.parametrize("over", [
    {"CLEARML_ACCESS_MODE": "ports", "CLEARML_DOMAIN": "10.0.0.5"},
    {"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": STUDIO},
    {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "localhost", "CLEARML_TLS": "external"},
    {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example", "CLEARML_TLS": "provided",
     "CLEARML_TLS_CERT": "/etc/ssl/a.pem", "CLEARML_TLS_KEY": "/etc/ssl/a.key", "CLEARML_GATEWAY_PORT": "443",
     "CLEARML_GATEWAY_HTTP_PORT": "80", "CLEARML_PUBLIC_BIND": "10.1.2.3"},
])
def test_good_access_settings_pass(over):
    assert S.problems(values(**over)) == []


# --- defaults `inv install` adds -----------------------------------------------------------------


def test_on_a_studio_subdomains_default_to_the_gateway_port_name_with_external_tls():
    found = access.domain_updates(defaults(), {"CLEARML_ACCESS_MODE": "subdomains"},
                                  {"LIGHTNING_CLOUDSPACE_HOST": STUDIO}, ask=None)
    assert found == {"CLEARML_DOMAIN": f"8000-{STUDIO}", "CLEARML_TLS": "external"}


def test_on_a_studio_the_gateway_keeps_the_port_a_studio_exposes():
    for tls in ("external", "self-signed", "off"):
        assert access.gateway_port_updates(defaults(), {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_TLS": tls},
                                           {"LIGHTNING_CLOUDSPACE_HOST": STUDIO}) == {}


@pytest.mark.parametrize("tls, expected", [
    ("off", {"CLEARML_GATEWAY_PORT": "80"}),
    ("self-signed", {"CLEARML_GATEWAY_PORT": "443", "CLEARML_GATEWAY_HTTP_PORT": "80"}),
    ("provided", {"CLEARML_GATEWAY_PORT": "443", "CLEARML_GATEWAY_HTTP_PORT": "80"}),
    ("external", {}),  # a proxy in front ends TLS: the port only faces it
])
def test_elsewhere_subdomains_default_to_the_schemes_own_port(tls, expected):
    updates = {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": tls}
    found = access.gateway_port_updates(defaults(), updates, {})
    assert found == expected
    paths = {"CLEARML_TLS_CERT": "/etc/ssl/a.pem", "CLEARML_TLS_KEY": "/etc/ssl/a.key"} if tls == "provided" else {}
    merged = {**defaults(), **updates, **found, **paths}
    if tls != "external":
        assert S.problems(merged) == [], "the chosen ports pass the settings check"
        assert public_urls(make(**updates, **found)).web == ("https" if tls != "off" else "http") + \
            "://app.ml.example.com", "URLs carry no port"


def test_elsewhere_the_gateway_ports_follow_a_tls_change_but_not_a_users_choice():
    plain = {**defaults(), "CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example", "CLEARML_GATEWAY_PORT": "80"}
    assert access.gateway_port_updates(plain, {"CLEARML_TLS": "self-signed"}, {}) == {
        "CLEARML_GATEWAY_PORT": "443", "CLEARML_GATEWAY_HTTP_PORT": "80"}
    with_tls = {**plain, "CLEARML_TLS": "self-signed", "CLEARML_GATEWAY_PORT": "443", "CLEARML_GATEWAY_HTTP_PORT": "80"}
    assert access.gateway_port_updates(with_tls, {"CLEARML_TLS": "off"}, {}) == {
        "CLEARML_GATEWAY_PORT": "80", "CLEARML_GATEWAY_HTTP_PORT": ""}
    # a second run with nothing new changes nothing, even on the template's 8000 chosen by hand in this mode
    assert access.gateway_port_updates(plain, {}, {}) == {}
    assert access.gateway_port_updates({**plain, "CLEARML_GATEWAY_PORT": "8000"}, {"CLEARML_DOMAIN": "e.example"},
                                       {}) == {}
    # a port set in the file, the environment or by a flag is kept
    chosen = {**plain, "CLEARML_GATEWAY_PORT": "9000"}
    assert access.gateway_port_updates(chosen, {"CLEARML_TLS": "self-signed"}, {}) == {}
    entering = {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "d.example"}
    assert access.gateway_port_updates(defaults(), entering, {"CLEARML_GATEWAY_PORT": "8000"}) == {}
    assert access.gateway_port_updates(defaults(), {**entering, "CLEARML_GATEWAY_PORT": "8080"}, {}) == {}
    # ... but a redirect port the kit picked goes when TLS leaves the gateway (the settings check refuses it)
    assert access.gateway_port_updates(with_tls, {"CLEARML_TLS": "off", "CLEARML_GATEWAY_PORT": "8088"}, {}) == {
        "CLEARML_GATEWAY_HTTP_PORT": ""}
    assert access.gateway_port_updates({**with_tls, "CLEARML_GATEWAY_HTTP_PORT": "8081"}, {"CLEARML_TLS": "off"},
                                       {}) == {"CLEARML_GATEWAY_PORT": "80"}
    assert access.gateway_port_updates(defaults(), {"CLEARML_ACCESS_MODE": "ports"}, {}) == {}


def test_on_a_studio_lightning_proxy_defaults_to_the_studio_host():
    found = access.domain_updates(defaults(), {"CLEARML_ACCESS_MODE": "lightning-proxy"},
                                  {"LIGHTNING_CLOUDSPACE_HOST": STUDIO}, ask=None)
    assert found == {"CLEARML_DOMAIN": STUDIO}


def test_switching_modes_on_a_studio_replaces_the_other_modes_default_only():
    current = {**defaults(), "CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": STUDIO}
    found = access.domain_updates(current, {"CLEARML_ACCESS_MODE": "subdomains"},
                                  {"LIGHTNING_CLOUDSPACE_HOST": STUDIO}, ask=None)
    assert found["CLEARML_DOMAIN"] == f"8000-{STUDIO}"
    chosen = {**current, "CLEARML_DOMAIN": "ml.example.com"}
    assert access.domain_updates(chosen, {"CLEARML_ACCESS_MODE": "subdomains"},
                                 {"LIGHTNING_CLOUDSPACE_HOST": STUDIO}, ask=None) == {}


def test_a_chosen_tls_or_domain_is_kept():
    found = access.domain_updates(defaults(), {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_TLS": "self-signed"},
                                  {"LIGHTNING_CLOUDSPACE_HOST": STUDIO}, ask=None)
    assert found == {"CLEARML_DOMAIN": f"8000-{STUDIO}"}
    assert access.domain_updates(defaults(), {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "x.example"},
                                 {"LIGHTNING_CLOUDSPACE_HOST": STUDIO}, ask=None) == {}


def test_elsewhere_the_domain_is_asked_or_left_to_the_settings_check():
    asked = []
    found = access.domain_updates(defaults(), {"CLEARML_ACCESS_MODE": "subdomains"}, {},
                                  ask=lambda prompt: asked.append(prompt) or "  ml.example.com ")
    assert found == {"CLEARML_DOMAIN": "ml.example.com"} and "app./api./files." in asked[0]
    assert access.domain_updates(defaults(), {"CLEARML_ACCESS_MODE": "subdomains"}, {}, ask=None) == {}
    assert access.domain_updates(defaults(), {}, {}, ask=lambda p: "unused") == {}  # tunnel mode needs none


# --- what `inv up` says ------------------------------------------------------------------------------


def test_ports_mode_always_warns_and_names_the_address():
    (message, fix), = access.access_warnings(make(CLEARML_ACCESS_MODE="ports"))
    assert "ALL interfaces" in message and fix
    (message, _), = access.access_warnings(make(CLEARML_ACCESS_MODE="ports", CLEARML_PUBLIC_BIND="10.1.2.3"))
    assert "10.1.2.3" in message


def test_plain_http_gateway_on_all_interfaces_warns_but_not_behind_a_tls_proxy():
    plain = make(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="d.example")
    assert "unencrypted" in access.access_warnings(plain)[0][0]
    assert access.access_warnings(make(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="d.example",
                                       CLEARML_TLS="external")) == []
    assert access.access_warnings(make()) == []


MODE_CASES = {
    "tunnel": {},
    "ports": {"CLEARML_ACCESS_MODE": "ports", "CLEARML_DOMAIN": "ml.example.com"},
    "lightning-proxy": {"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": STUDIO},
    "subdomains-http": {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com"},
    "subdomains-self-signed": {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com",
                               "CLEARML_TLS": "self-signed", "CLEARML_GATEWAY_PORT": "443",
                               "CLEARML_GATEWAY_HTTP_PORT": "80"},
    "subdomains-lightning": {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": f"8000-{STUDIO}",
                             "CLEARML_TLS": "external"},
}
ACCESS_KEYS = ("STACK_BIND", "STACK_PUBLIC_BIND", "STACK_WEB_PORT", "STACK_API_PORT", "STACK_FILES_PORT",
               "STACK_GATEWAY_PORT", "STACK_GATEWAY_TARGET", "STACK_GATEWAY_HTTP_PORT", "STACK_FILES_URL",
               "STACK_PUBLIC_API_URL", "STACK_PUBLIC_FILES_URL")


@pytest.mark.parametrize("case", MODE_CASES)
def test_mode_snapshot(case, tmp_path):
    from tests.snapshots import assert_snapshot

    s = Settings(values={**defaults(), "CLEARML_ES_HEAP": "1g", **MODE_CASES[case]},
                 env_file=Path("/srv/clearml/.env"))  # a fixed path: the next steps name the CA file
    env = compose.environment(s)
    urls = public_urls(s, hostname="this-host")
    cookies = ConfigFactory.parse_string(render_apiserver(s, []))["auth.cookies"]
    lines = [f"mode: {s.mode}", f"layers (with users): {' '.join(layers.select(s, has_users=True))}",
             f"web: {urls.web}", f"api: {urls.api}", f"files: {urls.files}",
             f"cookie domain: {cookies['domain']}", f"cookie secure: {cookies['secure']}",
             *(f"{k}={env[k]}" for k in ACCESS_KEYS),
             *(f"warning: {m}" for m, _ in access.access_warnings(s)),
             *(f"next: {step}" for step in access.access_next_steps(s))]
    assert_snapshot(f"mode-{case}.txt", "\n".join(lines) + "\n")
