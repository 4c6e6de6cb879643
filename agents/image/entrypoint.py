#!/usr/bin/env python3
"""Start one clearml-agent daemon in this container, in the foreground (its log is the container's).

Reads only environment variables (set by the kit's compose files):
  CLEARML_API_HOST, CLEARML_WEB_HOST, CLEARML_FILES_HOST   all three, always (never guessed)
  CLEARML_API_ACCESS_KEY, CLEARML_API_SECRET_KEY           the agent credentials
  AGENT_MODE        venv | docker | services
  AGENT_QUEUES      queue names, separated by spaces or commas (the first has priority)
  AGENT_DOCKER_IMAGE  default image of task containers (docker and services mode)
  AGENT_GPUS        empty: CPU only; otherwise the GPUs compose reserved for this container
  AGENT_SERVICES_CONCURRENCY  services mode: most services at once (0: no limit)
  AGENT_CREATE_QUEUE  true: create missing queues (default true)
  AGENT_CA_CERT     a CA certificate to trust beside the public ones (a gateway's self-signed CA): joined
    with the system's CAs into the file REQUESTS_CA_BUNDLE names, which clearml-agent, pip and git use
  CLEARML_WORKER_ID   when set, used as is; otherwise "<prefix>:<AGENT_WORKER_NAME>-<n>", where
    prefix is CLEARML_AGENT_WORKER_PREFIX or the host's name (/etc/host-hostname, mounted read-only),
    and n is this replica's compose container number, read back from Docker's embedded DNS (the PTR
    record of the container's own address names the container, e.g. clearml-agent-3); where that
    lookup gives nothing (host networking, or the embedded DNS not answering), n is the lowest free
    slot under AGENT_SLOT_DIR (a directory every replica of the machine shares), held by a lock for
    the life of the daemon. A replica that knows its number holds that slot too, so replicas on one
    machine never share an id, and re-created ones get the same ids again.
The clearml-agent version is fixed by the image; nothing here installs or updates anything.
`clearml-agent-entrypoint --health` exits 0 while the daemon runs (the compose healthcheck).
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import socket
import struct
import sys
from pathlib import Path
from typing import Mapping

REQUIRED = ("CLEARML_API_HOST", "CLEARML_WEB_HOST", "CLEARML_FILES_HOST",
            "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY")
MODES = ("venv", "docker", "services")
DOCKER_DNS = "127.0.0.11"
EXIT_CONFIG = 78  # EX_CONFIG


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def queues(env: Mapping[str, str]) -> list[str]:
    return [q for q in re.split(r"[\s,]+", env.get("AGENT_QUEUES", "")) if q]


def problems(env: Mapping[str, str]) -> list[str]:
    """What is missing or wrong in the environment, one line each (pure)."""
    found = [f"{key} is not set" for key in REQUIRED if not env.get(key, "").strip()]
    mode = env.get("AGENT_MODE", "venv")
    if mode not in MODES:
        found.append(f"AGENT_MODE={mode!r} must be one of {', '.join(MODES)}")
    if not queues(env):
        found.append("AGENT_QUEUES is empty: give at least one queue name")
    concurrency = env.get("AGENT_SERVICES_CONCURRENCY", "0") or "0"
    if not concurrency.isdigit():
        found.append(f"AGENT_SERVICES_CONCURRENCY={concurrency!r} must be a whole number (0: no limit)")
    if mode in ("docker", "services") and not env.get("AGENT_DOCKER_IMAGE", "").strip():
        found.append(f"AGENT_DOCKER_IMAGE is not set (mode {mode} runs tasks in containers of that image)")
    return found


SYSTEM_CAS = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def ca_bundle_text(public: str, extra: str) -> str:
    """The public CAs followed by ``extra`` (pure)."""
    return public.rstrip("\n") + "\n" + extra.strip("\n") + "\n" if public.strip() else extra.strip("\n") + "\n"


def prepare_ca_bundle(env: Mapping[str, str]) -> str | None:
    """Write REQUESTS_CA_BUNDLE from the system CAs and AGENT_CA_CERT; the reason it failed, or None."""
    extra, target = env.get("AGENT_CA_CERT", "").strip(), env.get("REQUESTS_CA_BUNDLE", "").strip()
    if not extra:
        return None
    if not target or target == extra:
        return f"AGENT_CA_CERT={extra} needs REQUESTS_CA_BUNDLE set to another path (the joined bundle)"
    try:
        cert = Path(extra).read_text()
    except OSError as exc:
        return f"AGENT_CA_CERT={extra} cannot be read ({exc.strerror}): is the CA file mounted?"
    if "BEGIN CERTIFICATE" not in cert:
        return f"AGENT_CA_CERT={extra} holds no PEM certificate"
    public = ""
    for path in SYSTEM_CAS:
        try:
            public = Path(path).read_text()
            break
        except OSError:
            continue
    if not public:
        try:
            import certifi  # a dependency of requests, which clearml-agent uses

            public = Path(certifi.where()).read_text()
        except (ImportError, OSError):
            public = ""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(ca_bundle_text(public, cert))
    return None


def daemon_argv(env: Mapping[str, str]) -> list[str]:
    """The clearml-agent command line for this environment (pure)."""
    mode = env.get("AGENT_MODE", "venv")
    argv = ["clearml-agent", "daemon", "--foreground", "--queue", *queues(env)]
    if truthy(env.get("AGENT_CREATE_QUEUE", "true")):
        argv.append("--create-queue")
    if mode == "services":
        limit = int(env.get("AGENT_SERVICES_CONCURRENCY", "0") or "0")
        argv += ["--services-mode", str(limit)] if limit > 0 else ["--services-mode"]
    if mode in ("docker", "services"):
        # the task containers get this very clearml-agent version, not whatever PyPI has today
        argv += ["--docker", env["AGENT_DOCKER_IMAGE"], "--force-current-version"]
    if mode == "services" or not env.get("AGENT_GPUS", "").strip():
        argv.append("--cpu-only")
    # with GPUs, compose reserved them for this container (NVIDIA_VISIBLE_DEVICES): the agent uses those
    return argv


# --- worker id -------------------------------------------------------------------------------


def ptr_query(ip: str, server: str = DOCKER_DNS, timeout: float = 2.0) -> str | None:
    """The name a DNS server gives for ``ip`` (a PTR lookup over UDP), or None."""
    name = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    qid = random.randrange(1 << 16)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 12, 1)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(packet, (server, 53))
            data, _ = sock.recvfrom(4096)
    except OSError:
        return None
    return parse_ptr_answer(data, qid)


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    while True:
        length = data[pos]
        if length & 0xC0 == 0xC0:  # compression pointer
            if end is None:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        pos += 1
        if length == 0:
            break
        labels.append(data[pos:pos + length].decode(errors="replace"))
        pos += length
    return ".".join(labels), (end if end is not None else pos)


def parse_ptr_answer(data: bytes, qid: int) -> str | None:
    """The first PTR name in a DNS response to query ``qid`` (pure)."""
    try:
        rid, flags, qdcount, ancount = struct.unpack(">HHHH", data[:8])
        if rid != qid or flags & 0x000F or ancount == 0:
            return None
        pos = 12
        for _ in range(qdcount):
            _, pos = _read_name(data, pos)
            pos += 4
        for _ in range(ancount):
            _, pos = _read_name(data, pos)
            rtype, _, _, rdlength = struct.unpack(">HHIH", data[pos:pos + 10])
            pos += 10
            if rtype == 12:
                return _read_name(data, pos)[0]
            pos += rdlength
    except (IndexError, struct.error):
        return None
    return None


def replica_number(container_name: str) -> int | None:
    """``clearml-agent-3.clearml_backend`` -> 3: compose names replicas ``<project>-<service>-<n>``."""
    match = re.search(r"-(\d+)$", container_name.split(".", 1)[0])
    return int(match.group(1)) if match else None


def uses_docker_dns(resolv_conf: str) -> bool:
    return any(line.split()[1:2] == [DOCKER_DNS] for line in resolv_conf.splitlines()
               if line.startswith("nameserver"))


def compose_number() -> int | None:
    """This container's compose replica number, from the embedded DNS; None without it."""
    try:
        if not uses_docker_dns(Path("/etc/resolv.conf").read_text()):
            return None
        ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        return None
    name = ptr_query(ip)
    return replica_number(name) if name else None


_held_slot: int | None = None  # the lock's file descriptor stays open (and inherited) for the daemon's life


def _lock(directory: Path, n: int) -> int | None:
    """The descriptor of ``slot-<n>.lock`` locked by us, or None when another process holds it."""
    fd = os.open(directory / f"slot-{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def claim_slot(slot_dir: str, limit: int = 4096, prefer: int | None = None) -> int | None:
    """Lock ``slot-<prefer>.lock`` when free, else the lowest free ``slot-<n>.lock`` under ``slot_dir``,
    and keep it locked across exec (for the daemon's life); None when the directory is unusable."""
    global _held_slot
    directory = Path(slot_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        order = ([prefer] if prefer else []) + [n for n in range(1, limit + 1) if n != prefer]
        for n in order:
            fd = _lock(directory, n)
            if fd is None:
                continue
            os.set_inheritable(fd, True)
            _held_slot = fd
            return n
    except OSError:
        return None
    return None


def host_name(env: Mapping[str, str]) -> str:
    given = env.get("CLEARML_AGENT_WORKER_PREFIX", "").strip()
    if given:
        return given
    try:
        name = Path("/etc/host-hostname").read_text().strip()
    except OSError:
        name = ""
    return name or socket.gethostname()


def worker_id(env: Mapping[str, str]) -> tuple[str, str]:
    """(worker id, how it was chosen)."""
    given = env.get("CLEARML_WORKER_ID", "").strip()
    if given:
        return given, "CLEARML_WORKER_ID"
    prefix, name = host_name(env), env.get("AGENT_WORKER_NAME", "agent") or "agent"
    slot_dir = env.get("AGENT_SLOT_DIR", "").strip()
    number = compose_number()
    if number is not None:
        # hold the slot of our own number too, so a replica that had to fall back never takes it
        slot = claim_slot(slot_dir, prefer=number) if slot_dir else number
        if slot is None or slot == number:
            return f"{prefix}:{name}-{number}", "compose replica number"
        return f"{prefix}:{name}-{slot}", f"slot {slot} under {slot_dir} (slot {number} is held by another replica)"
    slot = claim_slot(slot_dir) if slot_dir else None
    if slot is not None:
        return f"{prefix}:{name}-{slot}", f"slot {slot} under {slot_dir}"
    return f"{prefix}:{name}-{socket.gethostname()}", "container host name (not stable across re-creation)"


def daemon_running(proc: str = "/proc") -> bool:
    """True when a ``clearml-agent daemon`` process runs in this container (the healthcheck)."""
    needle = b"clearml-agent\0daemon"
    for path in Path(proc).glob("[0-9]*/cmdline"):
        try:
            if needle in path.read_bytes():
                return True
        except OSError:
            continue
    return False


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    if args == ["--health"]:
        return 0 if daemon_running() else 1
    env = dict(os.environ)
    found = problems(env)
    if found:
        print("clearml-agent-entrypoint: cannot start the agent:", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
        print("  fix: start agents through the kit (`inv agents.up`, or the bundle's `docker compose up -d`),"
              " which sets these", file=sys.stderr)
        return EXIT_CONFIG
    ca_problem = prepare_ca_bundle(env)
    if ca_problem:
        print(f"clearml-agent-entrypoint: cannot start the agent: {ca_problem}", file=sys.stderr)
        return EXIT_CONFIG
    wid, how = worker_id(env)
    os.environ["CLEARML_WORKER_ID"] = wid
    argv = daemon_argv(env)
    print(f"clearml-agent-entrypoint: worker {wid} ({how}), api {env['CLEARML_API_HOST']}, "
          f"mode {env.get('AGENT_MODE', 'venv')}, queues {' '.join(queues(env))}", flush=True)
    print("clearml-agent-entrypoint: " + " ".join(argv), flush=True)
    os.execvp(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
