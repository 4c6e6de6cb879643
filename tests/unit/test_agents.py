"""Agents: the entrypoint's decisions, the agents.up plan, layers, image tags, status joining."""

from __future__ import annotations

import importlib.util
import socket
import struct
import subprocess
import sys

import pytest

from clearml_stack import agents
from clearml_stack.errors import StackError
from clearml_stack.settings import Settings, defaults
from tests.kit import ROOT

spec = importlib.util.spec_from_file_location("agent_entrypoint", ROOT / "agents" / "image" / "entrypoint.py")
entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)

HOSTS = {"CLEARML_API_HOST": "http://apiserver:8008", "CLEARML_WEB_HOST": "http://webserver:80",
         "CLEARML_FILES_HOST": "http://fileserver:8081", "CLEARML_API_ACCESS_KEY": "K" * 30,
         "CLEARML_API_SECRET_KEY": "s" * 64}


def settings(**values: str) -> Settings:
    return Settings(values={**defaults(), "COMPOSE_PROJECT_NAME": "proj", **values}, env_file=ROOT / "nowhere.env")


# --- entrypoint ------------------------------------------------------------------------------


def test_venv_worker_is_cpu_only_foreground_and_creates_its_queues():
    argv = entry.daemon_argv({**HOSTS, "AGENT_MODE": "venv", "AGENT_QUEUES": "gpu, default"})
    assert argv == ["clearml-agent", "daemon", "--foreground", "--queue", "gpu", "default", "--create-queue",
                    "--cpu-only"]


def test_docker_worker_with_gpus_pins_the_agent_inside_task_containers():
    argv = entry.daemon_argv({**HOSTS, "AGENT_MODE": "docker", "AGENT_QUEUES": "default", "AGENT_GPUS": "0,1",
                              "AGENT_DOCKER_IMAGE": "img:1"})
    assert argv[argv.index("--docker") + 1] == "img:1"
    assert "--force-current-version" in argv and "--cpu-only" not in argv


@pytest.mark.parametrize("limit, expected", [("0", ["--services-mode"]), ("4", ["--services-mode", "4"])])
def test_services_mode_concurrency(limit, expected):
    argv = entry.daemon_argv({**HOSTS, "AGENT_MODE": "services", "AGENT_QUEUES": "services",
                              "AGENT_SERVICES_CONCURRENCY": limit, "AGENT_DOCKER_IMAGE": "img:1"})
    i = argv.index("--services-mode")
    assert argv[i:i + len(expected)] == expected
    assert "--cpu-only" in argv and "--docker" in argv


def test_missing_hosts_or_keys_are_named_never_guessed(monkeypatch, capsys):
    env = {k: v for k, v in HOSTS.items() if k not in ("CLEARML_FILES_HOST", "CLEARML_API_SECRET_KEY")}
    found = entry.problems({**env, "AGENT_QUEUES": "default"})
    assert found == ["CLEARML_FILES_HOST is not set", "CLEARML_API_SECRET_KEY is not set"]
    monkeypatch.setattr(entry.os, "environ", {**env, "AGENT_QUEUES": "default"})
    monkeypatch.setattr(entry.os, "execvp", lambda *a: pytest.fail("must not start the agent"))
    assert entry.main([]) == entry.EXIT_CONFIG
    assert "CLEARML_FILES_HOST is not set" in capsys.readouterr().err


def test_bad_mode_and_empty_queue_are_reported():
    found = entry.problems({**HOSTS, "AGENT_MODE": "k8s", "AGENT_QUEUES": " , "})
    assert any("AGENT_MODE='k8s'" in f for f in found) and any("AGENT_QUEUES is empty" in f for f in found)


def _ptr_reply(qid: int, name: str) -> bytes:
    question = b"\x013\x010\x0220\x03172\x07in-addr\x04arpa\x00" + struct.pack(">HH", 12, 1)
    rdata = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    answer = b"\xc0\x0c" + struct.pack(">HHIH", 12, 1, 600, len(rdata)) + rdata
    return struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer


def test_ptr_answer_names_the_compose_container():
    name = entry.parse_ptr_answer(_ptr_reply(0x1234, "clt1-agent-3.clt1_backend"), 0x1234)
    assert name == "clt1-agent-3.clt1_backend"
    assert entry.replica_number(name) == 3
    assert entry.parse_ptr_answer(_ptr_reply(0x1234, "x-agent-3.n"), 0x9999) is None  # not our query


def test_replica_number_of_names():
    assert entry.replica_number("my-proj-agent-12.my-proj_backend") == 12
    assert entry.replica_number("3f2a9c1b") is None


def test_docker_dns_is_detected_from_resolv_conf():
    assert entry.uses_docker_dns("search x\nnameserver 127.0.0.11\noptions ndots:0\n")
    assert not entry.uses_docker_dns("nameserver 10.0.0.2\n")


def test_slots_are_unique_while_held(tmp_path):
    first, second = entry.claim_slot(str(tmp_path)), entry.claim_slot(str(tmp_path))
    assert (first, second) == (1, 2)


def test_explicit_worker_id_wins(monkeypatch):
    assert entry.worker_id({"CLEARML_WORKER_ID": "clearml-services"}) == ("clearml-services", "CLEARML_WORKER_ID")


def test_worker_id_falls_back_to_a_slot_without_docker_dns(monkeypatch, tmp_path):
    monkeypatch.setattr(entry, "compose_number", lambda: None)
    wid, how = entry.worker_id({"CLEARML_AGENT_WORKER_PREFIX": "gpu-box", "AGENT_SLOT_DIR": str(tmp_path)})
    assert wid == "gpu-box:agent-1" and "slot 1" in how


def test_a_replica_without_its_number_never_takes_the_id_of_one_with_it(monkeypatch, tmp_path):
    env = {"CLEARML_AGENT_WORKER_PREFIX": "box", "AGENT_SLOT_DIR": str(tmp_path)}
    numbers = iter([None, 1, 3])  # the first replica's DNS lookup failed; the others read their numbers
    monkeypatch.setattr(entry, "compose_number", lambda: next(numbers))
    found = [entry.worker_id(env) for _ in range(3)]
    assert [wid for wid, _ in found] == ["box:agent-1", "box:agent-2", "box:agent-3"]
    assert "slot 1 under" in found[0][1]
    assert "slot 2 under" in found[1][1] and "slot 1 is held by another replica" in found[1][1]
    assert found[2][1] == "compose replica number", "its own slot was free: the number stands"


def test_slot_ids_are_stable_across_re_creation(tmp_path):
    """Separate processes, as the replicas are: a re-created replica gets the id that was freed."""
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('e', {str(ROOT / 'agents/image/entrypoint.py')!r})\n"
            "e = importlib.util.module_from_spec(spec); spec.loader.exec_module(e)\n"
            "e.compose_number = lambda: None\n"
            f"print(e.worker_id({{'CLEARML_AGENT_WORKER_PREFIX': 'box', 'AGENT_SLOT_DIR': {str(tmp_path)!r}}})[0],"
            " flush=True)\n"
            "sys.stdin.read()\n")

    def start() -> tuple[subprocess.Popen, str]:
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return proc, proc.stdout.readline().strip()

    running = [start() for _ in range(3)]
    try:
        assert [wid for _, wid in running] == ["box:agent-1", "box:agent-2", "box:agent-3"]
        running[1][0].kill()
        running[1][0].wait()
        running[1] = start()
        assert running[1][1] == "box:agent-2", "the re-created replica has the id of the one it replaced"
    finally:
        for proc, _ in running:
            proc.kill()
            proc.wait()


def test_health_finds_the_daemon(tmp_path):
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cmdline").write_bytes(b"python3\0/usr/local/bin/clearml-agent\0daemon\0--foreground\0")
    assert entry.daemon_running(str(tmp_path))
    (tmp_path / "7" / "cmdline").write_bytes(b"python3\0-c\0clearml-agent daemon\0")
    assert not entry.daemon_running(str(tmp_path))


# --- agents.up plan ---------------------------------------------------------------------------


def test_plain_agents_up_starts_one_worker():
    plan = agents.plan_up(defaults())
    assert plan.updates == {"CLEARML_AGENT_REPLICAS": "1"} and plan.queues == ["default"]


def test_flags_become_settings():
    plan = agents.plan_up(defaults(), 3, ["gpu", "default,gpu"], gpus="0, 1")
    assert plan.updates == {"CLEARML_AGENT_REPLICAS": "3", "CLEARML_AGENT_QUEUES": "gpu default",
                            "CLEARML_AGENT_GPUS": "0,1"}


def test_cpu_only_clears_gpus_and_unchanged_values_are_not_rewritten():
    plan = agents.plan_up({**defaults(), "CLEARML_AGENT_REPLICAS": "2", "CLEARML_AGENT_GPUS": "all"}, cpu_only=True)
    assert plan.updates == {"CLEARML_AGENT_GPUS": ""} and plan.replicas == 2


@pytest.mark.parametrize("kwargs, needle", [
    ({"replicas_flag": 0, "gpus": "all", "cpu_only": True}, "contradict"),
    ({"replicas_flag": -1}, "--replicas -1"),
    ({"gpus": "first"}, "--gpus"),
    ({"queues_flag": ["a;b"]}, "--queue"),
])
def test_bad_flags_are_refused(kwargs, needle):
    with pytest.raises(StackError) as exc:
        agents.plan_up(defaults(), **kwargs)
    assert needle in exc.value.message + exc.value.fix


@pytest.mark.parametrize("given, expected", [(None, None), ("1", 1), ("12", 12), (3, 3)])
def test_replicas_flag_not_given_is_not_zero(given, expected):
    assert agents.parse_replicas_flag(given) == expected


@pytest.mark.parametrize("given, needle", [("0", "`inv agents.down`"), (0, "`inv agents.down`"),
                                           ("two", "whole number"), ("-1", "whole number")])
def test_replicas_flag_zero_or_garbage_is_refused(given, needle):
    with pytest.raises(StackError) as exc:
        agents.parse_replicas_flag(given)
    assert needle in exc.value.message + exc.value.fix and repr(given).strip("'") in exc.value.message


def test_only_configured_starts_what_is_configured_and_nothing_else():
    assert agents.configured_start({**defaults(), "CLEARML_AGENT_REPLICAS": "3"}, None, (), "", False) is True
    assert agents.configured_start(defaults(), None, (), "", False) is False
    for kwargs in ({"replicas_flag": 2}, {"queues_flag": ["gpu"]}, {"gpus": "all"}, {"cpu_only": True}):
        args = {"replicas_flag": None, "queues_flag": (), "gpus": "", "cpu_only": False, **kwargs}
        with pytest.raises(StackError, match="--only-configured"):
            agents.configured_start({**defaults(), "CLEARML_AGENT_REPLICAS": "3"}, **args)


def test_down_keeps_the_configured_count_unless_told_to_forget():
    three = {**defaults(), "CLEARML_AGENT_REPLICAS": "3"}
    assert agents.down_updates(three, forget=False) == {}
    assert agents.down_updates(three, forget=True) == {"CLEARML_AGENT_REPLICAS": "0"}
    assert agents.down_updates(defaults(), forget=True) == {}, "already none: nothing to write"


def test_gpu_check_reads_the_engine_runtimes():
    assert agents.gpu_problem(["io.containerd.runc.v2", "runc"], False) is not None
    assert "runc" in agents.gpu_problem(["runc"], False)
    assert agents.gpu_problem(["nvidia", "runc"], False) is None
    assert agents.gpu_problem(["runc"], True) is None


# --- layers, image, environment ---------------------------------------------------------------


def test_worker_layers_follow_the_settings():
    assert agents.worker_layers(settings()) == []
    assert agents.worker_layers(settings(CLEARML_AGENT_REPLICAS="2")) == ["workers"]
    assert agents.worker_layers(settings(CLEARML_AGENT_REPLICAS="2", CLEARML_AGENT_MODE="docker",
                                         CLEARML_AGENT_GPUS="all")) == ["workers", "workers-docker", "workers-gpu"]
    assert agents.worker_layers(settings(CLEARML_AGENT_REPLICAS="2", CLEARML_AGENT_GPUS="0,1")) == \
        ["workers", "workers-gpu-ids"]


def test_gpu_ids_layer_lists_each_id():
    import yaml

    text = agents.gpu_ids_layer("0, 1,3")
    (device,) = yaml.safe_load(text)["services"]["agent"]["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "device_ids": ["0", "1", "3"], "capabilities": ["gpu"]}
    for bad in ("all", "", "0,x"):
        with pytest.raises(StackError, match="CLEARML_AGENT_GPUS"):
            agents.gpu_ids_layer(bad)
    assert agents.generated_layers(settings(CLEARML_AGENT_GPUS="0,1"), ["workers"]) == {}


def test_image_tag_changes_with_what_the_image_is_made_of():
    base = agents.image_ref(settings(), "digest-a")
    assert base.startswith("clearml-lightning/agent:3.0.3-")
    assert agents.image_ref(settings(), "digest-a") == base
    assert agents.image_ref(settings(), "digest-b") != base
    assert agents.image_ref(settings(CLEARML_AGENT_APT_PACKAGES=""), "digest-a") != base


def test_environment_has_every_value_the_agent_layers_read():
    env = agents.environment(settings(CLEARML_AGENT_QUEUES="gpu,default", CLEARML_AGENT_WORKER_PREFIX="box"))
    assert env["STACK_AGENT_QUEUES"] == "gpu default"
    assert env["STACK_AGENT_NETWORK"] == "proj_backend"
    assert env["STACK_AGENT_WORKER_PREFIX"] == "box"
    assert agents.environment(settings())["STACK_AGENT_WORKER_PREFIX"] == socket.gethostname().split(".")[0]


def test_status_joins_containers_and_registered_workers():
    containers = [{"container": "p-agent-1", "state": "running", "health": "healthy"},
                  {"container": "p-agent-2", "state": "running", "health": "starting"}]
    api = [{"id": "box:agent-1", "queues": [{"id": "q", "name": "default"}], "task": None},
           {"id": "box:agent-7", "queues": []}, {"id": "clearml-services", "queues": []}]
    rows = agents.join_workers(containers, api, "box")
    assert [(r.container, r.worker, r.queues) for r in rows] == [
        ("p-agent-1", "box:agent-1", "default"), ("p-agent-2", "", ""), ("-", "box:agent-7", "")]
