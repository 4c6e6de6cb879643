"""Settings: every bad value names its key, value and fix; precedence env > .env > default; nothing written."""

from __future__ import annotations

import pytest

from clearml_stack import settings as S
from clearml_stack.errors import StackError
from tests.kit import clean_environ


def values(**over: str) -> dict[str, str]:
    return {**S.defaults(), **over}


def test_defaults_are_valid():
    assert S.problems(values()) == []


@pytest.mark.parametrize(
    "key,bad",
    [
        ("CLEARML_ACCESS_MODE", "tunel"),
        ("CLEARML_WEB_PORT", "80a"),
        ("CLEARML_API_PORT", "70000"),
        ("CLEARML_FILES_PORT", "0"),
        ("COMPOSE_PROJECT_NAME", "My Project"),
        ("CLEARML_SERVER_VERSION", "two"),
        ("CLEARML_SERVER_VERSION", "9.9.9"),
        ("CLEARML_SERVER_IMAGE", "clearml/server:latest"),
        ("MONGO_IMAGE", "mongo 7"),
        ("IMAGE_REGISTRY", "registry.local:5000"),
        ("CLEARML_DOMAIN", "my domain.com"),
        ("CLEARML_DOMAIN", "ex{ample}.com"),
        ("CLEARML_DOMAIN", "a.com;evil"),
        ("CLEARML_DOMAIN", "https://a.com"),
        ("CLEARML_DOMAIN", "a.com/path"),
        ("CLEARML_ES_HEAP", "2 GB"),
        ("CLEARML_EXPOSE_STORES", "yes"),
        ("CLEARML_WAIT_TIMEOUT", "-5"),
        ("CLEARML_HEALTHCHECK_INTERVAL", "fast"),
        ("CLEARML_SERVICES_AGENT", "maybe"),
        ("CLEARML_AUTH_TOKEN_SECRET", "short1"),
        ("CLEARML_AUTH_TOKEN_SECRET", "x" * 40 + "$"),
        ("CLEARML_APISERVER_KEY", "1" * 30),
    ],
)
def test_each_bad_value_names_key_value_and_fix(key, bad):
    found = S.problems(values(**{key: bad}))
    assert len(found) == 1, found
    assert found[0].startswith(f"{key}="), found
    assert "fix:" in found[0]
    if not (S.BY_KEY[key].secret or S.BY_KEY[key].sensitive):
        assert repr(bad) in found[0]
    else:
        assert bad not in found[0], "a secret value must never be echoed"


def test_subdomains_mode_needs_a_domain():
    found = S.problems(values(CLEARML_ACCESS_MODE="subdomains"))
    assert any(p.startswith("CLEARML_DOMAIN=") and "inv install --domain" in p for p in found)
    assert S.problems(values(CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com")) == []


def test_two_services_on_one_port_are_refused():
    found = S.problems(values(CLEARML_API_PORT="8080"))
    assert any("CLEARML_API_PORT" in p and "CLEARML_WEB_PORT" in p for p in found)


def test_environment_wins_over_env_file_which_wins_over_default(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("CLEARML_WEB_PORT=9000\nCLEARML_API_PORT=9001\n")
    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(env_file), "CLEARML_WEB_PORT": "9100"}
    loaded = S.load(environ)
    assert loaded.port("web") == 9100  # environment
    assert loaded.port("api") == 9001  # .env
    assert loaded.port("files") == 8081  # default
    assert "CLEARML_WEB_PORT" in loaded.overridden


def test_data_dir_from_environment_and_relative_to_settings_file(tmp_path):
    env_file = tmp_path / "deploy" / ".env"
    env_file.parent.mkdir()
    env_file.write_text("CLEARML_DATA_DIR=./store\n")
    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(env_file)}
    assert S.load(environ).data_dir == env_file.parent / "store"
    assert S.load({**environ, "CLEARML_DATA_DIR": "/srv/clearml"}).data_dir.as_posix() == "/srv/clearml"


def test_dollar_in_a_value_is_data_not_a_variable(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("CLEARML_DATA_DIR='/srv/$HOME/x'\n")
    loaded = S.load({**clean_environ(), "CLEARML_ENV_FILE": str(env_file)})
    assert loaded.values["CLEARML_DATA_DIR"] == "/srv/$HOME/x"


def test_invalid_settings_raise_one_error_listing_all_and_write_nothing(tmp_path):
    env_file = tmp_path / ".env"
    text = "CLEARML_WEB_PORT=abc\nCLEARML_ACCESS_MODE=nope\n"
    env_file.write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StackError) as err:
        S.load({**clean_environ(), "CLEARML_ENV_FILE": str(env_file)})
    assert "CLEARML_WEB_PORT='abc'" in err.value.message and "CLEARML_ACCESS_MODE='nope'" in err.value.message
    assert str(env_file) in err.value.fix
    assert env_file.read_text() == text and sorted(p.name for p in tmp_path.iterdir()) == before


def test_malformed_env_line_is_named(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("CLEARML_WEB_PORT=8080\nthis is not a setting\n")
    with pytest.raises(StackError) as err:
        S.load({**clean_environ(), "CLEARML_ENV_FILE": str(env_file)})
    assert "line 2" in err.value.message and "this is not a setting" in err.value.message


@pytest.mark.parametrize(
    "given,expected",
    [
        ("", "clearml/server:2.3.0"),
        ("mirror.local/clearml/server", "mirror.local/clearml/server:2.3.0"),
        ("mirror.local:5000/clearml/server:2.3.0-custom", "mirror.local:5000/clearml/server:2.3.0-custom"),
        ("clearml/server@sha256:" + "a" * 64, "clearml/server@sha256:" + "a" * 64),
    ],
)
def test_image_resolution(tmp_path, given, expected):
    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(tmp_path / ".env"), "CLEARML_SERVER_IMAGE": given}
    assert S.load(environ).image("server") == expected


def test_registry_prefix_applies_to_every_image(tmp_path):
    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(tmp_path / ".env"), "IMAGE_REGISTRY": "reg.local:5000/"}
    loaded = S.load(environ)
    assert loaded.image("mongo") == "reg.local:5000/mongo:7.0.22"
    assert loaded.image("elastic") == "reg.local:5000/elasticsearch:8.17.0"
    assert loaded.image("redis") == "reg.local:5000/redis:7.4.1"
    assert loaded.image("server") == "reg.local:5000/clearml/server:2.3.0"
    assert loaded.image("nginx") == "reg.local:5000/nginx:1.28.0"
    assert loaded.image("agent-base") == "reg.local:5000/python:3.11.13-slim-bookworm"
    assert loaded.image("agent-docker") == "reg.local:5000/python:3.11.13-bookworm"
    # what compose and the agent image build actually receive
    from clearml_stack import agents, compose

    env = compose.environment(loaded)
    images = {k: v for k, v in env.items() if k.endswith("_IMAGE") and k != "STACK_AGENT_IMAGE"}
    assert images == {
        "STACK_SERVER_IMAGE": "reg.local:5000/clearml/server:2.3.0",
        "STACK_MONGO_IMAGE": "reg.local:5000/mongo:7.0.22",
        "STACK_ELASTIC_IMAGE": "reg.local:5000/elasticsearch:8.17.0",
        "STACK_REDIS_IMAGE": "reg.local:5000/redis:7.4.1",
        "STACK_NGINX_IMAGE": "reg.local:5000/nginx:1.28.0",
        "STACK_AGENT_BASE_IMAGE": "reg.local:5000/python:3.11.13-slim-bookworm",
    }
    assert env["STACK_AGENT_DEFAULT_DOCKER"] == "reg.local:5000/python:3.11.13-bookworm"
    assert agents.build_args(loaded)["BASE_IMAGE"] == "reg.local:5000/python:3.11.13-slim-bookworm"
    # the bundle for other machines builds on the same mirror
    from clearml_stack import bundle

    files = {f.path: f for f in bundle.render(loaded, 1, [], None)}
    assert 'BASE_IMAGE: "reg.local:5000/python:3.11.13-slim-bookworm"' in files["docker-compose.yml"].data.decode()
    # the agent image itself is built here, never pulled: no prefix
    assert env["STACK_AGENT_IMAGE"].startswith(agents.IMAGE_REPO + ":")


def test_agent_images_follow_the_image_rules(tmp_path):
    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(tmp_path / ".env")}
    given = {"CLEARML_AGENT_BASE_IMAGE": "mirror.local/python", "CLEARML_AGENT_DEFAULT_DOCKER": "nvidia/cuda:12.4.1"}
    loaded = S.load({**environ, **given})
    assert loaded.image("agent-base") == "mirror.local/python:3.11.13-slim-bookworm"  # no tag: the default's
    assert loaded.image("agent-docker") == "nvidia/cuda:12.4.1"
    empty = S.load({**environ, "CLEARML_AGENT_BASE_IMAGE": "", "CLEARML_AGENT_DEFAULT_DOCKER": ""})
    assert (empty.image("agent-base"), empty.image("agent-docker")) == (
        "python:3.11.13-slim-bookworm", "python:3.11.13-bookworm")


@pytest.mark.parametrize("gib,heap", [(2, "512m"), (8, "2g"), (16, "4g"), (64, "4g"), (4, "1g")])
def test_auto_es_heap(gib, heap):
    assert S.auto_es_heap(gib * 2**30) == heap


def test_bind_address_follows_mode(tmp_path):
    base = {**clean_environ(), "CLEARML_ENV_FILE": str(tmp_path / ".env")}
    assert S.load(base).bind_address == "127.0.0.1"
    assert S.load({**base, "CLEARML_ACCESS_MODE": "ports"}).bind_address == "0.0.0.0"


def test_require_installed_names_missing_secrets(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("CLEARML_WEB_PORT=8080\n")
    loaded = S.load({**clean_environ(), "CLEARML_ENV_FILE": str(env_file)})
    with pytest.raises(StackError) as err:
        loaded.require_installed()
    assert "CLEARML_AUTH_TOKEN_SECRET" in err.value.message and "inv install" in err.value.fix


def test_template_documents_every_setting_with_its_default():
    from clearml_stack.envfile import parse_env

    text = (S.KIT_ROOT / ".env.template").read_text()
    parsed = parse_env(text)
    assert set(parsed) == set(S.BY_KEY), set(parsed) ^ set(S.BY_KEY)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        key = line.split("=", 1)[0]
        if key in S.BY_KEY:
            assert parsed[key] == S.BY_KEY[key].default, key
            assert lines[i - 1].startswith("# "), f"{key} needs a one-line comment above it"
            if S.BY_KEY[key].secret:
                assert parsed[key] == "", "the template holds no secrets"


# --- every validated setting against one generic bad value ----------------------------------------

#: refused by every check: a ':' (splits compose mounts), a space, a tab and a newline
GENERIC_BAD = "not ok:\tat all\n"
VALIDATED = [s.key for s in S.SETTINGS if s.validated]
PATH_KEYS = ("CLEARML_DATA_DIR", "CLEARML_USERS_FILE", "CLEARML_BACKUP_DIR", "CLEARML_TLS_CERT", "CLEARML_TLS_KEY")


def files_under(root) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_the_settings_that_name_paths_and_credentials_are_validated():
    assert set(PATH_KEYS) <= set(VALIDATED)
    assert {"CLEARML_AGENT_GIT_PASS", "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS"} <= set(VALIDATED)
    assert not S.Setting("X", "", "free text").validated


@pytest.mark.parametrize("key", VALIDATED)
def test_generic_bad_value_is_named_with_a_fix_and_nothing_is_written(key, tmp_path):
    from clearml_stack.install import install

    setting = S.BY_KEY[key]
    found = [p for p in S.problems(values(**{key: GENERIC_BAD})) if p.startswith(f"{key}=")]
    assert len(found) == 1, found
    message = found[0]
    if setting.secret or setting.sensitive:
        assert message.startswith(f"{key}=(hidden):") and "at all" not in message, "a secret value is never echoed"
    else:
        assert message.startswith(f"{key}={GENERIC_BAD!r}:"), message
    reason, _, fix = message.partition("; fix: ")
    assert reason and fix.strip(), f"{key}: no fix in {message!r}"

    # through `inv install`'s code path, on a fresh folder and on an installed one: nothing written
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(fresh / ".env"), key: GENERIC_BAD}
    with pytest.raises(StackError) as err:
        install({}, environ)
    assert message in err.value.message and "nothing was written" in err.value.message
    assert list(fresh.iterdir()) == []

    installed = tmp_path / "installed"
    install({}, {**clean_environ(), "CLEARML_ENV_FILE": str(installed / ".env")})
    before = files_under(installed)
    with pytest.raises(StackError):
        install({}, {**environ, "CLEARML_ENV_FILE": str(installed / ".env")})
    with pytest.raises(StackError) as err:
        S.load({**environ, "CLEARML_ENV_FILE": str(installed / ".env")})
    assert message in err.value.message
    assert files_under(installed) == before


@pytest.mark.parametrize("key", PATH_KEYS)
@pytest.mark.parametrize("bad", ["/srv/clear:ml", "data\nmore", "data\r", "\t"])
def test_path_with_a_colon_or_a_line_break_is_refused(key, bad):
    found = S.problems(values(**{"CLEARML_TLS": "provided", "CLEARML_TLS_CERT": "/c.pem",
                                 "CLEARML_TLS_KEY": "/k.pem", key: bad}))
    assert [p for p in found if p.startswith(f"{key}={bad!r}:")], found
    if ":" in bad:
        assert any("':'" in p and "fix:" in p for p in found)


def test_data_dir_resolving_into_a_folder_with_a_colon_is_refused_before_anything_is_written(tmp_path):
    from clearml_stack.install import install

    folder = tmp_path / "deploy:1"
    folder.mkdir()
    environ = {**clean_environ(), "CLEARML_ENV_FILE": str(folder / ".env")}
    with pytest.raises(StackError) as err:
        install({}, environ)
    assert "CLEARML_DATA_DIR='./data': resolves to" in err.value.message and "absolute path" in err.value.message
    assert list(folder.iterdir()) == []
    # an absolute data directory elsewhere is fine
    _, report = install({}, {**environ, "CLEARML_DATA_DIR": str(tmp_path / "store")})
    assert (tmp_path / "store" / "config" / "apiserver.conf").is_file() and report.lines
