"""`inv examples` decisions: which examples, their command lines, the client configuration, the agent check."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from clearml_stack import examples as ex
from clearml_stack.apiclient import Credentials
from clearml_stack.errors import StackError
from clearml_stack.settings import KIT_ROOT, load
from tests.unit.fake_api import FakeServer

AGENT = {"CLEARML_AGENT_ACCESS_KEY": "AGENTKEY0123456789AB", "CLEARML_AGENT_SECRET_KEY": "agentsecret0123456789abcdefghijkl"}


@pytest.fixture
def settings(tmp_path):
    return load({"CLEARML_ENV_FILE": str(tmp_path / ".env"), "CLEARML_API_PORT": "18008",
                 "CLEARML_FILES_PORT": "18081", "CLEARML_WEB_PORT": "18080", **AGENT})


def test_select_keeps_dependency_order_and_refuses_unknown_names():
    assert [e.name for e in ex.select("")] == ["base_task", "train_cpu", "pipeline_from_task", "pipeline_of_pipelines"]
    assert [e.name for e in ex.select("pipeline_of_pipelines, base_task")] == ["base_task", "pipeline_of_pipelines"]
    with pytest.raises(StackError, match="no example named 'nope'"):
        ex.select("base_task,nope")


def test_every_example_script_exists_with_a_docstring_naming_its_queue():
    for e in ex.EXAMPLES:
        path = KIT_ROOT / "examples" / e.script
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and "Queue" in doc and "What it shows" in doc, e.script


def test_argv_passes_queue_and_scale_only_where_they_mean_something():
    d = Path("/kit/examples")
    base = ex.argv(ex.BY_NAME["base_task"], d, "gpu", 5, "/tmp/r.json", python="py")
    assert base == ["py", "/kit/examples/base_task.py", "--result-file", "/tmp/r.json"]
    fan = ex.argv(ex.BY_NAME["pipeline_of_pipelines"], d, "gpu", 5, "/tmp/r.json", python="py")
    assert fan[fan.index("--queue") + 1] == "gpu" and fan[fan.index("--runs") + 1] == "5"
    assert fan[fan.index("--child-queue") + 1] == "services"


def test_client_environment_from_settings_uses_the_kits_key_and_all_three_hosts(settings):
    cfg = ex.client_environment(settings, environ={})
    assert cfg.env["CLEARML_API_HOST"] == "http://localhost:18008"
    assert cfg.env["CLEARML_WEB_HOST"] == "http://localhost:18080"
    assert cfg.env["CLEARML_FILES_HOST"] == "http://localhost:18081"
    assert cfg.env["CLEARML_API_ACCESS_KEY"] == AGENT["CLEARML_AGENT_ACCESS_KEY"]
    assert "services-agent" in cfg.source and AGENT["CLEARML_AGENT_SECRET_KEY"] not in cfg.source
    # the user's own SDK variables still win, as they would for the SDK itself
    cfg = ex.client_environment(settings, environ={"CLEARML_API_HOST": "http://elsewhere:8008"})
    assert cfg.env["CLEARML_API_HOST"] == cfg.api_url == "http://elsewhere:8008"


MODES = [
    {"CLEARML_ACCESS_MODE": "tunnel"},
    {"CLEARML_ACCESS_MODE": "ports", "CLEARML_DOMAIN": "gpu1.example.com"},
    {"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": "abc.cloudspaces.litng.ai"},
    {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com"},
    {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com", "CLEARML_TLS": "external"},
]


def mode_settings(tmp_path, **over):
    return load({"CLEARML_ENV_FILE": str(tmp_path / ".env"), "CLEARML_DATA_DIR": str(tmp_path / "data"),
                 "CLEARML_API_PORT": "18008", "CLEARML_FILES_PORT": "18081", "CLEARML_WEB_PORT": "18080",
                 **AGENT, **over})


@pytest.mark.parametrize("over", MODES, ids=lambda o: "-".join(v for k, v in o.items() if k != "CLEARML_DOMAIN"))
def test_client_environment_is_what_client_config_generates_for_the_active_mode(tmp_path, over):
    from clearml_stack import clients

    s = mode_settings(tmp_path, **over)
    cfg = ex.client_environment(s, environ={})
    found = clients.client_urls(s)
    assert (cfg.api_url, cfg.web_url, cfg.files_url) == (found.api, found.web, found.files_local)
    # the SDK's variables are exactly those `inv client-config`'s generation gives an agent or client
    expected = clients.client_environment(s, clients.Credentials(AGENT["CLEARML_AGENT_ACCESS_KEY"],
                                                                 AGENT["CLEARML_AGENT_SECRET_KEY"]))
    assert cfg.env == expected
    assert "REQUESTS_CA_BUNDLE" not in cfg.env and cfg.ca_bundle == ""
    assert s.mode in cfg.source


def test_self_signed_tls_makes_the_sdk_verify_against_the_kits_ca(tmp_path):
    from clearml_stack import clients, tls
    from clearml_stack.gateway import ca_cert_path

    s = mode_settings(tmp_path, CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com",
                      CLEARML_TLS="self-signed")
    with pytest.raises(StackError) as err:  # before `inv up` made the CA: no silent fallback to no verification
        ex.client_environment(s, environ={})
    assert str(ca_cert_path(s)) in err.value.message and "inv up" in err.value.fix
    ca = ca_cert_path(s)
    ca.parent.mkdir(parents=True)
    ca.write_bytes(tls.new_ca("ml.example.com").cert_pem)
    cfg = ex.client_environment(s, environ={})
    assert cfg.api_url == clients.client_urls(s).api == "https://api.ml.example.com:8000"
    assert cfg.env["REQUESTS_CA_BUNDLE"] == str(ca) == cfg.ca_bundle
    assert str(ca) in cfg.source
    # a bundle the user set already is theirs to keep
    mine = ex.client_environment(s, environ={"REQUESTS_CA_BUNDLE": "/etc/ssl/mine.pem"})
    assert "REQUESTS_CA_BUNDLE" not in mine.env and mine.ca_bundle == "/etc/ssl/mine.pem"


def test_the_checks_verify_https_against_the_given_ca(tmp_path):
    """What preflight does with the CA: a server whose certificate the kit's CA signed is trusted
    with it and refused without it."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from clearml_stack import tls
    from clearml_stack.apiclient import Api

    ca = tls.new_ca("localhost")
    leaf = tls.new_leaf(ca, "localhost")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem + leaf.key_pem)

    class Ping(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"meta": {"result_code": 200}, "data": {}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ping)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp_path / "leaf.pem"))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"https://localhost:{httpd.server_address[1]}"
        assert Api(url, cafile=str(tmp_path / "ca.crt"), timeout=10).ping().ok
        refused = Api(url, timeout=10).ping()
        assert not refused.ok and "certificate verify failed" in refused.describe()
    finally:
        httpd.shutdown()
        httpd.server_close()


SDK_PARSER_NOISE = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's bundled pyhocon on new pyparsing


@SDK_PARSER_NOISE
def test_client_environment_prefers_the_users_key_then_a_config_file(settings, tmp_path):
    cfg = ex.client_environment(settings, environ={"CLEARML_API_ACCESS_KEY": "MINE", "CLEARML_API_SECRET_KEY": "S"})
    assert cfg.env["CLEARML_API_ACCESS_KEY"] == "MINE" and cfg.credentials.key == "MINE"
    conf = tmp_path / "clearml.conf"
    conf.write_text('api {\n  web_server: "http://web.example:1"\n  api_server: "http://api.example:2"\n'
                    '  files_server: "http://files.example:3"\n'
                    '  credentials { "access_key" = "FILEKEY", "secret_key" = "FILESECRET" }\n}\n')
    cfg = ex.client_environment(settings, environ={"CLEARML_CONFIG_FILE": str(conf), "CLEARML_API_ACCESS_KEY": "MINE",
                                                   "CLEARML_API_SECRET_KEY": "S"})
    # the SDK reads the file itself (nothing overridden); the checks use what it holds
    assert "CLEARML_API_ACCESS_KEY" not in cfg.env and str(conf) in cfg.source
    assert (cfg.api_url, cfg.web_url, cfg.files_url) == ("http://api.example:2", "http://web.example:1",
                                                         "http://files.example:3")
    assert cfg.credentials.key == "FILEKEY" and cfg.credentials.secret == "FILESECRET"
    with pytest.raises(StackError, match="does not exist"):
        ex.client_environment(settings, environ={"CLEARML_CONFIG_FILE": str(tmp_path / "missing.conf")})


@SDK_PARSER_NOISE
def test_a_broken_config_file_is_reported_by_the_sdk(settings, tmp_path, monkeypatch):
    conf = tmp_path / "clearml.conf"
    conf.write_text("api {\n  api_server: \n")
    monkeypatch.setenv("CLEARML_CONFIG_FILE", "/somewhere/else.conf")
    with pytest.raises(StackError, match="the ClearML SDK cannot read .*clearml.conf.*Failed parsing"):
        ex.client_environment(settings, environ={"CLEARML_CONFIG_FILE": str(conf)})
    assert os.environ["CLEARML_CONFIG_FILE"] == "/somewhere/else.conf"  # put back as it was


def test_offline_and_output_uri(settings):
    cfg = ex.client_environment(settings, environ={}, offline=True, output_uri="s3://bucket/x")
    assert cfg.env == {"CLEARML_OFFLINE_MODE": "1", "CLEARML_DEFAULT_OUTPUT_URI": "s3://bucket/x"}


def test_required_queues_and_which_have_no_worker():
    needed = ex.required_queues(ex.select(""), "gpu")
    assert needed == {"gpu": ["pipeline_from_task", "pipeline_of_pipelines"], "services": ["pipeline_of_pipelines"]}
    assert ex.required_queues(ex.select("base_task,train_cpu"), "gpu") == {}
    queues = [{"id": "q1", "name": "gpu"}, {"id": "q2", "name": "services"}]
    assert ex.queues_without_workers(needed, queues, []) == ["gpu", "services"]
    assert ex.queues_without_workers(needed, queues, [{"id": "w", "queues": [{"id": "q2"}]}]) == ["gpu"]
    assert ex.queues_without_workers(needed, queues, [{"id": "w", "queues": ["q1", {"name": "services"}]}]) == []


def _config(server: FakeServer, key="alice", secret="pw") -> ex.ClientConfig:
    return ex.ClientConfig({}, server.url, "http://web", server.url, Credentials(key, secret, "web user alice"), "")


def test_preflight_names_the_queue_without_agents_and_the_fix():
    with FakeServer({"alice": "pw"}) as server:
        with pytest.raises(StackError) as err:
            ex.preflight(_config(server), ex.select(""), "default")
        assert "no agent listens on queue 'default' (needed by pipeline_from_task, pipeline_of_pipelines)" in err.value.message
        assert "no agent listens on queue 'services'" in err.value.message
        assert "inv agents.up --queue default" in err.value.fix
        server.workers = [{"id": "w1", "queues": [{"id": "q1", "name": "default"}]},
                          {"id": "w2", "queues": [{"id": "q2", "name": "services"}]}]
        ex.preflight(_config(server), ex.select(""), "default")  # both served: no error
        ex.preflight(_config(server), ex.select("base_task"), "nobody-listens")  # needs no agent


def test_preflight_reports_refused_credentials_and_a_missing_server():
    with FakeServer({"alice": "pw"}) as server:
        with pytest.raises(StackError, match="refused web user alice: HTTP 401"):
            ex.preflight(_config(server, secret="wrong"), ex.select("base_task"), "default")
        url = server.url
    with pytest.raises(StackError, match="does not answer: no answer"):
        ex.preflight(ex.ClientConfig({}, url, "", url, None, ""), ex.select("base_task"), "default")


def test_links_list_every_reported_task_with_a_web_ui_page_for_bare_ids():
    outcome = ex.Outcome(ex.BY_NAME["pipeline_from_task"], 0, {
        "tasks": [{"role": "pipeline", "name": "p", "url": "http://web/p"},
                  {"role": "step train", "name": "train", "id": "t1"},
                  {"role": "step confirm", "name": "confirm", "id": "t2", "project": "p9"}]})
    assert ex.links(outcome, "http://localhost:8080/") == [
        ("pipeline_from_task: pipeline p", "http://web/p"),
        ("pipeline_from_task: step train train", "http://localhost:8080/projects/*/tasks/t1/output/log"),
        ("pipeline_from_task: step confirm confirm", "http://localhost:8080/projects/p9/tasks/t2/output/log"),
    ]
    # children of the pipeline of pipelines likewise; without a web URL the id is all there is
    fan = ex.Outcome(ex.BY_NAME["pipeline_of_pipelines"], 0, {"tasks": [{"role": "child run_0", "name": "run_0",
                                                                         "id": "c0"}]})
    assert ex.links(fan, "https://app.ml.example.com") == [
        ("pipeline_of_pipelines: child run_0 run_0", "https://app.ml.example.com/projects/*/tasks/c0/output/log")]
    assert ex.links(fan) == [("pipeline_of_pipelines: child run_0 run_0", "c0")]
    # offline sessions have no page: their folder is where they are
    offline = ex.Outcome(ex.BY_NAME["base_task"], 0, {"tasks": [{"role": "task", "name": "b", "id": "o1",
                                                                 "offline_folder": "/tmp/off/o1"}]})
    assert ex.links(offline, "http://web") == [("base_task: task b", "/tmp/off/o1")]
    assert not ex.Outcome(ex.BY_NAME["base_task"], 0, {}).ok  # ran but reported nothing


def test_smoke_links_its_task_the_same_way():
    from clearml_stack.smoke import task_url

    assert task_url("http://w/", "p1", "t1") == "http://w/projects/p1/tasks/t1/output/log"


class _Node:
    def __init__(self, name, executed, project=None):
        self.name, self.executed = name, executed
        self.job = type("Job", (), {"task": type("T", (), {"project": project})()})() if project else None


@pytest.mark.parametrize("script", ["pipeline_from_task", "pipeline_of_pipelines"])
def test_the_pipelines_report_each_step_with_its_project_when_known(script, monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(KIT_ROOT / "examples"))
    module = importlib.import_module(script)
    assert module.node_entry(_Node("train", "t1", "p7"), "step train") == {"role": "step train", "id": "t1",
                                                                          "name": "train", "project": "p7"}
    assert module.node_entry(_Node("train", "t1"), "step train") == {"role": "step train", "id": "t1",
                                                                     "name": "train"}
