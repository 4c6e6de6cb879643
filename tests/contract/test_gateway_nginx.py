"""Real nginx (Debian's, in the NGINX_IMAGE test image) judges the rendered gateway with `nginx -t`.

The container has no network; the upstream names resolve through --add-host, the certificate files are
the ones `inv install` made or copied, mounted where the compose layer mounts them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clearml_stack import tls
from tests.kit import Kit

pytestmark = pytest.mark.contract

UPSTREAMS = ("webserver", "apiserver", "fileserver")


def nginx_t(image: str, data_dir: Path) -> subprocess.CompletedProcess:
    """`nginx -t` in a throwaway container (testcontainers), mounted as the compose layer mounts it."""
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(image)
        .with_command("nginx -t")
        .with_volume_mapping(str(data_dir / "nginx" / "conf.d"), "/etc/nginx/conf.d", "ro")
        .with_volume_mapping(str(data_dir / "nginx" / "tls"), "/etc/nginx/tls", "ro")
        .with_kwargs(network_mode="none", extra_hosts={name: "127.0.0.1" for name in UPSTREAMS})
    )
    container.start()
    try:
        code = container.get_wrapped_container().wait(timeout=120)["StatusCode"]
        out, err = container.get_logs()
    finally:
        container.stop()
    return subprocess.CompletedProcess(["nginx", "-t"], code, out.decode(), err.decode())


def provided_files(tmp_path: Path, domain: str) -> list[str]:
    ca = tls.new_ca(domain)
    leaf = tls.new_leaf(ca, domain)
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.write_bytes(leaf.cert_pem + ca.cert_pem)
    key.write_bytes(leaf.key_pem)
    return ["--tls-cert", str(cert), "--tls-key", str(key)]


@pytest.mark.parametrize("case", ["http", "self-signed", "provided", "external", "lightning-default"])
def test_rendered_gateway_passes_nginx_t(kit: Kit, tmp_path, test_images, case):
    flags = {
        "http": ["--domain", "ml.example.com"],
        "self-signed": ["--domain", "ml.example.com", "--self-signed"],
        "provided": ["--domain", "ml.example.com", *provided_files(tmp_path, "ml.example.com")],
        "external": ["--domain", "example.com", "--tls", "external"],
        "lightning-default": [],
    }[case]
    extra = {"LIGHTNING_CLOUDSPACE_HOST": "01hx7example.cloudspaces.litng.ai"} if case == "lightning-default" else {}
    kit.inv("install", "--mode", "subdomains", *flags, extra_env=extra)
    proc = nginx_t(test_images["NGINX_IMAGE"], kit.data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr


def test_nginx_t_rejects_a_broken_gateway_file(kit: Kit, test_images):
    """The check above can fail: the same mount with one semicolon removed is refused."""
    kit.inv("install", "--mode", "subdomains", "--domain", "ml.example.com", "--self-signed")
    conf = kit.data_dir / "nginx" / "conf.d" / "clearml-gateway.conf"
    conf.write_text(conf.read_text().replace("proxy_http_version 1.1;", "proxy_http_version 1.1", 1))
    proc = nginx_t(test_images["NGINX_IMAGE"], kit.data_dir)
    assert proc.returncode != 0 and "clearml-gateway.conf" in proc.stderr
