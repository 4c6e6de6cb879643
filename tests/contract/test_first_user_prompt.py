"""The interactive first-user offer of `inv install`, driven through a real pseudo-terminal."""

from __future__ import annotations

import os
import select
import subprocess
import time

import pytest

from clearml_stack.users import load_users, verify_password
from tests.kit import INV, ROOT, Kit

pytestmark = pytest.mark.contract


class Terminal:
    """`inv ARGS` with a pty as stdin/stdout/stderr; answers are typed after each prompt appears."""

    def __init__(self, kit: Kit, *args: str) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen([str(INV), *args], cwd=ROOT, env=kit.environ(), stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} within {timeout}s; the terminal shows:\n{self.seen}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the other side closed
                    raise AssertionError(f"exited before {text!r}; the terminal shows:\n{self.seen}") from None
        self.seen = self.seen[self.seen.index(text) + len(text):]

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 120) -> int:
        try:
            while True:
                ready, _, _ = select.select([self.master], [], [], timeout)
                if not ready:
                    break
                data = os.read(self.master, 4096)
                if not data:
                    break
                self.seen += data.decode(errors="replace")
        except OSError:
            pass
        os.close(self.master)
        return self.proc.wait(timeout=timeout)


def test_install_asks_again_after_a_refused_name_or_mismatched_passwords(kit):
    term = Terminal(kit, "install")
    term.expect("Create one now? [Y/n]")
    term.type("")
    term.expect("user name (empty to skip):")
    term.type("bad name")
    term.expect("is not accepted")
    term.expect("user name (empty to skip):")
    term.type("alice")
    term.expect("password:")
    term.type("pw one")
    term.expect("password again:")
    term.type("pw two")
    term.expect("the two passwords differ")
    term.expect("user name (empty to skip):")
    term.type("alice")
    term.expect("password:")
    term.type("pw one")
    term.expect("password again:")
    term.type("pw one")
    term.expect("added user 'alice'")
    assert term.finish() == 0
    users = load_users(kit.settings().users_file)
    assert [u.username for u in users] == ["alice"] and verify_password("pw one", users[0].password_hash)


def test_install_offer_can_be_declined(kit):
    term = Terminal(kit, "install")
    term.expect("Create one now? [Y/n]")
    term.type("n")
    term.expect("no web login user yet")
    assert term.finish() == 0
    assert load_users(kit.settings().users_file) == []
