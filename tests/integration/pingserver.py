"""Test stand-in for the three ClearML services behind the SSH server (tests only, not the product).

Reproduces only what the tunnel tests observe: the API server answers ``GET /debug.ping`` with HTTP 200
and the server's JSON envelope ``{"meta": {..., "result_code": 200}, "data": {...}}``; the web UI and
the file server answer HTTP requests. Every reply names its role so a test can tell which service a
tunnel reached. Usage: ``python3 pingserver.py WEB_PORT API_PORT FILES_PORT`` (listens on 127.0.0.1).
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler_for(role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if role == "api" and self.path.split("?")[0] == "/debug.ping":
                trx = uuid.uuid4().hex
                body = {"meta": {"id": trx, "trx": trx, "endpoint": {"name": "debug.ping"}, "result_code": 200,
                                 "result_subcode": 0, "result_msg": "OK", "error_stack": "", "error_data": {}},
                        "data": {"msg": "ClearML server", "role": role}}
            else:
                body = {"role": role, "path": self.path}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    servers = [ThreadingHTTPServer(("127.0.0.1", int(port)), handler_for(role))
               for role, port in zip(("web", "api", "files"), sys.argv[1:4])]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("pingserver: listening", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
