"""The cloudflared configuration `inv tunnel.cloudflare` writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clearml_stack.errors import StackError
from clearml_stack.render.cloudflared import plan
from clearml_stack.settings import Settings, defaults
from tests.snapshots import assert_snapshot


def make(**over: str) -> Settings:
    base = {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "example.com", "CLEARML_TLS": "external",
            "CLEARML_PUBLIC_BIND": "127.0.0.1"}
    return Settings(values={**defaults(), **base, **over}, env_file=Path("/tmp/x/.env"))


def test_three_one_level_names_to_the_gateway_then_a_catch_all():
    result = plan(make(), "clearml", "/root/.cloudflared/abc.json", "/srv/cf.yml")
    assert_snapshot("cloudflared-example.com.yml", result.text)
    doc = yaml.safe_load(result.text)
    assert doc["tunnel"] == "clearml" and doc["credentials-file"] == "/root/.cloudflared/abc.json"
    assert doc["ingress"] == [
        {"hostname": "app.example.com", "service": "http://127.0.0.1:8000",
         "originRequest": {"httpHostHeader": "app.example.com"}},
        {"hostname": "api.example.com", "service": "http://127.0.0.1:8000",
         "originRequest": {"httpHostHeader": "api.example.com"}},
        {"hostname": "files.example.com", "service": "http://127.0.0.1:8000",
         "originRequest": {"httpHostHeader": "files.example.com"}},
        {"service": "http_status:404"},
    ]
    assert result.warnings == ()
    assert result.commands[-1] == "cloudflared tunnel --config /srv/cf.yml run clearml"
    assert [c for c in result.commands if "route dns" in c] == [
        f"cloudflared tunnel route dns clearml {n}.example.com" for n in ("app", "api", "files")]


def test_without_credentials_file_cloudflared_finds_its_own():
    assert "credentials-file" not in yaml.safe_load(plan(make(), "clearml", "", "c.yml").text)


def test_a_deeper_domain_and_a_gateway_on_all_interfaces_are_warned_about():
    result = plan(make(CLEARML_DOMAIN="ml.example.com", CLEARML_PUBLIC_BIND="0.0.0.0"), "t", "", "c.yml")
    assert any("only one level below the zone" in w for w in result.warnings)
    assert any("bypasses Cloudflare" in w for w in result.warnings)


@pytest.mark.parametrize("over, fragment", [
    ({"CLEARML_ACCESS_MODE": "tunnel"}, "fronts the subdomain gateway"),
    ({"CLEARML_TLS": "self-signed"}, "Cloudflare ends TLS"),
    ({"CLEARML_TLS": "off"}, "Cloudflare ends TLS"),
    ({"CLEARML_DOMAIN": "8000-01abc.cloudspaces.litng.ai"}, "Lightning Studio name"),
])
def test_settings_that_cannot_work_behind_cloudflare_are_refused_with_the_fix(over, fragment):
    with pytest.raises(StackError) as info:
        plan(make(**over), "clearml", "", "c.yml")
    assert fragment in info.value.message and info.value.fix


@pytest.mark.parametrize("name", ["a b", "x;y", "", "-x", "a" * 70])
def test_bad_tunnel_names_are_refused(name):
    with pytest.raises(StackError, match="--tunnel"):
        plan(make(), name, "", "c.yml")
