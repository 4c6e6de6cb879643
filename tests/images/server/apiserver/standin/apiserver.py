"""ClearML apiserver test stand-in (not the product): port 8008.

Reproduces from CLEARML_FACTS.md:
- "How the server reads configuration" (through standin.config) and the start-up wait for the stores;
- "Public default secrets": system credentials from ``secure.credentials.*``, ``webserver``/``tests``
  revoked when fixed users are on, ``services_agent`` only when set, JWTs signed with
  ``secure.auth.token_secret``;
- "Web login (fixed users)": bcrypt check of base64-wrapped hashes, 500 on passwords over 72 bytes
  (bcrypt >= 5), duplicate usernames stop the server, the "Fixed users mode is enabled" log line,
  the ``clearml_token_basic`` cookie;
- "Subdomains, cookies": cookie Domain (one or a list), HttpOnly, Secure, SameSite from config;
- "Fileserver auth": ``auth.validate_token`` for system identities;
- app credentials (``auth.create_credentials``, what the web UI's "Create new credentials" calls): kept
  in MongoDB like the real server's, so they survive restarts and a rotation of the system credentials
  and signing secrets. The stand-in keeps them in the Mongo stand-in (its HTTP JSON API, collection
  ``auth_credentials``, one record per access key); HTTP Basic checks system credentials, then these,
  then the fixed users, as the real server looks a key up in its user database first.
Replies use the real envelope ``{"meta": {...}, "data": {...}}``. Only debug.ping, server.info
(``version`` from ``STANDIN_VERSION``, default 2.3.0), auth.login, auth.validate_token and
auth.create_credentials exist, plus
the queues/workers calls a clearml-agent daemon makes to register and idle (standin/workers.py); any
other endpoint answers 400 like an unknown endpoint. The test-only
``GET /standin.effective_config`` returns the merged configuration. ``STANDIN_READY_AFTER=N`` makes
debug.ping answer 503 for the first N seconds after start (a server that is slow to get ready, for the
readiness benchmark).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import string
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import bcrypt

from . import workers
from .config import get, load_config, plain
from .web import Handler, log, serve

ROLE = "apiserver"
COMPANY = "d1bd92a3b039400cbafc60a7a5b1e52b"
API_VERSION = "2.31"
SERVER_VERSION = os.environ.get("STANDIN_VERSION", "2.3.0")  # variants bake in the version they stand for
READY_AT = time.monotonic() + float(os.environ.get("STANDIN_READY_AFTER", "0"))
STORES = (  # name, host env, port env, default host, default port
    ("mongo", "CLEARML_MONGODB_SERVICE_HOST", "CLEARML_MONGODB_SERVICE_PORT", "mongo", 27017),
    ("elasticsearch", "CLEARML_ELASTIC_SERVICE_HOST", "CLEARML_ELASTIC_SERVICE_PORT", "elasticsearch", 9200),
    ("redis", "CLEARML_REDIS_SERVICE_HOST", "CLEARML_REDIS_SERVICE_PORT", "redis", 6379),
)


class ApiError(Exception):
    def __init__(self, code: int, msg: str, subcode: int = 0) -> None:
        super().__init__(msg)
        self.code, self.msg, self.subcode = code, msg, subcode


@dataclass(frozen=True)
class Identity:
    user: str
    user_name: str
    role: str
    company: str = COMPANY


# --- tokens: HS256 JWT with the stdlib ---------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_encode(payload: dict[str, Any], secret: str) -> str:
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(payload).encode())
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def jwt_decode(token: str, secret: str) -> dict[str, Any]:
    """Payload of a valid token; ValueError with the reason otherwise."""
    try:
        header_b64, payload_b64, sig_b64 = token.split(".")
        header = json.loads(_unb64(header_b64))
        payload = json.loads(_unb64(payload_b64))
        sig = _unb64(sig_b64)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("Invalid token") from exc
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if header.get("alg") != "HS256" or not hmac.compare_digest(sig, expected):
        raise ValueError("Invalid token")
    if payload.get("exp", 0) < time.time():
        raise ValueError("Token expired")
    return payload


# --- app credentials, kept in the Mongo stand-in -----------------------------------------------

CREDENTIALS_COLLECTION = "auth_credentials"
KEY_ALPHABET = string.ascii_uppercase + string.digits


def mongo_url() -> str:
    name, host_env, port_env, host, port = STORES[0]
    return f"http://{os.environ.get(host_env, host)}:{os.environ.get(port_env, port)}"


def store_call(method: str, path: str, doc: dict[str, Any] | None = None) -> Any:
    """One request to the Mongo stand-in's JSON API; None for a record that does not exist."""
    req = urllib.request.Request(f"{mongo_url()}/{path}", method=method,
                                 data=None if doc is None else json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def create_credentials(ident: "Identity", label: str = "") -> dict[str, Any]:
    """A new key pair for ``ident``, stored before it is returned (real formats: 30-char key, 50+ secret)."""
    key = "".join(secrets.choice(KEY_ALPHABET) for _ in range(30))
    secret = secrets.token_urlsafe(48)
    store_call("PUT", f"{CREDENTIALS_COLLECTION}/{key}", {
        "secret": secret, "user": ident.user, "user_name": ident.user_name, "role": ident.role,
        "company": ident.company, "label": label, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    return {"access_key": key, "secret_key": secret, "label": label or None, "last_used": None}


def stored_credentials(key: str, secret: str) -> "Identity | None":
    """The identity of a stored app credential with this key and secret."""
    if not re.fullmatch(r"[A-Z0-9]{30}", key):
        return None
    record = store_call("GET", f"{CREDENTIALS_COLLECTION}/{key}")
    if not record or not hmac.compare_digest(str(record["secret"]).encode(), secret.encode()):
        return None
    return Identity(record["user"], record["user_name"], record["role"], record["company"])


# --- identities ------------------------------------------------------------------------------


class Auth:
    """Who may log in, built once from the effective configuration."""

    def __init__(self, cfg: Any) -> None:
        self.token_secret = str(get(cfg, "secure.auth.token_secret", ""))
        self.expiration = int(get(cfg, "apiserver.auth.default_expiration_sec", 2592000))
        fixed = get(cfg, "apiserver.auth.fixed_users", {})
        self.fixed_enabled = bool(get(fixed, "enabled", False))
        self.pass_hashed = bool(get(fixed, "pass_hashed", False))
        self.users: dict[str, str] = {}
        if self.fixed_enabled:
            for user in get(fixed, "users", []):
                name = str(user["username"])
                if name in self.users:
                    raise SystemExit(f"Duplicate fixed user name found: {name}")
                self.users[name] = str(user["password"])
        self.credentials: dict[str, tuple[str, Identity]] = {}
        for name, cred in get(cfg, "secure.credentials", {}).items():
            key, secret = str(get(cred, "user_key", "") or ""), str(get(cred, "user_secret", "") or "")
            if not key or not secret:
                continue  # services_agent stays unusable until both are set
            if self.fixed_enabled and get(cred, "revoke_in_fixed_mode", False):
                continue
            self.credentials[key] = (secret, Identity(f"__{name}__", name, str(get(cred, "role", "user"))))

    def check_basic(self, key: str, secret: str) -> Identity | None:
        entry = self.credentials.get(key)
        if entry and hmac.compare_digest(entry[0].encode(), secret.encode()):
            return entry[1]
        if entry is None:
            app = stored_credentials(key, secret)
            if app is not None:
                return app
        stored = self.users.get(key)
        if stored is None:
            return None
        if self.pass_hashed:
            ok = bcrypt.checkpw(secret.encode(), base64.b64decode(stored))  # raises > 72 bytes -> 500
        else:
            ok = hmac.compare_digest(stored.encode(), secret.encode())
        user_id = hashlib.sha256(f"{COMPANY}:{key}".encode()).hexdigest()[:32]
        return Identity(user_id, key, "user") if ok else None

    def issue(self, ident: Identity) -> str:
        now = int(time.time())
        payload = {"identity": {"company": ident.company, "user": ident.user, "user_name": ident.user_name,
                                "role": ident.role}, "iat": now, "exp": now + self.expiration}
        return jwt_encode(payload, self.token_secret)

    def from_token(self, token: str) -> Identity:
        ident = jwt_decode(token, self.token_secret)["identity"]
        return Identity(ident["user"], ident["user_name"], ident["role"], ident["company"])


def cookie_headers(cfg: Any, name: str, token: str) -> list[tuple[str, str]]:
    """One Set-Cookie per configured domain (a single value or a list), or one without Domain."""
    cookies = get(cfg, "apiserver.auth.cookies", {})
    attrs = [f"Max-Age={int(get(cookies, 'max_age', 99999999999))}", "Path=/"]
    if get(cookies, "httponly", False):
        attrs.append("HttpOnly")
    if get(cookies, "secure", False):
        attrs.append("Secure")
    if get(cookies, "samesite"):
        attrs.append(f"SameSite={get(cookies, 'samesite')}")
    domains = get(cookies, "domain")
    domains = domains if isinstance(domains, list) else [domains] if domains else [None]
    return [("Set-Cookie", "; ".join([f"{name}={token}"] + ([f"Domain={d}"] if d else []) + attrs))
            for d in domains]


# --- HTTP ------------------------------------------------------------------------------------


REGISTRY = workers.Registry()


class ApiHandler(Handler):
    role = ROLE
    cfg: Any = None
    auth: Auth

    def do_GET(self) -> None:
        self.dispatch()

    do_POST = do_GET

    def dispatch(self) -> None:
        path = urlsplit(self.path).path.strip("/")
        version, endpoint = re.fullmatch(r"(?:v(\d+(?:\.\d+)?)/)?(.*)", path).groups()  # type: ignore[union-attr]
        handlers = {
            "debug.ping": self.debug_ping,
            "server.info": lambda: {"version": SERVER_VERSION, "api_version": API_VERSION, "build": "standin"},
            "auth.login": self.auth_login,
            "auth.validate_token": self.auth_validate_token,
            "auth.create_credentials": self.auth_create_credentials,
            "standin.effective_config": lambda: plain(self.cfg),
            # what clearml-agent needs to register and idle (standin/workers.py)
            **workers.handlers(REGISTRY, lambda: self.read_json() or {}, self.user_name),
        }
        headers: list[tuple[str, str]] = []
        try:
            if endpoint not in handlers:
                raise ApiError(400, f"Invalid request path /{path}")
            self.extra_headers = headers
            code, data, msg = 200, handlers[endpoint](), "OK"
            subcode = 0
        except ApiError as exc:
            code, data, msg, subcode = exc.code, {}, exc.msg, exc.subcode
        except (workers.NotFound, KeyError) as exc:  # unknown queue, missing field: a bad request
            code, data, msg, subcode = 400, {}, f"Invalid request ({exc})", 0
        except Exception as exc:  # what the real server turns into a 500 (e.g. bcrypt on > 72 bytes)
            log(ROLE, f"error in {endpoint}: {exc!r}")
            code, data, msg, subcode, headers = 500, {}, f"General data error ({exc})", 0, []
        trx = uuid.uuid4().hex
        meta = {"id": trx, "trx": trx, "endpoint": {"name": endpoint, "requested_version": version or API_VERSION,
                "actual_version": "1.0"}, "result_code": code, "result_subcode": subcode,
                "result_msg": msg, "error_stack": "", "error_data": {}}
        self.reply_json(code, {"meta": meta, "data": data}, headers)

    def identity(self) -> Identity | None:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                # the real server decodes HTTP Basic as latin-1 (service_repo/auth/auth.py), then hashes UTF-8
                key, _, secret = base64.b64decode(value.strip()).decode("latin-1").partition(":")
            except (ValueError, binascii.Error):
                raise ApiError(401, "Unauthorized (invalid credentials)", 20) from None
            ident = self.auth.check_basic(key, secret)
            if ident is None:
                raise ApiError(401, "Unauthorized (invalid credentials)", 20)
            return ident
        token = value.strip() if scheme.lower() == "bearer" else self.cookie(
            str(get(self.cfg, "apiserver.auth.session_auth_cookie_name", "clearml_token_basic")))
        if not token:
            return None
        try:
            return self.auth.from_token(token)
        except ValueError as exc:
            raise ApiError(401, f"Unauthorized ({str(exc).lower()})", 21) from None

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("Cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None

    def user_name(self) -> str:
        """The caller's user name; 401 without credentials (workers and queues calls need one)."""
        ident = self.identity()
        if ident is None:
            raise ApiError(401, "Unauthorized (missing credentials)", 10)
        return ident.user_name

    def debug_ping(self) -> dict[str, Any]:
        if time.monotonic() < READY_AT:
            raise ApiError(503, "Service starting")
        return {"msg": "ClearML server"}

    def auth_login(self) -> dict[str, Any]:
        ident = self.identity()
        if ident is None:
            raise ApiError(401, "Unauthorized (missing credentials)", 10)
        token = self.auth.issue(ident)
        name = str(get(self.cfg, "apiserver.auth.session_auth_cookie_name", "clearml_token_basic"))
        self.extra_headers.extend(cookie_headers(self.cfg, name, token))
        log(ROLE, f"login: {ident.user_name} (role {ident.role})")
        return {"token": token}

    def auth_create_credentials(self) -> dict[str, Any]:
        ident = self.identity()
        if ident is None:
            raise ApiError(401, "Unauthorized (missing credentials)", 10)
        label = str((self.read_json() or {}).get("label") or "")
        creds = create_credentials(ident, label)
        log(ROLE, f"created credentials {creds['access_key'][:4]}... for {ident.user_name}")
        return {"credentials": creds}

    def auth_validate_token(self) -> dict[str, Any]:
        ident = self.identity()
        if ident is None:
            raise ApiError(401, "Unauthorized (missing credentials)", 10)
        if ident.role != "system":
            raise ApiError(403, "Forbidden (not allowed for role)", 101)
        token = (self.read_json() or {}).get("token", "")
        try:
            other = self.auth.from_token(str(token))
        except ValueError as exc:
            return {"valid": False, "msg": str(exc), "user": None, "company": None}
        return {"valid": True, "msg": "", "user": other.user, "company": other.company}


def wait_for_stores(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for name, host_env, port_env, host_default, port_default in STORES:
        host, port = os.environ.get(host_env, host_default), int(os.environ.get(port_env, port_default))
        log(ROLE, f"waiting for {name} at {host}:{port}")
        while True:
            try:
                socket.create_connection((host, port), timeout=2).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} at {host}:{port} not reachable after {timeout:.0f}s: {exc}") from None
                time.sleep(1)
        log(ROLE, f"{name} at {host}:{port} is up")


def main() -> None:
    cfg = load_config()
    log(ROLE, f"ClearML server stand-in version {SERVER_VERSION}")
    auth = Auth(cfg)
    if auth.fixed_enabled:
        log(ROLE, "Fixed users mode is enabled")
    wait_for_stores(float(os.environ.get("STANDIN_WAIT_TIMEOUT", "300")))
    ApiHandler.cfg, ApiHandler.auth = cfg, auth
    serve(ApiHandler, str(get(cfg, "apiserver.listen.host", "0.0.0.0")), int(get(cfg, "apiserver.listen.port", 8008)))


if __name__ == "__main__":
    main()
