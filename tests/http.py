"""Tiny HTTP client for tests: login the way the SDK does, and fileserver uploads/downloads with a token."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]]

    def json(self) -> dict:
        return json.loads(self.body)

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def request(url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30) -> Reply:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, resp.read(), list(resp.headers.items()))
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read(), list(exc.headers.items()))


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def login(api_url: str, user: str, password: str, host: str | None = None) -> Reply:
    """POST auth.login with HTTP Basic credentials (a fixed user's name:password or a key:secret pair)."""
    headers = {**basic(user, password), "Content-Type": "application/json"}
    if host:
        headers["Host"] = host
    return request(f"{api_url.rstrip('/')}/auth.login", "POST", b"{}", headers)


def token_of(reply: Reply) -> str:
    assert reply.status == 200, (reply.status, reply.body[:500])
    return reply.json()["data"]["token"]


def upload(files_url: str, path: str, content: bytes, token: str | None = None, host: str | None = None) -> Reply:
    """Multipart upload the way the SDK does: the form field name is the target path."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{path}\"; filename=\"{path.rsplit('/', 1)[-1]}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if host:
        headers["Host"] = host
    return request(f"{files_url.rstrip('/')}/", "POST", body, headers, timeout=120)


def download(files_url: str, path: str, token: str | None = None) -> Reply:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return request(f"{files_url.rstrip('/')}/{path}", headers=headers)
