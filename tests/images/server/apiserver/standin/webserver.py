"""ClearML webserver test stand-in (not the product): port 80.

Reproduces from CLEARML_FACTS.md "Subdomains, cookies and the web UI": ``/configuration.json``
built from ``WEBSERVER__*`` variables (``WEBSERVER__apiBaseUrl`` -> ``apiBaseUrl``; values parsed
as JSON, else as HOCON, else kept as text), and the container's own proxy of ``/api/...`` to the
apiserver and ``/files/...`` to the fileserver with the prefix stripped (method, body, headers
including Cookie/Authorization, and every Set-Cookie passed through, bodies streamed).
``NGINX_APISERVER_ADDRESS`` / ``NGINX_FILESERVER_ADDRESS`` override the upstreams as in the real
image. ``GET /`` serves a tiny index.html instead of the Angular app.
"""

from __future__ import annotations

import http.client
import json
import os
from typing import Any
from urllib.parse import urlsplit

from .config import parse_value
from .web import CHUNK, Handler, log, serve

ROLE = "webserver"
PREFIX = "WEBSERVER__"
INDEX = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>ClearML</title></head>
<body><app-root>ClearML web UI (test stand-in)</app-root></body></html>
"""
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length", "expect"}  # 100-continue is answered here


def web_configuration(environ: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in sorted(k for k in environ if k.startswith(PREFIX)):
        raw = environ[name]
        try:
            value = json.loads(raw)
        except ValueError:
            try:
                value = parse_value(raw)
            except Exception:
                value = raw
        config[name[len(PREFIX):]] = value
    return config


class WebHandler(Handler):
    role = ROLE
    server_header = "nginx"
    upstreams = {
        "/api/": os.environ.get("NGINX_APISERVER_ADDRESS", "http://apiserver:8008"),
        "/files/": os.environ.get("NGINX_FILESERVER_ADDRESS", "http://fileserver:8081"),
    }

    def route(self) -> None:
        path = urlsplit(self.path).path
        for prefix, upstream in self.upstreams.items():
            if path.startswith(prefix):
                self.proxy(upstream, "/" + self.path[len(prefix):])
                return
        if self.command not in ("GET", "HEAD"):
            self.reply_text(405, "Method Not Allowed")
        elif path == "/configuration.json":
            body = json.dumps(web_configuration(dict(os.environ)), indent=2).encode()
            self.reply(200, body, "application/json", [("Cache-Control", "no-cache")])
        elif path in ("/", "/index.html"):
            self.reply(200, INDEX, "text/html; charset=utf-8")
        else:
            self.reply_text(404, "Not Found")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = route

    def proxy(self, upstream: str, path: str) -> None:
        target = urlsplit(upstream)
        conn = http.client.HTTPConnection(target.hostname or "localhost", target.port or 80, timeout=300)
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        headers += [("Host", self.headers.get("Host", target.netloc)), ("X-Forwarded-For", self.client_address[0])]
        length = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif length is not None:
                conn.putheader("Content-Length", length)
            conn.endheaders()
            for piece in self.body_chunks():
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
        except OSError as exc:
            log(ROLE, f"upstream {upstream} failed: {exc}")
            self.reply_text(502, "Bad Gateway")
            conn.close()
            return
        self.send_response(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        body_length = resp.getheader("Content-Length")
        if body_length is not None:
            self.send_header("Content-Length", body_length)
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while self.command != "HEAD" and (piece := resp.read(CHUNK)):
                self.wfile.write(piece if body_length is not None else b"%x\r\n%s\r\n" % (len(piece), piece))
            if body_length is None and self.command != "HEAD":
                self.wfile.write(b"0\r\n\r\n")
        finally:
            conn.close()


def main() -> None:
    log(ROLE, f"configuration.json: {json.dumps(web_configuration(dict(os.environ)))}")
    serve(WebHandler, "0.0.0.0", int(os.environ.get("STANDIN_WEBSERVER_PORT", "80")))


if __name__ == "__main__":
    main()
