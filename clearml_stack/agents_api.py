"""The few API calls the kit makes with the agent key pair: log in, list the workers it runs."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from .errors import StackError


def call(base_url: str, endpoint: str, payload: dict | None = None, *, token: str = "",
         basic: tuple[str, str] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """POST ``<base>/<endpoint>`` and return the reply's ``data``; StackError with the server's message."""
    headers = {"Content-Type": "application/json"}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{base_url.rstrip('/')}/{endpoint}", data=json.dumps(payload or {}).encode(),
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read().decode() or "{}")
    except urllib.error.HTTPError as exc:
        try:
            msg = json.loads(exc.read().decode()).get("meta", {}).get("result_msg", "")
        except (ValueError, AttributeError):
            msg = ""
        raise StackError(f"{endpoint} at {base_url} answered HTTP {exc.code}" + (f": {msg}" if msg else ""),
                         "check that the server runs (`inv status`) and the agent key pair matches "
                         "(`inv install` keeps them in step)") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StackError(f"{endpoint} at {base_url}: no answer ({getattr(exc, 'reason', exc)})",
                         "start the server with `inv up`") from None
    return body.get("data") or {}


def login(base_url: str, key: str, secret: str) -> str:
    return str(call(base_url, "auth.login", basic=(key, secret)).get("token", ""))


def workers(base_url: str, key: str, secret: str) -> list[dict]:
    """Every worker the server knows (``workers.get_all``), as the agent identity sees them."""
    token = login(base_url, key, secret)
    return list(call(base_url, "workers.get_all", {}, token=token).get("workers") or [])
