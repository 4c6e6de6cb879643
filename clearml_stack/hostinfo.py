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
    """True when a TCP listener could bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    return inodes


def port_owner(port: int) -> str:
    """A human description of what listens on ``port``: a container, a process, or 'unknown'."""
    try:
        res = run(["docker", "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"],
                  capture=True, check=False, echo=False, timeout=20)
        if res.ok and res.stdout.strip():
            return "container " + ", ".join(res.stdout.split())
    except StackError:
        pass
    inodes = _listening_inodes(port)
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
    return "another program (not visible to this user; try `sudo ss -ltnp`)"


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
