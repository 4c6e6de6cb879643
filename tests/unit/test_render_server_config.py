"""Rendering of the server's config files: snapshots, quoting, and what each mode changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyhocon import ConfigFactory

from clearml_stack.render.server_config import render_all
from clearml_stack.render.template import fill
from clearml_stack.settings import SECRET_KEYS, Settings, defaults
from clearml_stack.users import User
from tests.snapshots import assert_snapshot

FIXED_SECRETS = {key: f"{key.replace('_', '')[:20]}Fixed0123456789abcdefghijklmnop" for key in SECRET_KEYS}
USERS = [User("alice", "Alice Liddell", "JDJiJDEyJGZha2VoYXNo"), User("bob", 'Bob "the builder" $HOME #1', "JDJiJDEyJGFub3RoZXI=")]


def make(**over: str) -> Settings:
    return Settings(values={**defaults(), **FIXED_SECRETS, **over}, env_file=Path("/tmp/x/.env"))


@pytest.mark.parametrize("users", [[], USERS], ids=["no-users", "two-users"])
def test_snapshots_tunnel_mode(users):
    for name, text in render_all(make(), users).items():
        assert_snapshot(f"tunnel-{len(users)}users-{name}", text)


def test_snapshot_subdomains_with_tls():
    files = render_all(make(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com",
                            CLEARML_TLS="self-signed"), USERS)
    assert_snapshot("subdomains-tls-apiserver.conf", files["apiserver.conf"])


def test_rendered_files_parse_and_carry_the_values():
    files = render_all(make(CLEARML_WATCHDOG_THRESHOLD_SEC="3600"), USERS)
    api = ConfigFactory.parse_string(files["apiserver.conf"])
    assert api["auth.fixed_users.enabled"] is True and api["auth.fixed_users.pass_hashed"] is True
    assert [u["username"] for u in api["auth.fixed_users.users"]] == ["alice", "bob"]
    assert api["auth.fixed_users.users"][1]["name"] == 'Bob "the builder" $HOME #1'
    assert api["auth.cookies.domain"] is None
    secure = ConfigFactory.parse_string(files["secure.conf"])
    assert secure["auth.token_secret"] == FIXED_SECRETS["CLEARML_AUTH_TOKEN_SECRET"]
    assert secure["credentials.fileserver.user_key"] == FIXED_SECRETS["CLEARML_FILESERVER_KEY"]
    assert secure["credentials.services_agent.user_secret"] == FIXED_SECRETS["CLEARML_AGENT_SECRET_KEY"]
    assert secure["credentials.webserver.revoke_in_fixed_mode"] is True
    services = ConfigFactory.parse_string(files["services.conf"])
    assert services["tasks.non_responsive_tasks_watchdog.threshold_sec"] == 3600


def test_no_users_means_fixed_users_off():
    api = ConfigFactory.parse_string(render_all(make(), [])["apiserver.conf"])
    assert api["auth.fixed_users.enabled"] is False and api["auth.fixed_users.users"] == []


def test_subdomains_mode_shares_the_cookie_across_hosts():
    api = ConfigFactory.parse_string(render_all(make(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="a.b.c"), [])["apiserver.conf"])
    assert api["auth.cookies.domain"] == ".a.b.c" and api["auth.cookies.secure"] is False


def test_template_refuses_missing_and_unused_values():
    with pytest.raises(KeyError):
        fill("{{ a }} {{ b }}", {"a": "1"})
    with pytest.raises(KeyError):
        fill("{{ a }}", {"a": "1", "c": "2"})
    assert fill("x{{ a }}y", {"a": "1"}) == "x1y"
