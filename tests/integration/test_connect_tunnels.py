"""The generated connect.sh against a real OpenSSH server on the Docker engine.

An sshd container (SSHD_IMAGE: Debian's openssh-server, key-only, published on 127.0.0.1) fronts a
stand-in for the three services listening on the container's own loopback, exactly where the server's
ports are in tunnel mode. The script runs on this host as a user would run it and is judged from the
outside: the tunnels reach the right services, `--check` answers, killing every sshd process in the
container (what the original `make chaos` did) is survived, a taken local port stops it before it
opens anything, and Ctrl-C / TERM leave no ssh process behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.contract.test_connect_script import Listener
from tests.kit import RUN_PREFIX, free_port, new_kit

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
SERVER_PORTS = {"web": 8080, "api": 8008, "files": 8081}  # inside the sshd container: the kit's defaults
RECOVERY_BOUND = 20.0


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


@dataclass
class SshServer:
    port: int
    key: Path
    known_hosts: Path
    sshd: str
    services: str

    def ssh_args(self, key: Path | None = None) -> list[str]:
        return ["-i", str(key or self.key), "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-F", "/dev/null"]

    def logins(self) -> int:
        """How many SSH logins the server has accepted so far (from sshd's own log)."""
        logs = docker("logs", self.sshd).stderr + docker("logs", self.sshd).stdout
        return logs.count("Accepted publickey for tunnel")


def wait_for_banner(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-2.0"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"sshd on 127.0.0.1:{port} did not answer within {timeout}s")


@pytest.fixture(scope="module")
def ssh_server(test_images, tmp_path_factory) -> SshServer:
    work = tmp_path_factory.mktemp("sshd")
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "clients-test", "-f", str(key)], check=True)
    tag = uuid.uuid4().hex[:8]
    sshd, services = f"{RUN_PREFIX}-{tag}-sshd", f"{RUN_PREFIX}-{tag}-services"
    try:
        docker("run", "-d", "--name", sshd, "--label", "org.clearml-lightning.test=connect-tunnels",
               "-e", f"SSH_AUTHORIZED_KEY={(work / 'id_ed25519.pub').read_text().strip()}",
               "-p", "127.0.0.1::22", test_images["SSHD_IMAGE"])
        docker("run", "-d", "--name", services, "--label", "org.clearml-lightning.test=connect-tunnels",
               "--network", f"container:{sshd}", test_images["TEST_BASE_IMAGE"],
               "python3", "-c", (HERE / "pingserver.py").read_text(), *map(str, SERVER_PORTS.values()))
        port = int(docker("port", sshd, "22/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1])
        wait_for_banner(port)
        yield SshServer(port, key, work / "known_hosts", sshd, services)
    finally:
        docker("rm", "-f", "-v", services, sshd, check=False)


@pytest.fixture(scope="module")
def script(ssh_server, tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """connect.sh as `inv connect-script` writes it, with free local ports on this host."""
    kit = new_kit(tmp_path_factory.mktemp("kit"))
    ports = {name: free_port() for name in SERVER_PORTS}
    while len(set(ports.values())) < 3:
        ports = {name: free_port() for name in SERVER_PORTS}
    out = kit.dir / "connect.sh"
    kit.inv("connect-script", "--out", str(out), "--target", f"tunnel@127.0.0.1:{ssh_server.port}",
            "--local-ports", ",".join(str(ports[n]) for n in ("web", "api", "files")))
    return out, ports


def get(port: int, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return json.loads(resp.read()) if resp.status == 200 else None
    except (OSError, urllib.error.URLError, ValueError):
        return None


def all_answer(ports: dict[str, int]) -> bool:
    """Each local port reaches its own service; the API's /debug.ping answers like the server's."""
    ping = get(ports["api"], "/debug.ping")
    if not ping or ping.get("meta", {}).get("result_code") != 200:
        return False
    return all((get(ports[name], "/") or {}).get("role") == name for name in ("web", "files"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: pid -> command line."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found[child] = _cmdline(child)
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Tunnels:
    """One run of connect.sh, its output in files, started in its own session like a terminal's job."""

    script: Path
    args: list[str]
    workdir: Path
    proc: subprocess.Popen | None = None
    log: dict[str, Path] = field(default_factory=dict)
    seen: dict[int, str] = field(default_factory=dict)  # every process ever found below the script

    def start(self) -> "Tunnels":
        self.log = {"out": self.workdir / f"out-{uuid.uuid4().hex[:6]}", "err": self.workdir / f"err-{uuid.uuid4().hex[:6]}"}
        env = {**os.environ, "HOME": str(self.workdir)}
        env.pop("CLEARML_CONFIG_FILE", None)
        self.proc = subprocess.Popen(["bash", str(self.script), *self.args], stdout=self.log["out"].open("w"),
                                     stderr=self.log["err"].open("w"), stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        return self

    @property
    def stderr(self) -> str:
        return self.log["err"].read_text()

    def wait_open(self, ports: dict[str, int], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all_answer(ports) and "keeping the tunnels open" in self.stderr:
                self.seen.update(descendants(self.proc.pid))
                return
            assert self.proc.poll() is None, f"connect.sh exited {self.proc.returncode}:\n{self.stderr}"
            time.sleep(0.3)
        raise AssertionError(f"tunnels did not answer within {timeout}s:\n{self.stderr}")

    def stop(self) -> None:
        if self.proc:
            self.seen.update(descendants(self.proc.pid))
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:  # nothing of this run may outlive the test, whatever happened
            for pid, cmd in self.seen.items():
                if not alive(pid) or _cmdline(pid) != cmd:  # gone, or the number now belongs to another
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


@pytest.fixture
def tunnels(script, ssh_server, tmp_path):
    runs: list[Tunnels] = []

    def start(*flags: str, key: Path | None = None) -> Tunnels:
        run = Tunnels(script[0], [*flags, "--", *ssh_server.ssh_args(key)], tmp_path).start()
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


def run_check(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("flags", [[], ["--no-autossh"]], ids=["autossh", "plain-ssh-loop"])
def test_tunnels_answer_and_survive_killed_ssh_connections(flags, tunnels, script, ssh_server, record_figure):
    path, ports = script
    run = tunnels(*flags)
    run.wait_open(ports)
    assert ("autossh -M 0" if not flags else "plain ssh loop") in run.stderr
    out = run.log["out"].read_text()
    for name, label in (("web", "web UI"), ("api", "API server"), ("files", "file server")):
        assert f"{label:<12} http://localhost:{ports[name]}" in out
    assert f"clearml.conf: none yet at {run.workdir}/clearml.conf" in run.stderr
    check = run_check(path)
    assert check.returncode == 0, check.stderr
    assert f"ok   API server: http://localhost:{ports['api']}/debug.ping answers (HTTP 200)" in check.stderr

    before = ssh_server.logins()
    ssh_before = {pid for pid, cmd in descendants(run.proc.pid).items() if cmd.startswith(("ssh ", "/usr/bin/ssh "))}
    assert len(ssh_before) == 3, descendants(run.proc.pid)
    started = time.monotonic()
    killed = docker("exec", ssh_server.sshd, "pkill", "sshd", check=False)
    assert killed.returncode == 0, "pkill found sshd processes to kill"
    time.sleep(0.2)
    while not all_answer(ports):
        assert time.monotonic() - started < 60, f"no recovery within 60s:\n{run.stderr}"
        time.sleep(0.2)
    recovery = time.monotonic() - started
    record_figure(f"connect.sh ({'autossh' if not flags else 'plain ssh loop'}) recovery after every sshd "
                  "process was killed", recovery, "s")
    assert ssh_server.logins() >= before + 3, "each tunnel logged in again"
    ssh_after = {pid for pid, cmd in descendants(run.proc.pid).items() if cmd.startswith(("ssh ", "/usr/bin/ssh "))}
    assert ssh_after and not ssh_after & ssh_before, "the old ssh processes are gone, new ones carry the tunnels"
    assert recovery <= RECOVERY_BOUND, f"recovery took {recovery:.1f}s"
    assert run.proc.poll() is None


@pytest.mark.parametrize("how", ["ctrl-c", "term"])
@pytest.mark.parametrize("flags", [[], ["--no-autossh"]], ids=["autossh", "plain-ssh-loop"])
def test_ctrl_c_and_term_leave_no_ssh_process_behind(how, flags, tunnels, script, ssh_server):
    path, ports = script
    # a tunnel of the user's own to the same server, not started by connect.sh: it must survive
    own_port = free_port()
    bystander = subprocess.Popen(["ssh", "-N", *ssh_server.ssh_args(), "-o", "BatchMode=yes", "-o",
                                  "StrictHostKeyChecking=accept-new", "-L", f"127.0.0.1:{own_port}:127.0.0.1:8008",
                                  "-p", str(ssh_server.port), "tunnel@127.0.0.1"], stdin=subprocess.DEVNULL)
    try:
        _stop_and_check(how, flags, tunnels, ports, ssh_server, bystander, own_port)
    finally:
        bystander.kill()
        bystander.wait()


def _stop_and_check(how, flags, tunnels, ports, ssh_server, bystander, own_port) -> None:
    run = tunnels(*flags)
    run.wait_open(ports)
    deadline = time.monotonic() + 30
    while get(own_port, "/debug.ping") is None:
        assert time.monotonic() < deadline and bystander.poll() is None, "the bystander tunnel opened"
        time.sleep(0.3)
    started = descendants(run.proc.pid)
    ssh = [pid for pid, cmd in started.items() if "ssh" in cmd.split(" ", 1)[0]]
    assert len(ssh) >= 3, started
    if how == "ctrl-c":
        os.killpg(run.proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
    else:
        os.kill(run.proc.pid, signal.SIGTERM)  # `kill PID` of the script alone
    assert run.proc.wait(timeout=20) == 0
    assert "tunnels closed" in run.stderr
    time.sleep(0.3)
    left = {pid: cmd for pid, cmd in started.items() if alive(pid)}
    assert not left, f"left behind: {left}"
    ours = [cmd for cmd in _all_commands() if str(ssh_server.port) in cmd and f":{own_port}:" not in cmd]
    assert not ours, f"no ssh of connect.sh remains: {ours}"
    assert not any(_listening(port) for port in ports.values()), "every local port is closed"
    assert bystander.poll() is None and get(own_port, "/debug.ping") is not None, \
        "an ssh tunnel connect.sh did not start is left alone"


def _all_commands() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and alive(int(entry)):
            try:
                found.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                pass
    return [cmd for cmd in found if "ssh" in cmd and "-L" in cmd]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_taken_local_port_stops_the_script_before_it_opens_anything(tunnels, script, ssh_server):
    path, ports = script
    before = ssh_server.logins()
    with Listener(ports["api"]) as holder:
        run = tunnels()
        code = run.proc.wait(timeout=30)
    assert code == 2
    assert f"local port {ports['api']} (API server) is in use by python" in run.stderr
    assert f"pid {holder.proc.pid}" in run.stderr
    assert "opening" not in run.stderr
    assert ssh_server.logins() == before, "no SSH connection was made"
    assert not _listening(ports["web"]) and not _listening(ports["files"])


def test_a_refused_key_fails_fast_with_the_reason(tunnels, script, ssh_server, tmp_path):
    path, ports = script
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    run = tunnels(key=stranger)
    started = time.monotonic()
    assert run.proc.wait(timeout=60) == 1
    assert time.monotonic() - started < 30, "a refused key is reported without waiting for the timeout"
    assert "Permission denied (publickey)" in run.stderr
    assert "the server refused your SSH key" in run.stderr
    assert not any(str(ssh_server.port) in cmd for cmd in _all_commands())


def test_check_names_a_server_that_does_not_answer_behind_open_tunnels(tunnels, script, ssh_server):
    path, ports = script
    run = tunnels()
    run.wait_open(ports)
    docker("stop", "-t", "1", ssh_server.services)
    try:
        check = run_check(path)
        assert check.returncode == 1
        assert f"the tunnel on localhost:{ports['api']} is open but the server does not" in check.stderr
        assert "answer on its port 8008" in check.stderr
    finally:
        docker("start", ssh_server.services)
    deadline = time.monotonic() + 30
    while not all_answer(ports):
        assert time.monotonic() < deadline, "the services came back"
        time.sleep(0.3)
    assert run_check(path).returncode == 0
