"""Agents, judged by the real tools: docker compose renders the agent layers and the bundle's file,
and the real clearml-agent loads the configuration each agent container gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from clearml_stack.compose import find
from clearml_stack.settings import AGENT_ONLY_KEYS, SECRET_KEYS

pytestmark = pytest.mark.contract


@pytest.fixture
def installed(kit):
    kit.inv("install")
    return kit


def merged(kit, **env: str) -> tuple[str, dict]:
    text = kit.inv("config", "--show-secrets", extra_env=env).stdout
    return text, yaml.safe_load(text)


def secrets_of(kit) -> dict[str, str]:
    values = kit.settings().values
    return {k: values[k] for k in SECRET_KEYS}


def test_workers_file_does_not_grow_with_replicas(installed):
    rendered = {}
    for n in (1, 10, 100):
        text, cfg = merged(installed, CLEARML_AGENT_REPLICAS=str(n))
        assert cfg["services"]["agent"]["deploy"]["replicas"] == n
        assert sum(1 for name in cfg["services"] if name.startswith("agent")) == 2  # agent + agent-services
        rendered[n] = text.replace(f"replicas: {n}\n", "replicas: N\n")
    assert rendered[1] == rendered[10] == rendered[100]


def test_no_worker_service_until_workers_are_wanted(installed):
    _, cfg = merged(installed)
    assert "agent" not in cfg["services"] and "agent-services" in cfg["services"]
    _, cfg = merged(installed, CLEARML_SERVICES_AGENT="false")
    assert not any(name.startswith("agent") for name in cfg["services"])


def test_services_agent_uses_the_one_services_agent_pair_and_explicit_hosts(installed):
    _, cfg = merged(installed)
    sa, api = cfg["services"]["agent-services"], cfg["services"]["apiserver"]
    secrets = secrets_of(installed)
    env = sa["environment"]
    assert env["CLEARML_API_ACCESS_KEY"] == api["environment"]["CLEARML__secure__credentials__services_agent__user_key"] \
        == secrets["CLEARML_AGENT_ACCESS_KEY"]
    assert env["CLEARML_API_SECRET_KEY"] == api["environment"]["CLEARML__secure__credentials__services_agent__user_secret"] \
        == secrets["CLEARML_AGENT_SECRET_KEY"]
    assert (env["CLEARML_API_HOST"], env["CLEARML_WEB_HOST"], env["CLEARML_FILES_HOST"]) == \
        ("http://apiserver:8008", "http://webserver:80", "http://fileserver:8081")
    assert env["CLEARML_AGENT_NO_UPDATE"] == "1"
    assert env["AGENT_MODE"] == "services" and env["AGENT_QUEUES"] == "services"
    assert sa["depends_on"]["apiserver"]["condition"] == "service_healthy"
    assert "entrypoint" not in sa  # no curl retry loop
    assert any(v["source"] == "/var/run/docker.sock" for v in sa["volumes"])
    assert not sa["image"].endswith(":latest") and sa["pull_policy"] == "never"
    assert sa["build"]["args"]["CLEARML_AGENT_VERSION"] == "3.0.3"
    assert env["CLEARML_AGENT_EXTRA_DOCKER_ARGS"] == f"--network {installed.project}_backend"


def test_services_queue_and_concurrency_are_settings(installed):
    _, cfg = merged(installed, CLEARML_SERVICES_QUEUE="svc", CLEARML_SERVICES_CONCURRENCY="3")
    env = cfg["services"]["agent-services"]["environment"]
    assert (env["AGENT_QUEUES"], env["AGENT_SERVICES_CONCURRENCY"]) == ("svc", "3")


@pytest.mark.parametrize("key", AGENT_ONLY_KEYS)
def test_agent_only_credentials_reach_only_agents(installed, tmp_path, key):
    if key == "CLEARML_AGENT_GCS_CREDENTIALS_FILE":
        (tmp_path / "gcs-key.json").write_text('{"type": "service_account"}')
        value = str(tmp_path / "gcs-key.json")
    elif key == "GOOGLE_APPLICATION_CREDENTIALS":
        value = "/secrets/agentOnlyValue.json"
    else:
        value = "agentOnlyValue"
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="1", **{key: value})
    assert {"agent", "agent-services"} <= set(cfg["services"])
    for name, svc in cfg["services"].items():
        text = json.dumps(svc)
        if name in ("agent", "agent-services"):
            assert value in text, f"{key} does not reach {name}"
        else:
            assert value not in text, f"{key} leaked into {name}"


def test_gcs_key_file_is_mounted_read_only_only_when_set(installed, tmp_path):
    key = tmp_path / "gcs-key.json"
    key.write_text('{"type": "service_account"}')
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="1")
    for name in ("agent", "agent-services"):
        assert not any(v["target"].endswith("gcs-credentials.json") for v in cfg["services"][name].get("volumes", [])), name
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="1", CLEARML_AGENT_GCS_CREDENTIALS_FILE=str(key))
    for name in ("agent", "agent-services"):
        svc = cfg["services"][name]
        (mount,) = [v for v in svc["volumes"] if v["source"] == str(key)]
        assert mount["read_only"] is True and svc["environment"]["GOOGLE_APPLICATION_CREDENTIALS"] == mount["target"]


@pytest.mark.parametrize("value, needle", [("relative/key.json", "absolute path"), ("/keys/a:b.json", "':'")])
def test_a_bad_gcs_key_path_is_refused_naming_it(installed, value, needle):
    proc = installed.inv("config", check=False, extra_env={"CLEARML_AGENT_GCS_CREDENTIALS_FILE": value})
    assert proc.returncode != 0 and "CLEARML_AGENT_GCS_CREDENTIALS_FILE" in proc.stderr and needle in proc.stderr


def test_a_missing_gcs_key_file_stops_agents_up_before_anything_changes(installed, tmp_path):
    before = installed.env_file.read_text()
    proc = installed.inv("agents.up", check=False,
                         extra_env={"CLEARML_AGENT_GCS_CREDENTIALS_FILE": str(tmp_path / "missing.json")})
    assert proc.returncode != 0 and "no such file" in proc.stderr and "missing.json" in proc.stderr
    assert installed.env_file.read_text() == before
    both = installed.inv("config", check=False, extra_env={"CLEARML_AGENT_GCS_CREDENTIALS_FILE": str(tmp_path / "k"),
                                                           "GOOGLE_APPLICATION_CREDENTIALS": "/x.json"})
    assert both.returncode != 0 and "both set" in both.stderr


def test_workers_share_the_slot_directory_for_stable_ids(installed):
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="2")
    agent = cfg["services"]["agent"]
    (mount,) = [v for v in agent["volumes"] if v["target"] == agent["environment"]["AGENT_SLOT_DIR"]]
    assert mount["type"] == "bind" and mount["source"] == str(installed.data_dir / "agent" / "slots")
    assert (installed.data_dir / "agent" / "slots").is_dir(), "inv install makes it"


def test_venv_workers_get_no_docker_socket_docker_workers_do(installed):
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="2")
    assert not any(v["source"] == "/var/run/docker.sock" for v in cfg["services"]["agent"]["volumes"])
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="2", CLEARML_AGENT_MODE="docker")
    agent = cfg["services"]["agent"]
    assert any(v["source"] == "/var/run/docker.sock" for v in agent["volumes"])
    assert agent["environment"]["CLEARML_AGENT_DOCKER_HOST_MOUNT"].endswith("/agent/workers:/root/.clearml")


def test_every_gpu_is_a_count_all_reservation(installed):
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="2", CLEARML_AGENT_GPUS="all")
    (device,) = cfg["services"]["agent"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] in (-1, "all") and "device_ids" not in device


@pytest.mark.parametrize("gpus, ids", [("0,1", ["0", "1"]), ("3", ["3"]), ("0,2,5", ["0", "2", "5"])])
def test_gpu_ids_are_a_list_of_ids(installed, gpus, ids):
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="2", CLEARML_AGENT_GPUS=gpus)
    (device,) = cfg["services"]["agent"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["device_ids"] == ids and "count" not in device
    assert (installed.data_dir / "compose" / "workers-gpu-ids.yml").is_file()


def test_changed_gpu_ids_rewrite_the_generated_layer(installed):
    merged(installed, CLEARML_AGENT_REPLICAS="1", CLEARML_AGENT_GPUS="0,1")
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="1", CLEARML_AGENT_GPUS="2")
    (device,) = cfg["services"]["agent"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["device_ids"] == ["2"], "a stale generated file is never used"
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="1", CLEARML_AGENT_GPUS="all")
    (device,) = cfg["services"]["agent"]["deploy"]["resources"]["reservations"]["devices"]
    assert "device_ids" not in device


# --- the bundle -------------------------------------------------------------------------------


@pytest.fixture
def bundle(installed, tmp_path):
    out = tmp_path / "bundle.tar.gz"
    installed.inv("agents.bundle", "--out", str(out), "--replicas", "2", "--queue", "gpu", "--queue", "default")
    dest = tmp_path / "unpacked"
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        tar.extractall(dest, filter="tar") if sys.version_info >= (3, 12) else tar.extractall(dest)
    return installed, out, members, dest / "clearml-agents"


def test_bundle_compose_passes_config_on_its_own(bundle):
    _, _, _, top = bundle
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML", "STACK_", "COMPOSE_", "AGENT_"))}
    proc = subprocess.run([*find().argv, "config", "--format", "json"], cwd=top, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    agent = json.loads(proc.stdout)["services"]["agent"]
    assert agent["deploy"]["replicas"] == 2
    assert agent["network_mode"] == "host"
    assert agent["environment"]["AGENT_QUEUES"] == "gpu default"
    assert agent["environment"]["CLEARML_API_HOST"].startswith("http://localhost:")


def test_bundle_holds_the_agent_pair_and_no_other_secret(bundle):
    kit, out, members, top = bundle
    secrets = secrets_of(kit)
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert members["clearml-agents/agent.env"].mode == 0o600
    env_lines = [line for line in (top / "agent.env").read_text().splitlines() if line and not line.startswith("#")]
    assert env_lines == [f"CLEARML_API_ACCESS_KEY={secrets['CLEARML_AGENT_ACCESS_KEY']}",
                         f"CLEARML_API_SECRET_KEY={secrets['CLEARML_AGENT_SECRET_KEY']}"]
    others = {k: v for k, v in secrets.items() if k not in ("CLEARML_AGENT_ACCESS_KEY", "CLEARML_AGENT_SECRET_KEY")}
    assert len(others) == len(SECRET_KEYS) - 2 and all(others.values())
    files = [p for p in top.rglob("*") if p.is_file()]
    assert {"docker-compose.yml", "agent.env", "README.md", "Makefile", "image/Dockerfile",
            "image/entrypoint.py"} <= {p.relative_to(top).as_posix() for p in files}
    assert not [p for p in files if p.suffix == ".whl"], "this host's wheels never ship (other CPU, other Python)"
    for path in files:
        data = path.read_bytes()
        for key, value in others.items():
            assert value.encode() not in data, f"{key} leaked into {path.relative_to(top)}"
        if path.name != "agent.env":
            assert secrets["CLEARML_AGENT_SECRET_KEY"].encode() not in data, path


def test_bundle_readme_and_makefile_carry_the_commands(bundle):
    _, _, _, top = bundle
    readme = (top / "README.md").read_text()
    assert "docker compose up -d" in readme and "./connect.sh" in readme
    proc = subprocess.run(["make", "-n", "up"], cwd=top, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "docker compose up -d" in proc.stdout and "connect.sh" in proc.stdout


def bundle_agent(kit, tmp_path, *flags: str) -> tuple[dict, Path]:
    """`inv agents.bundle`, unpacked, and its agent service as `docker compose config` renders it there."""
    out = tmp_path / "b.tar.gz"
    kit.inv("agents.bundle", "--out", str(out), *flags)
    with tarfile.open(out) as tar:
        tar.extractall(tmp_path / "u", filter="tar") if sys.version_info >= (3, 12) else tar.extractall(tmp_path / "u")
    top = tmp_path / "u" / "clearml-agents"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML", "STACK_", "COMPOSE_", "AGENT_"))}
    proc = subprocess.run([*find().argv, "config", "--format", "json"], cwd=top, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["services"]["agent"], top


@pytest.mark.parametrize("mode, extra", [
    ("tunnel", {}), ("ports", {"CLEARML_DOMAIN": "ml.example.com"}),
    ("subdomains", {"CLEARML_DOMAIN": "ml.example.com"}),
    ("lightning-proxy", {"CLEARML_DOMAIN": "01abc.cloudspaces.litng.ai"}),
])
def test_bundle_urls_are_the_client_urls_of_each_mode(kit, tmp_path, mode, extra):
    from clearml_stack.clients import client_urls

    kit.env.update({"CLEARML_ACCESS_MODE": mode, **extra})
    kit.inv("install")
    agent, _ = bundle_agent(kit, tmp_path)
    urls = client_urls(kit.settings())
    env = agent["environment"]
    assert (env["CLEARML_WEB_HOST"], env["CLEARML_API_HOST"], env["CLEARML_FILES_HOST"]) == \
        (urls.web, urls.api, urls.files_local)


def test_tunnel_bundle_with_other_local_ports_uses_them_everywhere(installed, tmp_path):
    from clearml_stack.clients import LocalPorts, client_urls

    installed.env["CLEARML_SSH_TARGET"] = "ops@gw.example.com"
    agent, top = bundle_agent(installed, tmp_path, "--local-ports", "18080,18008,18081")
    urls = client_urls(installed.settings(), LocalPorts(18080, 18008, 18081))
    env = agent["environment"]
    assert (env["CLEARML_API_HOST"], env["CLEARML_FILES_HOST"]) == (urls.api, urls.files_local) == \
        ("http://localhost:18008", "http://localhost:18081")
    assert "18008" in (top / "connect.sh").read_text()


def test_self_signed_bundle_ships_and_trusts_the_gateway_ca(kit, tmp_path):
    from clearml_stack.gateway import ca_cert_path

    kit.env.update({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com",
                    "CLEARML_TLS": "self-signed"})
    kit.inv("install")
    agent, top = bundle_agent(kit, tmp_path)
    assert (top / "tls" / "ca.crt").read_bytes() == ca_cert_path(kit.settings()).read_bytes()
    (mount,) = [v for v in agent["volumes"] if v["target"] == agent["environment"]["AGENT_CA_CERT"]]
    assert mount["source"] == str(top / "tls" / "ca.crt") and mount["read_only"] is True
    assert agent["environment"]["REQUESTS_CA_BUNDLE"] not in ("", mount["target"])
    assert agent["environment"]["CLEARML_API_HOST_VERIFY_CERT"] == "true"
    assert agent["environment"]["CLEARML_API_HOST"].startswith("https://api.ml.example.com")
    assert "BEGIN CERTIFICATE" in (top / "tls" / "ca.crt").read_text()
    assert "PRIVATE KEY" not in "".join(p.read_text(errors="replace") for p in top.rglob("*") if p.is_file()), \
        "the CA's key never leaves the server"


def test_tunnel_bundle_carries_the_generated_connect_script(installed, tmp_path):
    from clearml_stack.clients import parse_target
    from clearml_stack.render.connect_script import render_connect_script

    installed.env["CLEARML_SSH_TARGET"] = "ops@gpu-gateway.example.com:2222"
    out = tmp_path / "bundle.tar.gz"
    installed.inv("agents.bundle", "--out", str(out))
    with tarfile.open(out) as tar:
        member = tar.getmember("clearml-agents/connect.sh")
        script = tar.extractfile(member).read().decode()
    assert member.mode == 0o755
    assert script == render_connect_script(installed.settings(), parse_target("ops@gpu-gateway.example.com:2222"))


def test_tunnel_bundle_without_a_known_target_says_how_to_add_the_script(bundle):
    kit, out, members, top = bundle
    assert "clearml-agents/connect.sh" not in members
    assert "inv connect-script" in (top / "README.md").read_text()


# --- the real clearml-agent loads what each container gets -------------------------------------


def agent_view(env: dict[str, str], home) -> dict:
    code = ("import json; from clearml_agent.session import Session; c = Session(only_load_config=True).config; "
            "print(json.dumps({k: c.get(k, None) for k in ('api.api_server', 'api.web_server', 'api.files_server',"
            " 'api.credentials.access_key', 'api.credentials.secret_key', 'agent.worker_id')}))")
    full = {"PATH": os.environ["PATH"], "HOME": str(home), **{k: str(v) for k, v in env.items()}}
    proc = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_real_clearml_agent_resolves_hosts_and_credentials_of_each_agent(installed, tmp_path, bundle):
    secrets = secrets_of(installed)
    pair = (secrets["CLEARML_AGENT_ACCESS_KEY"], secrets["CLEARML_AGENT_SECRET_KEY"])
    _, cfg = merged(installed, CLEARML_AGENT_REPLICAS="1")
    for name in ("agent", "agent-services"):
        view = agent_view(cfg["services"][name]["environment"], tmp_path)
        assert (view["api.api_server"], view["api.web_server"], view["api.files_server"]) == \
            ("http://apiserver:8008", "http://webserver:80", "http://fileserver:8081"), name
        assert (view["api.credentials.access_key"], view["api.credentials.secret_key"]) == pair, name
    assert agent_view(cfg["services"]["agent-services"]["environment"], tmp_path)["agent.worker_id"] == \
        "clearml-services"
    _, _, _, top = bundle
    proc = subprocess.run([*find().argv, "config", "--format", "json"], cwd=top, capture_output=True, text=True)
    env = json.loads(proc.stdout)["services"]["agent"]["environment"]
    view = agent_view(env, tmp_path)
    settings = installed.settings()
    assert view["api.api_server"] == f"http://localhost:{settings.port('api')}"
    assert view["api.files_server"] == f"http://localhost:{settings.port('files')}"
    assert (view["api.credentials.access_key"], view["api.credentials.secret_key"]) == pair
