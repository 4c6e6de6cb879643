"""Web login user checks: what is refused (with a message that never shows the password) and accepted."""

from __future__ import annotations

import base64
import json

import pytest

from clearml_stack.errors import StackError
from clearml_stack.users import (
    MAX_PASSWORD_BYTES,
    User,
    check_display_name,
    check_new_user,
    check_password,
    check_stored_hash,
    check_username,
    hash_password,
    load_users,
    save_users,
    verify_password,
    with_password,
    with_user,
    without_user,
)

SECRET_WORD = "Hunter2pass"


@pytest.mark.parametrize(
    "password, reason",
    [
        ("", "empty"),
        (f"{SECRET_WORD}é", "non-ASCII"),
        (f"{SECRET_WORD}ü", "latin-1"),
        (f"{SECRET_WORD}€", "non-ASCII"),
        (f"{SECRET_WORD}😀", "non-ASCII"),
        (f"{SECRET_WORD}\n2", "line break"),
        (f"{SECRET_WORD}\r", "line break"),
        (f"{SECRET_WORD}\t", "control"),
        (f"{SECRET_WORD}\x00", "control"),
        (f"{SECRET_WORD}\x7f", "control"),
        ("a" * (MAX_PASSWORD_BYTES + 1), "at most 72"),
        (f"{SECRET_WORD}$HOME", "'$'"),
        (f"{SECRET_WORD}'", "\"'\""),
        (f'{SECRET_WORD}"', "'\"'"),
        (f"{SECRET_WORD}`id`", "'`'"),
        (f"{SECRET_WORD}\\n", "'\\\\'"),
    ],
)
def test_refused_passwords_name_the_problem_not_the_password(password, reason):
    with pytest.raises(StackError) as info:
        check_password(password)
    text = str(info.value)
    assert reason in text
    assert SECRET_WORD not in text and (len(password) < 20 or password not in text)
    assert info.value.fix


@pytest.mark.parametrize("password", ["a", "a" * MAX_PASSWORD_BYTES, "correct horse battery staple",
                                      "p@ss:w0rd!%^&*()[]{}<>?/|~=+-_.,;", "pass #1 {HOME}",
                                      " padded "])
def test_accepted_passwords_hash_and_verify_the_server_way(password):
    check_password(password)
    stored = hash_password(password, rounds=4)
    assert base64.b64decode(stored).startswith(b"$2b$04$")
    assert verify_password(password, stored)
    other = password[:-1] + ("b" if password[-1] != "b" else "c")
    assert not verify_password(other, stored)


@pytest.mark.parametrize("name", ["", "a b", "a:b", "al'ice", 'a"b', "a\\b", "a$b", "a#b", "josé", "a\nb",
                                  "-alice", ".alice", "a" * 65, "ali/ce"])
def test_refused_usernames(name):
    with pytest.raises(StackError) as info:
        check_username(name)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["alice", "a", "alice.smith", "alice_s", "alice@example.com", "A-1", "a" * 64])
def test_accepted_usernames(name):
    check_username(name)


@pytest.mark.parametrize("name", ["Alice O'Brien", 'The "Boss"', "José Núñez", "李雷", "back\\slash", "$HOME #1",
                                  "  padded  ", "x" * 100])
def test_accepted_display_names(name):
    check_display_name(name)


@pytest.mark.parametrize("name", ["two\nlines", "cr\r", "tab\there", "nul\x00", "ls\u2028", "ps\u2029", "zw\u200b",
                                  "x" * 101])
def test_refused_display_names(name):
    with pytest.raises(StackError):
        check_display_name(name)


def _user(name: str) -> User:
    return User(name, name, hash_password("pw", rounds=4))


def test_duplicates_are_refused_also_when_only_case_differs():
    users = [_user("alice")]
    with pytest.raises(StackError, match="already exists"):
        check_new_user(users, "alice", "Alice")
    with pytest.raises(StackError, match="as 'alice'"):
        with_user(users, _user("Alice"))
    assert [u.username for u in with_user(users, _user("bob"))] == ["alice", "bob"]


def test_remove_and_passwd_need_an_existing_user():
    users = [_user("alice"), _user("bob")]
    assert [u.username for u in without_user(users, "alice")] == ["bob"]
    with pytest.raises(StackError, match="no user named 'carol'"):
        without_user(users, "carol")
    new_hash = hash_password("new", rounds=4)
    changed = with_password(users, "bob", new_hash)
    assert changed[1].password_hash == new_hash and changed[0] == users[0]
    with pytest.raises(StackError):
        with_password(users, "carol", new_hash)


@pytest.mark.parametrize("stored", ["", "not base64!", base64.b64encode(b"plain password").decode(),
                                    base64.b64encode(b"$2b$12$short").decode()])
def test_stored_hash_must_be_base64_bcrypt(stored):
    with pytest.raises(StackError):
        check_stored_hash(stored)


def test_users_file_is_private_and_hand_edits_are_checked(tmp_path):
    path = tmp_path / "users.json"
    save_users(path, [_user("alice")])
    assert path.stat().st_mode & 0o777 == 0o600
    assert [u.username for u in load_users(path)] == ["alice"]
    data = json.loads(path.read_text())
    data["users"].append({**data["users"][0], "username": 'bob" }'})
    path.write_text(json.dumps(data))
    with pytest.raises(StackError, match="not accepted"):
        load_users(path)
    data["users"][1] = {**data["users"][0], "username": "ALICE"}
    path.write_text(json.dumps(data))
    with pytest.raises(StackError, match="appears twice"):
        load_users(path)
    data["users"] = [{**data["users"][0], "password_hash": "plain"}]
    path.write_text(json.dumps(data))
    with pytest.raises(StackError, match="not a base64 bcrypt hash"):
        load_users(path)
