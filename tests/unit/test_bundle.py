"""The agent bundle: what it ships from the image's build context, and its agents' environment."""

from __future__ import annotations

import importlib.util

import pytest

from clearml_stack import bundle
from clearml_stack.clients import LocalPorts, client_urls
from clearml_stack.errors import StackError
from clearml_stack.secrets import fill_missing
from clearml_stack.settings import Settings, defaults
from tests.kit import ROOT

spec = importlib.util.spec_from_file_location("agent_entrypoint_b", ROOT / "agents" / "image" / "entrypoint.py")
entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entry)


def settings(tmp_path, **values: str) -> Settings:
    env = {**defaults(), **fill_missing({}), "COMPOSE_PROJECT_NAME": "proj",
           "CLEARML_DATA_DIR": str(tmp_path / "data"), **values}
    return Settings(values=env, env_file=tmp_path / ".env")


@pytest.fixture
def context(tmp_path):
    ctx = tmp_path / "image"
    (ctx / "wheels").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM python\n")
    (ctx / "entrypoint.py").write_text("print()\n")
    (ctx / "entrypoint.py").chmod(0o755)
    (ctx / "wheels" / "README.md").write_text("wheels go here\n")
    return ctx


def by_path(files) -> dict[str, bundle.BundleFile]:
    return {f.path: f for f in files}


def test_the_hosts_wheels_never_ship_and_do_not_change_the_image_tag(tmp_path, context):
    s = settings(tmp_path)
    clean = by_path(bundle.render(s, 1, (), None, context=context))
    (context / "wheels" / "clearml_agent-3.0.3-py3-none-any.whl").write_bytes(b"wheel")
    (context / "wheels" / "psutil-5.9.8-cp311-manylinux_x86_64.whl").write_bytes(b"x86 only")
    shipped = by_path(bundle.render(s, 1, (), None, context=context))
    assert {p for p in shipped if p.startswith("image/")} == \
        {"image/Dockerfile", "image/entrypoint.py", "image/wheels/README.md"}
    assert shipped["image/entrypoint.py"].mode == 0o755
    assert shipped["docker-compose.yml"].data == clean["docker-compose.yml"].data, "same image tag"


@pytest.mark.parametrize("mode, extra", [
    ("tunnel", {}), ("ports", {"CLEARML_DOMAIN": "ml.example.com"}),
    ("subdomains", {"CLEARML_DOMAIN": "ml.example.com"}),
    ("lightning-proxy", {"CLEARML_DOMAIN": "01abc.cloudspaces.litng.ai"}),
])
def test_the_agents_get_the_urls_a_client_gets(tmp_path, context, mode, extra):
    s = settings(tmp_path, CLEARML_ACCESS_MODE=mode, **extra)
    env = bundle.agent_environment(s)
    urls = client_urls(s)
    assert (env["CLEARML_WEB_HOST"], env["CLEARML_API_HOST"], env["CLEARML_FILES_HOST"]) == \
        (urls.web, urls.api, urls.files_local)
    compose = by_path(bundle.render(s, 1, (), None, context=context))["docker-compose.yml"].data.decode()
    assert f"CLEARML_API_HOST: ${{CLEARML_API_HOST:-{urls.api}}}" in compose


def test_tunnel_local_ports_reach_the_agents_and_the_connect_script(tmp_path, context):
    s = settings(tmp_path)
    ports = LocalPorts(18080, 18008, 18081)
    env = bundle.agent_environment(s, ports)
    assert (env["CLEARML_API_HOST"], env["CLEARML_FILES_HOST"]) == ("http://localhost:18008", "http://localhost:18081")
    script = bundle.connect_script(s, {}, ports)
    assert script is None, "no known SSH target: nothing to bake in"
    s = settings(tmp_path, CLEARML_SSH_TARGET="ops@gw.example.com")
    assert "18008" in bundle.connect_script(s, {}, ports)


def test_self_signed_tls_ships_the_ca_and_trusts_it(tmp_path, context):
    s = settings(tmp_path, CLEARML_ACCESS_MODE="subdomains", CLEARML_DOMAIN="ml.example.com", CLEARML_TLS="self-signed")
    with pytest.raises(StackError, match="inv install"):
        bundle.render(s, 1, (), None, context=context)
    from clearml_stack.gateway import ca_cert_path

    ca_cert_path(s).parent.mkdir(parents=True)
    ca_cert_path(s).write_text("-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n")
    files = by_path(bundle.render(s, 1, (), None, context=context))
    assert files[bundle.CA_FILE].data == ca_cert_path(s).read_bytes()
    compose = files["docker-compose.yml"].data.decode()
    assert f"- ./{bundle.CA_FILE}:{bundle.CA_IN_CONTAINER}:ro" in compose
    assert f"REQUESTS_CA_BUNDLE: {bundle.CA_BUNDLE_IN_CONTAINER}" in compose
    plain = by_path(bundle.render(settings(tmp_path / "other", CLEARML_ACCESS_MODE="subdomains",
                                           CLEARML_DOMAIN="ml.example.com"), 1, (), None, context=context))
    assert bundle.CA_FILE not in plain and "REQUESTS_CA_BUNDLE" not in plain["docker-compose.yml"].data.decode()


def test_entrypoint_joins_the_ca_with_the_public_ones(tmp_path, monkeypatch):
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nOUR\n-----END CERTIFICATE-----\n")
    system = tmp_path / "system.pem"
    system.write_text("-----BEGIN CERTIFICATE-----\nPUBLIC\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(entry, "SYSTEM_CAS", (str(tmp_path / "missing"), str(system)))
    target = tmp_path / "out" / "bundle.pem"
    assert entry.prepare_ca_bundle({"AGENT_CA_CERT": str(ca), "REQUESTS_CA_BUNDLE": str(target)}) is None
    text = target.read_text()
    assert text.index("PUBLIC") < text.index("OUR"), "public CAs stay trusted (PyPI, git hosts)"
    assert entry.prepare_ca_bundle({}) is None
    assert "cannot be read" in entry.prepare_ca_bundle({"AGENT_CA_CERT": str(tmp_path / "nope"),
                                                         "REQUESTS_CA_BUNDLE": str(target)})
    assert "REQUESTS_CA_BUNDLE" in entry.prepare_ca_bundle({"AGENT_CA_CERT": str(ca)})
