"""MongoDB test stand-in (MONGO_IMAGE), not the product.

Reproduces from CLEARML_FACTS.md: "Images and versions" (accepts and logs mongod arguments such as
``--setParameter internalQueryMaxBlockingSortMemoryUsageBytes=196100200``; data under /data/db,
/data/configdb present), "Host layout" (the volumes the kit bind-mounts), "Upgrade hops for Mongo
are mandatory ... Skipping gives mongo exit 62" and "Official backup" (data survives down/up and
tar backup/restore: every write is fsynced and atomically renamed; ``mongod.lock`` holds the pid
while running and is emptied on a clean stop, like mongod's).

Instead of the wire protocol, port 27017 speaks a tiny HTTP JSON API for tests:
``GET /`` (ping), ``PUT /<collection>/<id>`` (JSON body), ``GET /<collection>/<id>``,
``DELETE /<collection>/<id>``, ``GET /<collection>`` (all records, id -> record).

Versions: ``/data/db/standin.version`` records the data format version (``STANDIN_VERSION``,
default 7.0, major.minor kept). At start a stand-in of version V opens data written by V or by the
release just before V in HOPS and rewrites the file to V (one clean start per hop, as with the real
feature compatibility version); anything else (a skipped hop, or a downgrade) exits 62.
``STANDIN_SKIP_VERSION_CHECK=1`` turns the rule off.

Repair (for the kit's ``inv repair``, from the original project's "mongod --repair on the data
directory"): a record file that is not valid JSON stands for corrupted data files. A normal start
refuses such data (logs that ``--repair`` is needed, exits 100, as mongod does on corruption);
``mongod --repair --dbpath /data/db`` applies the same version rule, discards the unreadable records
and leftover temp files, empties ``mongod.lock``, logs what it did and exits 0 without serving.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOPS = ("3.6", "4.0", "4.2", "4.4", "5.0", "6.0", "7.0", "8.0")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
EXIT_NEED_UPGRADE = 62
WRITE_LOCK = threading.Lock()


def log(msg: str) -> None:
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] mongod-standin: {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> dict[str, Any]:
    """The few mongod options that matter here; everything else is logged and ignored."""
    if argv and argv[0] == "mongod":
        argv = argv[1:]
    opts: dict[str, Any] = {"dbpath": "/data/db", "port": 27017, "bind_ip": "0.0.0.0", "setParameter": []}
    it = iter(argv)
    for arg in it:
        key, eq, value = arg.lstrip("-").partition("=")
        if key == "repair":
            opts["repair"] = True
        elif key in ("dbpath", "port", "bind_ip", "setParameter"):
            value = value if eq else next(it, "")
            if key == "setParameter":
                opts[key].append(value)
            else:
                opts[key] = int(value) if key == "port" else value
        elif key != "bind_ip_all":
            log(f"ignoring option {arg}")
    return opts


def durable_write(path: Path, data: bytes) -> None:
    """Write-then-rename with fsync of the file and its directory: survives a crash or kill."""
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


def major_minor(version: str) -> str:
    return ".".join(version.strip().split(".")[:2])


def check_version(db: Path, version: str) -> None:
    own, marker = major_minor(version), db / "standin.version"
    if marker.exists() and os.environ.get("STANDIN_SKIP_VERSION_CHECK") != "1":
        data = major_minor(marker.read_text())
        if data != own and data in HOPS and own in HOPS:
            step = HOPS.index(own) - HOPS.index(data)
            if step != 1:
                log(f"UPGRADE PROBLEM: the data files were written by version {data}; version {own} can only "
                    f"open data of {own} or {HOPS[HOPS.index(own) - 1]} (upgrade one release at a time, "
                    "no downgrades)")
                sys.exit(EXIT_NEED_UPGRADE)
        if data != own:
            log(f"data version {data} -> {own}")
    durable_write(marker, f"{own}\n".encode())


def corrupt_records(db: Path) -> list[Path]:
    """Record files that do not parse: what the stand-in treats as corrupted data files."""
    bad = []
    for path in sorted(db.glob("*/*.json")):
        try:
            json.loads(path.read_bytes())
        except ValueError:
            bad.append(path)
    return bad


def repair(db: Path) -> int:
    bad = corrupt_records(db)
    for path in bad:
        log(f"repair: discarding unreadable record {path.relative_to(db)}")
        path.unlink()
    leftovers = [p for p in db.glob("*/.*") if p.is_file()]
    for path in leftovers:
        path.unlink()
    kept = len(list(db.glob("*/*.json")))
    durable_write(db / "mongod.lock", b"")
    log(f"repair: done, {kept} records kept, {len(bad)} discarded, {len(leftovers)} temp files removed")
    return 0


def drop_privileges(paths: list[Path]) -> None:
    """Like the official entrypoint: as root, give the data to user mongodb and run as it."""
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("mongodb")
    for root in paths:
        for path in [root, *root.rglob("*")]:
            if path.lstat().st_uid != user.pw_uid:
                os.lchown(path, user.pw_uid, user.pw_gid)
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


class StoreHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    db = Path("/data/db")
    version = "7.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log(f"{self.address_string()} {format % args}")

    def send(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def target(self) -> tuple[str, str | None] | None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) > 2 or not all(NAME.fullmatch(p) for p in parts):
            return None
        return parts[0], parts[1] if len(parts) == 2 else None

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/":
            self.send(200, {"ok": 1, "version": self.version, "standin": True})
            return
        target = self.target()
        if target is None:
            self.send(400, {"ok": 0, "errmsg": "expected /<collection>[/<id>]"})
        elif target[1] is None:
            folder = self.db / target[0]
            docs = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
            self.send(200, docs)
        elif (path := self.db / target[0] / f"{target[1]}.json").is_file():
            self.send(200, json.loads(path.read_text()))
        else:
            self.send(404, {"ok": 0, "errmsg": "not found"})

    def do_PUT(self) -> None:
        target = self.target()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if target is None or target[1] is None:
            self.send(400, {"ok": 0, "errmsg": "expected PUT /<collection>/<id>"})
            return
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            self.send(400, {"ok": 0, "errmsg": f"invalid JSON: {exc}"})
            return
        with WRITE_LOCK:
            durable_write(self.db / target[0] / f"{target[1]}.json", json.dumps(doc).encode())
        self.send(200, {"ok": 1})

    def do_DELETE(self) -> None:
        target = self.target()
        path = self.db / target[0] / f"{target[1]}.json" if target and target[1] else None
        if path is None or not path.is_file():
            self.send(404, {"ok": 0, "errmsg": "not found"})
            return
        with WRITE_LOCK:
            path.unlink()
        self.send(200, {"ok": 1})


def main(argv: list[str]) -> int:
    opts = parse_args(argv)
    log(f"args {argv}; setParameter {opts['setParameter']}")
    db, configdb = Path(opts["dbpath"]), Path("/data/configdb")
    for path in (db, configdb):
        path.mkdir(parents=True, exist_ok=True)
    drop_privileges([db, configdb])
    version = os.environ.get("STANDIN_VERSION", "7.0")
    try:
        check_version(db, version)
        if opts.get("repair"):
            return repair(db)
        bad = corrupt_records(db)
        if bad:
            log(f"data files are corrupt ({', '.join(str(p.relative_to(db)) for p in bad)}); "
                "start mongod with --repair")
            return 100
        durable_write(db / "mongod.lock", f"{os.getpid()}\n".encode())
    except PermissionError as exc:
        log(f"cannot write to {db}: {exc}")
        return 100  # mongod's exit code when the data directory is unusable
    StoreHandler.db, StoreHandler.version = db, major_minor(version)
    server = ThreadingHTTPServer((opts["bind_ip"], opts["port"]), StoreHandler)
    server.daemon_threads = True

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"version {StoreHandler.version}, data in {db}, waiting for connections on port {opts['port']}")
    server.serve_forever()
    with WRITE_LOCK:
        durable_write(db / "mongod.lock", b"")
    log("clean shutdown")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
