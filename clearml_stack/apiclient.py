"""A minimal ClearML API and file server client over plain HTTP (urllib), the way the SDK talks.

Login is HTTP Basic on ``auth.login`` (an access key and secret, or a fixed web user's name and
password); every later call carries ``Authorization: Bearer <token>``. The file server takes a
multipart POST on its root whose field name is the file's path (as the SDK uploads artifacts), and
serves the file back on GET at that path; with its auth on it checks the same token. Nothing here knows what
runs behind the URLs: it reports what the server answered.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    """What to log in with: an access key and secret, or a web user's name and password."""

    key: str
    secret: str = field(repr=False)
    source: str = ""  # for messages, e.g. "web user alice"

    def basic_header(self) -> str:
        raw = f"{self.key}:{self.secret}".encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: the status (0 when nothing answered), the API's data and message."""

    status: int
    data: dict | None = None
    message: str = ""
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        """The server's answer in one line, e.g. ``HTTP 401: Unauthorized (invalid credentials)``."""
        if self.status == 0:
            return f"no answer ({self.message})"
        return f"HTTP {self.status}" + (f": {self.message}" if self.message else "")


def parse_answer(status: int, body: bytes) -> Answer:
    """The API's envelope ``{"meta": {"result_msg": ...}, "data": {...}}``, or the raw body's start (pure)."""
    text = body.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and ("meta" in doc or "data" in doc):
        meta = doc.get("meta") or {}
        message = str(meta.get("result_msg") or "")
        extra = meta.get("error_data") or meta.get("result_subcode")
        if extra and not (200 <= status < 300):
            message += f" ({extra})"
        data = doc.get("data")
        return Answer(status, data if isinstance(data, dict) else None, message.strip(), body)
    excerpt = " ".join(text.split())[:200]
    return Answer(status, doc if isinstance(doc, dict) else None, excerpt, body)


def multipart(field_name: str, filename: str, content: bytes, boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field, and its content type (pure given a boundary).

    Names are quoted the way browsers do (``"`` as ``%22``); a backslash or a control character,
    which parsers disagree on, is refused.
    """
    for name in (field_name, filename):
        if "\\" in name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
            raise ValueError(f"{name!r}: no backslash or control character in a file name")
    boundary = boundary or "----clearml-lightning-" + secrets.token_hex(12)
    quoted_field = field_name.replace('"', "%22")
    quoted_file = filename.replace('"', "%22")
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{quoted_field}\"; filename=\"{quoted_file}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode("utf-8")
    return head + content + f"\r\n--{boundary}--\r\n".encode("ascii"), f"multipart/form-data; boundary={boundary}"


class Api:
    """Talks to one API server and one file server; remembers the token after :meth:`login`."""

    def __init__(self, api_url: str, files_url: str = "", timeout: float = 60.0, cafile: str = "") -> None:
        """``cafile``: verify https servers against this CA file instead of the system's (a private CA)."""
        self.api_url = api_url.rstrip("/")
        self.files_url = files_url.rstrip("/")
        self.timeout = timeout
        self.token = ""
        self.context = ssl.create_default_context(cafile=cafile) if cafile else None

    # --- transport ---------------------------------------------------------------------------
    def _send(self, url: str, data: bytes | None, headers: dict[str, str], method: str) -> Answer:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as resp:
                return parse_answer(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            return parse_answer(exc.code, exc.read() or b"")
        except (urllib.error.URLError, OSError) as exc:
            return Answer(0, message=str(getattr(exc, "reason", exc)))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # --- API ---------------------------------------------------------------------------------
    def ping(self) -> Answer:
        return self._send(self.api_url + "/debug.ping", None, {}, "GET")

    def login(self, credentials: Credentials) -> Answer:
        """``auth.login`` with HTTP Basic; on success the token is kept for the calls that follow."""
        answer = self._send(self.api_url + "/auth.login", b"{}",
                            {"Authorization": credentials.basic_header(), "Content-Type": "application/json"}, "POST")
        token = (answer.data or {}).get("token") if answer.ok else None
        if answer.ok and not token:
            return Answer(answer.status, answer.data, "the answer holds no token", answer.body)
        self.token = token or ""
        return answer

    def call(self, endpoint: str, payload: dict | None = None) -> Answer:
        """POST ``<api>/<service.action>`` with a JSON body and the token."""
        body = json.dumps(payload or {}).encode("utf-8")
        return self._send(f"{self.api_url}/{endpoint}", body, {**self._auth(), "Content-Type": "application/json"},
                          "POST")

    def call_lines(self, endpoint: str, items: list[dict]) -> Answer:
        """POST a JSON-lines body (``events.add_batch``)."""
        body = "\n".join(json.dumps(item) for item in items).encode("utf-8")
        return self._send(f"{self.api_url}/{endpoint}", body, {**self._auth(), "Content-Type": "application/json"},
                          "POST")

    # --- file server -------------------------------------------------------------------------
    def file_url(self, path: str) -> str:
        return self.files_url + "/" + urllib.parse.quote(path.strip("/"))

    def upload(self, path: str, content: bytes) -> Answer:
        """POST ``<files>/`` with one file field named by its path."""
        path = path.strip("/")
        body, content_type = multipart(path, path.rsplit("/", 1)[-1], content)
        return self._send(self.files_url + "/", body, {**self._auth(), "Content-Type": content_type}, "POST")

    def download(self, path: str) -> Answer:
        """GET the file; the bytes are in ``answer.body``."""
        url = self.file_url(path)
        request = urllib.request.Request(url, headers=self._auth(), method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as resp:
                return Answer(resp.status, None, "", resp.read())
        except urllib.error.HTTPError as exc:
            return parse_answer(exc.code, exc.read() or b"")
        except (urllib.error.URLError, OSError) as exc:
            return Answer(0, message=str(getattr(exc, "reason", exc)))
