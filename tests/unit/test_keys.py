"""`inv keys` logic: the credential inventory, rotation plans and the restart order (pure)."""

from __future__ import annotations

import pytest
from pyhocon import ConfigFactory

from clearml_stack import keys
from clearml_stack.errors import StackError
from clearml_stack.install import install
from clearml_stack.public_defaults import KNOWN_BAD_VALUES
from clearml_stack.render.server_config import render_secure
from clearml_stack.settings import SECRET_KEYS, load, problems


@pytest.fixture
def installed(tmp_path):
    environ = {"CLEARML_ENV_FILE": str(tmp_path / ".env")}
    install({}, environ)
    return load(environ)


def test_every_generated_secret_is_in_the_inventory_once():
    listed = [k for c in keys.CREDENTIALS for k in c.settings]
    assert sorted(listed) == sorted(SECRET_KEYS)
    assert len(set(listed)) == len(listed)


def test_inventory_paths_are_where_the_rendered_config_puts_each_value(installed):
    tree = ConfigFactory.parse_string(render_secure(installed))
    for key, path in keys.PATH_OF_SETTING.items():
        assert path.startswith("secure.")
        assert tree.get(path[len("secure."):]) == installed.secret(key), key


def test_rotation_groups():
    system = keys.keys_to_rotate()
    both = keys.keys_to_rotate(agent=True)
    assert "CLEARML_AUTH_TOKEN_SECRET" in system and "CLEARML_SESSION_SECRET" in system
    assert "CLEARML_APISERVER_KEY" in system and "CLEARML_FILESERVER_SECRET" in system
    assert "CLEARML_AGENT_ACCESS_KEY" not in system and "CLEARML_AGENT_SECRET_KEY" not in system
    assert set(both) == set(SECRET_KEYS)
    assert keys.keys_to_rotate(agent=True, system=False) == ("CLEARML_AGENT_ACCESS_KEY", "CLEARML_AGENT_SECRET_KEY")


def test_plan_gives_new_valid_values(installed):
    new = keys.plan_rotation(installed, keys.keys_to_rotate(agent=True))
    assert set(new) == set(SECRET_KEYS)
    for key, value in new.items():
        assert value != installed.secret(key)
        assert value not in KNOWN_BAD_VALUES
    assert problems({**installed.values, **new}) == []


def test_plan_refuses_keys_set_in_the_environment(tmp_path):
    environ = {"CLEARML_ENV_FILE": str(tmp_path / ".env")}
    install({}, environ)
    env = {**environ, "CLEARML_APISERVER_KEY": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"}
    settings = load(env)
    with pytest.raises(StackError) as info:
        keys.plan_rotation(settings, keys.keys_to_rotate())
    assert "CLEARML_APISERVER_KEY" in info.value.message and "unset" in info.value.fix
    # the agent pair alone is not affected by that variable
    assert set(keys.plan_rotation(settings, keys.keys_to_rotate(agent=True, system=False))) == {
        "CLEARML_AGENT_ACCESS_KEY", "CLEARML_AGENT_SECRET_KEY"}


def test_rows_mask_values_unless_asked(installed):
    masked = keys.rows(installed)
    text = repr(masked)
    assert all(installed.secret(k) not in text for k in SECRET_KEYS)
    assert {r[0] for r in masked} == set(SECRET_KEYS)
    assert all(r[2] == ".env" for r in masked)
    shown = keys.rows(installed, show=True)
    assert {r[0]: r[4] for r in shown} == {k: installed.secret(k) for k in SECRET_KEYS}
    assert {r[0]: r[3] for r in shown}["CLEARML_AGENT_ACCESS_KEY"] == "inv keys --rotate --agent"


def test_restart_order_stops_consumers_first_flushes_the_token_cache_then_starts_in_dependency_order():
    running = {"apiserver", "fileserver", "webserver", "async_delete", "mongo", "redis", "elasticsearch",
               "agent-services"}
    steps = keys.restart_steps(running, 120)
    assert steps[0] == ("stop", "webserver", "async_delete", "apiserver", "fileserver")
    assert steps[1] == ("exec", "-T", "redis", "redis-cli", "-n", "8", "FLUSHDB")
    assert steps[2] == ("up", "-d", "--remove-orphans", "--wait", "--wait-timeout", "120")
    assert len(steps) == 3


def test_restart_steps_only_touch_what_runs():
    steps = keys.restart_steps({"apiserver", "fileserver"}, 60)
    assert steps[0] == ("stop", "apiserver", "fileserver")
    assert all(s[0] != "exec" for s in steps)
    assert steps[-1][0] == "up"
