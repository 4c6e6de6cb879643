"""Readings of this host: kernel settings, who holds a port, the Docker engine. No decisions here."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from .errors import StackError
from .runner import run

MAX_MAP_COUNT_PATH = Path("/proc/sys/vm/max_map_count")
MAX_MAP_COUNT_ENV = "CLEARML_PROC_MAX_MAP_COUNT"  # another file to read it from (tests, containers)


def max_map_count_path() -> Path:
    return Path(os.environ.get(MAX_MAP_COUNT_ENV) or MAX_MAP_COUNT_PATH)


def max_map_count() -> int | None:
    try:
        return int(max_map_count_path().read_text().strip())
    except (OSError, ValueError):
        return None


def mem_total() -> int | None:
    """Total RAM in bytes from /proc/meminfo, or None when unreadable."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def disk_usage(path: Path) -> tuple[int, int] | None:
    """(free, total) bytes of the filesystem holding ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def owner(path: Path) -> int | None:
    """The uid owning ``path``, or None when it does not exist."""
    try:
        return Path(path).lstat().st_uid
    except OSError:
        return None


def port_free(host: str, port: int) -> bool:
    """True when a TCP listener could bind ``host:port`` right now.

    A port below 1024 cannot be bound by a user without the privilege, although Docker (which publishes
    it as root) can: then the port is free unless the kernel's socket tables show a listener on it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except PermissionError:
            return not any(_clashes(address, host) for address, _, _ in listeners(port))
        except OSError:
            return False
    return True


_WILDCARDS = ("0.0.0.0", "::")


def _clashes(address: str, host: str) -> bool:
    return address in _WILDCARDS or host in _WILDCARDS or address == host


def _address(hex_address: str) -> str:
    """An address as /proc/net/tcp{,6} writes it (host byte order, little-endian here) in the usual notation."""
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def parse_listeners(table: str, port: int) -> list[tuple[str, int, str]]:
    """(local address, owner uid, socket inode) of each TCP listener on ``port`` in a /proc/net/tcp table (pure)."""
    found = []
    for line in table.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != "0A":  # 0A: LISTEN
            continue
        hex_address, hex_port = parts[1].rsplit(":", 1)
        if int(hex_port, 16) == port:
            found.append((_address(hex_address), int(parts[7]), parts[9]))
    return found


def listeners(port: int) -> list[tuple[str, int, str]]:
    """Every TCP listener on ``port`` this host's kernel reports (readable by any user)."""
    found: list[tuple[str, int, str]] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            found += parse_listeners(Path(table).read_text(), port)
        except OSError:
            continue
    return found


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def port_owner(port: int) -> str:
    """A human description of what listens on ``port``: a container, a process, or at least its user."""
    try:
        res = run(["docker", "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"],
                  capture=True, check=False, echo=False, timeout=20)
        if res.ok and res.stdout.strip():
            return "container " + ", ".join(res.stdout.split())
    except StackError:
        pass
    found = listeners(port)
    inodes = {inode for _, _, inode in found}
    if inodes:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        comm = Path(f"/proc/{pid}/comm").read_text().strip()
                        return f"process {comm} (pid {pid})"
            except OSError:
                continue
    how = f"`sudo ss -ltnp 'sport = :{port}'` names it"
    if found:
        users = sorted({_user_name(uid) for _, uid, _ in found})
        return f"a program of user {', '.join(users)} (its process is not visible to this user; {how})"
    return f"another program (not visible to this user; {how})"


def docker_engine() -> tuple[bool, str]:
    """(reachable, server version or the reason it is not)."""
    try:
        res = run(["docker", "version", "--format", "{{.Server.Version}}"], capture=True, check=False,
                  echo=False, timeout=30)
    except StackError as exc:
        return False, exc.message
    if res.ok and res.stdout.strip():
        return True, res.stdout.strip()
    lines = (res.stderr or res.stdout).strip().splitlines()
    return False, lines[-1] if lines else f"exit code {res.returncode}"
