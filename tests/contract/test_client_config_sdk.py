"""clearml.conf judged by the real clearml SDK: each file `inv client-config` writes is loaded the way the
SDK loads it (HOME and CLEARML_CONFIG_FILE in a temp dir, in a fresh process so no SDK state leaks), and
the API, web and files hosts, credentials, path substitution and storage settings it resolves are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clearml_stack import clients as C
from clearml_stack.render.client_config import render_client_config
from clearml_stack.settings import Settings, defaults

pytestmark = pytest.mark.contract

ACCESS = "K2X5J8EXAMPLE0ACCESSKEY"
SECRET = "sEcReT_from-the-UI.0123456789abcdefghij"
UI_SNIPPET = f"""api {{
  web_server: http://localhost:8080/
  api_server: http://localhost:8008
  files_server: http://localhost:8081
  credentials {{
    "access_key" = "{ACCESS}"
    "secret_key"  = "{SECRET}"
  }}
}}
"""

PROBE = r"""
import json
from clearml.backend_api import load_config, Session
cfg = load_config()
out = {"api": Session.get_api_server_host(cfg), "web": Session.get_app_server_host(cfg),
       "files": Session.get_files_server_host(cfg), "access_key": cfg.get("api.credentials.access_key"),
       "secret_key": cfg.get("api.credentials.secret_key"), "verify": cfg.get("api.verify_certificate")}
from clearml.config import config
from clearml.storage.helper import StorageHelper, _HttpDriver
out["artifact_url"] = StorageHelper._apply_url_substitutions(out["files"] + "/proj/task/artifact.bin")
out["storage_base"] = StorageHelper.get(out["files"] + "/proj/task/artifact.bin").base_url
out["auth_hosts"] = _HttpDriver.get_file_server_hosts()
s3 = StorageHelper._s3_configurations.get_config_by_uri("s3://minio.local:9000/clearml/models/x")
out["s3"] = {"host": s3.host, "use_credentials_chain": s3.use_credentials_chain, "secure": s3.secure,
             "verify": s3.verify}
out["output_uri"] = config.get("development.default_output_uri", None)
print(json.dumps(out))
"""


def sdk_load(config_file: Path, home: Path) -> subprocess.CompletedProcess:
    """Load ``config_file`` with the real SDK in a fresh process that sees no other ClearML settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_", "AWS_"))}
    env.update(HOME=str(home), CLEARML_CONFIG_FILE=str(config_file))
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=home,
                          timeout=120)


def resolved(config_file: Path, home: Path) -> dict:
    proc = sdk_load(config_file, home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


MODES = {
    "tunnel": {},
    "tunnel-local-ports": {},
    "ports": {"CLEARML_ACCESS_MODE": "ports", "CLEARML_DOMAIN": "clearml.example.com"},
    "subdomains": {"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com"},
    "lightning-proxy": {"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": "abc123.cloudspaces.litng.ai"},
}
STUDIO = {"LIGHTNING_CLOUDSPACE_HOST": "abc123.cloudspaces.litng.ai"}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_sdk_resolves_what_client_config_wrote_for_every_mode(mode, kit, tmp_path, monkeypatch):
    kit.env.update(MODES[mode])
    for key, value in STUDIO.items():
        monkeypatch.setenv(key, value)
    local = "18080,18008,18081" if mode == "tunnel-local-ports" else ""
    out = tmp_path / "client" / "clearml.conf"
    args = ["client-config", "--out", str(out), "--credentials-stdin"] + (["--local-ports", local] if local else [])
    proc = kit.inv(*args, input=UI_SNIPPET, extra_env=STUDIO)
    assert SECRET not in proc.stdout + proc.stderr, "the secret key is never printed"
    assert out.stat().st_mode & 0o777 == 0o600

    expected = C.client_urls(kit.settings(), C.parse_local_ports(local) if local else None)
    got = resolved(out, tmp_path)
    assert (got["api"], got["web"], got["files"]) == (expected.api, expected.web, expected.files)
    assert (got["access_key"], got["secret_key"], got["verify"]) == (ACCESS, SECRET, True)
    assert got["storage_base"] == expected.files_local
    assert expected.files_local in got["auth_hosts"], "uploads through the tunnel carry the login token"
    if mode == "tunnel":
        assert (got["api"], got["web"], got["files"]) == (
            "http://localhost:8008", "http://localhost:8080", "http://localhost:8081")
        assert got["artifact_url"] == "http://localhost:8081/proj/task/artifact.bin"
    if mode == "tunnel-local-ports":
        assert (got["api"], got["web"]) == ("http://localhost:18008", "http://localhost:18080")
        assert got["files"] == "http://localhost:8081", "files_server stays the canonical URL"
        assert got["artifact_url"] == "http://localhost:18081/proj/task/artifact.bin"
        assert got["storage_base"] == "http://localhost:18081"
    if mode != "tunnel" and mode != "tunnel-local-ports":
        assert "localhost" not in got["api"] + got["web"] + got["files"]


def test_sdk_reads_the_output_uri_and_the_s3_compatible_store(kit, tmp_path):
    out = tmp_path / "clearml.conf"
    kit.inv("client-config", "--out", str(out), "--credentials-stdin", "--output-uri",
            "s3://minio.local:9000/clearml/models", "--s3-endpoint", "minio.local:9000", "--s3-no-tls",
            input=f"{ACCESS}\n{SECRET}\n")
    got = resolved(out, tmp_path)
    assert got["output_uri"] == "s3://minio.local:9000/clearml/models"
    assert got["s3"] == {"host": "minio.local:9000", "use_credentials_chain": True, "secure": False, "verify": False}


def test_the_s3_section_belongs_under_sdk(tmp_path):
    """Why the section sits in ``sdk {}``: the SDK ignores a top-level ``aws {}`` (the layout of the
    original project's README) and would fall back to https and no credentials chain."""
    settings = Settings(values=defaults(), env_file=tmp_path / ".env")
    text = render_client_config(settings, C.Credentials(ACCESS, SECRET),
                                s3=C.S3Endpoint("minio.local:9000", secure=False, verify=False))
    ours = tmp_path / "ours.conf"
    ours.write_text(text)
    assert resolved(ours, tmp_path)["s3"]["use_credentials_chain"] is True
    top = tmp_path / "top.conf"
    aws = text[text.index("    aws {"):text.rindex("}")]
    top.write_text(text[:text.index("sdk {")] + "\n".join(line[4:] for line in aws.splitlines()) + "\n")
    ignored = resolved(top, tmp_path)["s3"]
    assert ignored["use_credentials_chain"] is False and ignored["secure"] is True


@pytest.mark.parametrize("edit", ["drop-last-brace", "unclosed-string", "stray-brace"])
def test_a_malformed_hand_edit_is_reported_by_the_sdk(edit, kit, tmp_path):
    out = tmp_path / "clearml.conf"
    kit.inv("client-config", "--out", str(out), "--credentials-stdin", input=UI_SNIPPET)
    text = out.read_text()
    if edit == "drop-last-brace":
        text = text.rstrip()[:-1]
    elif edit == "unclosed-string":
        text = text.replace('api_server: "http://localhost:8008"', 'api_server: "http://localhost:8008')
    else:
        text = text.replace("credentials {", "credentials {{", 1)
    out.write_text(text)
    proc = sdk_load(out, tmp_path)
    assert proc.returncode != 0
    assert "clearml.backend_config.errors.ConfigurationError" in proc.stderr
    assert str(out) in proc.stderr, "the SDK names the file"
