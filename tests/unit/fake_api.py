"""An in-process HTTP server on 127.0.0.1 answering like a ClearML API and file server, for unit tests
of the plain-HTTP client (``clearml_stack.apiclient``/``smoke``) only.

It reproduces the documented request shapes the SDK uses: ``auth.login`` with HTTP Basic returns
``{"meta": {...}, "data": {"token": ...}}``; API calls need ``Authorization: Bearer <token>`` and
answer in the same envelope; ``events.add_batch`` takes JSON lines and answers ``added``;
``tasks.add_or_update_artifacts`` keeps artifacts by key and mode and answers ``updated``, and
``tasks.get_by_id`` lists them under ``execution.artifacts`` (a list, as the server returns them); the file
server takes a multipart POST on ``/`` whose field name is the file's path and serves it back on GET,
both with the token. ``endpoints`` switches endpoints off (answering 404 like an
unknown endpoint) so failure paths can be tested. It is not a stand-in for any image.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    ALL = {"debug.ping", "auth.login", "projects.get_all", "projects.create", "tasks.create", "events.add_batch",
           "tasks.add_or_update_artifacts", "tasks.get_by_id", "queues.get_all", "workers.get_all", "files"}

    def __init__(self, users: dict[str, str], endpoints: set[str] | None = None, corrupt_downloads: bool = False,
                 forget_artifacts: bool = False):
        self.users = users
        self.endpoints = set(self.ALL if endpoints is None else endpoints)
        self.corrupt_downloads = corrupt_downloads
        self.forget_artifacts = forget_artifacts  # accept artifacts but never list them
        self.tokens: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.projects: dict[str, str] = {}
        self.tasks: dict[str, dict] = {}
        self.events: list[dict] = []
        self.queues = [{"id": "q1", "name": "default"}, {"id": "q2", "name": "services"}]
        self.workers: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _reply(self, status: int, data: dict | None = None, msg: str = "OK", raw: bytes | None = None):
                body = raw if raw is not None else json.dumps(
                    {"meta": {"result_code": status, "result_msg": msg}, "data": data or {}}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                auth = self.headers.get("Authorization", "")
                return auth.startswith("Bearer ") and auth[7:] in server.tokens

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                path = urllib.parse.unquote(self.path.lstrip("/"))
                server.requests.append(("GET", path))
                if path == "debug.ping" and "debug.ping" in server.endpoints:
                    return self._reply(200, {"msg": "ClearML server"})
                if "files" in server.endpoints and path in server.files:
                    if not self._authorized():
                        return self._reply(401, msg="Unauthorized (missing token)")
                    data = server.files[path]
                    return self._reply(200, raw=data + b"x" if server.corrupt_downloads else data)
                self._reply(404, msg="Not found")

            def do_POST(self) -> None:
                path = self.path.lstrip("/")
                body = self._body()
                server.requests.append(("POST", path))
                if path == "":  # file server upload
                    if "files" not in server.endpoints:
                        return self._reply(404, msg="Not found")
                    if not self._authorized():
                        return self._reply(401, msg="Unauthorized (missing token)")
                    head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
                    for part in msg.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        server.files[name] = part.get_payload(decode=True)
                    return self._reply(200, raw=b"{}")
                if path not in server.endpoints:
                    return self._reply(404, msg=f"Unable to find endpoint for name {path} and version 2.31")
                if path == "auth.login":
                    auth = self.headers.get("Authorization", "")
                    if auth.startswith("Basic "):
                        user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                        if server.users.get(user) == pw:
                            token = secrets.token_hex(8)
                            server.tokens.add(token)
                            return self._reply(200, {"token": token})
                    return self._reply(401, msg="Unauthorized (invalid credentials)")
                if not self._authorized():
                    return self._reply(401, msg="Unauthorized (missing token)")
                if path == "events.add_batch":
                    items = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                    server.events += items
                    return self._reply(200, {"added": len(items), "errors": 0})
                payload = json.loads(body or b"{}")
                if path == "projects.get_all":
                    name = payload.get("name", "").strip("^$").replace("\\", "")
                    return self._reply(200, {"projects": [{"id": pid, "name": n} for n, pid in server.projects.items()
                                                          if n == name]})
                if path == "projects.create":
                    pid = "p" + secrets.token_hex(4)
                    server.projects[payload["name"]] = pid
                    return self._reply(200, {"id": pid})
                if path == "tasks.create":
                    if "name" not in payload or "type" not in payload:
                        return self._reply(400, msg="Validation error (missing name or type)")
                    tid = "t" + secrets.token_hex(4)
                    server.tasks[tid] = payload
                    return self._reply(200, {"id": tid})
                if path in ("tasks.add_or_update_artifacts", "tasks.get_by_id"):
                    task = server.tasks.get(payload.get("task", ""))
                    if task is None:
                        return self._reply(400, msg=f"Invalid task id (id={payload.get('task')})")
                    stored = task.setdefault("execution", {}).setdefault("artifacts", {})
                    if path == "tasks.get_by_id":
                        listed = [] if server.forget_artifacts else sorted(stored.values(), key=lambda a: a["key"])
                        return self._reply(200, {"task": {**task, "id": payload["task"],
                                                          "execution": {"artifacts": listed}}})
                    for artifact in payload.get("artifacts") or []:
                        if "key" not in artifact or "type" not in artifact:
                            return self._reply(400, msg="Validation error (artifact needs key and type)")
                        stored[(artifact["key"], artifact.get("mode", "output"))] = artifact
                    return self._reply(200, {"updated": 1})
                if path == "queues.get_all":
                    return self._reply(200, {"queues": server.queues})
                if path == "workers.get_all":
                    return self._reply(200, {"workers": server.workers})
                self._reply(404, msg="Not found")

        return Handler
