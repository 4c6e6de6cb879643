"""Helpers for the operations integration tests: data written the way users write it, read back."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import urllib.request
import uuid
from pathlib import Path

from tests.kit import Kit

PASSWORD = "s3cret-Password-1"


def add_user(kit: Kit, name: str = "alice") -> None:
    kit.inv("users.add", name, "--password-stdin", input=PASSWORD + "\n")


def api_token(kit: Kit, user: str = "alice") -> str:
    """Log in as a fixed user with HTTP Basic on auth.login, as the SDK does."""
    port = kit.settings().port("api")
    basic = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/auth.login", data=b"{}", method="POST",
                                 headers={"Authorization": f"Basic {basic}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)["data"]["token"]


def upload(kit: Kit, token: str, path: str, data: bytes) -> None:
    """A multipart upload to the file server (field name = target path), with the token."""
    port = kit.settings().port("files")
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{path}\"; filename=\"{Path(path).name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        assert resp.status == 200


def download(kit: Kit, token: str, path: str) -> bytes:
    port = kit.settings().port("files")
    req = urllib.request.Request(f"http://127.0.0.1:{port}/{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.read()


def container(kit: Kit, service: str) -> str:
    """The running container of ``service`` in the kit's compose project."""
    out = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={kit.project}",
                          "--filter", f"label=com.docker.compose.service={service}"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == 1, f"expected one running {service} container, found {out}"
    return out[0]


def project_volumes(kit: Kit) -> list[str]:
    """Names of the Docker volumes of the kit's compose project, sorted."""
    out = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={kit.project}"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(out.split())


def started_at(kit: Kit, service: str) -> str:
    """When the service's running container last started (State.StartedAt)."""
    return subprocess.run(["docker", "inspect", "--format", "{{.State.StartedAt}}", container(kit, service)],
                          capture_output=True, text=True, check=True).stdout.strip()


def health(kit: Kit, service: str) -> str:
    """The engine's health status of the service's running container."""
    return subprocess.run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container(kit, service)],
                          capture_output=True, text=True, check=True).stdout.strip()


def exec_(kit: Kit, service: str, *argv: str) -> str:
    """``docker exec`` in the service's container (argv kept intact, unlike a shell line)."""
    proc = subprocess.run(["docker", "exec", container(kit, service), *argv], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{service}: {argv} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


def mongo_put(kit: Kit, collection: str, doc_id: str, doc: dict) -> None:
    exec_(kit, "mongo", "standin-store", "put", collection, doc_id, json.dumps(doc))


def mongo_get(kit: Kit, collection: str, doc_id: str) -> dict:
    return json.loads(exec_(kit, "mongo", "standin-store", "get", collection, doc_id))


def redis_set(kit: Kit, key: str, value: str) -> None:
    assert exec_(kit, "redis", "redis-cli", "SET", key, value).strip() == "OK"


def redis_get(kit: Kit, key: str) -> str:
    return exec_(kit, "redis", "redis-cli", "GET", key).strip()


def es_put(kit: Kit, index: str, doc_id: str, doc: dict) -> None:
    exec_(kit, "elasticsearch", "curl", "-fsS", "-XPUT", "-H", "Content-Type: application/json",
          f"http://127.0.0.1:9200/{index}/_doc/{doc_id}", "-d", json.dumps(doc))


def es_get(kit: Kit, index: str, doc_id: str) -> dict:
    return json.loads(exec_(kit, "elasticsearch", "curl", "-fsS", f"http://127.0.0.1:9200/{index}/_doc/{doc_id}"))


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root``, by relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def states(kit: Kit) -> dict[str, tuple[str, str]]:
    report = json.loads(kit.inv("status", "--json").stdout)
    return {s["service"]: (s["state"], s["health"]) for s in report["services"]}


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]
