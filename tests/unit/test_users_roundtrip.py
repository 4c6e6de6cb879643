"""Property tests: every accepted user survives rendering and the server's own parsing byte for byte,
its password verifies the way the server checks an HTTP Basic login, and every refused input leaves
every file of the deployment unchanged."""

from __future__ import annotations

import base64
import os
import shutil
import string
import tempfile
from pathlib import Path

import bcrypt
import pytest
from hypothesis import HealthCheck, event, example, given, settings as hsettings, strategies as st
from pyhocon import ConfigFactory

from clearml_stack.errors import StackError
from clearml_stack.install import install
from clearml_stack.settings import load
from clearml_stack.users import REFUSED_PASSWORD_CHARS, USERNAME_RE, add_user, change_password, load_users

ROUNDS = 4  # the server checks any cost; a low one keeps hypothesis fast
TRICKY = ["'", '"', "\\", "$", "#", "`", "${x}", "\n", "\r", "\t", "\x00", "é", "😀", "\u2028", " ", ":", "//", "}"]
PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "

usernames = st.one_of(
    st.from_regex(USERNAME_RE, fullmatch=True),
    st.text(max_size=70),
    st.builds(lambda a, t, b: a + t + b, st.from_regex(USERNAME_RE, fullmatch=True), st.sampled_from(TRICKY),
              st.text(alphabet=string.ascii_lowercase, max_size=5)),
)
display_names = st.one_of(st.just(""), st.text(max_size=110),
                          st.builds(lambda a, t, b: a + t + b, st.text(max_size=20), st.sampled_from(TRICKY),
                                    st.text(max_size=20)))
passwords = st.one_of(
    st.text(alphabet=PRINTABLE, min_size=1, max_size=72),
    st.text(max_size=80),
    st.builds(lambda a, t, b: a + t + b, st.text(alphabet=string.ascii_letters, min_size=1, max_size=30),
              st.sampled_from(TRICKY), st.text(alphabet=string.ascii_letters, min_size=1, max_size=30)),
    st.text(alphabet=string.ascii_letters, min_size=73, max_size=90),
)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """An installed deployment with one user, copied for every example."""
    root = tmp_path_factory.mktemp("kit")
    environ = {"CLEARML_ENV_FILE": str(root / ".env")}
    install({}, environ)
    add_user(load(environ), "existing", "Existing User", "Existing pw 1", rounds=ROUNDS)
    return root


def copy_of(template: Path):
    root = Path(tempfile.mkdtemp(prefix="kit-"))
    shutil.copytree(template, root, dirs_exist_ok=True)
    return root, load({"CLEARML_ENV_FILE": str(root / ".env")})


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file()}


def server_login(config_file: Path, username: str, password: str) -> tuple[dict, bool]:
    """The rendered entry as the server parses it, and the server's HTTP Basic check of the password."""
    users = ConfigFactory.parse_file(str(config_file)).get("auth.fixed_users.users")
    entry = next(u for u in users if u["username"] == username)
    header = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode()  # what a browser sends
    key, _, secret = base64.b64decode(header.encode()).decode("latin-1").partition(":")  # what the server reads
    assert key == username
    ok = bcrypt.checkpw(secret.encode(), base64.b64decode(entry["password"].encode("ascii")))
    return dict(entry), ok


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(username=usernames, name=display_names, password=passwords)
@example(username="alice", name="Alice O'Brien \"the Boss\" \\ $HOME #1 ${x} José 😀", password="p@ss:w0rd!%&*")
@example(username="al'ice", name="", password="pw")
@example(username="alice", name="two\nlines", password="pw")
@example(username="alice", name="", password="pa$$ \"word\" #1 \\ `x` ${y}")  # refused: quotes, $, \\
@example(username="alice", name="", password="pässword")
@example(username="alice", name="", password="pass\nword")
@example(username="alice", name="", password="a" * 73)
@example(username="alice", name="", password="")
@example(username="EXISTING", name="", password="pw")
def test_accepted_users_round_trip_and_refused_ones_change_nothing(template, username, name, password):
    root, settings = copy_of(template)
    try:
        before = snapshot(root)
        try:
            add_user(settings, username, name, password, rounds=ROUNDS)
        except StackError as exc:
            event("refused")
            assert exc.message and exc.fix
            assert snapshot(root) == before, "a refused user changed a file"
            return
        event("accepted")
        assert password.isascii(), "an accepted password must read the same in latin-1 (server) and UTF-8 (clients)"
        assert not set(password) & set(REFUSED_PASSWORD_CHARS), "quotes, $ and backslashes must be refused"
        entry, ok = server_login(settings.config_dir / "apiserver.conf", username, password)
        assert entry["username"] == username
        assert entry["name"] == (name or username)
        assert ok, "the rendered hash does not verify the server's way"
        assert load_users(settings.users_file)[-1].name == (name or username)
        assert (settings.users_file.stat().st_mode & 0o777) == 0o600
    finally:
        shutil.rmtree(root)


SAFE_PASSWORD_CHARS = "".join(c for c in PRINTABLE if c not in REFUSED_PASSWORD_CHARS)
printable_names = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Co", "Cn", "Zl", "Zp")),
                          max_size=100)
good_passwords = st.text(alphabet=SAFE_PASSWORD_CHARS, min_size=1, max_size=72)


@hsettings(max_examples=80, deadline=None)
@given(username=st.from_regex(USERNAME_RE, fullmatch=True), name=printable_names, password=good_passwords)
def test_every_printable_display_name_and_safe_password_is_accepted(template, username, name, password):
    """The accepted set is not narrower than documented: any printable name, any safe ASCII password."""
    root, settings = copy_of(template)
    try:
        if username.lower() == "existing":
            return
        add_user(settings, username, name, password, rounds=ROUNDS)
        entry, ok = server_login(settings.config_dir / "apiserver.conf", username, password)
        assert ok and entry["username"] == username and entry["name"] == (name or username)
    finally:
        shutil.rmtree(root)


@hsettings(max_examples=60, deadline=None)
@given(password=passwords)
@example(password="new$pass")
@example(password="new päss")
def test_password_change_round_trips_or_changes_nothing(template, password):
    root, settings = copy_of(template)
    try:
        before = snapshot(root)
        try:
            change_password(settings, "existing", password, rounds=ROUNDS)
        except StackError:
            assert snapshot(root) == before, "a refused password changed a file"
            return
        entry, ok = server_login(settings.config_dir / "apiserver.conf", "existing", password)
        assert ok and entry["name"] == "Existing User"
    finally:
        shutil.rmtree(root)


@hsettings(max_examples=30, deadline=None)
@given(variant=st.sampled_from(["existing", "Existing", "EXISTING", "eXisting"]), password=passwords)
def test_duplicates_change_nothing(template, variant, password):
    root, settings = copy_of(template)
    try:
        before = snapshot(root)
        with pytest.raises(StackError):
            add_user(settings, variant, "", password, rounds=ROUNDS)
        assert snapshot(root) == before
    finally:
        shutil.rmtree(root)


def test_refused_and_accepted_both_happen(template):
    """Guard against strategies that only ever produce one branch."""
    root, settings = copy_of(template)
    try:
        add_user(settings, "bob", "Bob \"B\" O'Neil", "ok pass!", rounds=ROUNDS)
        with pytest.raises(StackError):
            add_user(settings, "carol", "", "bäd pass", rounds=ROUNDS)
        assert [u.username for u in load_users(settings.users_file)] == ["existing", "bob"]
    finally:
        shutil.rmtree(root)
    assert os.path.exists(template / ".env")
