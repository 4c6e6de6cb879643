"""Who holds a port: the kernel's socket tables, and ports below 1024 that only Docker may bind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


from clearml_stack import hostinfo
from tests.kit import require_tool, unavailable

ROOT = Path(__file__).resolve().parents[2]

# /proc/net/tcp as the kernel writes it: a listener on 0.0.0.0:80 owned by root, one on 127.0.0.1:8000
# owned by uid 1000, and an established connection from port 80 (not a listener)
TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0
   1: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2222 1 0 100 0 0 10 0
   2: 0100007F:0050 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 20 4 30 10 -1
"""
TCP6_TABLE = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   33        0 4444 1 0 100 0 0 10 0
"""


def test_listeners_are_read_from_the_kernel_tables():
    assert hostinfo.parse_listeners(TCP_TABLE, 80) == [("0.0.0.0", 0, "1111")]
    assert hostinfo.parse_listeners(TCP_TABLE, 8000) == [("127.0.0.1", 1000, "2222")]
    assert hostinfo.parse_listeners(TCP_TABLE, 443) == []
    assert hostinfo.parse_listeners(TCP6_TABLE, 80) == [("::1", 33, "4444")]


def test_a_real_listener_is_found_with_its_process():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert ("127.0.0.1", os.geteuid()) in [(a, u) for a, u, _ in hostinfo.listeners(port)]
        assert not hostinfo.port_free("127.0.0.1", port)
        assert f"(pid {os.getpid()})" in hostinfo.port_owner(port)


def _privileged_free_port() -> int:
    for port in range(1023, 600, -1):
        if hostinfo.port_free("0.0.0.0", port) and not hostinfo.listeners(port):
            return port
    unavailable("no free port below 1024 on this host")
    raise AssertionError("unreachable")


def _without_bind_privilege(code: str) -> str:
    """Run ``code`` as this user without the capability to bind ports below 1024 (like any non-root user)."""
    setpriv = require_tool("setpriv", "util-linux")
    proc = subprocess.run([setpriv, "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service",
                           sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_port_below_1024_is_free_for_docker_unless_something_listens_there():
    if os.geteuid() != 0:
        unavailable("needs root to hold a port below 1024 and drop the privilege")
    unprivileged_start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    port = _privileged_free_port()
    if port >= unprivileged_start:
        unavailable(f"this kernel lets any user bind ports from {unprivileged_start}")
    code = ("import socket\nfrom clearml_stack import hostinfo\n"
            f"try:\n    socket.socket().bind(('127.0.0.1', {port})); print('bound')\n"
            "except PermissionError:\n    print('refused')\n"
            f"print(hostinfo.port_free('0.0.0.0', {port}), hostinfo.port_free('127.0.0.1', {port}))\n"
            f"print(hostinfo.port_owner({port}))")
    free = _without_bind_privilege(code).splitlines()
    assert free[:2] == ["refused", "True True"], "a free port below 1024 is not reported taken for lack of privilege"
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        taken = _without_bind_privilege(code).splitlines()
    assert taken[:2] == ["refused", "False False"]
    assert taken[2].startswith("process ") and taken[2].endswith(f"(pid {os.getpid()})"), taken


def test_a_holder_whose_process_is_hidden_is_named_by_its_user(monkeypatch):
    class NoContainers:
        ok, stdout = True, ""

    monkeypatch.setattr(hostinfo, "run", lambda *a, **k: NoContainers())
    monkeypatch.setattr(hostinfo, "listeners", lambda port: [("0.0.0.0", 0, "4294967295")])  # no such socket here
    described = hostinfo.port_owner(80)
    assert described.startswith("a program of user root (its process is not visible to this user;"), described
    assert "sudo ss -ltnp 'sport = :80'" in described
    monkeypatch.setattr(hostinfo, "listeners", lambda port: [])
    assert hostinfo.port_owner(80).startswith("another program (not visible to this user;")
