"""connect.sh judged by real tools without a Docker engine: shellcheck on every variant, bash running it
for the parts that need no SSH server (options, dependency check, local ports in use, --check)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from clearml_stack.clients import LocalPorts, SshTarget
from clearml_stack.render.connect_script import render_connect_script
from clearml_stack.settings import Settings, defaults
from tests.kit import free_port, require_tool

pytestmark = pytest.mark.contract

SHELLCHECK = Path(sys.executable).parent / "shellcheck"
TARGET = SshTarget("tunnel", "127.0.0.1", 1)  # port 1: nothing there, and nothing here connects anyway

VARIANTS = {
    "tunnel-default": ({}, SshTarget("s_01hq3abc", "ssh.lightning.ai"), None),
    "tunnel-custom": ({"CLEARML_API_PORT": "9008"}, SshTarget("alice", "10.0.0.5", 2222),
                      LocalPorts(18080, 18008, 18081)),
    "ports": ({"CLEARML_ACCESS_MODE": "ports", "CLEARML_DOMAIN": "srv.example.com"}, SshTarget("bob", "srv"), None),
    "subdomains": ({"CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": "ml.example.com"},
                   SshTarget("bob", "ml.example.com", 22), LocalPorts(28080, 28008, 28081)),
    "lightning-proxy": ({"CLEARML_ACCESS_MODE": "lightning-proxy", "CLEARML_DOMAIN": "abc.cloudspaces.litng.ai"},
                        SshTarget("s_01hq3abc", "ssh.lightning.ai"), None),
}


def make(**over: str) -> Settings:
    return Settings(values={**defaults(), **over}, env_file=Path("/srv/clearml/.env"))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_shellcheck_passes_on_every_variant(name, tmp_path):
    over, target, ports = VARIANTS[name]
    script = tmp_path / "connect.sh"
    script.write_text(render_connect_script(make(**over), target, ports))
    proc = subprocess.run([str(SHELLCHECK), "--shell=bash", "--severity=style", str(script)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_shellcheck_passes_on_the_script_the_task_writes(kit):
    out = kit.dir / "connect.sh"
    kit.inv("connect-script", "--out", str(out), "--target", "alice@10.0.0.5:2222", "--local-ports",
            "18080,18008,18081")
    assert out.stat().st_mode & 0o777 == 0o755
    proc = subprocess.run([str(SHELLCHECK), "--shell=bash", "--severity=style", str(out)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout


# --- running it ----------------------------------------------------------------------------------


def write_script(tmp_path: Path, ports: LocalPorts) -> Path:
    script = tmp_path / "connect.sh"
    script.write_text(render_connect_script(make(), TARGET, ports))
    script.chmod(0o755)
    return script


def free_ports() -> LocalPorts:
    while True:
        ports = LocalPorts(free_port(), free_port(), free_port())
        if len(set(ports.as_tuple())) == 3:
            return ports


def toolbox(tmp_path: Path, *names: str) -> str:
    """A PATH holding only the named host tools (to run the script without lsof, ss, autossh...)."""
    box = tmp_path / "bin"
    box.mkdir(exist_ok=True)
    for name in names:
        found = shutil.which(name)
        if found:
            (box / name).symlink_to(found)
    return str(box)


BASICS = ("bash", "ps", "awk", "grep", "sed", "date", "mktemp", "uname", "head", "tail", "tr", "sleep", "rm",
          "cat", "kill")


def run(script: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_help_and_unknown_options(tmp_path):
    script = write_script(tmp_path, free_ports())
    shown = run(script, "--help")
    assert shown.returncode == 0 and "--check" in shown.stderr and "Ctrl-C" in shown.stderr
    bad = run(script, "--bogus")
    assert bad.returncode == 2 and "unknown option: --bogus" in bad.stderr


def test_check_without_tunnels_fails_with_the_reason(tmp_path):
    ports = free_ports()
    proc = run(write_script(tmp_path, ports), "--check")
    assert proc.returncode == 1
    assert f"nothing listens on localhost:{ports.api}: the tunnel is not open" in proc.stderr
    assert "start it with ./connect.sh" in proc.stderr


def test_missing_ssh_names_the_package(tmp_path):
    path = toolbox(tmp_path, *BASICS)
    proc = run(write_script(tmp_path, free_ports()), env={"PATH": path})
    assert proc.returncode == 3
    assert "ssh is not installed" in proc.stderr and "apt-get install -y openssh-client" in proc.stderr


class Listener:
    """A Python program holding a local port, like a user's own server would."""

    def __init__(self, port: int) -> None:
        code = ("import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                f"s.bind(('127.0.0.1',{port})); s.listen(); print('up',flush=True); time.sleep(120)")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "up"

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


HOLDER_TOOLS = {"lsof": "lsof", "ss": "ss", "netstat": "netstat"}


@pytest.mark.parametrize("tool", sorted(HOLDER_TOOLS))
def test_taken_port_is_named_with_its_holder_before_anything_opens(tool, tmp_path):
    require_tool(tool, "the script falls back to the other tools")
    ports = free_ports()
    path = toolbox(tmp_path, *BASICS, "ssh", tool)  # no autossh either: the plain loop is announced
    with Listener(ports.files) as holder:
        proc = run(write_script(tmp_path, ports), env={"PATH": path})
    assert proc.returncode == 2, proc.stderr
    assert f"local port {ports.files} (file server) is in use by python" in proc.stderr
    assert f"pid {holder.proc.pid}" in proc.stderr
    assert "--local-ports WEB,API,FILES" in proc.stderr
    assert "autossh is not installed" in proc.stderr and "apt-get install -y autossh" in proc.stderr
    assert "opening" not in proc.stderr, "nothing may be started when a port is taken"


def test_taken_port_without_any_tool_to_name_the_holder(tmp_path):
    ports = free_ports()
    with Listener(ports.web):
        proc = run(write_script(tmp_path, ports), env={"PATH": toolbox(tmp_path, *BASICS, "ssh")})
    assert proc.returncode == 2
    assert f"local port {ports.web} (web UI) is in use by a program this user cannot see" in proc.stderr
    assert f"sudo lsof -nP -iTCP:{ports.web}" in proc.stderr


def test_check_reports_a_tunnel_whose_server_side_is_silent(tmp_path):
    """An open local port that closes without an HTTP answer is what ssh does when the server's port is down."""
    ports = free_ports()
    code = ("import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            f"s.bind(('127.0.0.1',{ports.api})); s.listen(); print('up',flush=True)\n"
            "while True:\n c,_=s.accept(); c.close()")
    silent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert silent.stdout.readline().strip() == "up"
        proc = run(write_script(tmp_path, ports), "--check")
    finally:
        silent.kill()
        silent.wait()
    assert proc.returncode == 1
    assert f"the tunnel on localhost:{ports.api} is open but the server does not" in proc.stderr
    assert "answer on its port 8008" in proc.stderr


def test_check_refuses_a_wrong_ping_status(tmp_path):
    ports = free_ports()
    code = ("import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n def do_GET(self):\n"
            "  self.send_response(503); self.end_headers()\n def log_message(self,*a): pass\n"
            f"s=h.HTTPServer(('127.0.0.1',{ports.api}),H); print('up',flush=True); s.serve_forever()")
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "up"
        proc = run(write_script(tmp_path, ports), "--check")
    finally:
        server.kill()
        server.wait()
    assert proc.returncode == 1
    assert "/debug.ping answered HTTP 503 instead of 200" in proc.stderr


def test_port_probe_sees_a_listener(tmp_path):
    """The probe the script uses (bash /dev/tcp) against a real socket, both ways."""
    port = free_port()
    probe = f'(exec 3<>"/dev/tcp/127.0.0.1/{port}") 2>/dev/null'
    assert subprocess.run(["bash", "-c", probe]).returncode != 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert subprocess.run(["bash", "-c", probe]).returncode == 0


# --- macOS: its dependency hints, and bash 3.2 ------------------------------------------------------


def mac_toolbox(tmp_path: Path, *names: str) -> str:
    """A PATH like :func:`toolbox`, whose ``uname`` says Darwin (what macOS answers)."""
    path = toolbox(tmp_path, *(n for n in names if n != "uname"))
    stub = Path(path) / "uname"
    stub.write_text("#!/bin/sh\nif [ \"${1:-}\" = -s ] || [ $# -eq 0 ]; then echo Darwin; else echo 'Darwin 23.6.0'; fi\n")
    stub.chmod(0o755)
    return path


def test_on_macos_a_missing_ssh_names_the_homebrew_package(tmp_path):
    proc = run(write_script(tmp_path, free_ports()), env={"PATH": mac_toolbox(tmp_path, *BASICS)})
    assert proc.returncode == 3
    assert "ssh is not installed" in proc.stderr and "fix: brew install openssh" in proc.stderr
    assert "apt-get" not in proc.stderr


def test_on_macos_missing_autossh_and_basic_tools_name_homebrew(tmp_path):
    ports = free_ports()
    path = mac_toolbox(tmp_path, *BASICS, "ssh")
    with Listener(ports.web):  # stops the script after the dependency check, before anything opens
        proc = run(write_script(tmp_path, ports), env={"PATH": path})
    assert proc.returncode == 2, proc.stderr
    assert "autossh is not installed" in proc.stderr and "brew install autossh" in proc.stderr
    assert "apt-get" not in proc.stderr
    (tmp_path / "nomktemp").mkdir()
    no_mktemp = mac_toolbox(tmp_path / "nomktemp", *(n for n in BASICS if n != "mktemp"), "ssh")
    proc = run(write_script(tmp_path, ports), env={"PATH": no_mktemp})
    assert proc.returncode == 3 and "missing basic tools: mktemp" in proc.stderr
    assert "fix: brew install coreutils" in proc.stderr


# constructs macOS's bash 3.2 does not know (bash 4.0 and later), with an example of each
BASH4_ONLY = {
    "associative or nameref declare": (r"\b(?:declare|typeset|local)\s+-[a-zA-Z]*[Anlug]", "declare -A seen"),
    "mapfile/readarray": (r"\b(?:mapfile|readarray)\b", "mapfile -t lines < f"),
    "case conversion expansion": (r"\$\{[#!]?[A-Za-z_][A-Za-z0-9_]*(?:\[[^]]*\])?(?:,,?|\^\^?)", 'echo "${name,,}"'),
    "|& pipe": (r"\|&", "cmd |& tee log"),
    "&>> append": (r"&>>", "cmd &>> log"),
    "coproc": (r"\bcoproc\b", "coproc cat"),
    "case fall-through ;& or ;;&": (r";;?&", "a) x ;&"),
    "negative array index": (r"\[\s*-\s*\d+\s*\]", 'echo "${arr[-1]}"'),
    "wait -n": (r"\bwait\s+(?:-[a-z]*\s+)*-[a-z]*n", "wait -n"),
    "${x@Q} transformations": (r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:\[[^]]*\])?@[QEPAaKUuL]\}", 'echo "${x@Q}"'),
    "bash 4/5 variables": (r"\$\{?(?:BASHPID|EPOCHSECONDS|EPOCHREALTIME|BASH_ARGV0)\b", "echo $EPOCHSECONDS"),
    "globstar": (r"\bglobstar\b", "shopt -s globstar"),
    "brace range with a step": (r"\{-?\d+\.\.-?\d+\.\.-?\d+\}", "echo {1..9..2}"),
}


def bash4_constructs(text: str) -> list[str]:
    """The bash-4-only constructs used in ``text`` (comment lines are left out), as 'name: line'."""
    import re

    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for name, (pattern, _) in BASH4_ONLY.items():
            if re.search(pattern, line):
                found.append(f"{name}: line {number}: {line.strip()}")
    return found


@pytest.mark.parametrize("name", sorted(BASH4_ONLY))
def test_the_bash4_detector_catches_each_construct(name):
    example = BASH4_ONLY[name][1]
    assert [f.split(":")[0] for f in bash4_constructs(example)] == [name]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_script_uses_nothing_newer_than_bash_3_2(name):
    """macOS ships bash 3.2: the script must not need bash 4 (shellcheck does not check this)."""
    over, target, ports = VARIANTS[name]
    text = render_connect_script(make(**over), target, ports)
    assert bash4_constructs(text) == []
