"""Web login users: validation, bcrypt hashing the way the server checks it, and the users file.

The server (``auth.fixed_users`` with ``pass_hashed: true``) verifies a login with
``bcrypt.checkpw(password, base64.b64decode(stored))``: we store exactly that base64 form,
and nothing else about the password.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import StackError
from .fsutil import atomic_write

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_PASSWORD_BYTES = 72  # bcrypt >= 5 raises above this; the server would answer 500
MAX_NAME_CHARS = 100
BCRYPT_ROUNDS = 12
_STORED_HASH_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True)
class User:
    username: str
    name: str
    password_hash: str  # base64 of the "$2b$12$..." bcrypt string


def check_username(username: str) -> None:
    """A name the server and HTTP Basic read back unchanged: ASCII letters, digits, '.', '_', '@', '-'.

    The server decodes HTTP Basic credentials as latin-1 and splits them at the first ':', so
    anything beyond this set (':', spaces, quotes, non-ASCII) would never log in.
    """
    if not USERNAME_RE.fullmatch(username):
        raise StackError(
            f"user name {username!r} is not accepted",
            "use 1-64 characters: ASCII letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
        )


def check_display_name(name: str) -> None:
    """A one-line display name; any printable character (quotes and accents included) round-trips."""
    bad = [ch for ch in name if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")]
    if len(name) > MAX_NAME_CHARS or bad:
        raise StackError(
            f"display name {name!r} is not accepted"
            + (f" (it contains {bad[0]!r}, a control or line-break character)" if bad else
               f" ({len(name)} characters)"),
            f"use up to {MAX_NAME_CHARS} printable characters on one line",
        )


#: characters refused in passwords: quotes, backticks, `$` and backslashes mean something to every shell,
#: .env file and config format a password may be typed into, so a password holding one is easily
#: mangled on its way to the login form or a script (the kit itself stores only the hash)
REFUSED_PASSWORD_CHARS = "'\"`$\\"


def check_password(password: str) -> None:
    """1 to 72 bytes of printable ASCII without quotes, backticks, `$` or backslashes.

    The value is never shown in a message, only what is wrong with it. Non-ASCII is refused because the
    server decodes HTTP Basic credentials as latin-1 and then hashes the UTF-8 of that: a client sending
    UTF-8 (curl, most scripts) never logs in, and characters beyond latin-1 cannot be sent by the SDK or
    the web UI at all.
    """
    if password == "":
        raise StackError("the password is empty", f"give a password of 1 to {MAX_PASSWORD_BYTES} characters")
    for pos, ch in enumerate(password, 1):
        if ch in "\n\r":
            raise StackError("the password contains a line break", "use a single-line password")
        if ch in REFUSED_PASSWORD_CHARS:
            raise StackError(
                f"the password contains {ch!r} (character {pos}); quotes, backticks, $ and backslashes are refused "
                "because shells, .env files and config formats change them on the way to a login",
                "use letters, digits, spaces and other punctuation (e.g. ! # % & * + - . : ; = ? @ _ ~)",
            )
        if not " " <= ch <= "~":
            what = "a control character" if ch.isascii() or unicodedata.category(ch)[0] == "C" else \
                "a non-ASCII character"
            raise StackError(
                f"the password contains {what} (character {pos}); the server reads login passwords as latin-1, "
                "so only ASCII ones work from every client",
                "use letters, digits, spaces and other punctuation (e.g. ! # % & * + - . : ; = ? @ _ ~)",
            )
    size = len(password.encode("utf-8"))
    if size > MAX_PASSWORD_BYTES:
        raise StackError(
            f"the password is {size} characters long; bcrypt (and so the server) accepts at most {MAX_PASSWORD_BYTES}",
            f"use a password of at most {MAX_PASSWORD_BYTES} characters",
        )


def check_stored_hash(stored: str, username: str = "NAME") -> None:
    """The form the server checks: standard base64 of a ``$2a$``/``$2b$``/``$2y$`` bcrypt string."""
    try:
        raw = base64.b64decode(stored, validate=True) if _STORED_HASH_RE.fullmatch(stored) else b""
    except ValueError:
        raw = b""
    if not re.fullmatch(rb"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}", raw):
        raise StackError(f"the stored password of {username!r} is not a base64 bcrypt hash",
                         f"set the password again with `inv users.passwd {shlex.quote(username)}`")


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """The stored form: base64 of the bcrypt hash string."""
    import bcrypt

    check_password(password)
    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds))
    return base64.b64encode(hashed).decode("ascii")


def verify_password(password: str, stored: str) -> bool:
    """Check a password exactly as the server does (``compare_secret_key_hash``)."""
    import bcrypt

    return bcrypt.checkpw(password.encode(), base64.b64decode(stored.encode("ascii")))


def load_users(path: Path, check: bool = True) -> list[User]:
    """Users from the users file; an absent file means no users.

    Every entry is checked again (``check``), so a hand-edited file cannot put something the server
    would misread into its config. ``check=False`` only parses: what `inv users.remove` and
    `inv users.passwd` use to repair a file with a bad entry. A file that is not the users file's JSON
    is refused either way.
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        users = [User(**entry) for entry in data["users"]]
        for u in users:
            if not all(isinstance(v, str) for v in (u.username, u.name, u.password_hash)):
                raise TypeError("every field must be a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise StackError(
            f"users file {path} cannot be read ({exc})",
            "restore it from a backup, or delete it and add users again with `inv users.add`",
        ) from exc
    if check:
        check_users(users, path)
    return users


def check_users(users: list[User], path: Path, new_password_of: str = "") -> None:
    """Every entry as the server needs it; the first bad one is refused, naming the command that fixes it.

    ``new_password_of`` names a user whose stored hash is about to be replaced (not checked).
    """
    seen: set[str] = set()
    for u in users:
        try:
            check_username(u.username)
            check_display_name(u.name)
            if u.username != new_password_of:
                check_stored_hash(u.password_hash, u.username)
            if u.username.lower() in seen:
                raise StackError(f"user {u.username!r} appears twice", "remove one of them")
        except StackError as exc:
            raise StackError(f"users file {path}: {exc.message}",
                             f"{exc.fix}; or `inv users.remove {shlex.quote(u.username)}` and add the user again"
                             ) from exc
        seen.add(u.username.lower())


def save_users(path: Path, users: list[User]) -> None:
    """Write the users file atomically, mode 0600."""
    text = json.dumps({"users": [asdict(u) for u in users]}, indent=2, ensure_ascii=False) + "\n"
    atomic_write(Path(path), text, 0o600)


def find(users: list[User], username: str) -> User | None:
    """The user with this exact name."""
    return next((u for u in users if u.username == username), None)


def check_new_user(users: list[User], username: str, name: str) -> None:
    """Everything about a new user except the password; a duplicate name is refused.

    Names equal but for case are duplicates too: two such logins would only confuse people.
    """
    check_username(username)
    check_display_name(name)
    clash = next((u for u in users if u.username.lower() == username.lower()), None)
    if clash is not None:
        same = clash.username == username
        raise StackError(
            f"user {username!r} already exists" + ("" if same else f" (as {clash.username!r})"),
            f"pick another name, or change the password with `inv users.passwd {clash.username}`",
        )


def with_user(users: list[User], user: User) -> list[User]:
    """``users`` plus ``user``; a duplicate name is refused (duplicates stop the server)."""
    check_new_user(users, user.username, user.name)
    check_stored_hash(user.password_hash, user.username)
    return [*users, user]


def without_user(users: list[User], username: str) -> list[User]:
    if find(users, username) is None:
        raise StackError(f"no user named {username!r}", "see `inv users.list`")
    return [u for u in users if u.username != username]


def with_password(users: list[User], username: str, password_hash: str) -> list[User]:
    if find(users, username) is None:
        raise StackError(f"no user named {username!r}", "see `inv users.list`")
    check_stored_hash(password_hash, username)
    return [User(u.username, u.name, password_hash) if u.username == username else u for u in users]


def add_user(settings, username: str, name: str, password: str, rounds: int = BCRYPT_ROUNDS) -> list[User]:
    """Check everything, then hash, save the users file and render the login config.

    Every check runs before anything is written: a refused user changes no file.
    """
    from .install import InstallReport, render_config

    settings.require_installed()  # the login config needs the generated secrets
    users = load_users(settings.users_file)
    name = name or username
    check_new_user(users, username, name)
    updated = with_user(users, User(username, name, hash_password(password, rounds)))
    save_users(settings.users_file, updated)
    render_config(settings, InstallReport())
    return updated


def check_password_change(settings, username: str) -> list[User]:
    """The users a password change starts from, read without the per-entry checks (so a bad stored hash
    can be replaced); refused when the user is absent or another part of the file would still be bad."""
    users = load_users(settings.users_file, check=False)
    if find(users, username) is None:
        raise StackError(f"no user named {username!r}", "see `inv users.list`")
    check_users(users, settings.users_file, new_password_of=username)
    return users


def change_password(settings, username: str, password: str, rounds: int = BCRYPT_ROUNDS) -> list[User]:
    """Check, hash, save and render; a refused password changes no file.

    Works on a users file whose entry for ``username`` holds a bad hash: that is how it is repaired.
    """
    from .install import InstallReport, render_config

    users = check_password_change(settings, username)
    updated = with_password(users, username, hash_password(password, rounds))
    save_users(settings.users_file, updated)
    render_config(settings, InstallReport())
    return updated

