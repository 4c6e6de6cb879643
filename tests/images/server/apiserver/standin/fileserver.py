"""ClearML fileserver test stand-in (not the product): port 8081, files under /mnt/fileserver.

Reproduces from CLEARML_FACTS.md "Fileserver auth (on by default since 1.16)" and the upstream
fileserver's routes: ``GET /`` -> "OK"; ``POST /`` multipart upload where each file field's NAME is
the target path (the reply lists the stored paths); ``GET /<path>``; ``DELETE /<path>``;
``POST /delete_many`` when ``fileserver.delete.allow_batch``. With ``fileserver.auth.enabled`` the
token comes from ``Authorization: Bearer`` (other schemes: 401) or a cookie named in
``fileserver.auth.cookie_names``, and is checked by logging in to ``hosts.api_server`` with the
fileserver's OWN ``secure.credentials.fileserver`` pair and calling ``auth.validate_token``: wrong
fileserver system credentials make every authenticated request fail (500), the pitfall the kit
avoids. Valid tokens are cached in memory (the real server uses Redis db 8). Uploads stream to disk.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import posixpath
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

from .config import get, load_config
from .web import CHUNK, Handler, log, serve

ROLE = "fileserver"
UPLOAD_FOLDER = Path(os.environ.get("CLEARML_UPLOAD_FOLDER", "/mnt/fileserver"))
UMASK = os.umask(0o022)
os.umask(UMASK)


class Abort(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def safe_path(path: str) -> Path | None:
    """Target under the upload folder, or None if the path escapes it (like werkzeug safe_join)."""
    rel = posixpath.normpath(path.lstrip("/"))
    if rel in ("", ".") or rel == ".." or rel.startswith("../") or "\\" in rel or "\0" in rel:
        return None
    return UPLOAD_FOLDER / rel


# --- token validation against the apiserver ----------------------------------------------------


class TokenChecker:
    def __init__(self, cfg: Any) -> None:
        self.api = str(get(cfg, "hosts.api_server", "http://apiserver:8008")).rstrip("/")
        self.key = str(get(cfg, "secure.credentials.fileserver.user_key", ""))
        self.secret = str(get(cfg, "secure.credentials.fileserver.user_secret", ""))
        self.ttl = float(get(cfg, "fileserver.auth.tokens_cache_threshold_sec", 43200))
        self.cache: dict[str, float] = {}
        self.own_token: str | None = None
        self.lock = threading.Lock()

    def _call(self, endpoint: str, headers: dict[str, str], body: dict[str, Any] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(f"{self.api}/{endpoint}", data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json", **headers}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def _login(self) -> str:
        basic = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        status, reply = self._call("auth.login", {"Authorization": f"Basic {basic}"})
        if status != 200:
            log(ROLE, f"fileserver system login to {self.api} failed ({status}): "
                      f"{reply.get('meta', {}).get('result_msg')}")
            raise Abort(500, f"Internal error (status={status})")
        return reply["data"]["token"]

    def validate(self, token: str) -> None:
        with self.lock:
            if self.cache.get(token, 0) > time.monotonic():
                return
        try:
            for attempt in (1, 2):
                if self.own_token is None:
                    self.own_token = self._login()
                status, reply = self._call("auth.validate_token", {"Authorization": f"Bearer {self.own_token}"},
                                           {"token": token})
                if status == 401 and attempt == 1:
                    self.own_token = None  # our own token expired or the secret rotated: log in again
                    continue
                break
        except OSError as exc:
            log(ROLE, f"apiserver {self.api} unreachable: {exc}")
            raise Abort(500, "Internal error (apiserver unreachable)") from None
        if status != 200:
            log(ROLE, f"Error validating token (status={status})")
            raise Abort(status, f"Internal error (status={status})" if status >= 500 else HTTPStatus(status).phrase)
        data = reply["data"]
        if not data["valid"]:
            log(ROLE, f"Error validating token: {data['msg']}")
            raise Abort(401, data["msg"])
        with self.lock:
            self.cache[token] = time.monotonic() + self.ttl


# --- streaming multipart ---------------------------------------------------------------------


def _header_params(value: str) -> dict[str, str]:
    params = {}
    for item in value.split(";")[1:]:
        key, _, val = item.strip().partition("=")
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"')
        params[key.lower()] = val
    return params


def multipart_parts(chunks: Iterator[bytes], boundary: bytes) -> Iterator[tuple[dict[str, str], Iterator[bytes]]]:
    """Yield (headers, data-iterator) per part; each part's data must be consumed before the next."""
    delimiter = b"\r\n--" + boundary
    buf = b"\r\n"  # lets the first boundary match the same delimiter as the others
    source = iter(chunks)

    def fill() -> bool:
        nonlocal buf
        data = next(source, b"")
        buf += data
        return bool(data)

    while delimiter not in buf:  # skip the preamble
        buf = buf[-len(delimiter):]
        if not fill():
            return
    buf = buf[buf.index(delimiter) + len(delimiter):]
    while True:
        while len(buf) < 2:
            if not fill():
                return
        if buf.startswith(b"--"):
            return  # closing delimiter
        while b"\r\n\r\n" not in buf:
            if not fill():
                return
        head, buf = buf.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip():
                headers[name.strip().lower()] = value.strip()
        done = False

        def data() -> Iterator[bytes]:
            nonlocal buf, done
            while True:
                idx = buf.find(delimiter)
                if idx >= 0:
                    out, buf = buf[:idx], buf[idx + len(delimiter):]
                    done = True
                    if out:
                        yield out
                    return
                keep = len(delimiter) - 1
                if len(buf) > keep:
                    out, buf = buf[:-keep], buf[-keep:]
                    yield out
                if not fill():
                    raise ValueError("multipart body ended before its closing boundary")

        yield headers, data()
        if not done:
            for _ in data():
                pass


def save_stream(target: Path, data: Iterator[bytes]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for piece in data:
                fh.write(piece)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; a plain save honours the umask
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


# --- HTTP ------------------------------------------------------------------------------------


def handle_errors(fn: Callable[[FileHandler], None]) -> Callable[[FileHandler], None]:
    """Turn Abort into its reply; refuse compressed bodies like the real fileserver."""

    def wrapper(self: FileHandler) -> None:
        try:
            if self.headers.get("Content-Encoding"):
                raise Abort(415, f"Content encoding is not supported ({self.headers['Content-Encoding']})")
            fn(self)
        except Abort as exc:
            self.reply_text(exc.status, exc.text)

    return wrapper


class FileHandler(Handler):
    role = ROLE
    cfg: Any = None
    checker: TokenChecker | None = None

    def token(self) -> str | None:
        header = self.headers.get("Authorization")
        if header:
            if not header.startswith("Bearer "):
                log(ROLE, "Only bearer token authorization is supported")
                raise Abort(401, "Only bearer token authorization is supported")
            return header.partition(" ")[2]
        cookies = dict(p.strip().partition("=")[::2] for p in self.headers.get("Cookie", "").split(";") if "=" in p)
        for name in get(self.cfg, "fileserver.auth.cookie_names", []):
            if cookies.get(name):
                return cookies[name]
        return None

    def validate(self) -> None:
        if self.checker is None:
            return
        token = self.token()
        if not token:
            log(ROLE, "Error getting token")
            raise Abort(401, "Unauthorized")
        self.checker.validate(token)

    @handle_errors
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/":
            if self.checker and self.token():
                self.validate()
            self.reply_text(200, "OK")
            return
        self.validate()
        target = safe_path(unquote(url.path))
        if target is None or not target.is_file():
            raise Abort(404, "Not Found")
        headers = [("Content-Length", str(target.stat().st_size))]
        if "download" in parse_qs(url.query, keep_blank_values=True):
            headers.append(("Content-Disposition", f'attachment; filename="{target.name}"'))
        _, encoding = mimetypes.guess_type(target.name)
        ctype = "application/octet-stream" if encoding == "gzip" else (
            mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        with open(target, "rb") as fh:
            shutil.copyfileobj(fh, self.wfile, CHUNK)
        log(ROLE, f"Downloaded file {url.path.lstrip('/')}")

    @handle_errors
    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/delete_many" and get(self.cfg, "fileserver.delete.allow_batch", False):
            self.batch_delete()
            return
        if path != "/":
            raise Abort(405, "Method Not Allowed")
        limit = int(get(self.cfg, "fileserver.upload.max_upload_size_mb", 0) or 0)
        if limit and int(self.headers.get("Content-Length") or 0) > limit * 1024 * 1024:
            raise Abort(413, "Request Entity Too Large")
        self.validate()
        ctype = self.headers.get("Content-Type", "")
        boundary = _header_params(ctype).get("boundary")
        if not ctype.startswith("multipart/form-data") or not boundary:
            raise Abort(400, "Expected a multipart/form-data upload")
        results = []
        try:
            for headers, data in multipart_parts(self.body_chunks(), boundary.encode()):
                params = _header_params(headers.get("content-disposition", ""))
                name = params.get("name", "")
                if "filename" not in params or not name:
                    continue  # plain form fields are not files (werkzeug's request.files)
                target = safe_path(name)
                if target is None:
                    raise Abort(404, "Not Found")
                save_stream(target, data)
                results.append(name.lstrip("/"))
        except ValueError as exc:
            raise Abort(400, str(exc)) from None
        log(ROLE, f"Uploaded {len(results)} files")
        self.reply(200, json.dumps(results).encode(), "text/html; charset=utf-8")

    @handle_errors
    def do_DELETE(self) -> None:
        self.validate()
        path = unquote(urlsplit(self.path).path).lstrip("/")
        target = safe_path(path)
        if not (target and target.is_file()):
            log(ROLE, f"Error deleting file {target}. Not found or not a file")
            raise Abort(404, f"File {path} not found")
        target.unlink()
        log(ROLE, f"Deleted file {target}")
        self.reply(200, json.dumps(path).encode(), "text/html; charset=utf-8")

    def batch_delete(self) -> None:
        self.validate()
        try:
            body = self.read_json()
        except ValueError:
            raise Abort(400, "Json payload is missing") from None
        files = (body or {}).get("files")
        if not files:
            raise Abort(400, "files are missing")
        deleted: dict[str, str] = {}
        errors: dict[str, list[str]] = {}
        for file in files:
            path = unquote_plus(file)
            target = safe_path(path) if path.strip("/") else None
            if not path.strip("/"):
                errors.setdefault("Empty path not allowed", []).append(file)
            elif not (target and target.exists()):
                errors.setdefault("Not found", []).append(file)
            else:
                shutil.rmtree(target) if target.is_dir() else target.unlink()
                deleted[file] = path
        log(ROLE, f"Deleted {len(deleted)} files/folders")
        self.reply(200, json.dumps({"deleted": deleted, "errors": errors}).encode(), "text/html; charset=utf-8")


def main() -> None:
    cfg = load_config()
    FileHandler.cfg = cfg
    if get(cfg, "fileserver.auth.enabled", True):
        FileHandler.checker = TokenChecker(cfg)
        log(ROLE, f"token checks enabled against {FileHandler.checker.api}")
    else:
        log(ROLE, "token checks disabled (fileserver.auth.enabled is false)")
    UPLOAD_FOLDER.mkdir(parents=True, exist_ok=True)
    host, port = str(get(cfg, "fileserver.listen.host", "0.0.0.0")), int(get(cfg, "fileserver.listen.port", 8081))
    serve(FileHandler, host, port)


if __name__ == "__main__":
    main()
