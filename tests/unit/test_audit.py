"""The security audit's judgement (pure): readings built by hand, one finding at a time."""

from __future__ import annotations

import copy

import pytest

from clearml_stack import audit
from clearml_stack.checks import worst
from clearml_stack.install import install
from clearml_stack.render.server_config import render_all
from clearml_stack.settings import load
from clearml_stack.users import add_user, load_users

DEFAULT_TOKEN_SECRET = "Rq8FW84sSqVgq7WvBB_4EzNl9y8z8IGiDXX3C345_a5AZfcwZcwCIA"
DEFAULT_APISERVER_KEY = "62T8CP7HGBC6647XF9314C2VY67RJO"


@pytest.fixture
def settings(tmp_path):
    environ = {"CLEARML_ENV_FILE": str(tmp_path / ".env")}
    install({}, environ)
    s = load(environ)
    add_user(s, "alice", "Alice", "pw one", rounds=4)
    return s


def merged_for(settings, auth=True) -> dict:
    """What `compose config --format json` gives for the kit's layers, reduced to what the audit reads."""
    mount = {"type": "bind", "source": str(settings.config_dir), "target": audit.CONFIG_MOUNT}
    api_env = {"CLEARML__secure__credentials__services_agent__user_key": settings.secret("CLEARML_AGENT_ACCESS_KEY")}
    fs_env = {}
    if auth:
        api_env |= {"CLEARML__apiserver__auth__fixed_users__enabled": "true",
                    "CLEARML__apiserver__auth__fixed_users__pass_hashed": "true",
                    "CLEARML__services__auth__fixed_users__guest__enabled": "false"}
        fs_env |= {"CLEARML__fileserver__auth__enabled": "true"}
    return {"services": {
        "apiserver": {"environment": api_env, "volumes": [mount],
                      "ports": [{"host_ip": "127.0.0.1", "published": "8008", "target": 8008}]},
        "fileserver": {"environment": fs_env, "volumes": [mount]},
        "webserver": {"ports": [{"host_ip": "127.0.0.1", "published": "8080", "target": 80}]},
        "mongo": {}, "elasticsearch": {}, "redis": {},
    }}


def readings(settings, merged=None, **changes) -> audit.Readings:
    files = {p.name: p.read_text() for p in settings.config_dir.glob("*.conf")}
    r = audit.Readings(
        env_file=settings.env_file, env_file_exists=True, settings_values=dict(settings.values),
        overridden=settings.overridden, mode=settings.mode, config_dir=settings.config_dir,
        users_file=settings.users_file, users_count=len(load_users(settings.users_file)),
        file_modes={"settings file": (settings.env_file, 0o600), "users file": (settings.users_file, 0o600),
                    "rendered secure.conf": (settings.config_dir / "secure.conf", 0o600)},
        config_files=files, expected_config=render_all(settings, load_users(settings.users_file)),
        merged=merged if merged is not None else merged_for(settings), live=[],
    )
    for k, v in changes.items():
        setattr(r, k, v)
    return r


def failures(found) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in found if c.status == "fail"]


def test_a_fresh_install_with_a_user_passes(settings):
    found = audit.evaluate(readings(settings))
    assert failures(found) == []
    assert worst(found) == "ok"
    assert all(c.status == "ok" for c in found), [c for c in found if c.status != "ok"]


def test_default_token_secret_in_the_rendered_file_fails_naming_key_and_file(settings):
    r = readings(settings)
    secure = r.config_files["secure.conf"]
    r.config_files["secure.conf"] = secure.replace(settings.secret("CLEARML_AUTH_TOKEN_SECRET"), DEFAULT_TOKEN_SECRET)
    found = failures(audit.evaluate(r))
    assert any("secure.auth.token_secret is a public default" in f and "secure.conf" in f for f in found), found


def test_a_missing_key_leaves_the_public_default_in_effect(settings):
    r = readings(settings)
    r.config_files["secure.conf"] = "\n".join(line for line in r.config_files["secure.conf"].splitlines()
                                              if "token_secret" not in line)
    found = failures(audit.evaluate(r))
    assert any("apiserver: secure.auth.token_secret is not set" in f for f in found), found


@pytest.mark.parametrize("prefix", ["CLEARML__", "TRAINS__"])
def test_a_public_default_in_service_environment_fails(settings, prefix):
    merged = merged_for(settings)
    merged["services"]["apiserver"]["environment"][f"{prefix}secure__auth__token_secret"] = DEFAULT_TOKEN_SECRET
    found = failures(audit.evaluate(readings(settings, merged)))
    assert any(f"service apiserver: environment variable {prefix}secure__auth__token_secret is a public default" in f
               for f in found), found


def test_an_env_override_with_an_empty_value_counts_as_unset(settings):
    merged = merged_for(settings)
    merged["services"]["fileserver"]["environment"]["CLEARML__secure__credentials__fileserver__user_secret"] = '""'
    found = failures(audit.evaluate(readings(settings, merged)))
    assert any("fileserver: secure.credentials.fileserver.user_secret is not set" in f for f in found), found
    assert any("different fileserver system credentials" in f for f in found), found


def test_a_public_default_in_the_settings_fails_with_the_rotation_fix(settings):
    values = dict(settings.values, CLEARML_APISERVER_KEY=DEFAULT_APISERVER_KEY)
    found = audit.evaluate(readings(settings, settings_values=values))
    hit = [c for c in found if c.status == "fail" and "CLEARML_APISERVER_KEY" in c.detail]
    assert hit and "inv keys --rotate" in hit[0].fix and "--agent" not in hit[0].fix


def test_an_extra_conf_file_with_a_public_default_fails(settings):
    r = readings(settings)
    r.config_files["secure/auth.conf"] = f'token_secret: "{DEFAULT_TOKEN_SECRET}"\n'
    found = audit.evaluate(r)
    fails = [c for c in found if c.status == "fail"]
    assert any("secure/auth.conf: secure.auth.token_secret" in c.detail for c in fails)
    # and the server would use it: the effective value is the public one (found by the value scan)
    assert any("remove that value" in c.fix for c in fails)


def test_the_documentation_example_hash_is_refused(settings):
    r = readings(settings)
    stored = load_users(settings.users_file)[0].password_hash
    example = "JDJiJDEyJDk3OHBFcHFlNEsxTkFoZDlPcGZsbC5sU1pmM3huZ1RpeHc0ay5WUjlzTzN5WE1WRXJrUmhp"
    r.config_files["apiserver.conf"] = r.config_files["apiserver.conf"].replace(stored, example)
    fails = [c for c in audit.evaluate(r) if c.status == "fail"]
    assert any("apiserver.auth.fixed_users.users.0.password" in c.detail and "users.passwd" in c.fix for c in fails)


def test_unparsable_config_fails(settings):
    r = readings(settings)
    r.config_files["apiserver.conf"] = "auth { fixed_users { enabled: true "
    assert any("cannot be parsed" in f for f in failures(audit.evaluate(r)))


@pytest.mark.parametrize("mode, bad", [(0o600, False), (0o400, False), (0o644, True), (0o640, True), (0o604, True),
                                       (0o620, True)])
def test_file_modes(settings, mode, bad):
    r = readings(settings)
    r.file_modes["settings file"] = (settings.env_file, mode)
    found = [f for f in failures(audit.evaluate(r)) if f.startswith("settings file mode")]
    assert bool(found) == bad
    if bad:
        assert str(settings.env_file) in found[0] and f"{mode:04o}" in found[0]


@pytest.mark.parametrize("port, bad", [
    ({"host_ip": "0.0.0.0", "published": "27017", "target": 27017}, True),
    ({"published": "27017", "target": 27017}, True),
    ({"host_ip": "::", "published": "27017", "target": 27017}, True),
    ({"host_ip": "192.168.1.10", "published": "27017", "target": 27017}, True),
    ({"host_ip": "127.0.0.1", "published": "27017", "target": 27017}, False),
    ({"host_ip": "127.0.0.2", "published": "27017", "target": 27017}, False),
    ({"host_ip": "::1", "published": "27017", "target": 27017}, False),
    ("0.0.0.0:27017:27017", True),
    ("27017:27017", True),
    ("127.0.0.1:27017:27017", False),
])
def test_store_ports(settings, port, bad):
    merged = merged_for(settings)
    merged["services"]["mongo"]["ports"] = [port]
    found = [f for f in failures(audit.evaluate(readings(settings, merged))) if f.startswith("mongo exposure")]
    assert bool(found) == bad, found


def test_store_on_the_host_network_fails(settings):
    merged = merged_for(settings)
    merged["services"]["redis"]["network_mode"] = "host"
    assert any(f.startswith("redis exposure") for f in failures(audit.evaluate(readings(settings, merged))))


def test_live_store_ports_beyond_loopback_fail(settings):
    live = [{"Service": "elasticsearch", "Publishers": [{"URL": "0.0.0.0", "PublishedPort": 9200, "TargetPort": 9200}]},
            {"Service": "redis", "Publishers": [{"URL": "127.0.0.1", "PublishedPort": 6379, "TargetPort": 6379}]},
            {"Service": "apiserver", "Publishers": [{"URL": "0.0.0.0", "PublishedPort": 8008, "TargetPort": 8008}]}]
    found = failures(audit.evaluate(readings(settings, live=live)))
    assert [f.split(":")[0] for f in found] == ["elasticsearch exposure"]


def test_no_users_means_open_login(settings):
    found = failures(audit.evaluate(readings(settings, users_count=0)))
    assert any(f.startswith("login: no web login user") for f in found)


@pytest.mark.parametrize("service, var, value, expect", [
    ("apiserver", "CLEARML__apiserver__auth__fixed_users__enabled", "false", "fixed-user login is not enabled"),
    ("apiserver", "CLEARML__apiserver__auth__fixed_users__pass_hashed", "false", "pass_hashed is off"),
    ("apiserver", "CLEARML__services__auth__fixed_users__guest__enabled", "true", "guest login is enabled"),
    ("fileserver", "CLEARML__fileserver__auth__enabled", "false", "without a token"),
])
def test_open_login_settings_fail(settings, service, var, value, expect):
    merged = merged_for(settings)
    merged["services"][service]["environment"][var] = value
    assert any(expect in f for f in failures(audit.evaluate(readings(settings, merged))))


def test_without_the_auth_layer_the_rendered_config_still_closes_login(settings):
    # apiserver.conf alone enables fixed users with hashes; the auth layer only repeats it
    found = audit.evaluate(readings(settings, merged_for(settings, auth=False)))
    assert failures(found) == []


def test_servers_must_mount_the_rendered_config(settings):
    merged = copy.deepcopy(merged_for(settings))
    merged["services"]["fileserver"]["volumes"] = []
    assert any("fileserver does not mount" in f for f in failures(audit.evaluate(readings(settings, merged))))


def test_stale_config_is_a_warning(settings):
    r = readings(settings)
    r.config_files["services.conf"] = r.config_files["services.conf"] + "\n# edited\n"
    found = audit.evaluate(r)
    assert [c.status for c in found if c.name == "config current"] == ["warn"]


def test_without_compose_the_audit_warns_and_still_judges_files(settings):
    r = readings(settings, merged=None)
    r.merged, r.merged_error = None, "compose not found"
    r.file_modes["settings file"] = (settings.env_file, 0o644)
    found = audit.evaluate(r)
    assert any(c.name == "compose config" and c.status == "warn" for c in found)
    assert any(c.name == "settings file mode" and c.status == "fail" for c in found)


def test_missing_settings_file_fails(settings, tmp_path):
    r = readings(settings, env_file_exists=False, env_file=tmp_path / "nowhere" / ".env")
    assert any("no settings file" in f for f in failures(audit.evaluate(r)))


def test_fix_modes_changes_only_what_failed(settings):
    settings.env_file.chmod(0o644)
    r = readings(settings, file_modes={"settings file": (settings.env_file, 0o644),
                                       "users file": (settings.users_file, 0o600)})
    changed = audit.fix_modes(audit.evaluate(r), r)
    assert changed == [settings.env_file]
    assert settings.env_file.stat().st_mode & 0o777 == 0o600


def test_agents_must_use_the_services_agent_pair(settings):
    merged = merged_for(settings)
    merged["services"]["agent-services"] = {"environment": {
        "CLEARML_API_ACCESS_KEY": settings.secret("CLEARML_AGENT_ACCESS_KEY"),
        "CLEARML_API_SECRET_KEY": settings.secret("CLEARML_AGENT_SECRET_KEY")}}
    found = audit.evaluate(readings(settings, merged))
    assert not [c for c in found if c.name == "agent credentials"]
    merged["services"]["agent-services"]["environment"]["CLEARML_API_SECRET_KEY"] = "someOtherSecret123"
    found = audit.evaluate(readings(settings, merged))
    assert [c.status for c in found if c.name == "agent credentials"] == ["warn"]
