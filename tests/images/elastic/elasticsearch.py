"""Elasticsearch test stand-in (ELASTIC_IMAGE), not the product.

Reproduces from CLEARML_FACTS.md: "Host layout ... Containers run as uid 1000" (like the real image
it runs as uid 1000 and stops with an AccessDeniedException when /usr/share/elasticsearch/data is not
writable, the classic missing ``chown 1000``) and "Official backup" (documents are files, fsynced and
atomically renamed, so they survive down/up and backup/restore). HTTP on 9200:
``GET /`` cluster info with ``version.number`` (``STANDIN_VERSION``, default 8.17.0),
``GET /_cluster/health`` (always green, so any ``wait_for_status`` is met at once; ``timeout`` is
accepted), ``PUT|POST|GET /<index>/_doc/<id>``. The official settings passed as environment
(``discovery.type``, ``cluster.name``, ``ES_JAVA_OPTS``...) are accepted; ``ES_JAVA_OPTS`` is logged
and ``cluster.name`` / ``node.name`` show in the replies.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DATA = Path(os.environ.get("STANDIN_ES_DATA", "/usr/share/elasticsearch/data"))
VERSION = os.environ.get("STANDIN_VERSION", "8.17.0")
CLUSTER = os.environ.get("cluster.name", "docker-cluster")
NODE = os.environ.get("node.name", socket.gethostname())
NAME = re.compile(r"[a-z0-9_][a-z0-9_.+-]{0,254}")
DOC_ID = re.compile(r"[A-Za-z0-9_.-]{1,512}")
WRITE_LOCK = threading.Lock()


def log(msg: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(json.dumps({"@timestamp": stamp, "log.level": "INFO", "message": msg, "standin": True}),
          file=sys.stderr, flush=True)


def durable_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_data_dir() -> str:
    """Fail like ES on an unwritable data path; return the cluster uuid kept in the data dir."""
    try:
        node = DATA / "standin.node"  # rewritten at every start: the node lock the real ES takes
        cluster_uuid = json.loads(node.read_text())["cluster_uuid"] if node.exists() else uuid.uuid4().hex[:22]
        durable_write(node, json.dumps({"cluster_uuid": cluster_uuid, "version": VERSION}).encode())
        return cluster_uuid
    except PermissionError:
        print(f"ERROR: Elasticsearch did not exit normally - check the logs at /usr/share/elasticsearch/logs\n"
              f"java.lang.IllegalStateException: failed to obtain node locks, tried [{DATA}]; "
              f"nested: java.nio.file.AccessDeniedException: {DATA} (uid {os.getuid()} cannot write here)",
              file=sys.stderr, flush=True)
        sys.exit(1)


class EsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cluster_uuid = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log(f"{self.address_string()} {format % args}")

    def send(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-elastic-product", "Elasticsearch")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def doc_path(self, parts: list[str]) -> Path | None:
        if len(parts) == 3 and parts[1] == "_doc" and NAME.fullmatch(parts[0]) and DOC_ID.fullmatch(parts[2]):
            return DATA / "indices" / parts[0] / f"{parts[2]}.json"
        return None

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if not parts:
            self.send(200, {"name": NODE, "cluster_name": CLUSTER, "cluster_uuid": self.cluster_uuid,
                            "version": {"number": VERSION, "build_flavor": "default", "build_type": "docker"},
                            "tagline": "You Know, for Search"})
        elif parts == ["_cluster", "health"]:
            query = parse_qs(url.query)
            wanted = query.get("wait_for_status", ["green"])[0]
            if wanted not in ("green", "yellow", "red"):
                self.send(400, {"error": {"type": "illegal_argument_exception",
                                          "reason": f"unknown cluster health status [{wanted}]"}, "status": 400})
                return
            self.send(200, {"cluster_name": CLUSTER, "status": "green", "timed_out": False, "number_of_nodes": 1,
                            "number_of_data_nodes": 1, "active_primary_shards": 0, "active_shards": 0,
                            "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
                            "active_shards_percent_as_number": 100.0})
        elif (path := self.doc_path(parts)) is not None:
            if path.is_file():
                stored = json.loads(path.read_text())
                self.send(200, {"_index": parts[0], "_id": parts[2], "_version": stored["_version"],
                                "found": True, "_source": stored["_source"]})
            else:
                self.send(404, {"_index": parts[0], "_id": parts[2], "found": False})
        else:
            self.send(400, {"error": {"type": "standin_unsupported", "reason": f"no handler for {url.path}"},
                            "status": 400})

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.doc_path(parts)
        if path is None:
            self.send(400, {"error": {"type": "standin_unsupported", "reason": "expected /<index>/_doc/<id>"},
                            "status": 400})
            return
        try:
            source = json.loads(raw)
        except ValueError as exc:
            self.send(400, {"error": {"type": "mapper_parsing_exception", "reason": str(exc)}, "status": 400})
            return
        with WRITE_LOCK:
            version = json.loads(path.read_text())["_version"] + 1 if path.is_file() else 1
            durable_write(path, json.dumps({"_version": version, "_source": source}).encode())
        self.send(201 if version == 1 else 200, {"_index": parts[0], "_id": parts[2], "_version": version,
                                                 "result": "created" if version == 1 else "updated"})

    do_POST = do_PUT


def main() -> int:
    log(f"version[{VERSION}] standin, pid[{os.getpid()}], uid[{os.getuid()}]")
    log(f"ES_JAVA_OPTS={os.environ.get('ES_JAVA_OPTS', '')!r}")
    EsHandler.cluster_uuid = check_data_dir()
    server = ThreadingHTTPServer(("0.0.0.0", 9200), EsHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log(f"started, cluster [{CLUSTER}], node [{NODE}], data [{DATA}]")
    server.serve_forever()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
