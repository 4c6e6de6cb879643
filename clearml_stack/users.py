"""Web login users: validation, bcrypt hashing the way the server checks it, and the users file.

The server (``auth.fixed_users`` with ``pass_hashed: true``) verifies a login with
``bcrypt.checkpw(password, base64.b64decode(stored))``: we store exactly that base64 form,
and nothing else about the password.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import StackError
from .fsutil import atomic_write

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_PASSWORD_BYTES = 72  # bcrypt >= 5 raises above this; the server would answer 500
BCRYPT_ROUNDS = 12


@dataclass(frozen=True)
class User:
    username: str
    name: str
    password_hash: str  # base64 of the "$2b$12$..." bcrypt string


def check_username(username: str) -> None:
    if not USERNAME_RE.fullmatch(username):
        raise StackError(
            f"user name {username!r} is not accepted",
            "use 1-64 characters: letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
        )


def check_display_name(name: str) -> None:
    if len(name) > 100 or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise StackError(
            f"display name {name!r} is not accepted",
            "use up to 100 printable characters on one line",
        )


def check_password(password: str) -> None:
    if password == "":
        raise StackError("the password is empty", "give a password of 1 to 72 bytes")
    if "\n" in password or "\r" in password or "\0" in password:
        raise StackError("the password contains a line break or NUL", "use a single-line password")
    size = len(password.encode("utf-8"))
    if size > MAX_PASSWORD_BYTES:
        raise StackError(
            f"the password is {size} bytes long; bcrypt (and so the server) accepts at most {MAX_PASSWORD_BYTES}",
            "use a shorter password (non-ASCII characters count 2-4 bytes each)",
        )


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """The stored form: base64 of the bcrypt hash string."""
    import bcrypt

    check_password(password)
    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds))
    return base64.b64encode(hashed).decode("ascii")


def verify_password(password: str, stored: str) -> bool:
    """Check a password exactly as the server does."""
    import bcrypt

    return bcrypt.checkpw(password.encode("utf-8"), base64.b64decode(stored))


def load_users(path: Path) -> list[User]:
    """Users from the users file; an absent file means no users."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        users = [User(**entry) for entry in data["users"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise StackError(
            f"users file {path} cannot be read ({exc})",
            "restore it from a backup, or delete it and add users again with `inv users.add`",
        ) from exc
    return users


def save_users(path: Path, users: list[User]) -> None:
    text = json.dumps({"users": [asdict(u) for u in users]}, indent=2, ensure_ascii=False) + "\n"
    atomic_write(Path(path), text, 0o600)


def with_user(users: list[User], user: User) -> list[User]:
    """``users`` plus ``user``; a duplicate name is refused (duplicates stop the server)."""
    check_username(user.username)
    check_display_name(user.name)
    if any(u.username == user.username for u in users):
        raise StackError(
            f"user {user.username!r} already exists",
            f"pick another name, or change the password with `inv users.passwd {user.username}`",
        )
    return [*users, user]


def without_user(users: list[User], username: str) -> list[User]:
    if not any(u.username == username for u in users):
        raise StackError(f"no user named {username!r}", "see `inv users.list`")
    return [u for u in users if u.username != username]
