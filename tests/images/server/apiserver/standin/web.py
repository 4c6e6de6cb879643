"""HTTP plumbing shared by the stand-in roles (test stand-in, not the product): a threading
stdlib server, JSON/text replies, body reading that copes with Content-Length and chunked."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = 1 << 16


def log(role: str, msg: str) -> None:
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {role}: {msg}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    role = "standin"
    server_header = "clearml"
    _body_read = False

    def parse_request(self) -> bool:
        self._body_read = False  # one handler object serves every request of a keep-alive connection
        return super().parse_request()

    def version_string(self) -> str:
        return self.server_header

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log(self.role, f"{self.address_string()} {format % args}")

    # -- request body --------------------------------------------------------------------
    def body_chunks(self) -> Iterator[bytes]:
        """Yield the request body in pieces without holding it whole."""
        self._body_read = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(CHUNK, remaining))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            data = self.rfile.read(min(CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data

    def read_body(self) -> bytes:
        return b"".join(self.body_chunks())

    def read_json(self) -> Any:
        raw = self.read_body()
        return json.loads(raw) if raw.strip() else {}

    def drain(self) -> None:
        """Consume an unread body so the client sees our answer, not a reset connection."""
        if not self._body_read:
            for _ in self.body_chunks():
                pass

    # -- replies ---------------------------------------------------------------------------
    def reply(self, status: int, body: bytes, content_type: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.drain()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status: int, obj: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.reply(status, json.dumps(obj).encode(), "application/json", headers)

    def reply_text(self, status: int, text: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.reply(status, text.encode(), "text/plain; charset=utf-8", headers)


def serve(handler: type[Handler], host: str, port: int) -> None:
    """Serve forever; SIGTERM stops cleanly (also when running as PID 1 without tini)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    log(handler.role, f"listening on {host}:{port}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
